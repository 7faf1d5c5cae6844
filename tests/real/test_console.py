"""The supervisors' console in Debian's headless Chromium and by direct requests: log in
with the supervisor's own broker login, a new alert appears live, the whole loop worked from
the page (and the box's notice queued), a district's supervisor cannot see or act on another
district, CSRF, lockout and session expiry, the CSV export read back."""

from __future__ import annotations

import csv
import http.cookiejar
import io
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from cloud.alerts.engine import AlertEngine
from cloud.broker_files import BrokerFiles
from cloud.config import AlertSettings, ConsoleSettings
from cloud.console.accounts import Accounts
from cloud.store import Store
from cloud.web import make_app
from shared.webserver import WebServer
from tests.conftest import ARTIFACTS, ROOT, register
from tests.test_alerts_engine import ev, feed, violation

pytestmark = pytest.mark.real
PASSWORDS = {"wang": "wang-Pa55-word", "li": "li-Pa55-word", "chen": "chen-Pa55-word"}


@dataclass
class Console:
    store: Store
    web: WebServer
    accounts: Accounts
    web_dir: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web.port}/console"

    def alert_of(self, site: str) -> dict[str, Any]:
        return next(a for a in self.store.alerts.list() if a["site"] == site)


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Console]:
    store = Store(tmp_path / "c.db", tmp_path / "snaps", engine=AlertEngine(AlertSettings()))
    store.sites.set("s1", "xianan", "实验小学食堂")
    store.sites.set("s2", "chibi", "赤壁一中食堂")
    register(store, "k1", "s1", district="xianan")
    register(store, "k2", "s2", district="chibi")
    store.sites.add_supervisor("wang", "xianan")
    store.sites.add_supervisor("li", "chibi")
    store.sites.add_supervisor("chen", "city", role="leader")
    BrokerFiles(tmp_path / "broker").set_passwords(PASSWORDS)  # their broker logins
    accounts = Accounts(store.db, ConsoleSettings(max_failures=3), tmp_path / "broker")
    feed(store, [ev("violation", violation("cam1", "rodent"), 1, "k1", "s1")], device="k1")
    feed(store, [ev("violation", violation("cam2", "smoking"), 1, "k2", "s2")], device="k2")
    assets = _assets()
    app = make_app(store, tmp_path / "keys", console=accounts, assets=assets)
    web = WebServer(app, "127.0.0.1", 0)
    web.start()
    yield Console(store, web, accounts, tmp_path)
    web.stop()
    store.close()


def _assets() -> Path | None:
    """The browser libraries (uPlot for the plots), from npm; None when it cannot be reached."""
    from cloud.webassets import install
    from shared.fetch import FetchError

    try:
        install(ROOT / ".cache" / "web-assets")
    except (FetchError, OSError):
        return None
    return ROOT / ".cache" / "web-assets"


class Client:
    """A browser without a browser: cookies kept, forms posted with the page's CSRF token."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        self.csrf = ""

    def request(self, path: str, form: dict[str, str] | None = None) -> tuple[int, str]:
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        req = urllib.request.Request(self.base + path, data=data)
        try:
            with self.opener.open(req, timeout=10) as r:
                status, body = r.status, r.read().decode()
        except urllib.error.HTTPError as exc:
            status, body = exc.code, exc.read().decode()
        if m := re.search(r"name='csrf' value='([^']+)'", body):
            self.csrf = m.group(1)
        return status, body

    def login(self, name: str) -> None:
        status, body = self.request("/console/login", {"name": name, "password": PASSWORDS[name]})
        assert status == 200 and "/console/logout" in body, body[:300]


def test_the_loop_worked_from_the_page_with_a_live_list(console: Console, browser: Any) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        page.goto(console.url)
        assert page.url.endswith("/console/login")
        page.fill("input[name=name]", "wang")
        page.fill("input[name=password]", "wrong")
        page.click("form button")
        assert "用户名或密码错误" in page.inner_text("#error")
        page.fill("input[name=name]", "wang")
        page.fill("input[name=password]", PASSWORDS["wang"])
        page.click("form button")
        page.wait_for_selector("#alerts tr[data-id]")
        text = page.inner_text("#alerts")
        assert "s1" in text and "鼠患" in text and "s2" not in text  # xianan only
        feed(console.store, [ev("violation", violation("cam3", "no_mask"), 2, "k1", "s1")],
             device="k1")  # fmt: skip
        page.wait_for_function(  # no reload: the stream says a change came
            "document.getElementById('alerts').innerText.includes('未戴口罩')", timeout=10_000
        )
        alert = console.alert_of("s1")
        page.goto(f"{console.url}/alerts/{alert['id']}")
        page.click("form[data-action=ack] button")
        assert "受理" in page.inner_text("#message")
        page.fill("form[data-action=request_rectification] input[name=note]", "封堵鼠洞")
        page.fill("form[data-action=request_rectification] input[name=due_h]", "48")
        page.click("form[data-action=request_rectification] button")
        assert "整改中" in page.inner_text("#state")
        notices = [t for _, t, _, _ in console.store.outgoing.pending(0, 1000)
                   if t == f"shian/v1/dev/k1/cmd/notice/{alert['id']}"]  # fmt: skip
        assert notices, "the box's rectification notice is queued"
        rect = {"alert": alert["id"], "note": "已封堵"}
        feed(console.store, [ev("rectification", rect, 3, "k1", "s1")], device="k1")
        page.reload()
        assert "已整改" in page.inner_text("#state")
        page.fill("form[data-action=verify] input[name=note]", "复查合格")
        shot = console.web_dir / "checked.jpg"
        Image.new("RGB", (2400, 1800), (90, 140, 90)).save(shot, "JPEG")
        page.set_input_files("form[data-action=verify] input[type=file]", str(shot))
        page.wait_for_selector("form[data-action=verify] .thumbs img")  # resized, sent
        page.click("form[data-action=verify] button")
        assert "已闭环" in page.inner_text("#state")
        assert page.locator("ol.timeline li:last-child .thumbs img").count() == 1
        timeline = page.inner_text("ol.timeline")
        for step in ("supervisor:wang", "device:k1", "封堵鼠洞", "复查合格"):
            assert step in timeline
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "console-alert.png"), full_page=True)
    finally:
        page.close()
    actions = [r["action"] for r in console.accounts.audit_log()]
    assert {"login_failed", "login", "ack", "request_rectification", "verify"} <= set(actions)


def test_a_supervisor_cannot_see_or_act_on_another_district(console: Console) -> None:
    wang = Client(f"http://127.0.0.1:{console.web.port}")
    wang.login("wang")
    theirs = console.alert_of("s2")
    assert wang.request(f"/console/alerts/{theirs['id']}")[0] == 404
    status, _ = wang.request(
        f"/console/alerts/{theirs['id']}", {"csrf": wang.csrf, "action": "ack", "note": "x"}
    )
    assert status == 404 and console.alert_of("s2")["state"] == "open"
    assert "s2" not in wang.request("/console/rows")[1]
    assert "s2" not in wang.request("/console/export.csv")[1]
    chen = Client(f"http://127.0.0.1:{console.web.port}")
    chen.login("chen")  # a leader reads the city, and does not act
    assert {"s1", "s2"} <= set(re.findall(r">(s\d)</a>", chen.request("/console/rows")[1]))
    assert wang.request("/console/sites/s2")[0] == 404  # nor its site page
    assert chen.request("/console/sites/s2")[0] == 200
    status, _ = chen.request(f"/console/alerts/{theirs['id']}", {"csrf": chen.csrf,
                             "action": "ack"})  # fmt: skip
    assert status == 403


def test_csrf_lockout_and_session_expiry(console: Console) -> None:
    wang = Client(f"http://127.0.0.1:{console.web.port}")
    wang.login("wang")
    mine = console.alert_of("s1")
    assert wang.request(f"/console/alerts/{mine['id']}", {"action": "ack"})[0] == 403
    forged = urllib.request.Request(
        f"{wang.base}/console/alerts/{mine['id']}",
        data=urllib.parse.urlencode({"csrf": wang.csrf, "action": "ack"}).encode(),
        headers={"Origin": "http://evil.example"},
    )
    with pytest.raises(urllib.error.HTTPError) as err:
        wang.opener.open(forged, timeout=10)
    assert err.value.code == 403 and console.alert_of("s1")["state"] == "open"
    with console.store.db.tx() as conn:  # half an hour idle
        conn.execute("UPDATE console_sessions SET seen = seen - 1801")
    status, body = wang.request("/console")
    assert status == 200 and "name='password'" in body  # back at the login page
    li = Client(wang.base)
    for _ in range(3):
        assert li.request("/console/login", {"name": "li", "password": "nope"})[0] == 401
    status, body = li.request("/console/login", {"name": "li", "password": PASSWORDS["li"]})
    assert status == 401 and "locked" in body


def test_the_export_reads_back(console: Console) -> None:
    wang = Client(f"http://127.0.0.1:{console.web.port}")
    wang.login("wang")
    status, body = wang.request("/console/export.csv?state=open")
    assert status == 200 and body.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(body.lstrip("\ufeff"))))
    assert [(r["site"], r["type"], r["state"]) for r in rows] == [("s1", "rodent", "open")]
    assert json.dumps(rows)  # plain text, nothing else
    assert time.time() - float(rows[0]["first_seen"]) < 600


def test_the_figures_are_plotted_and_exported(console: Console, browser: Any) -> None:
    if _assets() is None:
        pytest.skip("uPlot cannot be fetched from npm")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        page.goto(f"{console.url}/login")
        page.fill("input[name=name]", "chen")
        page.fill("input[name=password]", PASSWORDS["chen"])
        page.click("form button")
        page.goto(f"{console.url}/figures")
        for plot in ("plot-violations", "plot-ontime", "plot-rectify"):
            page.wait_for_selector(f"#{plot}[data-drawn=yes] canvas", timeout=10_000)
        ranked = page.inner_text("#rank-districts")
        assert "xianan" in ranked and "chibi" in ranked  # a leader ranks the city
        page.screenshot(path=str(ARTIFACTS / "console-figures.png"), full_page=True)
    finally:
        page.close()
    wang = Client(f"http://127.0.0.1:{console.web.port}")
    wang.login("wang")
    status, body = wang.request("/console/figures.csv")
    rows = list(csv.DictReader(io.StringIO(body.lstrip("\ufeff"))))
    assert status == 200 and [(r["district"], r["violations"]) for r in rows] == [("xianan", "1")]


def test_the_lists_as_excel_workbooks_read_back(console: Console) -> None:
    from openpyxl import load_workbook

    wang = Client(f"http://127.0.0.1:{console.web.port}")
    wang.login("wang")
    for path, name in (("/console/export.xlsx?state=open", "alerts"),
                       ("/console/figures.xlsx", "figures")):  # fmt: skip
        req = urllib.request.Request(wang.base + path)
        with wang.opener.open(req, timeout=10) as r:
            assert r.headers["Content-Type"].startswith("application/vnd.openxmlformats")
            book = load_workbook(io.BytesIO(r.read()), read_only=True)
        rows = list(book[name].iter_rows(values_only=True))
        header = rows[0]  # a row's empty cells at its end are left out by the reader
        body = [dict(zip(header, (*r, *[None] * len(header)), strict=False)) for r in rows[1:]]
        assert header and len(body) == 1, rows
        assert body[0].get("site", "s1") == "s1" and body[0].get("district", "xianan") == "xianan"
    assert wang.request("/console/export.pdf")[0] == 404


def test_a_sites_page_for_its_supervisor(console: Console, browser: Any) -> None:
    s = console.store
    s.sites.import_certs(
        "site,kind,holder,number,expires\n"
        "s1,food_operation_licence,实验小学,JY14201020012345,2028-05-31\n"
        "s1,health_certificate,张三,JK-2025-0099,2025-01-01\n"
    )
    check = {"staff": "张三", "temperature": 36.5, "symptoms": [], "fit": True}
    feed(s, [ev("morning_check", check, 5, "k1", "s1")], time.time(), device="k1")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        page.goto(f"{console.url}/login")
        page.fill("input[name=name]", "wang")
        page.fill("input[name=password]", PASSWORDS["wang"])
        page.click("form button")
        page.click("#alerts a[href='/console/sites/s1']")
        assert "JY14201020012345" in page.inner_text("#certs")
        assert page.locator("#certs tr.overdue").count() == 1  # the expired certificate
        assert "k1" in page.inner_text("#devices")
        assert "张三 36.5°C" in page.inner_text("#records")
        assert "鼠患" in page.inner_text("#site-alerts")
        page.screenshot(path=str(ARTIFACTS / "console-site.png"), full_page=True)
    finally:
        page.close()


def test_the_command_centre_wall_runs_by_itself(console: Console, browser: Any) -> None:
    page = browser.new_page(viewport={"width": 1920, "height": 1080})
    try:
        page.goto(f"{console.url}/login")
        page.fill("input[name=name]", "chen")
        page.fill("input[name=password]", PASSWORDS["chen"])
        page.click("form button")
        page.goto(f"http://127.0.0.1:{console.web.port}/centre")
        assert page.url.endswith("/console/centre")
        page.wait_for_selector("#ticker li")
        assert page.locator("#plan .site").count() == 2  # the city's two sites
        assert page.locator("#plan .site.alert").count() == 2  # each with an open violation
        assert page.inner_text("#today-open") == "2"
        page.wait_for_selector("#screen img")  # no live views here: the latest snapshot
        feed(console.store, [ev("violation", violation("cam3", "no_mask"), 2, "k1", "s1")],
             device="k1")  # fmt: skip
        page.wait_for_function(  # the ticker, without a reload
            "document.getElementById('ticker').innerText.includes('未戴口罩')", timeout=10_000
        )
        assert page.inner_text("#today-open") == "3"
        page.screenshot(path=str(ARTIFACTS / "centre-wall.png"))
    finally:
        page.close()


def test_a_boxs_control_characters_cannot_break_the_workbook(console: Console) -> None:
    from openpyxl import load_workbook

    with console.store.db.tx() as conn:  # a title carries what a box said
        conn.execute("UPDATE alerts SET title = ? WHERE site = 's1'", ("=cmd|' \x01bad\x1f",))
    wang = Client(f"http://127.0.0.1:{console.web.port}")
    wang.login("wang")
    req = urllib.request.Request(wang.base + "/console/export.xlsx")
    with wang.opener.open(req, timeout=10) as r:
        sheet = load_workbook(io.BytesIO(r.read()), read_only=True)["alerts"]
    rows = list(sheet.iter_rows(values_only=True))
    title = rows[1][rows[0].index("title")]
    assert title == "'=cmd|' bad"  # quoted, and the control characters gone


def test_background_fetches_do_not_keep_a_session_alive(console: Console) -> None:
    wang = Client(f"http://127.0.0.1:{console.web.port}")
    wang.login("wang")
    with console.store.db.tx() as conn:
        conn.execute("UPDATE console_sessions SET seen = seen - 1700")
    assert wang.request("/console/rows")[0] == 200  # still within 30 min, and not renewed
    with console.store.db.tx() as conn:
        conn.execute("UPDATE console_sessions SET seen = seen - 200")
    assert wang.request("/console/rows")[0] == 401  # the script is told, not redirected
    li = Client(wang.base)
    for _ in range(3):  # a stranger fails from elsewhere: li's own address is not locked
        li.request("/console/login", {"name": "li", "password": "nope"})
    console.accounts.login("li", PASSWORDS["li"], "10.0.0.8", time.time())
