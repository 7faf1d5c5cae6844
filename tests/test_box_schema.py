"""The box database has one owner and numbered migrations (``edge.store.schema``): a database
the code made before versions existed (``tests/fixtures/box_db_0.sql``) is adopted whole."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from edge.store import schema
from edge.store.outbox import Outbox

FIXTURE = Path(__file__).parent / "fixtures" / "box_db_0.sql"


def old_box(tmp_path: Path) -> Path:
    path = tmp_path / "stall-7" / "outbox.db"
    path.parent.mkdir()
    conn = sqlite3.connect(path)
    conn.executescript(FIXTURE.read_text())
    conn.close()
    return path


def tables(path: Path) -> dict[str, list[str]]:
    conn = sqlite3.connect(path)
    names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    out = {n: [r[1] for r in conn.execute(f"PRAGMA table_info({n})")] for n in names}
    conn.close()
    return out


def test_a_database_from_before_versions_is_adopted_with_every_row(tmp_path: Path) -> None:
    path = old_box(tmp_path)
    before = tables(path)
    box = Outbox(path, "stall-7", "market-huaxin-07")
    assert schema.version(box.db.conn) == schema.LATEST
    assert [p.seq for p in box.pending(limit=100)] == list(range(11, 31))
    stats = box.stats()
    assert stats.depth == 20
    box.enqueue("test", {"note": "after the migration"})
    assert [p.seq for p in box.pending(limit=100)][-1] == 31  # the sequence goes on
    box.close()
    after = tables(path)
    assert {k: after[k] for k in before} == before  # nothing lost, nothing renamed
    added = {"updates", "sensor_readings", "stock", "sensor_state"}
    assert set(after) - set(before) == added  # what the later migrations add


def test_a_new_database_is_made_at_the_latest_version_and_matches_an_adopted_one(
    tmp_path: Path,
) -> None:
    Outbox(tmp_path / "new.db", "stall-7", "s").close()
    old = old_box(tmp_path)
    Outbox(old, "stall-7", "s").close()
    assert tables(tmp_path / "new.db") == tables(old)


def test_each_migration_runs_once_and_a_reopen_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    Outbox(path, "d", "s").close()
    conn = sqlite3.connect(path, isolation_level=None)
    assert schema.migrate(conn) == schema.LATEST
    conn.close()


def test_a_database_without_the_copy_column_gets_it(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    conn = sqlite3.connect(path, isolation_level=None)
    sql = FIXTURE.read_text().replace("\n, copy INTEGER NOT NULL DEFAULT 0)", ")")
    conn.executescript(sql.replace("NULL,0,NULL,0);", "NULL,0,NULL);"))
    assert "copy" not in tables(path)["tickets"]  # a box from before issue 13
    conn.close()
    Outbox(path, "d", "s").close()
    assert "copy" in tables(path)["tickets"]


def test_a_newer_schema_is_left_alone_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A release rolled back by an update meets the database its successor migrated."""
    path = tmp_path / "o.db"
    Outbox(path, "d", "s").close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(f"PRAGMA user_version = {schema.LATEST + 1}")
    conn.close()
    with caplog.at_level(logging.WARNING):
        box = Outbox(path, "d", "s")
    box.enqueue("test", {})
    assert schema.version(box.db.conn) == schema.LATEST + 1
    assert "newer than this release" in caplog.text
    box.close()


def test_a_failing_migration_leaves_the_version_before_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE half (x)")
        raise OSError("power cut")

    extra = schema.Migration(schema.LATEST + 1, "breaks", broken)
    monkeypatch.setattr(schema, "MIGRATIONS", [*schema.MIGRATIONS, extra])
    monkeypatch.setattr(schema, "LATEST", extra.version)
    with pytest.raises(OSError):
        Outbox(tmp_path / "o.db", "d", "s")
    conn = sqlite3.connect(tmp_path / "o.db")
    assert schema.version(conn) == extra.version - 1
    assert "half" not in tables(tmp_path / "o.db")
