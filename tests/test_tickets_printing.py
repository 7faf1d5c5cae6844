"""Tickets are signed and committed before printing; the printed bytes, read back by an
independent ESC/POS reader, carry the Chinese text (GB18030) and a QR whose URL verifies."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import zxingcpp
from hypothesis import given
from hypothesis import strategies as st

from edge.config import PrinterSettings, StallSettings
from edge.stall.printer import PrinterLink, PrintWorker, load_printer_profile, render
from edge.stall.scale import Weight
from edge.stall.tickets import SaleRefused, TicketBook, total_cents
from edge.store.outbox import Outbox
from shared.catalog import CatalogError, Product, parse_csv
from shared.signing import new_key, verify, write_key
from tests.support.escpos_decode import decode

CSV = """plu,name,name_en,goods_code,unit,unit_price,origin,supplier,batch,inspection_item,inspection_result,inspection_date,inspection_lab
101,白菜,Chinese cabbage,1010101,kg,3.80,湖北咸宁,咸宁蔬菜合作社,HX20261125-03,农药残留,合格,2026-11-25,咸宁市食品检验所
201,鸡蛋,Eggs,,piece,0.90,湖北嘉鱼,,JY-77,,,,
"""


def stall_settings(tmp_path: Path, key: bytes) -> StallSettings:
    write_key(tmp_path / "ticket.key", key)
    return StallSettings(
        market="华信农贸市场",
        stall_no="A-07",
        retailer="李四",
        ticket_base_url="https://trace.example",
        ticket_key_file=tmp_path / "ticket.key",
    )


@pytest.fixture
def book(tmp_path: Path) -> TicketBook:
    key = new_key()
    ob = Outbox(tmp_path / "outbox.db", "stall-7", "market-1")
    b = TicketBook(ob, stall_settings(tmp_path, key), key)
    return b


def products() -> dict[str, Product]:
    return {p.plu: p for p in parse_csv(CSV)}


def test_totals_round_half_up_in_fen() -> None:
    assert total_cents("kg", 1234, 380) == 469  # 4.6892 yuan
    assert total_cents("kg", 1000, 1999) == 1999
    assert total_cents("piece", 3, 90) == 270


def test_a_sale_needs_a_stable_positive_weight(book: TicketBook) -> None:
    cabbage = products()["101"]
    for w in (
        None,
        Weight("unstable", 500.0),
        Weight("zero", 1.0),
        Weight("negative", -50.0),
        Weight("overload"),
    ):
        with pytest.raises(SaleRefused):
            book.issue(cabbage, w)
    with pytest.raises(SaleRefused, match="pieces"):
        book.issue(products()["201"], None, pieces=0)
    assert book.pending() == [] and book.outbox.stats().depth == 0


def test_ticket_and_event_are_committed_together_before_printing(book: TicketBook) -> None:
    t = book.issue(products()["101"], Weight("stable", 1234.4))
    assert t["quantity"] == 1234 and t["total_cents"] == 469
    assert [p["ticket_id"] for p in book.pending()] == [t["ticket_id"]]
    (ev,) = book.outbox.pending()
    assert json.loads(ev.body)["kind"] == "ticket"
    assert json.loads(ev.body)["data"] == t
    assert verify(book.key, t, t["sig"])
    eggs = book.issue(products()["201"], None, pieces=3)
    assert eggs["total_cents"] == 270 and eggs["unit"] == "piece"


def test_printed_bytes_decode_back(book: TicketBook) -> None:
    t = book.issue(products()["101"], Weight("stable", 1234.0))
    url = book.url(t)
    job = render(t, url, load_printer_profile("generic_58mm"))
    d = decode(job)
    assert d.chinese_mode and d.cut and not d.unknown
    text = d.text()
    for expected in (
        "食安溯源",
        "华信农贸市场",
        "白菜",
        "湖北咸宁",
        "HX20261125-03",
        "农药残留 合格",
        "1.234 kg",
        "3.80 元/kg",
        "4.69 元",
        t["ticket_id"],
    ):
        assert expected in text, expected
    (qr,) = d.qr_native
    got = urlsplit(qr.decode())
    assert got.path == f"/t/{t['ticket_id']}"
    assert verify(book.key, t, parse_qs(got.query)["s"][0])


def test_image_qr_is_read_by_zxing(book: TicketBook) -> None:
    t = book.issue(products()["101"], Weight("stable", 500.0))
    job = render(t, book.url(t), load_printer_profile("image_qr_58mm"))
    d = decode(job)
    assert not d.qr_native and d.images
    found = [r.text for img in d.images for r in zxingcpp.read_barcodes(img)]
    assert found == [book.url(t)]


def test_worker_prints_pending_in_order_and_marks_them(book: TicketBook) -> None:
    link = PrinterLink(PrinterSettings(connection="dummy"), load_printer_profile("generic_80mm"))
    worker = PrintWorker(book, link)
    a = book.issue(products()["101"], Weight("stable", 800.0))
    b = book.issue(products()["201"], None, pieces=2)
    assert worker.print_pending() is False
    assert [decode(j).qr_native[0].decode() for j in link.sent] == [book.url(a), book.url(b)]
    assert book.pending() == []
    assert worker.print_pending() is False and len(link.sent) == 2, "never printed twice"
    assert book.reprint(a["ticket_id"])
    worker.print_pending()
    assert len(link.sent) == 3


def test_file_printer_receives_the_job(book: TicketBook, tmp_path: Path) -> None:
    out = tmp_path / "lp0"
    link = PrinterLink(
        PrinterSettings(connection=f"file:{out}"), load_printer_profile("generic_58mm")
    )
    t = book.issue(products()["101"], Weight("stable", 800.0))
    PrintWorker(book, link).print_pending()
    assert decode(out.read_bytes()).qr_native == [book.url(t).encode()]


@pytest.mark.parametrize(
    ("csv_text", "message"),
    [
        ("plu,name\n1,x\n", "missing column"),
        (CSV.replace("3.80", "three"), "row 2: unit_price 'three'"),
        (CSV.replace("3.80", "NaN"), "row 2: unit_price 'NaN'"),
        (CSV.replace("3.80", "Infinity"), "row 2: unit_price 'Infinity'"),
        (CSV.replace(",kg,", ",jin,", 1), "row 2: unit"),
        (CSV + CSV.splitlines()[1] + "\n", "PLU 101 appears twice"),
        (CSV.replace("plu,", "plu,colour,", 1), "unknown column"),
    ],
)
def test_bad_catalog_csv_names_row_and_column(csv_text: str, message: str) -> None:
    with pytest.raises(CatalogError, match=message):
        parse_csv(csv_text)


@given(st.text(max_size=400) | st.sampled_from(["1,a,kg,NaN,o,b", "1,a,kg,sNaN,o,b"]))
def test_any_csv_text_is_parsed_or_refused_with_a_reason(text: str) -> None:
    try:
        products = parse_csv("plu,name,unit,unit_price,origin,batch\n" + text)
    except CatalogError as exc:
        assert str(exc)
    else:
        assert products and all(p.unit in ("kg", "piece") for p in products)
