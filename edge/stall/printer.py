"""Ticket printing: the job is rendered to ESC/POS bytes with python-escpos, then handed whole
to the printer connection from the config; a ticket counts as printed only when the printer
has taken all of it (a status reply after the job, where the printer can answer). A failure
after the first byte of the job went out leaves the outcome unknown
(:class:`PrintOutcomeUnknown`): the ticket is printed again, marked as a copy (补打).

Chinese text is sent in the printer's Chinese mode (``FS &``) as GB18030. The QR code is the
printer's own (``GS ( k``) or a raster image, by the printer profile.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from edge.config import PrinterSettings
from edge.worker import Worker
from shared.assets import profiles_dir
from shared.config import StrictModel, load

log = logging.getLogger("shian.printer")

DLE_EOT_PRINTER = b"\x10\x04\x01"
DLE_EOT_PAPER = b"\x10\x04\x04"
PAPER_END = 0x60
CHINA = timezone(timedelta(hours=8), "CST")


class PrinterProfile(StrictModel):
    """What a printer model can do."""

    title: str = Field(description="Printer model(s).")
    paper_mm: Literal[58, 80] = Field(description="Paper width, mm.")
    columns: int = Field(ge=16, le=64, description="ASCII characters per line (CJK take two).")
    encoding: Literal["gb18030", "gbk"] = Field(default="gb18030", description="Text encoding.")
    chinese_mode: bool = Field(default=True, description="Send FS & before Chinese text.")
    qr: Literal["native", "image"] = Field(description="QR as GS ( k, or as a raster image.")
    qr_size: int = Field(default=6, ge=1, le=16, description="QR module size, dots.")
    status: bool = Field(default=True, description="Answers DLE EOT status requests.")


def load_printer_profile(name: str) -> PrinterProfile:
    path = Path(name) if Path(name).suffix else profiles_dir() / "printers" / f"{name}.toml"
    if not path.exists():
        known = sorted(p.stem for p in (profiles_dir() / "printers").glob("*.toml"))
        raise FileNotFoundError(f"no printer profile {name!r}; known: {', '.join(known)}")
    return load(path, PrinterProfile)


COPY_MARK = "** 补打 COPY **"


class PrinterError(Exception):
    """The printer did not take the job: offline, out of paper, no answer."""


class PrintOutcomeUnknown(PrinterError):
    """Part or all of the job went out, then the printer's reply or the connection was lost:
    the ticket may be printed."""


def _money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def ticket_lines(t: dict[str, Any]) -> list[str]:
    """The ticket's text, Chinese first with English, as printed."""
    when = datetime.fromisoformat(t["time"]).astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S")
    if t["unit"] == "kg":
        qty = f"{t['quantity'] / 1000:.3f} kg"
        price = f"{_money(t['unit_price_cents'])} 元/kg"
    else:
        qty = f"{t['quantity']} 件 pcs"
        price = f"{_money(t['unit_price_cents'])} 元/件"
    product = t["product"] + (f" {t['product_en']}" if t.get("product_en") else "")
    lines = [
        f"市场 Market: {t['market']}",
        f"摊位 Stall: {t['stall']}  经营者: {t['retailer']}",
        f"品名 Product: {product}",
    ]
    if t.get("goods_code"):
        lines.append(f"商品编码 Code: {t['goods_code']}")
    lines += [f"批次 Batch: {t['batch']}", f"产地 Origin: {t['origin']}"]
    insp = t.get("inspection")
    if insp:
        lines.append(f"检测 Test: {insp['item']} {insp['result']} {insp['date']}".rstrip())
    lines += [
        f"重量 Qty: {qty}",
        f"单价 Price: {price}",
        f"金额 Total: {_money(t['total_cents'])} 元",
        f"时间 Time: {when}",
        f"票号 No: {t['ticket_id']}",
    ]
    return lines


def render(ticket: dict[str, Any], url: str, profile: PrinterProfile, copy: bool = False) -> bytes:
    """The whole ESC/POS job for one ticket; ``copy`` marks it as printed again."""
    from escpos.printer import Dummy

    p = Dummy()
    enc = profile.encoding

    def text(line: str) -> None:
        p._raw(line.encode(enc, errors="replace") + b"\n")

    p._raw(b"\x1b@")  # initialise
    if profile.chinese_mode:
        p._raw(b"\x1c&")  # FS &: Chinese character mode
    p.set(align="center", bold=True, double_height=True, double_width=True)
    text("食安溯源")
    p.set(align="center", normal_textsize=True, bold=False)
    text("Traceability ticket")
    if copy:
        p.set(align="center", bold=True)
        text(COPY_MARK)
        p.set(bold=False)
    text("-" * profile.columns)
    p.set(align="left")
    for line in ticket_lines(ticket):
        text(line)
    p.set(align="center")
    if profile.qr == "native":
        p.qr(url, size=profile.qr_size, native=True)
        text("")
    else:
        p.qr(url, size=profile.qr_size, native=False, center=True)
    text("扫码查验真伪 Scan to verify")
    p.cut()
    out: bytes = p.output
    return out


class PrinterLink:
    """Sends a job over the configured connection (python-escpos printer classes)."""

    def __init__(self, settings: PrinterSettings, profile: PrinterProfile) -> None:
        self.settings = settings
        self.profile = profile
        self.sent: list[bytes] = []  # the dummy connection's record

    def _open(self) -> Any:
        kind, _, rest = self.settings.connection.partition(":")
        t = self.settings.timeout_s
        if kind == "network":
            from escpos.printer import Network

            host, _, port = rest.partition(":")
            return Network(host=host, port=int(port or 9100), timeout=t)
        if kind == "serial":
            from escpos.printer import Serial

            dev, _, baud = rest.partition(":")
            return Serial(devfile=dev, baudrate=int(baud or 9600), timeout=t)
        if kind == "usb":
            try:
                from escpos.printer import Usb
            except ImportError as exc:  # pragma: no cover - needs pyusb
                raise PrinterError(f"USB printing needs pyusb: {exc}") from None
            vid, _, pid = rest.partition(":")
            return Usb(int(vid, 16), int(pid, 16), timeout=int(t * 1000))
        if kind == "file":
            from escpos.printer import File

            return File(devfile=rest)
        raise PrinterError(f"unknown printer connection {self.settings.connection!r}")

    @property
    def answers_status(self) -> bool:
        kind = self.settings.connection.partition(":")[0]
        return self.profile.status and kind in ("network", "serial", "usb")

    def send(self, job: bytes) -> None:
        """Hand the whole job to the printer, or raise :class:`PrinterError`."""
        if self.settings.connection == "dummy":
            self.sent.append(job)
            return
        try:
            p = self._open()
            p.open()
        except PrinterError:
            raise
        except Exception as exc:
            raise PrinterError(f"printer offline: {exc}") from None
        try:
            if self.answers_status:
                paper = self._status(p, DLE_EOT_PAPER)
                if paper & PAPER_END == PAPER_END:
                    raise PrinterError("out of paper")
        except PrinterError:
            self._close(p)
            raise
        except Exception as exc:
            self._close(p)
            raise PrinterError(f"printer failed before the job: {exc}") from None
        try:  # from the first byte of the job on, the ticket may be on paper
            p._raw(job)
            if self.answers_status:
                self._status(p, DLE_EOT_PRINTER)  # answered after the job: it has all of it
        except Exception as exc:
            raise PrintOutcomeUnknown(f"printer failed mid-job: {exc}") from None
        finally:
            self._close(p)

    @staticmethod
    def _close(p: Any) -> None:
        try:
            p.close()
        except Exception:
            log.debug("closing printer", exc_info=True)

    @staticmethod
    def _status(p: Any, request: bytes) -> int:
        p._raw(request)
        reply = p._read()
        if not reply:
            raise PrinterError("printer did not answer a status request")
        return int(reply[-1])


class PrintWorker(Worker):
    """Prints pending tickets in order; on failure keeps them and retries with backoff."""

    def __init__(self, book: Any, link: PrinterLink, on_fault: Any = None) -> None:
        self.book, self.link, self.on_fault = book, link, on_fault
        self.counters = {"printer_jobs": 0, "printer_failures": 0}
        self.fault: str | None = None
        self._printed_unsaved: set[str] = set()  # printed; the book refused the mark so far
        self._tried: set[str] = set()  # sent once; the book refused to record the attempt
        self._wake = threading.Event()
        super().__init__("shian-printer", join_s=10)

    def stop(self) -> None:
        self._wake.set()
        super().stop()

    def wake(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        from shared.mqtt import Backoff

        backoff = Backoff(0.5, 30.0)
        while not self._stop.is_set():
            self.alive_at = time.monotonic()
            failed = self.print_pending()
            # idle: look again every 2 s for tickets queued by another process (reprint)
            delay = backoff.next_delay() if failed else 2.0
            if not failed:
                backoff.reset()
            self._wake.wait(delay)
            self._wake.clear()

    def print_pending(self) -> bool:
        """Try every pending ticket once; True when one failed (the rest wait behind it)."""
        try:
            return self._print_pending()
        except sqlite3.Error as exc:  # the box database refuses (a full disk): try later
            log.error("printer: the ticket book cannot be written (%s); tickets wait", exc)
            return True

    def _save_printed(self) -> None:
        """Marks the ticket book refused: written now, or this raises and they wait."""
        for ticket_id in sorted(self._printed_unsaved):
            self.book.mark_printed(ticket_id)
            self._printed_unsaved.discard(ticket_id)

    def _print_pending(self) -> bool:
        self._save_printed()
        for ticket, copy in self.book.pending_jobs():
            if self._stop.is_set():
                return False
            tid = ticket["ticket_id"]
            copy = copy or tid in self._tried  # the attempt could not be written
            job = render(ticket, self.book.url(ticket), self.link.profile, copy=copy)
            try:
                self.book.mark_attempt(tid)
            except sqlite3.Error as exc:  # print all the same (the sale waits otherwise),
                log.warning("printer: cannot record the attempt (%s)", exc)
                self._tried.add(tid)  # and remember it here
            try:
                self.link.send(job)
            except PrinterError as exc:
                self.counters["printer_failures"] += 1
                unknown = isinstance(exc, PrintOutcomeUnknown)
                if not unknown:
                    self._tried.discard(tid)  # it never reached the paper
                self.book.mark_failed(tid, str(exc), copy=copy or unknown)
                if self.fault is None:
                    log.warning("printer: %s; tickets wait", exc)
                    if self.on_fault:
                        self.on_fault("lost", str(exc), len(self.book.pending()))
                self.fault = str(exc)
                return True
            self.counters["printer_jobs"] += 1
            self._printed_unsaved.add(tid)  # on paper: never sent again, whatever the disk says
            self._save_printed()
            if self.fault is not None:
                log.info("printer is back")
                if self.on_fault:
                    self.on_fault("recovered", self.fault, len(self.book.pending()))
                self.fault = None
        return False
