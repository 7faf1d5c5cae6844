"""Storage on the box on a controlled clock: each purchase a lot, first-expired first-out, never
below nothing, near-expiry by product class and expiry said once each, cleared when used up;
and the collector's alerts and its count of what is left where."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloud.alerts.engine import AlertEngine
from cloud.config import AlertSettings
from cloud.purchases import trace
from cloud.store import Store
from edge.config import OutboxSettings
from edge.ledger.stock import Stock
from edge.store.outbox import Outbox, OutboxError
from tests.conftest import register
from tests.test_alerts_engine import feed

NOON = 1_796_270_400.0  # 2026-12-03 12:00 China time


def delivery(product: str, expires: str | None, category: str = "other", qty: float = 10,
             **more: Any) -> dict[str, Any]:  # fmt: skip
    return {"supplier": "咸宁粮油", "product": product, "batch": "B1", "quantity": qty,
            "unit": "kg", "expires": expires, "category": category, "by": "李四",
            **more}  # fmt: skip


@pytest.fixture
def stock(tmp_path: Path) -> Stock:
    ob = Outbox(tmp_path / "outbox.db", "k1", "s1", OutboxSettings(), clock=lambda: NOON)
    return Stock(ob, {"grain": 10})


def sent(stock: Stock, kind: str) -> list[dict[str, Any]]:
    return [e["data"] for e in reversed(stock.outbox.recent(1000)) if e["kind"] == kind]


def test_lots_come_out_first_expired_first_out(stock: Stock) -> None:
    rice = stock.record(delivery("大米", "2027-05-01", "grain"))
    milk = stock.record(delivery("牛奶", "2026-12-06", "dairy"))
    salt = stock.record(delivery("盐", None, "condiment"))
    cabbage = stock.record(delivery("白菜", "2026-12-04", "vegetable"))
    assert [lot["lot"] for lot in stock.lots()] == [cabbage, milk, rice, salt]
    assert [e["kind"] for e in stock.outbox.recent(10)] == ["purchase"] * 4  # a lot each
    stock.take(cabbage, 4, "used", "李四")
    with pytest.raises(OutboxError, match="cannot come out of a lot holding 6"):
        stock.take(cabbage, 6.5, "used", "李四")
    with pytest.raises(OutboxError, match="no lot"):
        stock.take("nothing", 1, "used", "李四")
    stock.take(cabbage, 6, "discarded", "李四")
    assert cabbage not in [lot["lot"] for lot in stock.lots()]  # used up
    assert [(d["quantity"], d["left"], d["reason"]) for d in sent(stock, "stock_out")] == [
        (4, 6, "used"), (6, 0, "discarded")]  # fmt: skip


def test_near_expiry_by_class_and_expiry_are_said_once_each(stock: Stock) -> None:
    milk = stock.record(delivery("牛奶", "2026-12-05", "dairy"))  # near at 2 days
    stock.record(delivery("大米", "2026-12-12", "grain"))  # near at 10 days (the site's rule)
    stock.record(delivery("面粉", "2026-12-20", "grain"))
    assert stock.check(NOON) == ["near", "near"] and stock.check(NOON + 3600) == []
    assert stock.check(NOON + 2 * 86400) == []  # 12-05: still near, said already
    assert stock.check(NOON + 3 * 86400) == ["expired"]  # 12-06: the milk is past its date
    assert stock.check(NOON + 4 * 86400) == []
    stock.take(milk, 10, "discarded", "李四")
    states = [(d["product"], d["state"]) for d in sent(stock, "stock_expiry")]
    assert states == [("牛奶", "near"), ("大米", "near"), ("牛奶", "expired"), ("牛奶", "cleared")]


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=12))
def test_no_taking_leaves_a_lot_below_nothing(stock: Stock, takes: list[float]) -> None:
    lot = stock.record(delivery("大米", "2027-05-01", "grain", qty=5))
    for q in takes:
        try:
            stock.take(lot, q, "used", "李四")
        except OutboxError as exc:
            assert str(exc)
    left = [x["left"] for x in stock.lots() if x["lot"] == lot]
    assert not left or 0 < left[0] <= 5


def test_the_collector_counts_what_is_left_and_alerts_on_dates(
    stock: Stock, tmp_path: Path
) -> None:
    cloud = Store(tmp_path / "c.db", tmp_path / "snaps", engine=AlertEngine(AlertSettings()))
    cloud.sites.set("s1", "xianan")
    register(cloud, "k1", "s1", district="xianan")
    milk = stock.record(delivery("牛奶", "2026-12-05", "dairy"))
    stock.take(milk, 3, "used", "李四")
    stock.check(NOON)
    stock.check(NOON + 3 * 86400)

    def deliver() -> None:
        waiting = stock.outbox.pending(limit=100)
        feed(cloud, [p.body for p in waiting], NOON)  # what the sync worker would send
        stock.outbox.mark_confirmed([(waiting[0].seq, waiting[-1].seq)])

    deliver()
    row = trace(cloud.db, "B1")[0]
    assert (row["quantity"], row["used"], row["left_over"]) == (10, 3, 7)
    types = {a["type"]: a["state"] for a in cloud.alerts.list()}
    assert types == {"stock_near_expiry": "closed", "stock_expired": "open"}
    stock.take(milk, 7, "discarded", "李四")
    deliver()
    assert {a["type"]: a["state"] for a in cloud.alerts.list()}["stock_expired"] == "closed"
    assert json.loads(json.dumps(trace(cloud.db, "B1")))[0]["left_over"] == 0
    cloud.close()


def test_a_delivery_carries_its_licence_and_test_report_as_snapshots(
    stock: Stock, tmp_path: Path
) -> None:
    from PIL import Image

    licence, report = tmp_path / "licence.jpg", tmp_path / "report.png"
    Image.new("RGB", (64, 48), (200, 10, 10)).save(licence, "JPEG")
    Image.new("RGB", (64, 48), (10, 10, 200)).save(report, "PNG")  # made a JPEG on the box
    stock.record(delivery("大米", "2027-05-01", "grain"),
                 {"licence_photo": licence, "report_photo": report}, tmp_path / "ev")  # fmt: skip
    data = sent(stock, "purchase")[0]
    queued = dict(stock.outbox.read("SELECT id, path FROM snapshots"))
    assert set(queued) == {data["licence_photo"], data["report_photo"]}
    assert all(Path(p).read_bytes().startswith(b"\xff\xd8\xff") for p in queued.values())
