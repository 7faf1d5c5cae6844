"""Patrols on both stores with a controlled clock: checklists as data, who gives patrols out
and who sees them, recording a visit, a failed item becoming a hazard whose rectification is
requested of the site's box, and that hazard closed round the alerts' loop."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from pydantic import ValidationError

from cloud.alerts.engine import AlertEngine
from cloud.alerts.tables import iso
from cloud.config import AlertSettings, CloudConfig
from cloud.console.accounts import Session
from cloud.patrol import checklists
from cloud.patrol.checklists import ChecklistError
from cloud.patrol.tasks import OPERATOR, PatrolError, Patrols
from cloud.store import Store
from tests.conftest import register
from tests.test_alerts_engine import T0, ev, feed, violation

DAY = 86400.0
WANG = Session("wang", "supervisor", "xianan", "t")
LI = Session("li", "supervisor", "chibi", "t")
CHEN = Session("chen", "leader", "city", "t")
ZHAO = Session("zhao", "inspector", "xianan", "t")
SUN = Session("sun", "inspector", "xianan", "t", firm="anjian")
QIAN = Session("qian", "inspector", "chibi", "t", firm="anjian")


def jpeg(w: int = 64, h: int = 48) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (w, h), (120, 160, 200)).save(out, "JPEG")
    return out.getvalue()


@pytest.fixture
def patrols(store_target: str | Path, tmp_path: Path) -> Patrols:
    s = Store(store_target, tmp_path / "snaps", engine=AlertEngine(AlertSettings(), "http://web"))
    s.sites.set("s1", "xianan", "实验小学食堂")
    s.sites.describe("s1", "school_canteen", None, T0)
    s.sites.set("s2", "chibi", "赤壁农贸市场 12 号")
    s.sites.describe("s2", "market_stall", None, T0)
    s.sites.set("s3", "xianan", "no kind yet")
    register(s, "k1", "s1", district="xianan")
    for who in (WANG, LI, CHEN, ZHAO, SUN, QIAN):
        s.sites.add_supervisor(who.name, who.district, who.role, who.firm)
    return Patrols(s, checklists.load())


def test_the_shipped_checklists_cover_every_kind_of_site() -> None:
    found = checklists.load()
    assert {"school_canteen", "restaurant", "market_stall"} <= set(found)
    for kind in ("school_canteen", "canteen", "restaurant", "market_stall"):
        c = checklists.for_kind(found, kind)
        assert c is not None and len(c.items) >= 5, kind
    assert checklists.for_kind(found, "school_canteen").item("samples") is not None  # type: ignore[union-attr]


def test_an_operators_checklist_replaces_a_shipped_one_and_a_bad_one_is_refused(
    tmp_path: Path,
) -> None:
    (tmp_path / "mine.toml").write_text(
        'id = "restaurant"\nzh = "夜市"\nen = "Night market"\nkinds = ["restaurant"]\n'
        '[[items]]\nid = "gas"\nzh = "燃气"\nen = "Gas"\nseverity = "critical"\ndue_h = 4\n',
        encoding="utf-8",
    )
    assert [i.id for i in checklists.load(tmp_path)["restaurant"].items] == ["gas"]
    (tmp_path / "mine.toml").write_text('id = "x"\nzh = "a"\nen = "a"\nkinds = []\nitems = []\n')
    with pytest.raises(ChecklistError, match=r"mine.toml: items"):
        checklists.load(tmp_path)
    with pytest.raises(ValidationError, match=r"mine.toml: items"):  # said when the config loads
        CloudConfig.model_validate({"data_dir": str(tmp_path), "console": {"checklists_dir": "."}})


@given(st.text(max_size=300))
def test_any_checklist_text_is_a_checklist_or_a_clear_error(text: str) -> None:
    try:
        checklists.parse(text, "fuzz.toml")
    except ChecklistError as exc:
        assert str(exc).startswith("fuzz.toml: ")


def test_who_gives_patrols_out_and_who_sees_them(patrols: Patrols) -> None:
    due = T0 + 3 * DAY
    mine = patrols.assign(WANG, "s1", due, T0, inspector="zhao")
    firms = patrols.assign(CHEN, "s2", due, T0, firm="anjian")
    assert patrols.task(ZHAO, mine)["checklist"] == "school_canteen"  # type: ignore[index]
    assert patrols.task(QIAN, firms)["checklist"] == "market_stall"  # type: ignore[index]
    refusals = [
        (lambda: patrols.assign(WANG, "s2", due, T0, inspector="zhao"), "no site 's2'"),
        (lambda: patrols.assign(ZHAO, "s1", due, T0, inspector="zhao"), "only a supervisor"),
        (lambda: patrols.assign(WANG, "s1", due, T0, inspector="zhao", firm="anjian"), "one"),
        (lambda: patrols.assign(WANG, "s1", due, T0, inspector="wang"), "no inspector 'wang'"),
        (lambda: patrols.assign(WANG, "s1", due, T0, firm="nobody"), "no service firm"),
        (lambda: patrols.assign(WANG, "s1", T0 - 1, T0, inspector="zhao"), "coming year"),
        (lambda: patrols.assign(WANG, "s3", due, T0, inspector="zhao"), "name one"),
        (lambda: patrols.assign(WANG, "s1", due, T0, inspector="zhao", checklist="x"), "no chec"),
    ]
    for attempt, why in refusals:
        with pytest.raises(PatrolError, match=why):
            attempt()
    assert patrols.assign(OPERATOR, "s3", due, T0, inspector="zhao", checklist="restaurant")
    seen = {who.name: {t["id"] for t in patrols.tasks(who)} for who in (ZHAO, SUN, QIAN, WANG, LI)}
    assert mine in seen["zhao"] and firms not in seen["zhao"]
    assert seen["sun"] == seen["qian"] == {firms}  # the firm's: any of its inspectors
    assert mine in seen["wang"] and firms not in seen["wang"] and seen["li"] == {firms}
    assert patrols.task(SUN, mine) is None and patrols.task(LI, mine) is None
    assert len(patrols.tasks(CHEN)) == 3


def test_a_failed_item_becomes_a_hazard_closed_round_the_loop(patrols: Patrols) -> None:
    store = patrols.store
    task = patrols.assign(WANG, "s1", T0 + DAY, T0, inspector="zhao")
    items = [i.id for i in patrols.checklists["school_canteen"].items]
    mine = store.evidence.add_photo(ZHAO.photo_owner, jpeg(), T0)
    theirs = store.evidence.add_photo(SUN.photo_owner, jpeg(), T0)
    with pytest.raises(PatrolError, match="not one of yours"):
        patrols.record(ZHAO, task, "pests", "fail", "droppings", theirs, T0)
    with pytest.raises(PatrolError, match="say what is wrong"):
        patrols.record(ZHAO, task, "pests", "fail", " ", "", T0)
    with pytest.raises(PatrolError, match="only the inspector"):
        patrols.record(WANG, task, "pests", "pass", "", "", T0)
    with pytest.raises(PatrolError, match="no such patrol"):
        patrols.record(SUN, task, "pests", "pass", "", "", T0)
    with pytest.raises(PatrolError, match="no such item"):
        patrols.record(ZHAO, task, "nothing", "pass", "", "", T0)
    patrols.record(ZHAO, task, "pests", "pass", "", "", T0)
    with pytest.raises(PatrolError, match=f"{len(items) - 1} item"):
        patrols.finish(ZHAO, task, T0)
    for item in items:
        patrols.record(ZHAO, task, item, "pass", "", "", T0 + 60)
    patrols.record(ZHAO, task, "pests", "fail", "鼠迹 droppings by the store", mine, T0 + 90, 48)
    hazards = patrols.finish(ZHAO, task, T0 + 120)
    assert len(hazards) == 1
    with pytest.raises(PatrolError, match="finished"):
        patrols.record(ZHAO, task, "pests", "pass", "", "", T0 + 130)
    a = store.alerts.get(hazards[0])
    assert a["type"] == "hazard" and a["state"] == "rectification_requested"
    assert a["severity"] == "critical" and a["due"] == iso(T0 + 120 + 48 * 3600)
    assert a["snapshot_url"] == f"http://web/snap/{mine}.jpg" and a["district"] == "xianan"
    notice = [json.loads(p) for _, t, p, _ in store.outgoing.pending(0, 1000)
              if t == f"shian/v1/dev/k1/cmd/notice/{a['id']}"]  # fmt: skip
    assert notice and notice[-1]["history"][-1]["photos"] == [f"http://web/snap/{mine}.jpg"]
    assert notice[-1]["history"][-1]["actor"] == "inspector:zhao"
    # the business answers from its box with a photo; the inspector verifies with one
    fixed = "0190a9e0-0000-7000-8000-00000000f1ed"
    feed(store, [ev("rectification", {"alert": a["id"], "note": "堵洞", "photo": fixed}, 5)],
         T0 + 3600)  # fmt: skip
    assert store.alerts.get(a["id"])["state"] == "rectified"
    check = store.evidence.add_photo(ZHAO.photo_owner, jpeg(), T0 + 7000)
    with pytest.raises(PatrolError, match="no such hazard"):
        patrols.act_on_hazard(ZHAO, task, "someone-else", "verify", "", "", T0 + 7200)
    with pytest.raises(PatrolError, match="a leader reads"):
        patrols.act_on_hazard(CHEN, task, a["id"], "verify", "", "", T0 + 7200)
    patrols.act_on_hazard(ZHAO, task, a["id"], "verify", "复查合格", check, T0 + 7200)
    t = patrols.task(WANG, task)
    assert t is not None and t["state"] == "done" and t["finished_by"] == "zhao"
    h = next(i["hazard"] for i in t["items"] if i["hazard"])
    assert h["state"] == "closed"
    steps = json.loads(h["history"])
    assert [s["state"] for s in steps] == [
        "open", "rectification_requested", "rectified", "closed"]  # fmt: skip
    assert steps[2]["photos"] == [fixed] and steps[3]["photos"] == [check]


def test_only_a_supervisor_commands_alerts_over_mqtt(patrols: Patrols) -> None:
    store = patrols.store
    engine = store.engine
    assert engine is not None
    feed(store, [ev("violation", violation("c", "rodent"), 1)])
    alert = store.alerts.list()[0]["id"]
    cmd = json.dumps({"v": 1, "id": "c1", "alert": alert, "action": "ack"}).encode()
    for who in ("zhao", "chen"):
        store.in_transaction(lambda conn, w=who: engine.command(conn, T0, w, cmd))
        replies = [json.loads(p) for _, t, p, _ in store.outgoing.pending(0, 1000)
                   if t == f"shian/v1/sup/{who}/reply"]  # fmt: skip
        assert not replies[-1]["ok"] and "only a supervisor acts" in replies[-1]["reason"]


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    item=st.text(max_size=80),
    result=st.text(max_size=10) | st.sampled_from(["pass", "fail"]),
    note=st.text(max_size=1200),
    photos=st.text(max_size=200),
    due_h=st.none() | st.floats(allow_nan=True, allow_infinity=True),
)
def test_any_item_form_is_recorded_or_refused_with_a_reason(
    patrols: Patrols, item: str, result: str, note: str, photos: str, due_h: float | None
) -> None:
    task = patrols.tasks(ZHAO)[0]["id"] if patrols.tasks(ZHAO) else patrols.assign(
        WANG, "s1", T0 + DAY, T0, inspector="zhao")  # fmt: skip
    try:
        patrols.record(ZHAO, task, item, result, note, photos, T0, due_h)
    except PatrolError as exc:
        assert str(exc)


def test_an_inspectors_broker_login_reads_no_alerts() -> None:
    from cloud.broker_files import acl_text
    from cloud.registry import Identity

    acl = acl_text("c", [], [Identity(name="zhao", kind="supervisor", district="xianan",
                                      role="inspector"),
                             Identity(name="wang", kind="supervisor", district="xianan",
                                      role="supervisor")])  # fmt: skip
    zhao = acl.split("user zhao\n")[1].split("\n\n")[0]
    assert "topic" not in zhao  # a login for /patrol only
    assert "topic read shian/v1/alerts/xianan/+" in acl.split("user wang\n")[1]


def test_the_checklists_are_listed_before_any_database_exists(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from cloud.cli import main

    conf = tmp_path / "cloud.toml"
    conf.write_text(f'data_dir = "{tmp_path / "fresh"}"\n', encoding="utf-8")
    got = CliRunner().invoke(main, ["patrols", "checklists", "--config", str(conf)])
    assert got.exit_code == 0, got.output
    assert all(f"{c}: " in got.output for c in ("school_canteen", "restaurant", "market_stall"))
