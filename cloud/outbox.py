"""The collector's outgoing messages: alerts, replies, notices, updates. Rows of
``alert_outbox``, written in the transaction that decided them and published by the
collector's publisher thread (``cloud.publisher``) in the order of their ``seq``."""

from __future__ import annotations

from cloud.db.base import Conn


def queue_message(conn: Conn, topic: str, payload: str, now: float, retain: bool = False) -> None:
    """Queue one message; an empty retained payload clears what the broker retains there."""
    # under the lock, so outbox rows commit in the order of their seq (the publisher reads
    # past the last seq it sent)
    conn.lock("alerts")
    conn.execute(
        "INSERT INTO alert_outbox (topic, payload, retain, created) VALUES (?, ?, ?, ?)",
        (topic, payload, int(retain), now),
    )
