"""The NATS cluster's users and permissions, written from the registry like Mosquitto's ACL
(``cloud.broker_files``), into ``nats-users.conf`` beside it: every node includes that file,
and takes a new one on ``nats-server --signal reload`` (docs/scaling.md).

NATS checks subjects, not MQTT topics: ``shian/v1/dev/box-1/events`` is the subject
``shian.v1.dev.box-1.events``, ``+`` is ``*`` and ``#`` is ``>`` (and ``cmd/#`` also matches
``cmd`` itself, so both are granted). Each user gets its role's subjects only:

- a box publishes its own events, status, snapshots and live frames, and reads its own
  commands, the collector's hello and clock. It subscribes at QoS 0 (``edge.sync``), so it
  needs none of NATS's internal ``$MQTT.sub`` subjects, whose grant would let it read what is
  delivered to others;
- a supervisor reads its district's alerts and escalations and its replies, and writes its
  own commands, at QoS 0 on the cluster for the same reason;
- an inspector has a login for the patrol pages and no subject at all;
- the collector has everything, over MQTT and over NATS (its intake).

A forbidden publish is acknowledged by NATS and dropped (logged as a violation), never
delivered. Passwords are bcrypt hashes (NATS's own format); the passwords are the collector's
random ones of 128 bits and more, so a low cost is no weakness, and every connection after a
node's loss is checked quickly.
"""

from __future__ import annotations

from collections.abc import Iterable

import bcrypt

from cloud.registry import Identity
from shared.topics import check_name

COST = 6
"""bcrypt's cost: 64 rounds, about a millisecond to check (NATS checks at each CONNECT)."""


def hash_password(password: str) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(COST)).decode()


def _quoted(items: Iterable[str]) -> str:
    return "[" + ", ".join(f'"{s}"' for s in items) + "]"


def _user(name: str, hashed: str, publish: list[str], subscribe: list[str], kinds: str) -> str:
    if "\\" in hashed or '"' in hashed:
        raise ValueError(f"a password hash of {name} that is not bcrypt")
    if not publish and not subscribe:  # an empty list would be no limit: deny all instead
        return (
            f'    {{user: "{name}", password: "{hashed}", allowed_connection_types: {kinds},\n'
            '     permissions: {publish: {deny: [">"]}, subscribe: {deny: [">"]}}}\n'
        )
    return (
        f'    {{user: "{name}", password: "{hashed}", allowed_connection_types: {kinds},\n'
        f"     permissions: {{publish: {_quoted(publish)}, subscribe: {_quoted(subscribe)}}}}}\n"
    )


def _level(name: str, what: str) -> str | None:
    """A checked name that is one subject level; None for a name holding a ``.`` (the
    registry allows it, but in NATS it would be two levels, and NATS refuses an MQTT topic
    holding one): that user is left off the cluster, with a comment saying why."""
    name = check_name(name, what)
    return None if "." in name else name


def _unhashed(name: str) -> str:
    """A user whose password was set before the cluster's hashes were kept: only its
    Mosquitto hash exists, which NATS cannot read. Said in the file; a new password (for a
    box, a new bundle) puts it on the cluster."""
    return f"    # {name}: no NATS password yet (set before the cluster): give it a new one\n"


def users_text(
    collector: str,
    devices: Iterable[Identity],
    supervisors: Iterable[Identity],
    hashes: dict[str, str],
) -> str:
    """``authorization { users = [...] }`` for the users that have a hash in ``hashes``."""
    out = [
        "# Written by shian-cloud from its registry; edits here are overwritten.\n",
        "authorization {\n  users = [\n",
    ]
    me = check_name(collector, "collector")
    if me in hashes:
        out.append(_user(me, hashes[me], [">"], [">"], '["MQTT", "STANDARD"]'))
    for d in sorted(devices, key=lambda i: i.name):
        name = _level(d.name, "device")
        if name is None:
            out.append(f"    # box {d.name}: a name with '.' cannot be one NATS level\n")
            continue
        if name not in hashes:
            out.append(_unhashed(name))
            continue
        base = f"shian.v1.dev.{name}"
        out.append(
            _user(
                name,
                hashes[name],
                [f"{base}.events", f"{base}.status", f"{base}.snap.*", f"{base}.live.*"],
                [
                    f"{base}.cmd",
                    f"{base}.cmd.>",
                    "shian.v1.collector.hello",
                    "shian.v1.collector.clock",
                ],
                '["MQTT"]',
            )
        )
    for s in sorted(supervisors, key=lambda i: i.name):
        name, district = _level(s.name, "supervisor"), _level(s.district, "district")
        if name is None or district is None:
            out.append(
                f"    # {s.name} of {s.district}: a name with '.' cannot be one NATS level\n"
            )
            continue
        if name not in hashes:
            out.append(_unhashed(name))
            continue
        if s.role == "inspector":
            out.append(_user(name, hashes[name], [], [], '["MQTT"]'))
            continue
        out.append(
            _user(
                name,
                hashes[name],
                [f"shian.v1.sup.{name}.cmd"],
                [
                    f"shian.v1.alerts.{district}.*",
                    f"shian.v1.escalations.{district}",
                    f"shian.v1.sup.{name}.reply",
                ],
                '["MQTT"]',
            )
        )
    out.append("  ]\n}\n")
    return "".join(out)
