"""The purchase ledger on both stores: a scanned code parsed whatever it holds, purchases linked
to the stall's ticket only when the ticket checks, a batch traced in one query, and recalled
from every kitchen that took it (an alert each, the boxes told)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloud.alerts.engine import AlertEngine
from cloud.config import AlertSettings
from cloud.purchases import recall, trace
from cloud.store import Store
from edge.ledger.scan import ScanError, entry_from, parse_code
from shared.kinds import Purchase, Ticket
from shared.signing import new_key
from tests.conftest import register
from tests.support.tickets import signed_ticket
from tests.test_alerts_engine import T0, ev, feed

TICKET = "abcdefghijklmnopqrstuvwxyz"
SIG = "abcdefgh23456723"


def test_a_tickets_code_is_read_from_its_link_and_nothing_else() -> None:
    assert parse_code(f"https://trace.example.gov.cn/t/{TICKET}?s={SIG}") == (TICKET, SIG)
    assert parse_code(f" http://evil.example/x/t/{TICKET}/?s={SIG.upper()}\n") == (TICKET, SIG)
    for bad in ("", "hello", f"https://x/t/{TICKET}", f"https://x/t/short?s={SIG}",
                f"https://x/u/{TICKET}?s={SIG}", "\x00" * 10, "x" * 600):  # fmt: skip
        with pytest.raises(ScanError):
            parse_code(bad)


@given(st.text(max_size=600))
def test_any_scanned_text_is_a_ticket_or_a_clear_error(code: str) -> None:
    try:
        ticket, sig = parse_code(code)
    except ScanError as exc:
        assert str(exc)
        return
    assert len(ticket) == 26 and len(sig) == 16


def test_an_entry_from_a_ticket_is_a_valid_purchase() -> None:
    t = Ticket.model_validate(signed_ticket(new_key(), quantity=2500, batch="B7"))
    data = entry_from(t, "李四", "2026-12-05")
    p = Purchase.model_validate(data)
    got = (p.quantity, p.unit, p.batch, p.ticket, p.ticket_sig)
    assert got == (2.5, "kg", "B7", t.ticket_id, t.sig)


@pytest.fixture
def city(store_target: str | Path, tmp_path: Path) -> Store:
    s = Store(store_target, tmp_path / "snaps", engine=AlertEngine(AlertSettings(), "http://web"))
    for site, district in (("s1", "xianan"), ("s2", "chibi"), ("s3", "xianan"), ("m1", "xianan")):
        s.sites.set(site, district)
    for box, site in (("k1", "s1"), ("k2", "s2"), ("k3", "s3")):
        register(s, box, site, district="xianan")
    register(s, "stall-7", "m1", role="stall", district="xianan")
    return s


def test_a_batch_is_traced_and_recalled_across_kitchens(city: Store) -> None:
    t = signed_ticket(new_key(), market="m1", stall="stall-7", batch="HX-03", quantity=5000)
    feed(city, [ev("ticket", t, 1, "stall-7", "m1")], device="stall-7")
    bought = {"supplier": "m1 stall-7", "product": "白菜", "batch": "typed-wrong",
              "quantity": 5, "unit": "kg", "ticket": t["ticket_id"], "ticket_sig": t["sig"],
              "by": "李四"}  # fmt: skip
    forged = {**bought, "ticket_sig": "a" * 16}
    feed(city, [ev("purchase", bought, 1, "k1", "s1")], device="k1")
    feed(city, [ev("purchase", {**bought, "quantity": 2}, 1, "k2", "s2")], device="k2")
    feed(city, [ev("purchase", forged, 1, "k3", "s3")], device="k3")
    held = trace(city.db, "HX-03", "stall-7")
    assert [(r["site"], r["quantity"], r["ticket_state"]) for r in held] == [
        ("s1", 5.0, "linked"),
        ("s2", 2.0, "linked"),
    ]  # the stall's batch, not the typing
    assert trace(city.db, "typed-wrong")[0]["ticket_state"] == "not_genuine"  # kept, unlinked
    with pytest.raises(ValueError, match="no kitchen"):
        recall(city, "HX-99", "stall-7", "x", "operator", T0)
    ids = recall(city, "HX-03", "stall-7", "农残超标 pesticide over the limit", "operator", T0)
    alerts = [city.alerts.get(i) for i in ids]
    assert {(a["site"], a["type"], a["state"], a["severity"]) for a in alerts} == {  # type: ignore[index]
        ("s1", "recall", "rectification_requested", "critical"),
        ("s2", "recall", "rectification_requested", "critical")}  # fmt: skip
    told = {t_.split("/")[3] for _, t_, _, _ in city.outgoing.pending(0, 1000)
            if "/cmd/notice/" in t_}  # fmt: skip
    assert told == {"k1", "k2"}
    notice = next(json.loads(p) for _, t_, p, _ in city.outgoing.pending(0, 1000)
                  if t_.startswith("shian/v1/dev/k1/cmd/notice/"))  # fmt: skip
    assert "HX-03" in notice["title"] and "stop using batch HX-03" in notice["history"][-1]["note"]
    city.close()


@given(st.binary(max_size=700))
def test_any_line_from_a_serial_scanner_is_recorded_or_refused_with_a_reason(line: bytes) -> None:
    from edge.ledger.scanner import Scanner

    def record(code: str) -> str:
        ticket, _sig = parse_code(code)  # as the agent does, before it asks the collector
        return f"{ticket} recorded"

    s = Scanner("", record)
    s.handle(line)
    assert s.last["message"] and isinstance(s.last["ok"], bool)


def test_a_recall_can_be_run_again_when_a_kitchen_is_found_later(city: Store) -> None:
    t = signed_ticket(new_key(), market="m1", stall="stall-7", batch="HX-04")
    feed(city, [ev("ticket", t, 1, "stall-7", "m1")], device="stall-7")
    bought = {"supplier": "m1", "product": "白菜", "quantity": 5, "unit": "kg",
              "ticket": t["ticket_id"], "ticket_sig": t["sig"], "by": "李四"}  # fmt: skip
    feed(city, [ev("purchase", bought, 1, "k1", "s1")], device="k1")
    first = recall(city, "HX-04", "stall-7", "农残超标", "operator", T0)
    feed(city, [ev("purchase", bought, 1, "k2", "s2")], device="k2")  # its ledger came late
    again = recall(city, "HX-04", "stall-7", "农残超标", "operator", T0 + 60)
    assert first[0] in again and len(again) == 2
    states = {city.alerts.get(i)["state"] for i in again}  # type: ignore[index]
    assert states == {"rectification_requested"}
    city.close()
