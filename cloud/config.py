"""The collector's config (TOML). Every field has a description; unknown keys are errors.

With no ``[mqtt]`` table the collector starts its own embedded broker (``[embedded_broker]``), so
a demo or a one-machine install needs nothing else. Reference: docs/config.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from shared.config import MqttSettings, StrictModel, broker_url, is_loopback

DEFAULT_PATH = Path("/etc/shian/cloud.toml")


class EmbeddedBroker(StrictModel):
    """The in-process MQTT 3.1.1 broker (amqtt) used when no [mqtt] broker is configured. It
    has no passwords and no ACLs, so it listens on this machine only: boxes elsewhere need
    Mosquitto (docs/installing.md)."""

    host: str = Field(
        default="127.0.0.1", description="Address to listen on: a loopback address only."
    )
    port: int = Field(default=1883, ge=1, le=65535, description="TCP port to listen on.")

    @field_validator("host")
    @classmethod
    def _loopback(cls, host: str) -> str:
        if not is_loopback(host):
            raise ValueError(
                f"the embedded broker checks no passwords, so it listens on this machine only "
                f"(127.0.0.1, ::1 or localhost), not {host!r}; use Mosquitto for boxes"
            )
        return host


class CollectorSettings(StrictModel):
    """How events are taken from the broker and written."""

    clock_every_s: float = Field(
        default=10,
        gt=0,
        le=60,
        description="How often the collector's time is retained on shian/v1/collector/clock "
        "(a box's doctor compares its clock with it).",
    )

    share_group: str = Field(
        default="",
        description="When set, subscribe as $share/<group>/... so several collectors on one "
        "PostgreSQL store split the load (needs a broker with shared subscriptions, e.g. "
        "Mosquitto 2 or EMQX).",
    )
    intake_urls: list[str] = Field(
        default_factory=list,
        max_length=16,
        description="nats://host:port (or tls://) of the nodes of a NATS cluster: take the boxes' "
        "messages as a member of the NATS queue group share_group ('collectors' when empty): "
        "competing consumers, since NATS has no MQTT shared subscriptions; MQTT is kept for "
        "publishing. docs/scaling.md.",
    )

    @field_validator("intake_urls")
    @classmethod
    def _nats_urls(cls, v: list[str]) -> list[str]:
        for u in v:
            parts = urlsplit(u)
            if parts.scheme not in ("nats", "tls") or not parts.hostname:
                raise ValueError(f"{u}: must look like nats://host:4222")
        return v

    session_expiry_s: int = Field(
        default=7 * 86400,
        ge=0,
        description="How long the broker keeps this collector's session and queued messages "
        "while it is away (MQTT 5; 3.1.1 keeps it until a clean connect).",
    )
    publisher_lease_s: float = Field(
        default=15,
        gt=0,
        description="Of the collectors sharing a database, one publishes alerts and posts to "
        "group bots; if it stops, another takes over after this long.",
    )
    batch_max_messages: int = Field(
        default=500, ge=1, description="Most MQTT messages written in one transaction."
    )
    batch_max_wait_s: float = Field(
        default=0.005, ge=0, le=5, description="Longest wait to fill a transaction."
    )


class StoreSettings(StrictModel):
    """Where events, devices and dead letters are kept."""

    path: Path = Field(
        default=Path("cloud.db"), description="SQLite database file (relative: in data_dir)."
    )
    url: str = Field(
        default="",
        pattern=r"^(|postgres(ql)?://.*)$",
        description="postgresql://user@host:5432/db keeps the store in PostgreSQL instead (then "
        "path is not used). Give the password in PGPASSWORD or a PGPASSFILE, not here.",
    )
    pool_size: int = Field(
        default=4, ge=1, le=64, description="Most PostgreSQL connections this collector opens."
    )
    keep_months: int = Field(
        default=0,
        ge=0,
        description="PostgreSQL: drop a month of events (one partition) once it ended more than "
        "this many months ago; 0 keeps every month. It must cover dedupe_days and a month more "
        "(4 with the default), so that a redelivery is still found.",
    )
    dedupe_days: float = Field(
        default=62,
        ge=61,
        le=366,
        description="PostgreSQL: how far back a redelivered event is looked for. Longer than any "
        "box's outbox max_age_s (30 days by default, 60 at most), after which a box gives an event "
        "up.",
    )
    snapshots_dir: Path | None = Field(
        default=None, description="Evidence JPEGs; default a snapshots folder beside the database."
    )

    @model_validator(mode="after")
    def _keep_covers_dedupe(self) -> StoreSettings:
        if self.keep_months and self.keep_months * 28 < self.dedupe_days + 31:
            raise ValueError(
                f"keep_months {self.keep_months} would drop events within dedupe_days "
                f"({self.dedupe_days:g}) and the month before: keep at least "
                f"{int((self.dedupe_days + 31) // 28) + 1}"
            )
        return self

    def target(self) -> Path | str:
        """What ``cloud.store.Store`` opens: the PostgreSQL URL, else the SQLite file."""
        return self.url or self.path


class EvidenceSettings(StrictModel):
    """How much evidence (violation snapshots, rectification photos) the cloud keeps. Beyond a
    quota or the age, the oldest go first, but never the evidence of an alert still open."""

    max_mb_per_device: float = Field(
        default=2048, gt=0, description="Most evidence kept of one box, MB."
    )
    max_gb_total: float = Field(default=200, gt=0, description="Most evidence kept in all, GB.")
    keep_days: float = Field(
        default=180, gt=0, description="Evidence older than this is deleted (unless pinned)."
    )
    deadletters_keep_days: float = Field(
        default=30, gt=0, description="Dead letters older than this are deleted."
    )
    deadletters_max: int = Field(
        default=100_000, ge=100, description="Most dead letters kept; the oldest go first."
    )
    prune_every_s: float = Field(
        default=600, gt=0, description="How often the quotas and ages are applied."
    )


class WebSettings(StrictModel):
    """The collector's HTTP server: the public ticket page."""

    host: str = Field(default="127.0.0.1", description="Address to listen on.")
    port: int = Field(default=8080, ge=0, le=65535, description="Port; 0 turns the server off.")
    assets_dir: Path = Field(
        default=Path("web-assets"),
        description="The browser libraries the pages serve (hls.js, uPlot), installed from the "
        "npm registry by shian-cloud assets (relative: in data_dir).",
    )


class LiveSettings(StrictModel):
    """Live views of public kitchen cameras, on demand, through a media server (docs/live.md)."""

    rtmp_url: str = Field(
        default="",
        description="Where boxes push a camera while somebody watches: the media server's RTMP "
        "application as boxes reach it, e.g. rtmp://live.example.gov.cn:1935/live. Empty: no "
        "live views (the page shows none).",
    )
    lease_s: float = Field(
        default=30, ge=5, le=600, description="A box stops a stream not renewed within this."
    )
    viewer_timeout_s: float = Field(
        default=10, ge=2, description="A viewer whose player fetched nothing for this long left."
    )
    linger_s: float = Field(
        default=15, ge=0, description="Keep a stream this long after its last viewer left."
    )
    start_timeout_s: float = Field(
        default=20, ge=2, description="A stream that has not begun in this long failed."
    )
    max_viewers_per_site: int = Field(
        default=50, ge=1, description="Concurrent viewers of a site (shian-cloud live cap)."
    )
    max_views_per_address: int = Field(
        default=4,
        ge=1,
        description="Views one address may hold open at once, so that one client cannot make "
        "every box of the city send (the address nginx gives in X-Forwarded-For).",
    )


class ConsoleSettings(StrictModel):
    """The supervisors' console (/console) and the inspectors' phones (/patrol): sessions,
    lockout, the patrols' checklists."""

    idle_timeout_s: float = Field(
        default=1800, ge=60, description="A session unused this long must log in again."
    )
    max_age_s: float = Field(
        default=12 * 3600, ge=300, description="A session ends this long after its login."
    )
    max_failures: int = Field(
        default=5, ge=1, description="Failed logins in a row before the name is locked."
    )
    lockout_s: float = Field(default=900, ge=1, description="How long a locked name waits.")
    secure_cookie: bool = Field(
        default=False,
        description="Send the session cookie over HTTPS only (set it when TLS is in front).",
    )
    checklists_dir: Path | None = Field(
        default=None,
        description="Your own patrol checklist templates (*.toml, as docs/patrol.md shows), "
        "beside the shipped ones; one with a shipped template's id replaces it (relative: in "
        "data_dir).",
    )


class TicketSettings(StrictModel):
    """Verifying the tickets that buyers scan."""

    keys_dir: Path = Field(
        default=Path("keys"),
        description="Holds <device>.key (64 hex digits) for each stall device, made when the "
        "device is registered (relative: in data_dir).",
    )


Severity = Literal["critical", "major", "minor", "info"]


class AlertRule(StrictModel):
    """Severity and deadlines of one alert type."""

    type: str = Field(description="Alert type (a violation type, device_offline, ...), or *.")
    severity: Severity = Field(description="critical, major, minor or info.")
    plan_due_s: float = Field(
        default=2 * 3600, gt=0, description="Rectification due this long after the request."
    )
    recheck_due_s: float = Field(
        default=72 * 3600, gt=0, description="Verification due this long after rectification."
    )


DEFAULT_RULES = [
    AlertRule(type=t, severity=s)  # type: ignore[arg-type]
    for t, s in [
        ("animal_in_kitchen", "critical"),
        ("rodent", "critical"),
        ("unattended_flame", "critical"),
        ("smoking", "major"),
        ("person_after_hours", "major"),
        ("stranger", "major"),
        ("no_mask", "minor"),
        ("no_chef_hat", "minor"),
        ("no_uniform", "minor"),
        ("phone_use", "minor"),
        ("uncovered_bin", "minor"),
        ("device_offline", "major"),
        ("district_outage", "critical"),
        ("camera_offline", "major"),
        ("camera_tampered", "major"),
        ("outbox_overflow", "major"),
        ("scale_fault", "minor"),
        ("printer_fault", "minor"),
        ("clock_skew", "minor"),
        ("no_morning_check", "major"),
        ("*", "major"),
    ]
]


class WebhookSettings(StrictModel):
    """A WeCom (企业微信) or DingTalk group-bot webhook that alerts are forwarded to."""

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,32}$", description="A name for logs and queues.")
    kind: Literal["wecom", "dingtalk"] = Field(description="wecom or dingtalk.")
    url: str = Field(description="The bot's webhook URL (with its key or access_token).")
    secret_file: Path | None = Field(
        default=None, description="DingTalk signing secret (SEC...), read from this file."
    )
    districts: list[str] = Field(default_factory=list, description="Only these districts (all).")
    min_severity: Severity = Field(default="major", description="Only alerts this severe or more.")
    per_minute: int = Field(default=20, ge=1, le=60, description="The bot's rate limit.")

    def secret(self) -> str | None:
        return self.secret_file.read_text().strip() if self.secret_file else None


class AlertSettings(StrictModel):
    """The alert engine."""

    default_district: str = Field(
        default="default", description="District of a site that is not registered."
    )
    escalate_after_s: float = Field(
        default=900, gt=0, description="A critical alert not acknowledged this long escalates."
    )
    heartbeat_timeout_s: float = Field(
        default=120, gt=0, description="An online device silent this long is offline."
    )
    storm_devices: int = Field(
        default=5,
        ge=2,
        description="When this many boxes of one district go offline within storm_window_s, "
        "they become one district incident (type district_outage) listing each box, instead "
        "of an alert per box.",
    )
    storm_window_s: float = Field(
        default=300, gt=0, description="The window in which offline boxes count as one storm."
    )
    incident_update_s: float = Field(
        default=10, ge=0, description="A district incident is republished at most this often."
    )
    outbox_depth: int = Field(
        default=10_000, ge=1, description="A box with this many events waiting raises an alert."
    )
    clock_skew_s: float = Field(
        default=300,
        gt=0,
        description="A box whose clock is this far from the collector's (by a status it has "
        "just written: events may be a backlog) raises a clock_skew alert; it closes when the "
        "clock is back within.",
    )
    clock_settle_s: float = Field(
        default=60,
        ge=0,
        description="A box's clock is called slow only once the collector has been connected "
        "this long (statuses queued while it was away arrive late, not slow).",
    )
    public_base_url: str = Field(
        default="", description="Base of snapshot links in alerts; default the web server's."
    )
    timezone_offset_h: float = Field(
        default=8, ge=-12, le=14, description="Local time for certificate dates (China: 8)."
    )
    rules: list[AlertRule] = Field(
        default_factory=lambda: list(DEFAULT_RULES), description="Severity table by alert type."
    )
    webhooks: list[WebhookSettings] = Field(
        default_factory=list, description="Group-bot webhooks alerts are forwarded to."
    )

    def rule(self, alert_type: str) -> AlertRule:
        for r in self.rules:
            if r.type == alert_type:
                return r
        return next((r for r in self.rules if r.type == "*"), AlertRule(type="*", severity="major"))


class ProvisioningSettings(StrictModel):
    """Registering boxes and supervisors with the broker (docs/installing.md)."""

    broker_dir: Path = Field(
        default=Path("broker"),
        description="Where the Mosquitto password and ACL files are (relative: in data_dir).",
    )
    broker_group: str = Field(
        default="mosquitto",
        description="The group the broker runs as: its password and ACL files are made 0640 "
        "for it (when the group exists).",
    )
    broker_pid_file: Path | None = Field(
        default=None, description="Mosquitto's pid file: it gets SIGHUP to re-read the files."
    )
    device_broker_url: str = Field(
        default="mqtts://127.0.0.1:8883", description="The broker URL written into bundles."
    )
    device_failover_urls: list[str] = Field(
        default_factory=list,
        max_length=16,
        description="The other nodes of a broker cluster, same scheme. Each bundle then starts "
        "its box on one node of all of them (chosen by the box's name, so the boxes spread "
        "over the nodes) with the others as its failover_urls.",
    )

    @field_validator("device_failover_urls")
    @classmethod
    def _same_scheme(cls, v: list[str]) -> list[str]:
        return [broker_url(u) for u in v]

    ca_file: Path | None = Field(default=None, description="CA certificate put into bundles.")
    bundle_dir: Path = Field(
        default=Path("bundles"), description="Where bundles are written (relative: in data_dir)."
    )
    ticket_base_url: str = Field(
        default="http://127.0.0.1:8080", description="Public ticket page base, for stalls."
    )


class FleetSettings(StrictModel):
    """Over-the-air updates (``shian-cloud fleet``; docs/fleet.md)."""

    files_url: str = Field(
        default="http://127.0.0.1:8080/fleet/files",
        pattern=r"^https?://",
        description="Where boxes fetch update files: this collector's web server as the boxes "
        "reach it, ending in /fleet/files.",
    )
    health_s: float = Field(
        default=120, ge=5, le=3600, description="How long a box must stay healthy on an update."
    )
    max_failures: int = Field(
        default=1, ge=0, description="Rollbacks or refusals that halt a rollout (more than)."
    )


class SupervisorLogin(StrictModel):
    """Marks a supervisor's own client config (written by ``supervisors add``): the alerts
    commands act as this supervisor, in this district only."""

    name: str = Field(description="The supervisor (their broker login).")
    district: str = Field(description="The district they supervise.")


class CloudConfig(StrictModel):
    """Top level of cloud.toml."""

    data_dir: Path = Field(
        default=Path("/var/lib/shian-cloud"),
        description="Where the collector keeps what it makes: a relative store path, keys_dir, "
        "broker_dir and bundle_dir are taken inside it, never in the directory a command runs in.",
    )
    mqtt: MqttSettings | None = Field(
        default=None, description="External broker; leave out to use the embedded broker."
    )
    embedded_broker: EmbeddedBroker = Field(
        default_factory=EmbeddedBroker, description="The broker started when [mqtt] is absent."
    )
    collector: CollectorSettings = Field(
        default_factory=CollectorSettings, description="Ingest settings."
    )
    store: StoreSettings = Field(default_factory=StoreSettings, description="Storage.")
    evidence: EvidenceSettings = Field(
        default_factory=EvidenceSettings, description="Evidence and dead-letter retention."
    )
    web: WebSettings = Field(default_factory=WebSettings, description="Public pages.")
    tickets: TicketSettings = Field(default_factory=TicketSettings, description="Tickets.")
    alerts: AlertSettings = Field(default_factory=AlertSettings, description="Alerts.")
    provisioning: ProvisioningSettings = Field(
        default_factory=ProvisioningSettings, description="Device registration."
    )
    fleet: FleetSettings = Field(default_factory=FleetSettings, description="Updates.")
    live: LiveSettings = Field(default_factory=LiveSettings, description="Live views.")
    console: ConsoleSettings = Field(
        default_factory=ConsoleSettings, description="The supervisors' console."
    )
    supervisor: SupervisorLogin | None = Field(
        default=None, description="Only in a supervisor's client config: who they are."
    )

    @model_validator(mode="after")
    def _in_data_dir(self) -> CloudConfig:
        """Relative paths are the data directory's, so every command finds the same files."""
        d = self.data_dir
        if not d.is_absolute():
            raise ValueError(f"data_dir {str(d)!r} must be an absolute path")
        self.store.path = d / self.store.path
        self.tickets.keys_dir = d / self.tickets.keys_dir
        self.provisioning.broker_dir = d / self.provisioning.broker_dir
        self.provisioning.bundle_dir = d / self.provisioning.bundle_dir
        self.web.assets_dir = d / self.web.assets_dir
        if self.console.checklists_dir is not None:
            from cloud.patrol.checklists import load

            self.console.checklists_dir = d / self.console.checklists_dir
            load(self.console.checklists_dir)  # a bad template: a config error, said at once
        return self

    def broker(self) -> MqttSettings:
        """The connection the collector uses: the configured broker or the embedded one."""
        if self.mqtt is not None:
            settings = self.mqtt
        else:
            host, port = self.embedded_broker.host, self.embedded_broker.port
            settings = MqttSettings(url=f"mqtt://{host}:{port}", protocol="3.1.1")
        if not settings.client_id:
            settings = settings.model_copy(update={"client_id": "shian-collector"})
        return settings
