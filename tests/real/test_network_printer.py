"""A network printer (a real TCP server) that runs out of paper or disappears mid-job: the
ticket stays pending and is printed once when the printer returns — not lost, not twice."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.config import PrinterSettings
from edge.stall.printer import PrinterLink, PrintWorker, load_printer_profile
from edge.stall.scale import Weight
from edge.stall.tickets import TicketBook
from edge.store.outbox import Outbox
from shared.signing import new_key
from tests.support.escpos_decode import decode
from tests.support.netprinter import NetPrinter
from tests.test_tickets_printing import products, stall_settings

pytestmark = pytest.mark.real


def complete_tickets(printer: NetPrinter) -> list[str]:
    """Ticket URLs of the jobs the printer received whole (QR stored and paper cut)."""
    out = []
    for job in printer.jobs:
        d = decode(job)
        if d.cut and d.qr_native:
            out.append(d.qr_native[0].decode())
    return out


def setup(tmp_path: Path, printer: NetPrinter) -> tuple[TicketBook, PrintWorker, list[tuple]]:
    key = new_key()
    book = TicketBook(
        Outbox(tmp_path / "o.db", "stall-7", "m1"), stall_settings(tmp_path, key), key
    )
    link = PrinterLink(
        PrinterSettings(connection=f"network:127.0.0.1:{printer.port}", timeout_s=2),
        load_printer_profile("generic_58mm"),
    )
    faults: list[tuple] = []
    return book, PrintWorker(book, link, on_fault=lambda *a: faults.append(a)), faults


def test_printer_vanishing_mid_job_prints_the_ticket_once_on_return(tmp_path: Path) -> None:
    printer = NetPrinter().start()
    book, worker, faults = setup(tmp_path, printer)
    t = book.issue(products()["101"], Weight("stable", 1234.0))
    printer.vanish_after = 100  # the job is longer than this
    assert worker.print_pending() is True, "the job failed"
    assert [p["ticket_id"] for p in book.pending()] == [t["ticket_id"]]
    assert complete_tickets(printer) == []
    assert worker.print_pending() is True, "still gone: connection refused"
    assert faults and faults[0][0] == "lost"
    back = NetPrinter(port=printer.port).start()  # the printer returns on the same address
    assert worker.print_pending() is False
    assert book.pending() == []
    assert faults[-1][0] == "recovered"
    assert complete_tickets(back) == [book.url(t)]
    assert worker.print_pending() is False
    assert complete_tickets(back) + complete_tickets(printer) == [book.url(t)], "printed once"
    back.stop()


def test_out_of_paper_keeps_tickets_pending_until_paper_returns(tmp_path: Path) -> None:
    printer = NetPrinter().start()
    book, worker, faults = setup(tmp_path, printer)
    printer.paper = False
    a = book.issue(products()["101"], Weight("stable", 700.0))
    b = book.issue(products()["201"], None, pieces=4)
    assert worker.print_pending() is True
    assert len(book.pending()) == 2 and complete_tickets(printer) == []
    assert faults == [("lost", "out of paper", 2)]
    printer.paper = True
    assert worker.print_pending() is False
    assert complete_tickets(printer) == [book.url(a), book.url(b)]
    assert worker.print_pending() is False
    assert complete_tickets(printer) == [book.url(a), book.url(b)], "printed once each"
