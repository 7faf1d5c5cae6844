"""The stall's command lines: scale decode and watch, catalog, tickets, printer test, and the
vendor's terminal (``shian-edge stall``) selling against a pseudo-terminal scale."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from edge.cli import main
from edge.stall.virtual import VirtualScale, made_up_frames
from tests.conftest import stall_section, write_toml
from tests.support.escpos_decode import decode
from tests.test_scale_profiles import CAPTURES
from tests.test_tickets_printing import CSV

pytestmark = pytest.mark.real


@pytest.fixture
def stall_conf(tmp_path: Path) -> Path:
    return write_toml(
        tmp_path / "edge.toml",
        {
            "device": "stall-7",
            "site": "m1",
            "data_dir": str(tmp_path / "data"),
            "mqtt": {"url": "mqtt://127.0.0.1:9", "backoff_initial_s": 5},  # no broker: offline
            "stall": stall_section(tmp_path),
            "display": {"port": 0},
            "stall.scale": {"port": str(tmp_path / "ttyScale"), "profile": "ad_st_gs"},
            "stall.printer": {"connection": f"file:{tmp_path / 'printer.bin'}"},
        },
    )


def test_decode_from_stdin_prints_json_lines() -> None:
    frames = b"ST,GS,+0012.34kg\r\nUS,GS,+0012.00kg\r\ngarbage\r\n"
    r = CliRunner().invoke(main, ["scale", "decode", "--profile", "ad_st_gs", "-"], input=frames)
    lines = [json.loads(x) for x in r.output.splitlines()]
    assert lines[0]["grams"] == 12340.0 and lines[0]["stable"] is True
    assert lines[1]["stable"] is False
    assert "error" in lines[2] and lines[2]["raw"] == "garbage\r\n"
    r = CliRunner().invoke(main, ["scale", "decode", "--profile", "nope", "-"], input=b"")
    assert r.exit_code == 2 and "known:" in r.output


@pytest.mark.skipif(not CAPTURES.exists(), reason="shared test data missing")
def test_decode_a_real_capture_file() -> None:
    r = CliRunner().invoke(
        main, ["scale", "decode", "--profile", "qhw_st_gs", str(CAPTURES / "qhw_st_gs_grams.bin")]
    )
    grams = {json.loads(x).get("grams") for x in r.output.splitlines()}
    assert 245.6 in grams


def test_watch_shows_the_live_weight(stall_conf: Path, tmp_path: Path) -> None:
    data, end = made_up_frames(500.0)
    vs = VirtualScale(tmp_path / "ttyScale", data, end, rate_hz=50).start()
    try:
        r = CliRunner().invoke(
            main, ["scale", "watch", "--config", str(stall_conf), "--seconds", "1.5"]
        )
    finally:
        vs.stop()
    assert "stable" in r.output and "500.0 g" in r.output
    assert json.loads(r.output.splitlines()[-1])["scale_frames"] > 5


def test_catalog_tickets_and_the_vendors_terminal(stall_conf: Path, tmp_path: Path) -> None:
    run = CliRunner().invoke
    (tmp_path / "p.csv").write_text(CSV, encoding="utf-8")
    r = run(main, ["catalog", "import", str(tmp_path / "p.csv"), "--config", str(stall_conf)])
    assert r.exit_code == 0 and "2 products" in r.output
    (tmp_path / "bad.csv").write_text("plu,name\n", encoding="utf-8")
    r = run(main, ["catalog", "import", str(tmp_path / "bad.csv"), "--config", str(stall_conf)])
    assert r.exit_code == 1 and "missing column" in r.output
    r = run(main, ["catalog", "list", "--json", "--config", str(stall_conf)])
    assert [p["plu"] for p in json.loads(r.output)] == ["101", "201"]

    data, end = made_up_frames(2000.0)
    vs = VirtualScale(tmp_path / "ttyScale", data, end, rate_hz=50).start()
    try:
        script = "101\np\nq\n"  # print waits for the scale to settle
        r = run(main, ["stall", "--config", str(stall_conf)], input=script)
    finally:
        vs.stop()
    assert "ticket " in r.output and "https://trace.example/t/" in r.output, r.output[-2000:]
    r = run(main, ["tickets", "list", "--json", "--config", str(stall_conf)])
    tickets = json.loads(r.output)
    assert tickets and all(t["quantity"] == 2000 for t in tickets)
    tid = tickets[0]["ticket_id"]
    assert run(main, ["tickets", "reprint", tid, "--config", str(stall_conf)]).exit_code == 0
    assert run(main, ["tickets", "reprint", "x" * 26, "--config", str(stall_conf)]).exit_code == 1


def test_printer_test_writes_a_ticket_to_a_file(tmp_path: Path) -> None:
    out = tmp_path / "t.bin"
    r = CliRunner().invoke(
        main, ["printer", "test", "--to", f"file:{out}", "--profile", "generic_80mm"]
    )
    assert r.exit_code == 0, r.output
    d = decode(out.read_bytes())
    assert "白菜" in d.text() and d.qr_native and d.cut
    r = CliRunner().invoke(main, ["printer", "test", "--to", "network:127.0.0.1:9"])
    assert r.exit_code == 1 and "printer offline" in r.output
