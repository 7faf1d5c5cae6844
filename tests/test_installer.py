"""The installer's checks: named files, the box's clock against the collector's, the CA made
by ``broker certs``."""

from __future__ import annotations

import json
import queue
import time
from pathlib import Path

from click.testing import CliRunner
from cryptography import x509

from cloud.broker_certs import make_broker_certs
from edge.cli import main as edge_main
from edge.doctor import compare_clock
from tests.conftest import write_toml


def clock(ts: float) -> queue.SimpleQueue[tuple[object, ...]]:
    q: queue.SimpleQueue[tuple[object, ...]] = queue.SimpleQueue()
    q.put(("clock", json.dumps({"v": 1, "ts": ts}).encode(), time.time()))
    return q


def test_a_box_two_hours_off_fails_doctor_and_one_in_time_passes() -> None:
    assert compare_clock(clock(time.time() - 2.0)).ok
    ahead, behind = (
        compare_clock(clock(time.time() - 7200)),
        compare_clock(clock(time.time() + 7200)),
    )
    assert not ahead.ok and "7200 s ahead" in ahead.detail and "NTP" in ahead.hint
    assert not behind.ok and "behind" in behind.detail
    junk: queue.SimpleQueue[tuple[object, ...]] = queue.SimpleQueue()
    junk.put(("clock", b"\xff not json", time.time()))
    assert compare_clock(junk, wait_s=0.2).detail.startswith("no collector time heard")


def test_config_validate_names_a_missing_or_unreadable_file(tmp_path: Path) -> None:
    conf = write_toml(
        tmp_path / "edge.toml",
        {
            "device": "kitchen-1",
            "site": "canteen-001",
            "data_dir": str(tmp_path / "var"),
            "mqtt": {"url": "mqtts://127.0.0.1:8883", "ca_file": str(tmp_path / "ca.pem")},
        },
    )
    r = CliRunner().invoke(edge_main, ["config", "validate", "--config", str(conf)])
    assert r.exit_code == 2
    assert f"mqtt.ca_file: {tmp_path / 'ca.pem'} does not exist" in r.output
    r = CliRunner().invoke(edge_main, ["doctor", "--json", "--config", str(conf)])
    assert r.exit_code == 1, r.output  # failed checks, not a traceback
    checks = {c["name"]: c for c in json.loads(r.output[r.output.index("[") :])}
    assert not checks["files"]["ok"] and "ca.pem does not exist" in checks["files"]["detail"]
    assert not checks["broker"]["ok"]
    (tmp_path / "ca.pem").write_text("x")
    r = CliRunner().invoke(edge_main, ["config", "validate", "--config", str(conf)])
    assert r.exit_code == 0, r.output


def test_broker_certs_keep_the_ca_and_name_every_host(tmp_path: Path) -> None:
    first = make_broker_certs(tmp_path, ["broker.example.gov.cn", "10.0.0.5"])
    ca = first.ca.read_bytes()
    assert first.ca_key.stat().st_mode & 0o777 == 0o600
    assert first.server_key.stat().st_mode & 0o777 == 0o640
    again = make_broker_certs(tmp_path, ["broker.example.gov.cn", "10.0.0.6"])
    assert again.ca.read_bytes() == ca, "renewing the certificate keeps the CA boxes trust"
    cert = x509.load_pem_x509_certificate(again.server_cert.read_bytes())
    alt = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert alt.get_values_for_type(x509.DNSName) == ["broker.example.gov.cn"]
    assert [str(a) for a in alt.get_values_for_type(x509.IPAddress)] == ["10.0.0.6"]
    issuer = x509.load_pem_x509_certificate(ca)
    cert.verify_directly_issued_by(issuer)
