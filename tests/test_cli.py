"""The command lines over a real outbox and store (no broker needed)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.alerts.sites import SiteError, parse_sites
from cloud.cli import main as cloud_main
from cloud.collector import Incoming, classify
from cloud.store import Store
from edge.cli import main as edge_main
from shared import topics
from shared.codec import batch_payload
from tests.conftest import register
from tests.test_codec import event


def edge_conf(tmp_path: Path) -> Path:
    p = tmp_path / "edge.toml"
    p.write_text(f'device = "kitchen-1"\nsite = "c1"\ndata_dir = "{tmp_path / "data"}"\n')
    return p


def test_emit_then_outbox_status(tmp_path: Path) -> None:
    conf = edge_conf(tmp_path)
    r = CliRunner().invoke(
        edge_main, ["emit", "test", "--data", '{"note": "hi"}', "--config", str(conf)]
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["seq"] == 1
    r = CliRunner().invoke(edge_main, ["outbox", "status", "--json", "--config", str(conf)])
    out = json.loads(r.output)
    assert out["outbox"]["depth"] == 1 and out["recent"][0]["data"] == {"note": "hi"}
    r = CliRunner().invoke(edge_main, ["outbox", "status", "--config", str(conf)])
    assert "depth: 1" in r.output and "pending" in r.output


def test_emit_refuses_bad_input_clearly(tmp_path: Path) -> None:
    conf = edge_conf(tmp_path)
    r = CliRunner().invoke(edge_main, ["emit", "test", "--data", "{nope", "--config", str(conf)])
    assert r.exit_code == 2 and "not JSON" in r.output
    r = CliRunner().invoke(
        edge_main, ["emit", "test", "--data", '{"n": "x"}', "--config", str(conf)]
    )
    assert r.exit_code == 1 and "bad data for kind 'test'" in r.output
    r = CliRunner().invoke(edge_main, ["emit", "rat", "--config", str(conf)])
    assert r.exit_code == 2 and "Invalid value" in r.output


def test_cloud_lists(tmp_path: Path) -> None:
    db = tmp_path / "cloud.db"
    conf = tmp_path / "cloud.toml"
    conf.write_text(f'[store]\npath = "{db}"\n')
    store = Store(db)
    register(store)
    msgs = [
        Incoming(None, 1, 1, "shian/v1/dev/d1/events", batch_payload([event(1), event(3)])),
        Incoming(None, 2, 1, "shian/v1/dev/d1/events", b"garbage\xff"),
    ]
    store.write(*classify(msgs))
    store.close()
    run = CliRunner().invoke
    r = run(cloud_main, ["events", "list", "--json", "--config", str(conf)])
    assert [e["seq"] for e in json.loads(r.output)] == [3, 1]
    r = run(cloud_main, ["devices", "list", "--json", "--config", str(conf)])
    (dev,) = json.loads(r.output)
    assert dev["gaps"] == [[2, 2]] and dev["missing"] == 1 and dev["events"] == 2
    r = run(cloud_main, ["deadletters", "list", "--json", "--config", str(conf)])
    (dead,) = json.loads(r.output)
    assert dead["reason"].startswith("not_json") and "payload_base64" in dead
    r = run(cloud_main, ["devices", "list", "--config", str(conf)])
    assert "d1" in r.output and "missing" in r.output


def test_cloud_lists_without_a_database_say_so(tmp_path: Path) -> None:
    conf = tmp_path / "cloud.toml"
    conf.write_text(f'[store]\npath = "{tmp_path / "none.db"}"\n')
    r = CliRunner().invoke(cloud_main, ["events", "list", "--config", str(conf)])
    assert r.exit_code == 1 and "no database" in r.output


def test_run_refuses_a_stall_without_its_key(tmp_path: Path) -> None:
    conf = tmp_path / "edge.toml"
    conf.write_text(
        f'device = "s1"\nsite = "m"\ndata_dir = "{tmp_path}"\n[stall]\nmarket = "m"\n'
        f'stall_no = "1"\nretailer = "r"\nticket_base_url = "https://t"\n'
        f'ticket_key_file = "{tmp_path / "missing.key"}"\n'
    )
    r = CliRunner().invoke(edge_main, ["run", "--config", str(conf)])
    assert r.exit_code == 2 and "missing.key" in r.output


def test_sites_import_registers_a_city_or_names_the_bad_row(tmp_path: Path) -> None:
    conf = tmp_path / "cloud.toml"
    conf.write_text(f'[store]\npath = "{tmp_path / "cloud.db"}"\n')
    good = tmp_path / "sites.csv"
    rows = [f"market-{n:04d},district-{n % 7},菜场 {n}," for n in range(1500)]
    good.write_text("site,district,name,morning_check_by\n" + "\n".join(rows) + "\n")
    r = CliRunner().invoke(cloud_main, ["sites", "import", str(good), "--config", str(conf)])
    assert r.exit_code == 0, r.output
    assert "1500 sites registered in 7 district(s)" in r.output
    bad = tmp_path / "bad.csv"
    bad.write_text("site,district,morning_check_by\nnew-site,chibi,\nx/y,chibi,\n")
    r = CliRunner().invoke(cloud_main, ["sites", "import", str(bad), "--config", str(conf)])
    assert r.exit_code == 1 and "row 3" in r.output and "x/y" in r.output
    late = tmp_path / "late.csv"
    late.write_text("site,district,morning_check_by\nk1,chibi,25:00\n")
    r = CliRunner().invoke(cloud_main, ["sites", "import", str(late), "--config", str(conf)])
    assert r.exit_code == 1 and "row 2: morning_check_by '25:00'" in r.output
    sites = Store(tmp_path / "cloud.db").sites.table("sites")
    assert len(sites) == 1500 and "new-site" not in {s["site"] for s in sites}


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_any_sites_csv_is_parsed_or_refused_with_a_reason(text: str) -> None:
    try:
        rows = parse_sites("site,district,name,morning_check_by\n" + text)
    except SiteError as exc:
        assert str(exc)
    else:
        for site, district, _, _ in rows:
            assert topics.alerts(district, site)  # both usable in a topic
