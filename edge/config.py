"""The edge agent's config (TOML). Every field has a description; unknown keys are errors.

Reference: docs/config.md. Example: ``shian-edge config validate --config /etc/shian/edge.toml``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from edge.sensors.config import SensorSettings
from shared.codec import BATCH_OVERHEAD, MAX_EVENT_BYTES, MAX_MESSAGE_BYTES
from shared.config import MqttSettings, StrictModel, is_loopback
from shared.models import DeviceId, SiteId

DEFAULT_PATH = Path("/etc/shian/edge.toml")


class OutboxSettings(StrictModel):
    """Bounds of the local outbox and what happens when it is full."""

    max_events: int = Field(
        default=200_000, ge=10, description="Most unconfirmed events kept (about a week offline)."
    )
    max_bytes: int = Field(
        default=256 * 1024 * 1024, ge=64 * 1024, description="Most bytes of unconfirmed events."
    )
    max_age_s: float = Field(
        default=30 * 86400,
        gt=0,
        le=60 * 86400,
        description="Unconfirmed events older than this are expired. At most 60 days: the "
        "collector looks for a redelivered event that far back (its store's dedupe_days).",
    )
    when_full: Literal["drop_oldest", "reject_new"] = Field(
        default="drop_oldest",
        description="drop_oldest: make room by deleting the oldest unconfirmed events (counted as "
        "dropped); reject_new: refuse the new event with an error (counted as rejected).",
    )
    keep_confirmed_s: float = Field(
        default=3600, ge=0, description="Keep confirmed events this long for local inspection."
    )
    reserve_bytes: int = Field(
        default=1024 * 1024,
        ge=0,
        description="Space kept back beside the database (a file) and given up when the disk "
        "is full, so that the database can still open and do its own bookkeeping.",
    )
    wal_max_bytes: int = Field(
        default=1024 * 1024,
        ge=64 * 1024,
        description="Bound of the database's write-ahead log: checkpointed at half of this and "
        "cut back to it, so the log alone cannot fill a small card.",
    )


class SyncSettings(StrictModel):
    """How the outbox is sent to the broker."""

    batch_max_events: int = Field(default=100, ge=1, le=10_000, description="Events per message.")
    batch_max_bytes: int = Field(
        default=64 * 1024,
        ge=BATCH_OVERHEAD + MAX_EVENT_BYTES,
        le=MAX_MESSAGE_BYTES,
        description="Largest message payload, bytes.",
    )
    inflight_window: int = Field(
        default=16, ge=1, le=1000, description="Messages published and not yet acknowledged."
    )
    poll_interval_s: float = Field(
        default=0.2,
        gt=0,
        le=10,
        description="How often to look for events queued by other processes (shian-edge emit); "
        "events queued inside the agent are sent at once.",
    )
    heartbeat_s: float = Field(default=30, ge=1, description="Seconds between status heartbeats.")
    confirm_timeout_max_s: float = Field(
        default=120,
        ge=1,
        description="The longest wait for a confirmation before sending again (the wait doubles "
        "from confirm_timeout_s while no confirmation comes, up to this).",
    )
    confirm_timeout_s: float = Field(
        default=30,
        ge=0.5,
        description="Send again events the broker acknowledged but the collector has not "
        "confirmed after this long, on the monotonic clock (a stepped wall clock changes "
        "nothing); the wait doubles while no confirmation comes, to confirm_timeout_max_s.",
    )


class DemoSettings(StrictModel):
    """A built-in source of sample events, for demos and installers."""

    sample_every_s: float = Field(
        default=0, ge=0, description="Queue a `test` event this often; 0 turns it off."
    )
    sample_count: int = Field(
        default=0, ge=0, description="Stop after this many sample events; 0 means no limit."
    )


class ScaleSettings(StrictModel):
    """The stall's scale."""

    port: str = Field(
        description="pyserial port URL: /dev/ttyUSB0, socket://host:port, rfc2217://host:port, "
        "loop://"
    )
    profile: str = Field(
        description="Scale profile: a name in firmware_profiles/scales, or a path."
    )
    stable_frames: int | None = Field(
        default=None, ge=1, description="Override the profile's consecutive stable frames."
    )
    tolerance_g: float | None = Field(
        default=None, ge=0, description="Override the profile's stable tolerance, grams."
    )


class PrinterSettings(StrictModel):
    """The stall's ticket printer."""

    connection: str = Field(
        default="dummy",
        description="network:HOST[:PORT] (port 9100), serial:DEVICE[:BAUD], usb:VID:PID, "
        "file:PATH, or dummy (keeps the bytes in memory)",
    )
    profile: str = Field(
        default="generic_58mm", description="Printer profile in firmware_profiles/printers."
    )
    timeout_s: float = Field(default=5, gt=0, description="Network and status timeout.")


class StallSettings(StrictModel):
    """A market stall: scale, catalog, tickets, printer, local screen API."""

    market: str = Field(description="Market name, printed on tickets.")
    stall_no: str = Field(description="Stall position (number), printed on tickets.")
    retailer: str = Field(description="The vendor's (retailer's) name.")
    ticket_base_url: str = Field(
        description="Public ticket page base, e.g. https://trace.example.gov.cn; the QR holds "
        "<base>/t/<ticket id>?s=<signature>."
    )
    ticket_key_file: Path = Field(
        description="This device's ticket-signing key (64 hex digits); $SHIAN_TICKET_KEY "
        "overrides it."
    )
    ticket_key_id: str = Field(
        default="",
        pattern=r"^[a-z0-9]{0,16}$",
        description="The id of that key in the cloud (from the bundle); written into each "
        "ticket, so tickets signed before a key rotation stay genuine.",
    )
    scale: ScaleSettings | None = Field(default=None, description="The scale; none for pieces.")
    printer: PrinterSettings = Field(default_factory=PrinterSettings, description="The printer.")


Point = tuple[int, int]


class Window(StrictModel):
    """A daily time window (local time); to < from wraps past midnight."""

    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = Field(
        default=["mon", "tue", "wed", "thu", "fri", "sat", "sun"], description="Days it applies."
    )
    start: str = Field(pattern=r"^\d\d:\d\d$", description="From HH:MM.")
    end: str = Field(pattern=r"^\d\d:\d\d$", description="Until HH:MM.")


class CameraSettings(StrictModel):
    """One kitchen camera."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,32}$", description="Camera name (in events).")
    source: str = Field(
        description="rtsp://... or http://... URL, /dev/videoN or N (V4L2), a video file "
        "(looped; also file:PATH), or images:DIR (a folder of stills, looped)."
    )
    width: int = Field(default=640, ge=64, le=3840, description="Detect resolution, width.")
    height: int = Field(default=360, ge=64, le=2160, description="Detect resolution, height.")
    fps: float = Field(default=5, gt=0, le=30, description="Frames looked at per second.")
    masks: list[list[Point]] = Field(
        default_factory=list, description="Polygons (detect pixels) where motion is ignored."
    )
    zones: dict[str, list[Point]] = Field(
        default_factory=dict, description="Named polygons that rules may require."
    )
    tamper: bool = Field(default=True, description="Watch for covered/blurred/turned camera.")
    public: bool = Field(
        default=False,
        description="Show this camera live on the site's public page (sent only while somebody "
        "watches; the regulator may still switch the site's views off).",
    )
    public_hours: list[Window] = Field(
        default_factory=list,
        max_length=14,
        description="When the public may watch (the kitchen's working hours); empty means "
        "whenever the camera is public.",
    )
    public_label: str = Field(
        default="", max_length=32, description="What the public page calls it (热菜间, ...)."
    )
    live_source: str = Field(
        default="",
        description="The camera's H.264 substream (rtsp://...), copied as it is to the media "
        "server while somebody watches; empty, or a stream that is not H.264: JPEG frames at "
        "live_jpeg_fps instead.",
    )
    live_jpeg_fps: float = Field(
        default=1, gt=0, le=5, description="Frames a second of the JPEG fallback."
    )


class RuleSettings(StrictModel):
    """A detection label (or labels) that means a violation."""

    violation: str = Field(
        pattern=r"^[a-z][a-z0-9_]{1,47}$",
        description="Violation type: animal_in_kitchen, person_after_hours, no_mask, "
        "no_chef_hat, smoking, phone_use, rodent, ...",
    )
    labels: list[str] = Field(min_length=1, description="Model labels that trigger it.")
    min_score: float = Field(default=0.5, ge=0, le=1, description="Lowest detection score.")
    cameras: list[str] = Field(default_factory=list, description="Only these cameras (all).")
    zones: list[str] = Field(default_factory=list, description="Only inside these zones (any).")
    persistence: tuple[int, int] = Field(
        default=(2, 3), description="k of n: seen in k of the last n looks at the camera."
    )
    cooldown_s: float = Field(default=300, ge=0, description="Quiet time per camera and type.")
    active: list[Window] = Field(
        default_factory=list, description="When the rule applies; empty means always."
    )


class KitchenSettings(StrictModel):
    """A kitchen: cameras, detector, rules, evidence."""

    model: str = Field(
        default="",
        description="Model profile name (firmware_profiles/models) or path; empty: no "
        "detection (cameras for the hall screen and live views only).",
    )
    models_dir: Path | None = Field(
        default=None, description="Where model files are; default <data_dir>/models."
    )
    detector_threads: int = Field(default=2, ge=1, le=8, description="LiteRT threads.")
    full_frame_every_s: float = Field(
        default=10, gt=0, description="Also look at each whole frame this often (still scenes)."
    )
    stall_timeout_s: float = Field(
        default=5, gt=0, description="No frame for this long: the camera is offline."
    )
    tamper_after_s: float = Field(
        default=3, gt=0, description="A covered/blurred/turned view must last this long."
    )
    timezone_offset_h: float = Field(
        default=8, ge=-12, le=14, description="Local time for rule windows (China: 8)."
    )
    evidence_dir: Path | None = Field(
        default=None, description="Snapshots; default <data_dir>/evidence."
    )
    evidence_quota_mb: float = Field(
        default=500, gt=0, description="Most disk used by snapshots (oldest deleted first)."
    )
    evidence_min_free_mb: float = Field(
        default=200, ge=0, description="Never take the disk's free space below this."
    )
    cameras: list[CameraSettings] = Field(
        default_factory=list, max_length=16, description="The cameras."
    )
    rules: list[RuleSettings] = Field(default_factory=list, description="Violation rules.")


class DisplaySettings(StrictModel):
    """The box's local screens (hall screen, stall screen) and their API."""

    host: str = Field(
        default="127.0.0.1",
        description="Address to serve on: loopback for a kiosk on the box itself; any other "
        "address needs a token.",
    )
    port: int = Field(default=8088, ge=0, le=65535, description="Port; 0 turns it off.")
    language: Literal["zh", "en"] = Field(default="zh", description="First language shown.")
    stream_width: int = Field(
        default=480, ge=160, le=1920, description="Width of each live view on the hall screen."
    )
    token_file: Path | None = Field(
        default=None,
        description="The screens' token (one line), needed when host is not loopback; "
        "$SHIAN_DISPLAY_TOKEN overrides it. A kiosk opens /hall?token=... once.",
    )
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Host names (besides localhost and any IP address) the screens answer to, "
        "e.g. the box's name on the LAN; other names are refused (DNS rebinding).",
    )

    def token(self) -> str:
        """The token from $SHIAN_DISPLAY_TOKEN or token_file ('' when neither is set)."""
        env = os.environ.get("SHIAN_DISPLAY_TOKEN", "").strip()
        if env:
            return env
        return self.token_file.read_text().strip() if self.token_file else ""

    def needs_token(self) -> bool:
        return self.port != 0 and not is_loopback(self.host)

    @model_validator(mode="after")
    def _token_beyond_loopback(self) -> DisplaySettings:
        if (
            self.needs_token()
            and self.token_file is None
            and not os.environ.get("SHIAN_DISPLAY_TOKEN")
        ):
            raise ValueError(
                f"the screens on {self.host} can be reached from the network: set token_file "
                "(or $SHIAN_DISPLAY_TOKEN), or serve on 127.0.0.1"
            )
        return self


class FleetSettings(StrictModel):
    """Over-the-air updates from the cloud (docs/fleet.md)."""

    public_key: str = Field(
        default="",
        max_length=64,
        description="The cloud's fleet key (base64 of an Ed25519 public key, from the bundle): "
        "only updates it signed are taken. Empty: every update is refused.",
    )
    max_download_mb: float = Field(
        default=200, gt=0, description="The largest file an update may bring."
    )


class LedgerSettings(StrictModel):
    """The purchase ledger (docs/ledger.md)."""

    trace_url: str = Field(
        default="",
        pattern=r"^(https?://[^\s/?#]+)?$",
        description="The collector's public address (https://trace.example.gov.cn): a scanned "
        "ticket is asked of it, never of the host its code names.",
    )
    near_expiry_days: dict[str, int] = Field(
        default_factory=dict,
        description="Days before its use-by date a lot is near expiry, by product class "
        "(vegetable, meat, dairy, grain, ...); the defaults are in docs/ledger.md.",
    )
    check_every_s: float = Field(
        default=600, ge=5, description="How often the box checks its stock's dates."
    )
    scanner_port: str = Field(
        default="",
        description="A serial barcode scanner at the door (/dev/serial/by-id/...): each code it "
        "sends is a delivery recorded (a USB scanner in keyboard mode types into the screen).",
    )
    scanner_baudrate: int = Field(default=9600, description="The serial scanner's speed.")
    scanner_by: str = Field(
        default="scanner", max_length=32, description="Who deliveries scanned there are by."
    )


class EdgeConfig(StrictModel):
    """Top level of edge.toml."""

    device: DeviceId = Field(description="This box's device id (unique in the city).")
    site: SiteId = Field(description="The kitchen or stall this box serves.")
    data_dir: Path = Field(
        default=Path("/var/lib/shian"), description="Where the outbox and other state live."
    )
    box: str = Field(
        default="", description="Box model (firmware_profiles/boxes), for doctor's checks."
    )
    mqtt: MqttSettings = Field(default_factory=MqttSettings, description="Broker connection.")
    outbox: OutboxSettings = Field(default_factory=OutboxSettings, description="Outbox bounds.")
    sync: SyncSettings = Field(default_factory=SyncSettings, description="Sending.")
    demo: DemoSettings = Field(default_factory=DemoSettings, description="Sample events.")
    stall: StallSettings | None = Field(default=None, description="Set on a market-stall box.")
    kitchen: KitchenSettings | None = Field(default=None, description="Set on a kitchen box.")
    display: DisplaySettings = Field(default_factory=DisplaySettings, description="Screens.")
    fleet: FleetSettings = Field(default_factory=FleetSettings, description="Updates.")
    ledger: LedgerSettings = Field(default_factory=LedgerSettings, description="Ledger.")
    sensors: list[SensorSettings] = Field(
        default_factory=list, max_length=32, description="RS-485 Modbus sensors (fridges, "
        "freezers, disinfection cabinets): docs/sensors.md."
    )  # fmt: skip

    @model_validator(mode="after")
    def _client_id(self) -> EdgeConfig:
        if not self.mqtt.client_id:
            self.mqtt.client_id = self.device
        return self

    @model_validator(mode="after")
    def _sensor_names(self) -> EdgeConfig:
        names = [s.name for s in self.sensors]
        if len(set(names)) != len(names):
            raise ValueError("two sensors with one name")
        return self

    @property
    def outbox_path(self) -> Path:
        return self.data_dir / "outbox.db"
