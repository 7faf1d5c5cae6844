"""The edge agent: wires the outbox, the sync worker and the event sources of one box.

Everything a box produces goes through :meth:`Agent.emit`, which commits it to the outbox and
wakes the sync worker. Later features (cameras, scale, printer) are more sources and add their
counters to the status heartbeat through :meth:`Agent.add_counters`.

A box survives its own faults: started on a full disk it runs, reports it in every heartbeat
(``outbox.disk_full``, refusals counted in ``outbox.rejected``) and sends what it has; its
sources keep going when an event is refused. ``clock`` is the box's wall clock, given so that
the fault bench can step it; every timer runs on the monotonic clock.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from edge import __version__, systemd
from edge.config import EdgeConfig
from edge.ledger.scan import entry_from, fetch_ticket, parse_code
from edge.ledger.scanner import Scanner
from edge.ledger.stock import Stock
from edge.live.streams import LiveStreams
from edge.notices import Notices
from edge.sensors.service import Sensors
from edge.stall.service import Stall
from edge.store.outbox import Outbox, OutboxError, Queued
from edge.store.snapshots import SnapshotQueue
from edge.sync.mqtt import SyncWorker
from edge.updates.launch import RESTART
from edge.updates.receive import Updater
from edge.updates.state import UpdateState
from edge.updates.trial import Trial
from edge.vision.kitchen import Kitchen
from shared import SCHEMA_VERSION, topics
from shared.models import Status
from shared.webserver import WebServer

log = logging.getLogger("shian.agent")


class Agent:
    def __init__(
        self,
        cfg: EdgeConfig,
        clock: Callable[[], float] = time.time,
        config_path: Path | None = None,
    ) -> None:
        """``config_path``: the installer's config file, which pushed config changes are
        checked against (without it, config and model updates are refused)."""
        self.cfg = cfg
        self.clock = clock
        self.exit_code = 0
        self.started = time.monotonic()
        self.outbox = Outbox(cfg.outbox_path, cfg.device, cfg.site, cfg.outbox, clock=clock)
        self.snapshots = SnapshotQueue(self.outbox)
        self.sync = SyncWorker(cfg, self.outbox, self.status, self.snapshots)
        self.outbox.on_commit = self.sync.wake
        self._counter_sources: list[Callable[[], dict[str, int]]] = [lambda: self.sync.counters]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.stall: Stall | None = None
        self.web: WebServer | None = None
        if cfg.stall is not None:
            self.stall = Stall(cfg.stall, self.outbox, self.emit)
            self.add_counters(self.stall.counters)
            catalog = self.stall.catalog
            self.sync.handlers["catalog"] = lambda _rest, payload: catalog.on_command(payload)
        self.updates = UpdateState(cfg.data_dir)
        self.updater = Updater(cfg, config_path, self.outbox, self.request_restart)
        self.sync.handlers["update"] = self.updater.on_command
        self.trial: Trial | None = None
        self.notices = Notices(self.outbox)
        self.sync.handlers["notice"] = self.notices.on_notice
        self.sync.handlers["reply"] = self.notices.on_reply
        self.kitchen: Kitchen | None = None
        if cfg.kitchen is not None:
            self.kitchen = Kitchen(
                cfg.kitchen, cfg.data_dir, self.outbox, self.emit, self.snapshots
            )
            self.add_counters(self.kitchen.all_counters)
        self.stock: Stock | None = None
        if cfg.stall is None:  # a kitchen keeps a ledger and its stock
            tz = cfg.kitchen.timezone_offset_h if cfg.kitchen else 8
            self.stock = Stock(self.outbox, cfg.ledger.near_expiry_days, tz)
        self.scanner: Scanner | None = None
        if self.stock is not None and cfg.ledger.scanner_port:
            self.scanner = Scanner(cfg.ledger.scanner_port, self._scanned,
                                   cfg.ledger.scanner_baudrate)  # fmt: skip
        self.sensors: Sensors | None = None
        if cfg.sensors:
            self.sensors = Sensors(cfg.sensors, self.outbox, self.emit, clock)
        self.live: LiveStreams | None = None
        if self.kitchen is not None and cfg.kitchen is not None:
            self.live = self._live(self.kitchen, cfg)
            self.add_counters(self.live.all_counters)
            self.sync.handlers["live"] = self.live.on_command

    def _live(self, kitchen: Kitchen, cfg: EdgeConfig) -> LiveStreams:
        cams = {c.name: c for c in kitchen.cameras}

        def latest(name: str) -> object:
            return cams[name].latest

        def online(name: str) -> bool:
            return cams[name].online

        def publish(stream: str, jpeg: bytes) -> bool:
            return self.sync.publish_now(topics.live_frame(cfg.device, stream), jpeg)

        return LiveStreams(cfg.kitchen.cameras if cfg.kitchen else [], latest, online, publish,
                           self.emit)  # fmt: skip

    def add_counters(self, source: Callable[[], dict[str, int]]) -> None:
        self._counter_sources.append(source)

    def emit(
        self, kind: str, data: BaseModel | dict[str, Any], ts: datetime | None = None
    ) -> Queued:
        return self.outbox.enqueue(kind, data, ts)

    def status(self, state: str, reason: str = "") -> Status:
        counters: dict[str, int] = {}
        for source in self._counter_sources:
            counters.update(source())
        return Status(
            v=SCHEMA_VERSION,
            device=self.cfg.device,
            site=self.cfg.site,
            state=state,  # type: ignore[arg-type]
            reason=reason,
            ts=datetime.fromtimestamp(self.clock(), UTC),
            version=__version__,
            uptime_s=round(time.monotonic() - self.started, 1),
            last_seq=self.outbox.last_seq(),
            outbox=self.outbox.stats(),
            counters=counters,
        )

    def start(self) -> None:
        pending = self.outbox.stats().depth
        try:
            self.emit("device_started", {"version": __version__, "pending": pending})
        except OutboxError as exc:  # a full disk: run anyway, send the backlog, say so
            log.error("%s; running with what is queued", exc)
        try:
            self._report_updates()
        except (OutboxError, sqlite3.Error) as exc:  # a full disk: they wait in report.json
            log.error("update outcomes not queued yet: %s", exc)
        self.sync.start()
        self.updater.start()
        trial = self.updates.trial()
        if trial is None and self.updates.staged() is not None:
            log.warning("an update is staged but not applied: restarting to apply it")
            self.request_restart()
        if trial is not None:
            fail = lambda: self.request_exit(1)  # noqa: E731
            self.trial = Trial(
                self.updates,
                trial,
                self._healthy,
                self.updater.record,
                fail,
                self.updater.settled.set,
            )
            self.trial.start()
        if self.stall is not None:
            self.stall.start()
        if self.kitchen is not None:
            self.kitchen.start()
        if self.sensors is not None:
            self.sensors.start()
        if self.scanner is not None:
            self.scanner.start()
        if self.stock is not None:
            t = threading.Thread(target=self._stock_dates, name="shian-stock", daemon=True)
            t.start()
            self._threads.append(t)
        if self.live is not None and self.cfg.kitchen is not None:
            try:  # the site's choice of public cameras, for the cloud to show and enforce
                self.emit("live_offer", self.live.offer(self.cfg.kitchen.timezone_offset_h))
            except OutboxError as exc:
                log.error("live offer not queued: %s", exc)
            self.live.start()
        if self.cfg.display.port:
            from edge.display.app import make_app
            from edge.display.guard import ScreenGuard

            d = self.cfg.display
            token = d.token() if d.needs_token() else ""
            app = ScreenGuard(make_app(self), token, d.allowed_hosts)
            web = WebServer(app, d.host, d.port, name="display")
            try:
                web.start()
                self.web = web
            except RuntimeError as exc:  # a busy port must not stop the box's real work
                log.error("%s; the screens are off", exc)
        if self.cfg.demo.sample_every_s > 0:
            t = threading.Thread(target=self._samples, name="shian-samples", daemon=True)
            t.start()
            self._threads.append(t)
        log.info(
            "agent %s for site %s started (%d events waiting)",
            self.cfg.device,
            self.cfg.site,
            pending,
        )

    def _samples(self) -> None:
        """Demo source: a `test` event every ``sample_every_s`` seconds."""
        demo = self.cfg.demo
        start = time.monotonic()
        n = 0
        while not demo.sample_count or n < demo.sample_count:
            # paced against the start, so the rate holds however long each commit takes
            if self._stop.wait(max(0.0, start + (n + 1) * demo.sample_every_s - time.monotonic())):
                return
            n += 1
            try:
                self.emit("test", {"note": f"sample event {n} from {self.cfg.device}", "n": n})
            except (OutboxError, sqlite3.Error) as exc:  # counted; the source goes on
                log.warning("sample event %d refused: %s", n, exc)

    def _scanned(self, code: str) -> str:
        """A code from the door's serial scanner: the delivery recorded, or ValueError."""
        assert self.stock is not None
        ticket_id, sig = parse_code(code)
        ticket = fetch_ticket(self.cfg.ledger.trace_url, ticket_id, sig)
        try:
            self.stock.record(entry_from(ticket, self.cfg.ledger.scanner_by))
        except OutboxError as exc:
            raise ValueError(str(exc)) from None
        return f"{ticket.product} {ticket.batch} recorded"

    def _stock_dates(self) -> None:
        """The stock's use-by dates, checked at start and every ``check_every_s``."""
        assert self.stock is not None
        while True:
            try:
                self.stock.check(self.clock())
            except Exception:  # never the end of the checks: said, and tried again later
                log.exception("stock dates not checked")
            if self._stop.wait(self.cfg.ledger.check_every_s):
                return

    def alive(self, stale_s: float = 30) -> bool:
        """True while every worker is running and has looked up within ``stale_s``."""
        now = time.monotonic()
        stall_ok = self.stall is None or self.stall.alive()
        kitchen_ok = self.kitchen is None or self.kitchen.alive()
        if self.kitchen is not None and now - self.kitchen.alive_at > stale_s:
            kitchen_ok = False
        scale = self.stall.scale if self.stall is not None else None
        if scale is not None and now - scale.alive_at > stale_s:
            stall_ok = False
        sync_ok = self.sync.running and now - self.sync.alive_at < stale_s
        sensors_ok = self.sensors is None or self.sensors.alive()
        return stall_ok and kitchen_ok and sync_ok and sensors_ok

    def _report_updates(self) -> None:
        """Outcomes decided before the agent ran (a rollback at start, by the installed
        package's code) become events, once, with the version of the agent now running."""
        reports = self.updates.reports()
        for r in reports:
            sql = "SELECT 1 FROM updates WHERE id = ? AND outcome = ?"
            if not self.outbox.read(sql, (r["update"], r["outcome"])):
                self.updater.record({**r, "version": __version__})  # the code running now
        if reports:
            self.updates.clear_reports(reports)

    def _healthy(self) -> bool:
        """For an update on trial: workers alive, a session up, and the collector confirming."""
        confirmed = self.sync.counters["sync_confirmed_events"] > 0
        return self.sync.connected and confirmed and self.alive()

    def stop(self) -> None:
        self._stop.set()
        if self.trial is not None:
            self.trial.stop()
        self.updater.stop()
        if self.web is not None:
            self.web.stop()
        if self.stall is not None:
            self.stall.stop()
        if self.live is not None:
            self.live.stop()
        if self.kitchen is not None:
            self.kitchen.stop()
        if self.sensors is not None:
            self.sensors.stop()
        if self.scanner is not None:
            self.scanner.stop()
        self.sync.stop(timeout=20)  # a last session's goodbye, or the farewell: bounded
        for t in self._threads:
            t.join(2)
        if self.sync.running:  # never pull the database from under a live thread
            log.error("the sync thread did not stop in time; the outbox is left open")
        else:
            self.outbox.close()
        log.info("agent stopped")

    def run_forever(self) -> None:
        self.start()
        systemd.notify("READY=1")
        interval = systemd.watchdog_interval()
        try:
            while not self._stop.wait(interval or 1.0):
                if interval and self.alive(stale_s=max(2 * interval, 5.0)):
                    systemd.notify("WATCHDOG=1")
                elif interval:
                    log.error("a worker is stuck: not pinging the watchdog (systemd restarts us)")
        finally:
            systemd.notify("STOPPING=1")
            self.stop()

    def request_stop(self) -> None:
        self._stop.set()

    def request_restart(self) -> None:
        """Stop to apply a staged update: the next start applies it (``edge.updates.launch``)."""
        self.request_exit(RESTART)

    def request_exit(self, code: int) -> None:
        self.exit_code = code
        self._stop.set()
