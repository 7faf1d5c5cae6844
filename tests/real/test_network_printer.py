"""A network printer (a real TCP server) that runs out of paper, disappears mid-job or loses
its reply: the ticket stays pending and is printed when the printer returns, never lost, and
never a second original: printed again after an unknown outcome, it is marked as a copy."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.config import PrinterSettings
from edge.stall.printer import COPY_MARK, PrinterLink, PrintWorker, load_printer_profile
from edge.stall.scale import Weight
from edge.stall.tickets import TicketBook
from edge.store.outbox import Outbox
from shared.signing import new_key
from tests.conftest import wait_for
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


def test_a_lost_reply_after_the_whole_job_prints_a_copy_not_a_second_original(
    tmp_path: Path,
) -> None:
    printer = NetPrinter().start()
    book, worker, faults = setup(tmp_path, printer)
    t = book.issue(products()["101"], Weight("stable", 1234.0))
    printer.mute_after_job = True  # it prints the ticket; its reply never comes
    assert worker.print_pending() is True, "no reply: the outcome is unknown"
    wait_for(lambda: len(printer.jobs) == 1, what="the printer to close the first job")
    first = decode(printer.jobs[0])
    assert first.cut and COPY_MARK not in first.text(), "the whole original reached the paper"
    assert faults and faults[0][0] == "lost" and "mid-job" in faults[0][1]
    printer.mute_after_job = False
    assert worker.print_pending() is False
    wait_for(lambda: len(printer.jobs) == 2, what="the second job")
    second = decode(printer.jobs[1])
    assert second.cut and COPY_MARK in second.text(), "printed again only as a copy (补打)"
    assert complete_tickets(printer) == [book.url(t), book.url(t)]
    assert book.pending() == []
    assert worker.print_pending() is False and len(printer.jobs) == 2, "and only once"
    printer.stop()


def test_a_printer_that_took_nothing_prints_the_original(tmp_path: Path) -> None:
    """Refused before the job (out of paper): the ticket was never on paper, so no copy mark."""
    printer = NetPrinter().start()
    book, worker, _ = setup(tmp_path, printer)
    printer.paper = False
    book.issue(products()["101"], Weight("stable", 500.0))
    assert worker.print_pending() is True
    printer.paper = True
    assert worker.print_pending() is False
    wait_for(lambda: len([j for j in printer.jobs if j]) == 1, what="the job")
    (job,) = [j for j in printer.jobs if j]
    assert COPY_MARK not in decode(job).text()
    printer.stop()


def test_the_vendors_reprint_is_marked_as_a_copy(tmp_path: Path) -> None:
    printer = NetPrinter().start()
    book, worker, _ = setup(tmp_path, printer)
    t = book.issue(products()["101"], Weight("stable", 500.0))
    assert worker.print_pending() is False
    assert book.reprint(t["ticket_id"])
    assert worker.print_pending() is False
    wait_for(lambda: len(printer.jobs) == 2, what="both jobs")
    marks = [COPY_MARK in decode(j).text() for j in printer.jobs]
    assert marks == [False, True]
    printer.stop()


def test_a_box_stopped_mid_job_prints_a_copy_after_its_restart(tmp_path: Path) -> None:
    """The attempt is recorded before the job goes out: a power cut between the printer taking
    the job and the box recording it leaves a ticket that is printed again only as a copy."""
    printer = NetPrinter().start()
    book, _, _ = setup(tmp_path, printer)
    t = book.issue(products()["101"], Weight("stable", 800.0))
    book.mark_attempt(t["ticket_id"])  # what the worker writes first; then the power went
    book2, worker2, _ = setup(tmp_path, printer)  # the box again, on the same database
    assert worker2.print_pending() is False
    wait_for(lambda: len(printer.jobs) == 1, what="the job")
    assert COPY_MARK in decode(printer.jobs[0]).text()
    assert book2.pending() == []
    printer.stop()


def test_a_ticket_book_the_disk_refuses_never_prints_a_ticket_twice(tmp_path: Path) -> None:
    """The box's database refuses every write (a full card): a printed ticket is not sent
    again while its mark waits, and its mark is written once the disk takes writes."""
    printer = NetPrinter().start()
    book, worker, _ = setup(tmp_path, printer)
    t = book.issue(products()["101"], Weight("stable", 900.0))
    book.outbox.db.conn.execute("PRAGMA query_only = ON")  # nothing can be written
    assert worker.print_pending() is True, "printed, but the mark is not saved"
    assert worker.print_pending() is True and worker.print_pending() is True
    wait_for(lambda: len(printer.jobs) == 1, what="the one job")
    assert COPY_MARK not in decode(printer.jobs[0]).text(), "the original, once"
    book.outbox.db.conn.execute("PRAGMA query_only = OFF")
    assert worker.print_pending() is False
    assert book.pending() == [] and len(printer.jobs) == 1
    assert complete_tickets(printer) == [book.url(t)]
    printer.stop()
