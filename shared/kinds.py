"""Event kinds: the ``data`` of each kind of event, one pydantic model per kind.

Both sides validate ``data`` against the model of its ``kind``; a kind missing here is an
unknown kind (the collector dead-letters it). Later features add their kinds here, with an
example in ``docs/protocol.md``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from shared.ids import UUID7_TEXT

CAMERA_NAME = r"^[A-Za-z0-9_.-]{1,32}$"
"""As the edge config allows (they reach titles, pages and bot messages)."""
SNAPSHOT_ID = UUID7_TEXT
"""A UUIDv7, as on the snapshot topic (it reaches links in alerts)."""


class KindData(BaseModel):
    """Base of every kind's data: unknown keys are rejected, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class DeviceStarted(KindData):
    """The agent started (after a boot, an upgrade, or a crash and restart by systemd)."""

    version: str = Field(description="Agent software version.", max_length=64)
    pending: int = Field(ge=0, description="Events still undelivered in the outbox at start.")


class TestEvent(KindData):
    """An event queued by hand (``shian-edge emit test``) or by the demo, to prove the path."""

    note: str = Field(default="", max_length=4096, description="Free text.")
    n: int | None = Field(default=None, description="A counter the sender may use.")


class Inspection(KindData):
    item: str = Field(max_length=48, description="What was tested (e.g. pesticide residue).")
    result: str = Field(max_length=48, description="Result (e.g. pass / 合格).")
    date: str = Field(default="", max_length=10, description="Date of the test, YYYY-MM-DD.")
    lab: str = Field(default="", max_length=64, description="Who tested it.")


class Ticket(KindData):
    """A sale at a stall: a superset of the national meat-and-vegetable traceability retail
    record (market, retailer, stall position, batch, goods code, weight, price, sale id)."""

    ticket_id: str = Field(pattern=r"^[a-z2-7]{26}$", description="Sale transaction id.")
    market: str = Field(max_length=64, description="Market name.")
    stall: str = Field(max_length=32, description="Stall position (number).")
    retailer: str = Field(max_length=64, description="Vendor (retailer) name.")
    plu: str = Field(max_length=16, description="Product PLU.")
    product: str = Field(max_length=32, description="Product name.")
    product_en: str = Field(default="", max_length=48, description="Product name, English.")
    goods_code: str = Field(default="", max_length=32, description="Traceability goods code.")
    batch: str = Field(max_length=32, description="Batch number.")
    origin: str = Field(max_length=64, description="Place of origin.")
    supplier: str = Field(default="", max_length=64, description="Supplier.")
    inspection: Inspection | None = Field(default=None, description="Latest test of the batch.")
    unit: Literal["kg", "piece"] = Field(description="kg: quantity is grams; piece: pieces.")
    quantity: int = Field(ge=1, description="Grams (unit kg) or pieces.")
    unit_price_cents: int = Field(ge=0, description="Price per kg or per piece, fen.")
    total_cents: int = Field(ge=0, description="Amount, fen.")
    time: str = Field(max_length=32, description="Time of sale, UTC ISO 8601.")
    key: str = Field(
        default="",
        pattern=r"^[a-z0-9]{0,16}$",
        description="Id of the stall's key that signed it ('' for a stall's first key).",
    )
    sig: str = Field(pattern=r"^[a-z2-7]{16}$", description="Short HMAC of the ticket.")

    @field_validator("time")
    @classmethod
    def _aware_time(cls, value: str) -> str:
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError("time is not an ISO 8601 time") from None
        if when.tzinfo is None:
            raise ValueError("time has no time zone")
        return value


class ScaleFault(KindData):
    """The scale's port went away (or came back)."""

    state: Literal["lost", "recovered"] = Field(description="lost, or recovered.")
    port: str = Field(max_length=256, description="The port URL.")
    reason: str = Field(max_length=512, description="Why, as the system said it.")


class PrinterFault(KindData):
    """The printer failed a job (or works again); tickets wait meanwhile."""

    state: Literal["lost", "recovered"] = Field(description="lost, or recovered.")
    printer: str = Field(max_length=256, description="The printer connection.")
    reason: str = Field(max_length=512, description="Why: offline, out of paper, ...")
    pending: int = Field(ge=0, description="Tickets waiting to be printed.")


class ViolationData(KindData):
    """A food-safety violation seen by a kitchen camera."""

    camera: str = Field(pattern=CAMERA_NAME, description="Camera name.")
    type: str = Field(pattern=r"^[a-z][a-z0-9_]{1,47}$", description="Violation type.")
    label: str = Field(max_length=64, description="Model label that triggered it.")
    score: float = Field(ge=0, le=1, description="Detection score.")
    box: tuple[float, float, float, float] = Field(description="x1, y1, x2, y2 in frame pixels.")
    frame: tuple[int, int] = Field(description="Frame width, height.")
    zone: str | None = Field(default=None, max_length=32, description="Zone it was in.")
    model: str = Field(max_length=64, description="Model profile.")
    snapshot: str | None = Field(
        default=None,
        pattern=SNAPSHOT_ID,
        description="Snapshot id (sent on .../snap/{id}); none when no room could be made for it.",
    )


class CameraState(KindData):
    """A camera went offline (no frames) or came back."""

    camera: str = Field(pattern=CAMERA_NAME, description="Camera name.")
    reason: str = Field(default="", max_length=256, description="Why, for offline.")


class CameraTampered(KindData):
    """A camera's view is covered, blinded, blurred or turned away (or back to normal)."""

    camera: str = Field(pattern=CAMERA_NAME, description="Camera name.")
    state: Literal["raised", "cleared"] = Field(description="raised, or cleared.")
    problem: Literal["covered", "blinded", "blurred", "turned_away", "ok"] = Field(
        description="What is wrong (ok when cleared)."
    )
    metrics: dict[str, float] = Field(default_factory=dict, description="What was measured.")


class Rectification(KindData):
    """The business says it has rectified an alert (from its box), with an optional photo."""

    alert: str = Field(max_length=64, description="The alert id from the notice.")
    note: str = Field(default="", max_length=1000, description="What was done.")
    photo: str | None = Field(
        default=None, pattern=SNAPSHOT_ID, description="Snapshot id of a photo (.../snap/{id})."
    )


class MorningCheck(KindData):
    """A staff member's morning health check (晨检), recorded on the box."""

    staff: str = Field(min_length=1, max_length=32, description="Name of the staff member.")
    temperature: float = Field(ge=34, le=43, description="Body temperature, °C.")
    symptoms: list[
        Literal["fever", "cough", "diarrhoea", "vomiting", "skin_wound", "sore_throat"]
    ] = Field(default_factory=list, description="What they reported.")
    fit: bool = Field(description="Fit to work (no symptom, temperature below 37.3).")


class UpdateOutcome(KindData):
    """What became of an over-the-air update (docs/fleet.md)."""

    update: str = Field(pattern=r"^[0-9a-f]{32}$", description="The update's id.")
    rollout: str = Field(default="", max_length=32, description="Its rollout.")
    n: int = Field(ge=0, description="The box's update number.")
    kind: Literal["config", "model", "software"] = Field(description="What it changed.")
    outcome: Literal["applied", "rolled_back", "refused"] = Field(
        description="applied (healthy for its set time), rolled_back (by the box itself), "
        "or refused (bad signature, wrong box, a file or config that does not check)."
    )
    detail: str = Field(default="", max_length=1000, description="Why, in words.")
    version: str = Field(default="", max_length=64, description="The agent's version now.")


class Disinfection(KindData):
    """A disinfection run (by hand now; a sensor later)."""

    area: str = Field(min_length=1, max_length=48, description="What was disinfected.")
    method: str = Field(default="", max_length=48, description="How (UV, chlorine, steam).")
    by: str = Field(min_length=1, max_length=32, description="Who.")
    minutes: int = Field(default=0, ge=0, le=600, description="How long.")


class Hours(KindData):
    """A daily window of local time, as the box's config says (``end`` before ``start``
    wraps past midnight)."""

    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = Field(
        max_length=7, description="Days it applies."
    )
    start: str = Field(pattern=r"^\d\d:\d\d$", description="From HH:MM.")
    end: str = Field(pattern=r"^\d\d:\d\d$", description="Until HH:MM.")


class OfferedCamera(KindData):
    camera: str = Field(pattern=CAMERA_NAME, description="Camera name.")
    label: str = Field(default="", max_length=32, description="What the public sees it as.")
    public: bool = Field(description="The site shows it to the public.")
    hours: list[Hours] = Field(
        default_factory=list, max_length=14, description="When; empty means always."
    )
    mode: Literal["copy", "jpeg"] = Field(
        description="copy: its H.264 substream as is; jpeg: frames at a low rate."
    )


class LiveOffer(KindData):
    """The cameras a site shows the public and when (sent at every start of the agent)."""

    cameras: list[OfferedCamera] = Field(max_length=16, description="The box's cameras.")
    timezone_offset_h: float = Field(ge=-12, le=14, description="Local time of the hours.")


class LiveState(KindData):
    """A live view began or ended on the box (no video leaves a box unless somebody watches:
    this is the record of when it did)."""

    camera: str = Field(pattern=CAMERA_NAME, description="Camera name.")
    stream: str = Field(pattern=r"^[a-z0-9]{16,32}$", description="The stream's id.")
    state: Literal["started", "stopped", "failed"] = Field(description="What happened.")
    mode: Literal["copy", "jpeg"] = Field(description="How it was sent.")
    reason: str = Field(default="", max_length=256, description="Why it stopped or failed.")
    sent_bytes: int = Field(default=0, ge=0, description="Bytes sent, when stopped.")


DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"


def _real_date(value: str) -> str:
    """A calendar date in ASCII digits (2026-02-30 and full-width digits are refused: the box
    computes with it)."""
    from datetime import date

    date.fromisoformat(value)  # ValueError: pydantic's validation error
    return value


CalendarDate = Annotated[str, Field(pattern=DATE), AfterValidator(_real_date)]
Category = Literal[
    "vegetable", "fruit", "meat", "aquatic", "egg", "dairy", "grain", "oil", "condiment",
    "frozen", "other",
]  # fmt: skip


class Purchase(KindData):
    """A delivery recorded in the kitchen's purchase ledger (进货查验记录): typed in, or filled
    from a market stall's ticket scanned at the door (``ticket`` and ``ticket_sig``, which the
    collector checks against the ticket it holds before it links the two)."""

    supplier: str = Field(min_length=1, max_length=64, description="Who delivered it.")
    supplier_licence: str = Field(default="", max_length=64, description="Their licence no.")
    product: str = Field(min_length=1, max_length=32, description="What.")
    batch: str = Field(default="", max_length=32, description="The batch (lot) number.")
    quantity: float = Field(gt=0, le=1_000_000, description="How much, in unit.")
    unit: Literal["kg", "piece", "box", "bag", "bottle", "litre"] = Field(description="Unit.")
    produced: CalendarDate | None = Field(default=None, description="Produced on.")
    expires: CalendarDate | None = Field(default=None, description="Use by.")
    ticket: str | None = Field(
        default=None, pattern=r"^[a-z2-7]{26}$", description="A stall's ticket it came with."
    )
    ticket_sig: str | None = Field(
        default=None, pattern=r"^[a-z2-7]{16}$", description="The ticket's QR signature."
    )
    licence_photo: str | None = Field(
        default=None, pattern=SNAPSHOT_ID, description="The supplier's licence (a snapshot)."
    )
    report_photo: str | None = Field(
        default=None, pattern=SNAPSHOT_ID, description="The batch's test report (a snapshot)."
    )
    category: Category = Field(
        default="other", description="Product class: its near-expiry rule (days) follows it."
    )
    by: str = Field(min_length=1, max_length=32, description="Who took it in.")


LOT = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


class StockOut(KindData):
    """Stock taken out of a lot (a purchase): used, discarded or returned."""

    lot: str = Field(pattern=LOT, description="The lot: its purchase event's id.")
    product: str = Field(min_length=1, max_length=32, description="What.")
    batch: str = Field(default="", max_length=32, description="Its batch.")
    quantity: float = Field(gt=0, le=1_000_000, description="How much was taken.")
    left: float = Field(ge=0, le=1_000_000, description="What is left of the lot.")
    reason: Literal["used", "discarded", "returned"] = Field(description="Why.")
    by: str = Field(min_length=1, max_length=32, description="Who.")


class StockExpiry(KindData):
    """A lot near its use-by date (by its product class's rule), past it, or gone (cleared:
    used up, discarded or returned)."""

    lot: str = Field(pattern=LOT, description="The lot: its purchase event's id.")
    product: str = Field(min_length=1, max_length=32, description="What.")
    batch: str = Field(default="", max_length=32, description="Its batch.")
    expires: CalendarDate = Field(description="Its use-by date.")
    left: float = Field(ge=0, le=1_000_000, description="What is left of it.")
    unit: str = Field(max_length=8, description="The lot's unit.")
    state: Literal["near", "expired", "cleared"] = Field(description="What happened.")


SENSOR_NAME = CAMERA_NAME
ISO_UTC = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"


class Summary(KindData):
    min: float = Field(ge=-60, le=400)
    max: float = Field(ge=-60, le=400)
    mean: float = Field(ge=-60, le=400)
    n: int = Field(ge=1, le=6000, description="Readings in the minute.")


class SensorMinute(KindData):
    """A sensor's readings over one minute (the raw series stays on the box)."""

    sensor: str = Field(pattern=SENSOR_NAME, description="The sensor's name.")
    kind: str = Field(max_length=32, description="fridge, freezer, cold_room, ...")
    minute: str = Field(pattern=ISO_UTC, description="The minute's start, UTC.")
    values: dict[Literal["temperature", "humidity"], Summary] = Field(
        description="Per quantity: min, max, mean, count."
    )


class SensorExcursion(KindData):
    """Out of its range for the set time in a row (raised), or back within it (cleared)."""

    sensor: str = Field(pattern=SENSOR_NAME, description="The sensor's name.")
    kind: str = Field(max_length=32, description="fridge, freezer, cold_room, ...")
    state: Literal["raised", "cleared"] = Field(description="raised, or cleared.")
    value: float = Field(ge=-60, le=400, description="The reading (°C) when it changed.")
    worst: float | None = Field(default=None, ge=-60, le=400, description="Furthest out.")
    low: float | None = Field(default=None, description="The range's low end, °C.")
    high: float | None = Field(default=None, description="The range's high end, °C.")
    since: str | None = Field(default=None, pattern=ISO_UTC, description="Out since, UTC.")


class SensorFault(KindData):
    """The sensor gave no good reading for the set time (lost), or reads again (back)."""

    sensor: str = Field(pattern=SENSOR_NAME, description="The sensor's name.")
    state: Literal["lost", "back"] = Field(description="lost, or back.")
    reason: str = Field(default="", max_length=512, description="The last error.")


class DisinfectionCycle(KindData):
    """A disinfection cabinet's run, from its temperature curve: proven when it was held hot
    enough for long enough."""

    sensor: str = Field(pattern=SENSOR_NAME, description="The cabinet's sensor.")
    began: str = Field(pattern=ISO_UTC, description="When it passed min_c, UTC.")
    held_s: float = Field(ge=0, le=86400, description="How long it stayed at min_c or more.")
    peak_c: float = Field(ge=-60, le=400, description="Its highest reading.")
    min_c: float = Field(ge=0, le=400, description="The temperature that counts.")
    hold_s: float = Field(ge=0, le=86400, description="How long it must be held.")
    proven: bool = Field(description="held_s >= hold_s.")


KINDS: dict[str, type[KindData]] = {
    "device_started": DeviceStarted,
    "test": TestEvent,
    "ticket": Ticket,
    "scale_fault": ScaleFault,
    "printer_fault": PrinterFault,
    "violation": ViolationData,
    "update": UpdateOutcome,
    "camera_offline": CameraState,
    "camera_online": CameraState,
    "camera_tampered": CameraTampered,
    "rectification": Rectification,
    "morning_check": MorningCheck,
    "disinfection": Disinfection,
    "live_offer": LiveOffer,
    "live": LiveState,
    "sensor_minute": SensorMinute,
    "sensor_excursion": SensorExcursion,
    "sensor_fault": SensorFault,
    "disinfection_cycle": DisinfectionCycle,
    "purchase": Purchase,
    "stock_out": StockOut,
    "stock_expiry": StockExpiry,
}


def validate_data(kind: str, data: Any) -> KindData:
    """Validate ``data`` for ``kind``; raises ``KeyError`` for an unknown kind."""
    model = KINDS[kind]
    return model.model_validate(data)
