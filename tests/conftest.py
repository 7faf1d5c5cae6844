from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from cloud.config import CloudConfig
from edge.config import EdgeConfig
from shared.signing import new_key, write_key
from tests.support.mosquitto import Mosquitto, find_mosquitto
from tests.support.postgres import Postgres, find_bindir

ROOT = Path(__file__).resolve().parent.parent


def wait_for(check: Callable[[], Any], timeout: float = 30, what: str = "condition") -> Any:
    """Poll ``check`` until it returns something truthy; fail with ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    if find_mosquitto() is None:
        _missing("mosquitto")
    broker = Mosquitto(tmp_path / "mosquitto").start()
    yield broker
    broker.stop()


def _missing(what: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{what} is not installed; `make test` installs it")
    pytest.skip(f"{what} is not installed; `make test` installs it")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Postgres]:
    """One PostgreSQL server of the tests' own for the session (a fresh cluster, free port)."""
    if find_bindir() is None:
        _missing("the PostgreSQL server")
    server = Postgres().start()
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server: Postgres) -> str:
    """A fresh, empty database on the tests' PostgreSQL server."""
    return postgres_server.new_database()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_target(request: pytest.FixtureRequest, tmp_path: Path) -> str | Path:
    """The collector store on each backend: an SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        return tmp_path / "c.db"
    url: str = request.getfixturevalue("postgres_url")
    return url


def register(
    store: Any,
    device: str = "d1",
    site: str = "s1",
    role: str = "kitchen",
    district: str = "default",
    **stall: str,
) -> None:
    """Put a box in the store's registry, as ``shian-cloud devices add`` does: the collector
    stores only what registered boxes send about their own site."""
    from cloud.registry import Identity

    if role == "stall":
        stall = {"market": site, "stall_no": device, "retailer": "-", **stall}
    store.registry.put(
        Identity(name=device, kind="device", role=role, site=site, district=district, **stall)
    )


@contextmanager
def running_cloud(
    cfg: CloudConfig, device: str = "kitchen-1", site: str = "canteen-001"
) -> Iterator[Any]:
    """A collector service on ``cfg`` with one box registered, connected to its broker."""
    from cloud.service import CloudService

    service = CloudService(cfg)
    register(service.store, device, site)
    service.start()
    assert service.collector.connected.wait(10)
    try:
        yield service
    finally:
        service.stop()


def edge_config(
    tmp_path: Path, url: str, device: str = "kitchen-1", site: str = "canteen-001", **extra: Any
) -> EdgeConfig:
    raw: dict[str, Any] = {
        "device": device,
        "site": site,
        "data_dir": str(tmp_path / device),
        "mqtt": {
            "url": url,
            "backoff_initial_s": 0.05,
            "backoff_max_s": 0.5,
            "connect_timeout_s": 5,
        },
        "sync": {"heartbeat_s": 2, "confirm_timeout_s": 2, "poll_interval_s": 0.05},
        "display": {"port": 0},  # a test that wants the screens gives a free port
    }
    for section, values in extra.items():
        if isinstance(values, dict):
            raw.setdefault(section, {}).update(values)
        else:
            raw[section] = values
    return EdgeConfig.model_validate(raw)


def stall_section(
    tmp_path: Path,
    key: bytes | None = None,
    base_url: str = "https://trace.example",
    **devices: Any,
) -> dict[str, Any]:
    """A stall's config section, its ticket key written to ``tmp_path/ticket.key``; ``devices``
    adds ``scale=`` and ``printer=`` tables."""
    write_key(tmp_path / "ticket.key", key if key is not None else new_key())
    return {
        "market": "华信农贸市场",
        "stall_no": "A-07",
        "retailer": "李四",
        "ticket_base_url": base_url,
        "ticket_key_file": str(tmp_path / "ticket.key"),
        **devices,
    }


def cloud_config(tmp_path: Path, url: str, web_port: int = 0, **collector: Any) -> CloudConfig:
    return CloudConfig.model_validate(
        {
            "mqtt": {
                "url": url,
                "client_id": "collector-test",
                "backoff_initial_s": 0.05,
                "backoff_max_s": 0.5,
            },
            "collector": collector,
            "data_dir": str(tmp_path),
            "store": {"path": str(tmp_path / "cloud.db")},
            "web": {"port": web_port},
            "tickets": {"keys_dir": str(tmp_path / "keys")},
        }
    )


def write_toml(path: Path, data: dict[str, Any]) -> Path:
    """A tiny TOML writer for test configs (strings, numbers, booleans, one level of tables)."""

    def val(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            return repr(v)
        if isinstance(v, list):
            return "[" + ", ".join(val(x) for x in v) + "]"
        return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = [f"{k} = {val(v)}" for k, v in data.items() if not isinstance(v, dict)]
    for k, v in data.items():
        if isinstance(v, dict):
            lines.append(f"\n[{k}]")
            lines += [f"{kk} = {val(vv)}" for kk, vv in v.items() if vv is not None]
    path.write_text("\n".join(lines) + "\n")
    return path


def spawn(module: str, *args: str, log: Path) -> subprocess.Popen[bytes]:
    """Run ``python -m module args`` as a real process, output to ``log``."""
    fh = log.open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", module, *args],
        stdout=fh,
        stderr=fh,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


ARTIFACTS = ROOT / "artifacts"


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's headless Chromium driven by Playwright (never a downloaded browser)."""
    from shared.browser import CHROMIUM_ARGS, chromium

    exe = chromium()
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; `make test` installs it")
        pytest.skip("chromium is not installed; `make test` installs it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        yield b
        b.close()
