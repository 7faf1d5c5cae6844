"""Fault bench: a box streams events through a real Mosquitto to a real collector process while
one fault is injected; each experiment prints what was made, stored, lost and doubled, and the
recovery time: from the fault's end until the cloud holds every event the box had made by then
(for the printer, until every ticket is printed).

  broker_kill     Mosquitto killed with SIGKILL (no persistence), started again at once
  collector_kill  the collector killed with SIGKILL, started again at once
  db_lock         another program holds the collector's SQLite database for --lock-s
  clock_back      the broker loses what it acknowledged while the collector is away, and the
                  box's clock is stepped back two hours before the collector returns
  disk_full       the box's card (a small tmpfs; needs root) is filled, then freed
  printer_stop    a network printer takes a job and stops answering, then comes back

The agent runs in this process (so that its wall clock can be stepped); everything else is a
real process. Product defaults throughout, but the heartbeat (2 s).

    python bench/faults.py --json
    python bench/faults.py --only broker_kill,clock_back
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import signal
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cloud.store import Store  # noqa: E402
from edge.agent import Agent  # noqa: E402
from edge.store.outbox import OutboxError  # noqa: E402
from tests.conftest import (  # noqa: E402
    cloud_config,
    edge_config,
    register,
    spawn,
    wait_for,
    write_toml,
)
from tests.real.test_clock_steps import SteppedClock  # noqa: E402
from tests.support.mosquitto import Mosquitto  # noqa: E402
from tests.support.smalldisk import SmallDisk  # noqa: E402

DEVICE = "kitchen-1"


def until(check: Callable[[], Any], timeout: float, what: str) -> float:
    """The tests' ``wait_for`` (20 ms polls); returns when it held, or raises TimeoutError."""
    try:
        wait_for(check, timeout, what)
    except AssertionError as exc:
        raise TimeoutError(str(exc)) from None
    return time.monotonic()


def product_defaults(section: Any, *names: str) -> None:
    """Undo the tests' quick settings: the bench measures what an installed box does."""
    for name in names:
        setattr(section, name, type(section).model_fields[name].default)


class Rig:
    """One Mosquitto, one collector process and one agent streaming ``rate`` events/s."""

    def __init__(self, work: Path, rate: float, disk: SmallDisk | None = None) -> None:
        self.work, self.clock, self.disk = work, SteppedClock(), disk
        data_dir = disk.path / "box" if disk is not None else None
        self.broker = Mosquitto(work / "mosquitto").start()
        self.ccfg = cloud_config(work, self.broker.url)
        product_defaults(self.ccfg.mqtt, "backoff_initial_s", "backoff_max_s")
        self.conf = write_toml(
            work / "cloud.toml",
            self.ccfg.model_dump(mode="json", exclude_none=True, exclude_defaults=True),
        )
        self.collector = self.start_collector()
        self.store = Store(self.ccfg.store.path)
        register(self.store, DEVICE, "canteen-001")
        extra: dict[str, Any] = {"sync": {"heartbeat_s": 2}}
        if data_dir is not None:
            extra["data_dir"] = str(data_dir)
        cfg = edge_config(work, self.broker.url, **extra)
        product_defaults(cfg.mqtt, "backoff_initial_s", "backoff_max_s", "connect_timeout_s")
        product_defaults(cfg.sync, "confirm_timeout_s", "poll_interval_s")
        self.agent = Agent(cfg, clock=self.clock)
        self.agent.start()
        self.made = self.refused = 0
        self._stop = threading.Event()
        self._rate = rate
        self._thread = threading.Thread(target=self._produce, daemon=True)
        self._thread.start()

    def start_collector(self) -> Any:
        """Start the collector and wait until it is on the broker (the first time it has no
        session there yet: what a box sent before would be acknowledged and dropped)."""
        log = self.work / "cloud.log"
        before = log.read_text().count("collector connected") if log.exists() else 0
        proc = spawn("cloud.cli", "run", "--config", str(self.conf), log=log)
        until(
            lambda: log.exists() and log.read_text().count("collector connected") > before,
            30,
            "the collector on the broker",
        )
        return proc

    def _produce(self) -> None:
        start, n = time.monotonic(), 0
        while not self._stop.wait(max(0.0, start + n / self._rate - time.monotonic())):
            n += 1
            try:
                self.agent.emit("test", {"note": "fault bench", "n": n})
                self.made += 1
            except OutboxError:
                self.refused += 1

    def seqs(self) -> tuple[int, int]:
        """(distinct sequence numbers stored, rows stored) of the box."""
        rows = self.store.db.query(
            "SELECT count(DISTINCT seq) AS d, count(*) AS n FROM events WHERE device = ?",
            (DEVICE,),
        )
        return int(rows[0]["d"]), int(rows[0]["n"])

    def caught_up(self, upto: int) -> bool:
        rows = self.store.db.query(
            "SELECT count(DISTINCT seq) AS d FROM events WHERE device = ? AND seq <= ?",
            (DEVICE, upto),
        )
        return int(rows[0]["d"]) >= upto

    def fault_ends(self) -> tuple[float, int]:
        """Now, and the last event the box has made."""
        return time.monotonic(), self.agent.outbox.last_seq()

    def recovered_from(self, end: tuple[float, int], timeout: float = 180) -> float | None:
        """Seconds from the fault's end until every event made by then is stored; None if
        that did not happen within ``timeout`` (the run goes on: what is missing is lost)."""
        at, upto = end
        try:
            return until(lambda: self.caught_up(upto), timeout, "recovery") - at
        except TimeoutError:
            return None

    def finish(self) -> dict[str, Any]:
        self._stop.set()
        self._thread.join(5)
        upto = self.agent.outbox.last_seq()
        with contextlib.suppress(TimeoutError):  # what has not arrived by then counts as lost
            until(lambda: self.caught_up(upto), 120, "the last events")
        self.agent.stop()
        distinct, rows = self.seqs()
        absorbed = self.store.db.query(
            "SELECT duplicates FROM devices WHERE device = ?", (DEVICE,)
        )[0]["duplicates"]
        self.collector.send_signal(signal.SIGTERM)
        self.collector.wait(20)
        self.broker.stop()
        self.store.close()
        return {
            "made": upto,
            "refused": self.refused,
            "stored": distinct,
            "lost": upto - distinct,  # sequence numbers the cloud does not hold
            "doubled": rows - distinct,  # events stored twice under one sequence number
            "absorbed": absorbed,  # copies received and dropped by event id
        }


def broker_kill(rig: Rig, args: argparse.Namespace) -> dict[str, Any]:
    time.sleep(args.warmup_s)  # streaming before the fault
    rig.broker.stop(signal.SIGKILL)
    rig.broker.start()
    return {"recovery_s": rig.recovered_from(rig.fault_ends())}


def collector_kill(rig: Rig, args: argparse.Namespace) -> dict[str, Any]:
    time.sleep(args.warmup_s)
    rig.collector.send_signal(signal.SIGKILL)
    rig.collector.wait(10)
    restarted = rig.fault_ends()
    rig.collector = rig.start_collector()
    return {"recovery_s": rig.recovered_from(restarted)}


def db_lock(rig: Rig, args: argparse.Namespace) -> dict[str, Any]:
    time.sleep(args.warmup_s)
    lock = sqlite3.connect(rig.ccfg.store.path, isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    time.sleep(args.lock_s)  # the fault's length
    lock.execute("ROLLBACK")
    lock.close()
    return {"recovery_s": rig.recovered_from(rig.fault_ends()), "lock_s": args.lock_s}


def clock_back(rig: Rig, args: argparse.Namespace) -> dict[str, Any]:
    time.sleep(args.warmup_s)
    rig.collector.send_signal(signal.SIGTERM)  # away; the broker queues for its session
    rig.collector.wait(20)
    time.sleep(args.warmup_s)
    sessions = rig.agent.sync.counters["sync_sessions"]
    rig.broker.stop()  # no persistence: what it acknowledged is gone
    rig.broker.start()
    until(lambda: rig.agent.sync.counters["sync_sessions"] > sessions, 120, "the box back")
    rig.clock.offset = -7200.0
    back = rig.fault_ends()
    rig.collector = rig.start_collector()
    return {"recovery_s": rig.recovered_from(back), "step_s": -7200}


def disk_full(rig: Rig, args: argparse.Namespace) -> dict[str, Any]:
    assert rig.disk is not None
    time.sleep(args.warmup_s)
    refused = rig.refused

    def full() -> bool:
        # the box gives its reserve to the disk, and reuses the pages of confirmed events;
        # whatever else runs on the card keeps taking what appears
        assert rig.disk is not None
        rig.disk.fill()
        return rig.refused >= refused + 10

    until(full, 120, "refusals")
    rig.disk.free()
    freed = time.monotonic()
    made = rig.made
    until(lambda: rig.made > made, 60, "events taken again")
    took = rig.agent.outbox.last_seq()
    back = until(lambda: rig.caught_up(took), 120, "the first event after") - freed

    def reported() -> bool:
        sql = "SELECT count(*) AS n FROM alerts WHERE type = 'outbox_overflow'"
        return bool(rig.store.db.query(sql)[0]["n"])

    try:  # the refusals reach the cloud with the next heartbeat
        until(reported, 30, "the outbox_overflow alert")
    except TimeoutError:
        return {"recovery_s": back, "alert": False}
    return {"recovery_s": back, "alert": True}


def printer_stop(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    from edge.config import PrinterSettings
    from edge.stall.printer import COPY_MARK, PrinterLink, PrintWorker, load_printer_profile
    from edge.stall.scale import Weight
    from edge.stall.tickets import TicketBook
    from edge.store.outbox import Outbox
    from shared.signing import new_key
    from tests.support.escpos_decode import decode
    from tests.support.netprinter import NetPrinter
    from tests.test_tickets_printing import products, stall_settings

    printer = NetPrinter().start()
    key = new_key()
    book = TicketBook(Outbox(work / "o.db", "stall-7", "m1"), stall_settings(work, key), key)
    link = PrinterLink(
        PrinterSettings(connection=f"network:127.0.0.1:{printer.port}", timeout_s=2),
        load_printer_profile("generic_58mm"),
    )
    worker = PrintWorker(book, link)
    worker.start()
    tickets = [book.issue(products()["101"], Weight("stable", 500.0 + n)) for n in range(5)]
    worker.wake()
    until(lambda: not book.pending(), 30, "the first tickets")
    printer.mute_after_job = True  # takes the next job, then answers nothing
    tickets += [book.issue(products()["101"], Weight("stable", 600.0 + n)) for n in range(15)]
    worker.wake()
    until(lambda: worker.fault is not None, 30, "the printer fault")
    printer.mute_after_job = False
    back = time.monotonic()
    worker.wake()
    done = until(lambda: not book.pending(), 120, "every ticket printed") - back
    worker.stop()
    printer.stop()
    originals: dict[str, int] = {}
    copies = 0
    for job in printer.jobs:
        d = decode(job)
        if not (d.cut and d.qr_native):
            continue
        if COPY_MARK in d.text():
            copies += 1
        else:
            url = d.qr_native[0].decode()
            originals[url] = originals.get(url, 0) + 1
    printed = {book.url(t) for t in tickets}
    return {
        "made": len(tickets),
        "stored": len(set(originals) & printed),
        "lost": len(printed - set(originals)),
        "doubled": sum(n - 1 for n in originals.values()),
        "copies": copies,
        "recovery_s": done,
    }


EXPERIMENTS: dict[str, Callable[[Rig, argparse.Namespace], dict[str, Any]]] = {
    "broker_kill": broker_kill,
    "collector_kill": collector_kill,
    "db_lock": db_lock,
    "clock_back": clock_back,
    "disk_full": disk_full,
}


def run(name: str, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"faults-{name}-") as tmp:
        work = Path(tmp)
        if name == "printer_stop":
            return printer_stop(work, args)
        disk = None
        if name == "disk_full":
            disk = SmallDisk(work / "card", size_mb=8)
            why = disk.mount()
            if why:
                return {"skipped": why}
        try:
            rig = Rig(work, args.rate, disk)
            out = EXPERIMENTS[name](rig, args)
            return {**rig.finish(), **out}
        finally:
            if disk is not None:
                disk.unmount()


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals of the counts over the runs, the median recovery, and each run's recovery."""
    if any("skipped" in r for r in runs):
        return runs[0]
    out: dict[str, Any] = {}
    for key in ("made", "refused", "stored", "lost", "doubled", "absorbed", "copies"):
        if key in runs[0]:
            out[key] = sum(r[key] for r in runs)
    rec = [r["recovery_s"] for r in runs if r["recovery_s"] is not None]
    out["recovery_s_median"] = round(statistics.median(rec), 2) if rec else None
    out["recovery_s"] = [
        None if x is None else round(x, 2) for x in (r["recovery_s"] for r in runs)
    ]
    if "alert" in runs[0]:
        out["alert"] = all(r["alert"] for r in runs)
    for key in ("lock_s", "step_s"):
        if key in runs[0]:
            out[key] = runs[0][key]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    names = [*EXPERIMENTS, "printer_stop"]
    p.add_argument("--only", default=",".join(names), help="Experiments, comma separated.")
    p.add_argument("--rate", type=float, default=50, help="Events per second the box makes.")
    p.add_argument("--warmup-s", type=float, default=3, help="Streaming before each fault.")
    p.add_argument("--lock-s", type=float, default=30, help="How long the database is locked.")
    p.add_argument("--runs", type=int, default=3, help="Runs of each; the median is reported.")
    p.add_argument("--json", action="store_true", help="Print one JSON document.")
    args = p.parse_args()
    results: dict[str, Any] = {}
    for name in args.only.split(","):
        runs = [run(name, args) for _ in range(args.runs)]
        results[name] = summary(runs)
        print(name, json.dumps(results[name]), file=sys.stderr if args.json else sys.stdout)
    doc = {
        "machine": f"{platform.machine()}, {platform.python_version()}, {platform.node()}",
        "rate": args.rate,
        "runs": args.runs,
        "results": results,
    }
    if args.json:
        print(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
