"""The collector process: embedded broker (when no broker is configured), store, collector."""

from __future__ import annotations

import logging
import threading

from cloud.alerts.engine import AlertEngine
from cloud.alerts.webhooks import WebhookForwarder
from cloud.broker import BrokerThread
from cloud.collector import Collector
from cloud.config import CloudConfig
from cloud.console.accounts import Accounts
from cloud.fleet.keys import FileStore
from cloud.fleet.rollouts import Rollouts
from cloud.live.service import LiveService
from cloud.store import Store
from cloud.web import make_app
from shared.webserver import WebServer

log = logging.getLogger("shian.cloud")


class CloudService:
    def __init__(self, cfg: CloudConfig) -> None:
        self.cfg = cfg
        self.broker = BrokerThread(cfg.embedded_broker) if cfg.mqtt is None else None
        web_base = f"http://{cfg.web.host}:{cfg.web.port}" if cfg.web.port else ""
        self.store = Store(
            cfg.store.target(),
            cfg.store.snapshots_dir,
            engine=AlertEngine(cfg.alerts, web_base),
            pool_size=cfg.store.pool_size,
            retention=cfg.evidence,
            fleet=Rollouts(cfg),
            keep_months=cfg.store.keep_months,
            dedupe_days=cfg.store.dedupe_days,
        )
        self.collector = Collector(cfg, self.store)
        self.live = LiveService(cfg, self.store.db) if cfg.live.rtmp_url else None
        self.web: WebServer | None = None
        if cfg.web.port:
            self.web = WebServer(
                make_app(
                    self.store,
                    cfg.tickets.keys_dir,
                    health=self.collector.health,
                    files=FileStore(cfg.data_dir / "fleet"),
                    live=self.live,
                    console=Accounts(self.store.db, cfg.console, cfg.provisioning.broker_dir),
                    assets=cfg.web.assets_dir,
                ),
                cfg.web.host,
                cfg.web.port,
                name="public-web",
            )
        self.webhooks = WebhookForwarder(
            self.store,
            cfg.alerts.webhooks,
            holder=cfg.broker().client_id,
            lease_s=cfg.collector.publisher_lease_s,
        )
        self._stop = threading.Event()

    def start(self) -> None:
        if self.broker is not None:
            self.broker.start()
        self.collector.start()
        self.webhooks.start()
        if self.live is not None:
            self.live.start()
        if self.web is not None:
            self.web.start()
        log.info("collector started; store %s", self.store.db.describe())

    def stop(self) -> None:
        if self.web is not None:
            self.web.stop()
        if self.live is not None:
            self.live.stop()
        self.webhooks.stop()
        self.collector.stop()
        if self.broker is not None:
            self.broker.stop()
        self.store.close()

    def request_stop(self) -> None:
        self._stop.set()

    def run_forever(self) -> int:
        """Run until asked to stop (0), or until a part of the collector has died: then stop
        what is left and return 70 (EX_SOFTWARE), for systemd to restart the service."""
        self.start()
        failure = None
        try:
            while not self._stop.wait(1.0):
                failure = self.collector.health()
                if failure is not None:
                    log.critical("stopping: %s", failure)
                    break
        finally:
            self.stop()
        return 70 if failure else 0
