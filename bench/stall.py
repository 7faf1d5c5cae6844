"""Stall benchmark: the sale path and the scale decoders.

(a) sale: from a stable weight on the scale to the ticket's ESC/POS bytes handed to the printer
    connection, through the real path (Stall.sell: build, sign, commit ticket and event with
    fsync; the print worker thread wakes, renders with python-escpos and sends). The printer is
    python-escpos's in-memory connection (no real printer runs here). p50/p99 over --sales.
(b) decoders: frames/s of each scale profile on its real capture (the five in
    ../shared/testdata/scale) and on frames from the manual for the checksum families, each
    stream repeated to at least 50,000 frames. Medians of --runs.

    python bench/stall.py --json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edge.config import StallSettings  # noqa: E402
from edge.stall.framing import decode_stream  # noqa: E402
from edge.stall.profiles import load_scale_profile, to_bytes  # noqa: E402
from edge.stall.scale import Weight  # noqa: E402
from edge.stall.service import Stall  # noqa: E402
from edge.store.outbox import Outbox  # noqa: E402
from shared.catalog import parse_csv  # noqa: E402
from shared.signing import new_key, write_key  # noqa: E402

CAPTURES = ROOT.parent / "shared" / "testdata" / "scale"
REAL = {
    "qhw_st_gs": "qhw_st_gs_grams.bin",
    "nhb_st_gs": "nhb_st_gs_grams.bin",
    "ohaus_defender": "ohaus_defender3000_kg.bin",
    "mettler_ms204": "mettler_ms204_net_grams.bin",
    "weight_qa_signed": "weight_qa_signed.bin",
}
MANUAL = ["ad_st_gs", "cas_ci", "cas_aclas_sw", "xk3190", "toledo_continuous", "mettler_8217"]
CSV = "plu,name,unit,unit_price,origin,batch\n101,白菜,kg,3.80,湖北咸宁,HX-1\n"


def sale_latency(n: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        write_key(work / "k.key", new_key())
        settings = StallSettings(
            market="M",
            stall_no="A-1",
            retailer="R",
            ticket_base_url="https://t.example",
            ticket_key_file=work / "k.key",
        )
        outbox = Outbox(work / "o.db", "stall-1", "m")
        stall = Stall(settings, outbox, lambda *a: None)
        stall.catalog.replace(parse_csv(CSV), "v1")
        stall.select("101")
        sent: dict[str, float] = {}
        done = threading.Event()
        link = stall.printer.link
        original = link.send

        def timed_send(job: bytes) -> None:
            original(job)
            sent[str(len(link.sent))] = time.perf_counter()
            done.set()

        link.send = timed_send  # type: ignore[method-assign]
        stall.printer.start()
        stable = Weight("stable", 1234.0)
        stall.scale = type(
            "FixedScale", (), {"weight": stable, "running": True, "counters": {}}
        )()  # the weight is already stable
        latencies = []
        for i in range(n):
            done.clear()
            t0 = time.perf_counter()
            stall.sell()
            done.wait(5)
            latencies.append((sent[str(i + 1)] - t0) * 1000)
        stall.printer.stop()
        outbox.close()
    latencies.sort()
    return {
        "p50_ms": latencies[len(latencies) // 2],
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
    }


def decoder_rates(min_frames: int) -> dict[str, float]:
    rates = {}
    streams: dict[str, bytes] = {}
    for name, capture in REAL.items():
        if (CAPTURES / capture).exists():
            streams[name] = (CAPTURES / capture).read_bytes()
    for name in MANUAL:
        streams[name] = b"".join(to_bytes(e) for e in load_scale_profile(name).examples)
    for name, data in streams.items():
        profile = load_scale_profile(name)
        per_copy = len(decode_stream(profile, data))
        copies = max(1, -(-min_frames // max(1, per_copy)))
        big = data * copies
        t = time.perf_counter()
        frames = len(decode_stream(profile, big))
        rates[name] = frames / (time.perf_counter() - t)
    return rates


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--sales", type=int, default=500)
    ap.add_argument("--frames", type=int, default=50_000)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    sales = [sale_latency(args.sales) for _ in range(args.runs)]
    decoders = [decoder_rates(args.frames) for _ in range(args.runs)]
    out: dict[str, Any] = {
        "sale_p50_ms": round(statistics.median(s["p50_ms"] for s in sales), 2),
        "sale_p99_ms": round(statistics.median(s["p99_ms"] for s in sales), 2),
        "sale_runs": [{k: round(v, 2) for k, v in s.items()} for s in sales],
        "decoder_frames_per_s": {
            k: round(statistics.median(d[k] for d in decoders)) for k in decoders[0]
        },
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
    }
    out["decoder_min_frames_per_s"] = min(out["decoder_frames_per_s"].values())
    print(json.dumps(out, ensure_ascii=False, indent=None if args.json else 2))


if __name__ == "__main__":
    main()
