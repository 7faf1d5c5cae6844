"""``shian-edge doctor``: prove on the spot that every part of a box works.

Each check gives pass or fail, what it saw, and for a failure a hint of what to do. The slow
ones (cameras, the broker, the scale) report their progress as they go.
"""

from __future__ import annotations

import json
import queue
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from edge.config import EdgeConfig
from shared.config import unreadable_files
from shared.redact import redact


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    hint: str = ""

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


Progress = Callable[[str], None]


def check_files(cfg: EdgeConfig) -> Check:
    problems = unreadable_files(cfg)
    return Check(
        "files",
        not problems,
        "; ".join(problems) or "every file the config names is readable",
        "" if not problems else "re-run shian-edge provision, or fix the paths and owners",
    )


def check_clock() -> Check:
    year = time.gmtime().tm_year
    ok = 2025 <= year < 2100
    return Check(
        "clock",
        ok,
        time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "" if ok else "set the clock or enable NTP (timedatectl set-ntp true)",
    )


def check_disk(cfg: EdgeConfig) -> Check:
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(cfg.data_dir).free
    need = 1 << 30
    ok = free >= need
    return Check(
        "disk",
        ok,
        f"{free / 2**30:.1f} GiB free in {cfg.data_dir}",
        "" if ok else "free at least 1 GiB, or give data_dir a bigger disk",
    )


def check_box(cfg: EdgeConfig) -> list[Check]:
    """The config against the box model: how many cameras it can watch."""
    if not cfg.box:
        return []
    from edge.provision import profile

    try:
        box = profile("boxes", cfg.box)
    except ValueError as exc:
        return [Check("box", False, str(exc), "set box to one of the profiles")]
    n = len(cfg.kitchen.cameras) if cfg.kitchen else 0
    ok = n <= box.max_cameras
    return [
        Check(
            "box",
            ok,
            f"{box.title}: {n} camera(s), at most {box.max_cameras}",
            "" if ok else "fewer cameras, or a bigger box (pi5)",
        )
    ]


CLOCK_SKEW_MAX_S = 60.0
"""How far the box's clock may be from the collector's (the cloud alerts at 300 s)."""
CLOCK_EVERY_MAX_S = 60.0
"""The oldest the collector's retained time can be (``collector.clock_every_s`` at most)."""


def compare_clock(q: Any, wait_s: float = 5.0) -> Check:
    """The box's clock against the collector's retained time (``shian/v1/collector/clock``).
    That message is up to ``CLOCK_EVERY_MAX_S`` old, so a box ahead is judged with that
    margin; a box behind is certain."""
    end = time.monotonic() + wait_s
    while (left := end - time.monotonic()) > 0:
        try:
            got = q.get(timeout=left)
        except queue.Empty:
            break
        if got[0] != "clock":
            continue
        try:
            ts = float(json.loads(got[1])["ts"])
        except (ValueError, KeyError, TypeError):
            continue
        skew = got[2] - ts
        ok = -CLOCK_SKEW_MAX_S <= skew <= CLOCK_SKEW_MAX_S + CLOCK_EVERY_MAX_S
        side = "ahead of" if skew > 0 else "behind"
        return Check(
            "clock vs collector",
            ok,
            f"{abs(skew):.0f} s {side} the collector's",
            "" if ok else "set the clock or enable NTP (timedatectl set-ntp true)",
        )
    return Check("clock vs collector", True, "no collector time heard: not compared")


def check_broker(cfg: EdgeConfig, progress: Progress) -> list[Check]:
    """Connect as this box (TLS, credentials), publish on its own topic, and be refused on
    another box's topic (the ACL works)."""

    from paho.mqtt.enums import MQTTProtocolVersion

    from shared import topics
    from shared.mqtt import make_client

    mq = cfg.mqtt
    progress(f"broker {redact(mq.url)}")
    q: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
    client = make_client(mq, f"{mq.client_id}-doctor", MQTTProtocolVersion.MQTTv5)
    client.on_connect = lambda _c, _u, _f, rc, _p: q.put(("connack", rc))
    client.on_publish = lambda _c, _u, mid, rc, _p: q.put(("puback", mid, rc))
    client.on_message = lambda _c, _u, m: q.put(("clock", m.payload, time.time()))
    try:
        client.connect(mq.host, mq.port, 10)
    except Exception as exc:  # DNS, refused, TLS handshake
        return [
            Check(
                "broker",
                False,
                redact(f"{mq.url}: {exc}"),
                "check the URL, the network, and for mqtts:// the CA certificate",
            )
        ]
    client.loop_start()
    try:
        ev = q.get(timeout=mq.connect_timeout_s)
        if ev[1].is_failure:
            return [
                Check(
                    "broker",
                    False,
                    f"refused: {ev[1]}",
                    "the credentials are wrong or revoked: re-run shian-edge provision",
                )
            ]
        results = [Check("broker", True, f"connected to {redact(mq.url)} as {mq.username or '-'}")]
        client.subscribe(topics.COLLECTOR_CLOCK, qos=0)
        results.append(compare_clock(q))

        def publish(topic: str) -> Any:
            info = client.publish(topic, b'{"v": 1, "events": []}', qos=1)
            while True:
                got = q.get(timeout=10)
                if got[0] == "clock":
                    continue
                if got[0] == "puback" and got[1] == info.mid:
                    return got[2]

        mine = publish(topics.events(cfg.device))
        results.append(
            Check(
                "publish own topic",
                not mine.is_failure,
                str(mine),
                "" if not mine.is_failure else "the ACL refuses this box its topics",
            )
        )
        other = publish(topics.events(f"{cfg.device[:40]}-doctor-probe"))
        results.append(
            Check(
                "refused on another box's topic",
                other.is_failure,
                str(other),
                ""
                if other.is_failure
                else "the broker lets this box speak for others: install "
                "the ACL (shian-cloud broker init)",
            )
        )
        return results
    except queue.Empty:
        return [Check("broker", False, "no answer", "is the broker running and reachable?")]
    finally:
        client.disconnect()
        client.loop_stop()


def check_kitchen(cfg: EdgeConfig, progress: Progress) -> list[Check]:
    assert cfg.kitchen is not None
    k = cfg.kitchen
    out = []
    if not k.model:
        out.append(Check("model", True, "none: cameras only, no detection"))
    else:
        progress(f"model {k.model}")
        try:
            import numpy as np

            from edge.vision.detector import Detector, find_model
            from edge.vision.models import load_model_profile

            p = load_model_profile(k.model)
            det = Detector(p, find_model(p, [k.models_dir or cfg.data_dir / "models"]), 1)
            det.detect(np.zeros((360, 640, 3), np.uint8))
            out.append(Check("model", True, f"{k.model}: sha256 ok, loads, one inference"))
        except Exception as exc:
            out.append(
                Check(
                    "model",
                    False,
                    str(exc),
                    f"shian-edge models install --model {k.model} [--from FILE]",
                )
            )
    from edge.vision.cameras import open_source

    for cam in k.cameras:
        progress(f"camera {cam.name}")
        t0 = time.monotonic()
        cap, _ = open_source(cam.source)
        ok, img = cap.read() if cap.isOpened() else (False, None)
        cap.release()
        size = f"{img.shape[1]}x{img.shape[0]}" if ok and img is not None else ""
        out.append(
            Check(
                f"camera {cam.name}",
                bool(ok),
                f"a {size} frame in {time.monotonic() - t0:.1f} s"
                if ok
                else f"no frame from {redact(cam.source)}",
                "" if ok else "check the camera's power, cable, address and password",
            )
        )
    return out


def check_stall(cfg: EdgeConfig, progress: Progress, print_ticket: bool) -> list[Check]:
    assert cfg.stall is not None
    st = cfg.stall
    out = []
    if st.scale is not None:
        progress(f"scale {st.scale.port}")
        from edge.stall.framing import FrameDecoder
        from edge.stall.profiles import load_scale_profile

        try:
            profile = load_scale_profile(st.scale.profile)
            import serial

            s = profile.serial
            port = serial.serial_for_url(
                st.scale.port,
                baudrate=s.baudrate,
                bytesize=s.bytesize,
                parity=s.parity,
                stopbits=s.stopbits,
                timeout=0.2,
            )
            dec, good, end = FrameDecoder(profile), 0, time.monotonic() + 3
            while time.monotonic() < end and not good:
                if profile.poll:
                    port.write(profile.poll.request.encode("latin-1"))
                good += sum(1 for r in dec.feed(port.read(256)) if not r.error)
            port.close()
            out.append(
                Check(
                    "scale",
                    good > 0,
                    f"{good} frame(s) decoded" if good else "no frame decoded in 3 s",
                    ""
                    if good
                    else "check the cable, the port and the scale profile "
                    "(shian-edge scale decode on a capture)",
                )
            )
        except Exception as exc:
            out.append(Check("scale", False, str(exc), "is the scale plugged in? (dialout group)"))
    progress("printer")
    from edge.stall.cli import sample_ticket
    from edge.stall.printer import PrinterError, PrinterLink, load_printer_profile, render

    link = PrinterLink(st.printer, load_printer_profile(st.printer.profile))
    try:
        if print_ticket:
            ticket, url = sample_ticket()
            link.send(render(ticket, url, link.profile))
            out.append(Check("printer", True, "a test ticket was printed"))
        elif link.answers_status:
            link.send(b"")  # status before and after an empty job
            out.append(Check("printer", True, "answers status; paper present"))
        else:
            out.append(
                Check(
                    "printer",
                    True,
                    f"{st.printer.connection}: cannot answer status; "
                    "use --print to print a test ticket",
                )
            )
    except PrinterError as exc:
        out.append(Check("printer", False, str(exc), "check power, paper and cable"))
    return out


def run(cfg: EdgeConfig, progress: Progress, print_ticket: bool = False) -> list[Check]:
    checks = [check_files(cfg), check_clock(), check_disk(cfg), *check_box(cfg)]
    try:
        checks += check_broker(cfg, progress)
    except Exception as exc:  # a check that cannot even start is a failed check, not a crash
        checks.append(Check("broker", False, f"{type(exc).__name__}: {exc}", "see files"))
    if cfg.kitchen is not None:
        checks += check_kitchen(cfg, progress)
    if cfg.stall is not None:
        checks += check_stall(cfg, progress, print_ticket)
    return checks
