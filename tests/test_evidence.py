"""Evidence belongs to its box, must be a picture, and is kept within quotas and an age, the
oldest first and never the evidence of an alert still open."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image

from cloud.alerts.engine import AlertEngine
from cloud.batch import Snapshot
from cloud.collector import Incoming, classify
from cloud.config import AlertSettings, EvidenceSettings
from cloud.store import Store
from shared.codec import CodecError, batch_payload, check_snapshot
from shared.ids import uuid7
from tests.conftest import register
from tests.test_alerts_engine import ev, violation

T0 = 1_800_000_000.0


def jpeg(size: int = 32, seed: int = 0) -> bytes:
    buf = io.BytesIO()
    Image.effect_noise((size, size), 40 + seed).convert("RGB").save(buf, "JPEG", quality=95)
    return buf.getvalue()


def test_a_snapshot_must_decode_as_a_picture() -> None:
    sid = str(uuid7())
    check_snapshot(sid, jpeg())
    for bad in (
        b"\xff\xd8\xff\xe0" + b"\x00" * 100,  # starts like a JPEG, is none
        jpeg()[:200],  # cut short
        b"\xff\xd8\xff" + b"<script>",
    ):
        with pytest.raises(CodecError, match="schema"):
            check_snapshot(sid, bad)
    buf = io.BytesIO()
    Image.new("L", (5000, 4000)).save(buf, "JPEG")
    with pytest.raises(CodecError, match="too large"):
        check_snapshot(sid, buf.getvalue())


def test_another_box_cannot_replace_a_snapshot(store_target: str | Path, tmp_path: Path) -> None:
    store = Store(store_target, tmp_path / "snaps")
    register(store, "k1", "s1")
    register(store, "k2", "s2")
    sid, mine, theirs = str(uuid7()), jpeg(seed=1), jpeg(seed=2)
    res = store.write([], [], [], [Snapshot("k1", sid, mine)])
    assert [s.id for s in res.snapshots] == [sid]
    res = store.write([], [], [], [Snapshot("k2", sid, theirs)])
    assert res.snapshots == [] and res.deadletters == 1
    assert store.dead.list()[0]["reason"].startswith("snapshot_conflict")
    again = store.write([], [], [], [Snapshot("k1", sid, theirs)])  # its own id again
    assert [s.id for s in again.snapshots] == [sid], "a resend is confirmed"
    row = store.evidence.get(sid)
    assert row["device"] == "k1" and Path(row["path"]).read_bytes() == mine


def snap_rows(store: Store) -> set[str]:
    return {r["id"] for r in store.db.query("SELECT id FROM snapshots")}


def test_quotas_delete_the_oldest_never_an_open_alerts(
    store_target: str | Path, tmp_path: Path
) -> None:
    pics = [jpeg(64, seed=n) for n in range(6)]
    size = max(len(p) for p in pics)
    limits = EvidenceSettings(max_mb_per_device=3.5 * size / 1e6, keep_days=30)
    engine = AlertEngine(AlertSettings(), "http://web")
    store = Store(store_target, tmp_path / "snaps", engine=engine, retention=limits)
    register(store, "k1", "s1")
    ids = [str(uuid7()) for _ in pics]
    for n, (sid, pic) in enumerate(zip(ids, pics, strict=True)):
        store.write([], [], [], [Snapshot("k1", sid, pic)], received=T0 + n)
    # the oldest is the evidence of an open alert
    v = violation()
    v["snapshot"] = ids[0]
    msgs = [Incoming(None, 1, 1, "shian/v1/dev/k1/events", batch_payload([ev("violation", v, 1)]))]
    store.write(*classify(msgs), received=T0 + 10)
    files = {sid: Path(store.evidence.get(sid)["path"]) for sid in ids}
    assert store.evidence.prune(T0 + 20) == 3
    kept = snap_rows(store)
    assert kept == {ids[0], ids[4], ids[5]}, "oldest first, the open alert's kept"
    assert all(files[s].exists() == (s in kept) for s in ids)
    (alert,) = store.alerts.list()
    store.in_transaction(lambda c: engine.act(c, T0 + 30, alert["id"], "close", "supervisor:w"))
    late = str(uuid7())
    store.write([], [], [], [Snapshot("k1", late, jpeg(64, seed=9))], received=T0 + 35)
    assert store.evidence.prune(T0 + 40) == 1 and snap_rows(store) == {ids[4], ids[5], late}
    assert store.evidence.prune(T0 + 31 * 86400) == 3, "past keep_days"


def test_the_total_quota_spans_boxes(tmp_path: Path) -> None:
    pics = [jpeg(64, seed=n) for n in range(4)]
    size = max(len(p) for p in pics)
    store = Store(
        tmp_path / "c.db",
        tmp_path / "snaps",
        retention=EvidenceSettings(max_gb_total=2.5 * size / 1e9),
    )
    for d in ("k1", "k2"):
        register(store, d, f"site-{d}")
    for n, pic in enumerate(pics):
        store.write([], [], [], [Snapshot(f"k{n % 2 + 1}", str(uuid7()), pic)], received=T0 + n)
    assert store.evidence.prune(T0 + 10) == 2
    left = store.db.query("SELECT received FROM snapshots ORDER BY received")
    assert [r["received"] for r in left] == [T0 + 2, T0 + 3]


def test_dead_letters_are_bounded(tmp_path: Path) -> None:
    from cloud.batch import DeadLetter

    store = Store(tmp_path / "c.db", retention=EvidenceSettings(deadletters_max=100))
    for n in range(150):
        store.write([], [], [DeadLetter("t", json.dumps({"n": n}).encode(), "schema: x")])
    store.write([], [], [DeadLetter("t", b'{"n": 149}', "schema: x")])  # a repeat
    assert store.dead.prune() == 50
    rows = store.dead.list(1000)
    assert len(rows) == 100 and max(r["repeats"] for r in rows) == 1
