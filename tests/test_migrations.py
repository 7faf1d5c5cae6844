"""Schema migrations on both backends; a database from before migrations is adopted."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from cloud.collector import classify
from cloud.config import CloudConfig, StoreSettings
from cloud.db import open_database, redact
from cloud.db.migrations import BASE, MIGRATIONS, migrate, statements, version
from cloud.store import Store
from shared.codec import batch_payload
from tests.conftest import register
from tests.test_codec import event
from tests.test_store import msgs


def test_each_step_runs_once(store_target: str | Path) -> None:
    db = open_database(store_target)
    assert version(db) == MIGRATIONS[-1][0]
    assert migrate(db) == []
    rows = db.query("SELECT version FROM schema_migrations ORDER BY version")
    assert [r["version"] for r in rows] == [v for v, _, _ in MIGRATIONS]
    db.close()


def test_a_database_from_before_migrations_keeps_its_data(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:  # what a collector of the previous release made
        for stmt in statements(BASE):
            conn.execute(stmt)
        conn.execute("INSERT INTO sites VALUES ('s1', 'xianan', 'canteen', '')")
    store = Store(path)
    assert store.sites.table("sites")[0]["district"] == "xianan"
    assert version(store.db) == MIGRATIONS[-1][0]
    assert store.db.query("SELECT count(*) AS n FROM incident_devices")[0]["n"] == 0


def test_collectors_starting_together_migrate_once(postgres_url: str) -> None:
    errors: list[BaseException] = []

    def start() -> None:
        try:
            Store(postgres_url, Path("/nonexistent")).close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    store = Store(postgres_url, Path("/nonexistent"))
    n = store.db.query("SELECT count(*) AS n FROM schema_migrations")[0]["n"]
    assert n == len(MIGRATIONS)
    register(store)
    events, statuses, dead, _ = classify(msgs(batch_payload([event(1), event(2)])))
    assert store.write(events, statuses, dead).inserted == 2


def test_an_unreachable_postgresql_is_named_without_its_password() -> None:
    with pytest.raises(ConnectionError) as err:
        open_database("postgresql://shian:s3cret@127.0.0.1:1/shian")
    assert "127.0.0.1:1" in str(err.value) and "s3cret" not in str(err.value)
    assert redact("postgresql://u:p@h/db") == "postgresql://u:***@h/db"


def test_store_url_must_be_postgresql() -> None:
    assert StoreSettings(url="postgresql://u@h/db").target() == "postgresql://u@h/db"
    assert CloudConfig().store.target() == Path("/var/lib/shian-cloud/cloud.db")
    assert CloudConfig(data_dir=Path("/srv/c")).tickets.keys_dir == Path("/srv/c/keys")
    with pytest.raises(ValueError, match="absolute"):
        CloudConfig(data_dir=Path("here"))
    with pytest.raises(ValueError, match="url"):
        StoreSettings(url="mysql://u@h/db")
