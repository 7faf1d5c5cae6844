"""A paho-mqtt 2.x client made the same way on both sides (TLS, credentials, protocol)."""

from __future__ import annotations

import random
import ssl
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from shared.config import MqttSettings

# CONNACK reason for "this broker does not speak that MQTT version" (3.1.1 code 1, MQTT 5 0x84).
UNSUPPORTED_PROTOCOL = {1, 0x84}


def make_client(
    settings: MqttSettings, client_id: str, protocol: MQTTProtocolVersion, *, clean: bool = True
) -> mqtt.Client:
    """A configured client that is not yet connected.

    ``clean=False`` asks the broker to keep the session (subscriptions and queued QoS 1
    messages) while the client is away; for MQTT 5 pass :func:`connect_kwargs` to connect.
    """
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=protocol,
        clean_session=None if protocol == MQTTProtocolVersion.MQTTv5 else clean,
        # Each side runs its own reconnect loop (with jitter, a fresh client per session).
        reconnect_on_failure=False,
    )
    client.connect_timeout = settings.connect_timeout_s
    if settings.username:
        client.username_pw_set(settings.username, settings.secret())
    if settings.tls:
        client.tls_set_context(tls_context(settings))
    return client


def tls_context(settings: MqttSettings) -> ssl.SSLContext:
    """The TLS context of ``settings``: its CA, and its client certificate if any (the
    collector's NATS intake uses the same)."""
    ctx = ssl.create_default_context(cafile=str(settings.ca_file) if settings.ca_file else None)
    if settings.cert_file:
        ctx.load_cert_chain(
            str(settings.cert_file), str(settings.key_file) if settings.key_file else None
        )
    return ctx


def connect_kwargs(
    protocol: MQTTProtocolVersion, *, clean: bool = True, session_expiry_s: int = 0
) -> dict[str, Any]:
    """Extra ``connect``/``connect_async`` arguments: MQTT 5 sets the session here."""
    if protocol != MQTTProtocolVersion.MQTTv5:
        return {}
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    if not clean:
        props.SessionExpiryInterval = session_expiry_s
    return {"clean_start": clean, "properties": props}


def protocols(settings: MqttSettings) -> list[MQTTProtocolVersion]:
    """Protocols to try in order."""
    if settings.protocol == "5":
        return [MQTTProtocolVersion.MQTTv5]
    if settings.protocol == "3.1.1":
        return [MQTTProtocolVersion.MQTTv311]
    return [MQTTProtocolVersion.MQTTv5, MQTTProtocolVersion.MQTTv311]


class Backoff:
    """Exponential backoff with jitter: the n-th delay is uniform in [d/2, d] with
    d = min(max, initial * 2**n), so a city of boxes that lost the broker together does not
    come back in one wave, and no box ever retries in a tight loop."""

    def __init__(self, initial_s: float, max_s: float, rng: random.Random | None = None) -> None:
        self.initial_s, self.max_s = initial_s, max_s
        self.failures = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        d = min(self.max_s, self.initial_s * (2 ** min(self.failures, 30)))
        self.failures += 1
        return self._rng.uniform(d / 2, d)

    def reset(self) -> None:
        self.failures = 0


class Endpoints:
    """The broker nodes a client may use: ``url`` first, then ``failover_urls`` in an order
    of the client's own (seeded by its id, so the clients of a node that dies spread over the
    others rather than all moving to the same one). ``next`` moves on after a failure."""

    def __init__(self, settings: MqttSettings, seed: str) -> None:
        rest = list(dict.fromkeys(u for u in settings.failover_urls if u != settings.url))
        random.Random(seed).shuffle(rest)
        self.urls = [settings.url, *rest]
        self.index = 0

    @property
    def url(self) -> str:
        return self.urls[self.index]

    @property
    def address(self) -> tuple[str, int]:
        parts = urlsplit(self.url)
        return parts.hostname or "", parts.port or (8883 if parts.scheme == "mqtts" else 1883)

    def next(self) -> bool:
        """Move to the next node; False when there is only one."""
        self.index = (self.index + 1) % len(self.urls)
        return len(self.urls) > 1
