"""The live views' own broker session: commands to boxes, JPEG frames from them.

Apart from the collector's session on purpose: live frames are QoS 0 and many, commands are
not part of the durable alert outbox, and neither may slow ingest down. A clean session: what
was missed while away does not matter (the next renewal resends).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from cloud.images import jpeg_problem
from shared import topics
from shared.config import MqttSettings
from shared.live import LiveCommand
from shared.mqtt import Backoff, connect_kwargs, make_client, protocols
from shared.redact import redact

log = logging.getLogger("shian.live")

MAX_FRAME_BYTES = 512 * 1024
MAX_FRAME_PIXELS = 1920 * 1080


def check_frame(payload: bytes) -> str | None:
    """Why a live frame is not a JPEG that decodes within bounds, or None."""
    return jpeg_problem(payload, MAX_FRAME_BYTES, MAX_FRAME_PIXELS)


class LiveRelay:
    def __init__(self, settings: MqttSettings, on_frame: Callable[[str, str, bytes], None]):
        """``on_frame(device, stream, jpeg)`` for each frame that checks."""
        self.settings, self.on_frame = settings, on_frame
        self.client_id = f"{settings.client_id or 'shian-collector'}-live"
        self.counters = {"live_frames": 0, "live_frames_bad": 0, "live_commands": 0}
        self._client: Any = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="live-relay", daemon=True)

    def send(self, device: str, cmd: LiveCommand) -> None:
        client = self._client
        if client is None:
            raise ConnectionError("no broker session for live commands")
        client.publish(topics.command(device, "live"), cmd.model_dump_json(), qos=1)
        self.counters["live_commands"] += 1

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _message(self, topic: str, payload: bytes) -> None:
        t = topics.parse(topic)
        if t is None or t.channel != "live" or "/" in t.rest:
            return
        why = check_frame(payload)
        if why is not None:
            self.counters["live_frames_bad"] += 1
            log.info("live frame on %s refused: %s", topic[:200], why)
            return
        self.counters["live_frames"] += 1
        self.on_frame(t.device, t.rest, payload)

    def _run(self) -> None:
        s = self.settings
        protocol = protocols(s)[-1]
        backoff = Backoff(s.backoff_initial_s, s.backoff_max_s)
        while not self._stop.is_set():
            gone = threading.Event()
            client = make_client(s, self.client_id, protocol)
            client.on_connect = lambda c, _u, _f, rc, _p, gone=gone: (
                gone.set() if rc.is_failure else c.subscribe(topics.ALL_LIVE_FRAMES, 0)
            )
            client.on_disconnect = lambda *_, gone=gone: gone.set()
            client.on_message = lambda _c, _u, msg: self._message(msg.topic, bytes(msg.payload))
            try:
                client.connect(s.host, s.port, s.keepalive_s, **connect_kwargs(protocol))
            except (OSError, ValueError) as exc:
                log.warning("live relay cannot connect to %s: %s", redact(s.url), exc)
                self._stop.wait(backoff.next_delay())
                continue
            client.loop_start()
            self._client, began = client, time.monotonic()
            while not gone.wait(0.5) and not self._stop.is_set():
                pass
            if time.monotonic() - began > 10:
                backoff.reset()
            self._client = None
            client.disconnect()
            client.loop_stop()
            if not self._stop.is_set():
                self._stop.wait(backoff.next_delay())
