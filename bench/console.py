"""Console load benchmark (issue 16): a city's data, 1,500 sites in 10 districts and a year of
alerts (about 100 per site, each with its timeline), two weeks of morning checks and
disinfection records, certificates, a year of patrols (one a month per site, each with its
checklist's results); then the console's pages asked over HTTP from the real
server (uvicorn), logged in as a district's supervisor and as the city's leader. p50 and p99
per page, with the store's own time for the same query measured in the same run as the
baseline.

    python bench/console.py --json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import uuid
from http.cookiejar import CookieJar
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cloud.alerts.engine import AlertEngine  # noqa: E402
from cloud.broker_files import BrokerFiles  # noqa: E402
from cloud.config import AlertSettings, ConsoleSettings  # noqa: E402
from cloud.console import queries, sites  # noqa: E402
from cloud.console.accounts import Accounts, Session  # noqa: E402
from cloud.store import Store  # noqa: E402
from cloud.web import make_app  # noqa: E402
from shared.webserver import WebServer  # noqa: E402

TYPES = ["rodent", "no_mask", "no_chef_hat", "smoking", "phone_use", "animal_in_kitchen"]
SYSTEM = ["device_offline", "camera_offline", "no_morning_check"]
YEAR = 365 * 86400


def iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def make_city(store: Store, n_sites: int, per_site: int, now: float, rng: random.Random) -> int:
    districts = [f"d{d:02d}" for d in range(10)]
    names = [f"site-{i:04d}" for i in range(n_sites)]
    store.sites.set_many([(s, districts[i % 10], f"食堂 {i}", "") for i, s in enumerate(names)])
    alerts, events, certs = [], [], []
    for i, site in enumerate(names):
        district, device = districts[i % 10], f"box-{i:04d}"
        certs.append((f"JY{i:08d}", site, "food_operation_licence", site, "2027-06-30"))
        certs.append((f"JK{i:08d}", site, "health_certificate", "张三", "2026-12-31"))
        for _ in range(per_site):
            seen = now - rng.random() * YEAR
            kind = rng.choice(TYPES) if rng.random() < 0.7 else rng.choice(SYSTEM)
            steps = [{"at": iso(seen), "state": "open", "actor": "system", "note": ""}]
            state = "closed" if seen < now - 7 * 86400 else rng.choice(queries.STATES)
            if state != "open":
                steps.append({"at": iso(seen + 600), "state": "acknowledged", "actor": "s"})
                steps.append({"at": iso(seen + 1200), "state": "rectification_requested",
                              "actor": "s", "due": iso(seen + 1200 + 86400)})  # fmt: skip
                steps.append({"at": iso(seen + 30000), "state": "rectified", "actor": "b"})
                steps.append({"at": iso(seen + 40000), "state": "closed", "actor": "s"})
            aid = str(uuid.uuid4())
            due = None if state == "closed" else seen + 86400
            alerts.append((aid, f"{kind}:{site}:{aid}", state, "major", kind, district, site,
                           device, "cam1", "device", f"{kind} at {site}", seen, seen + 60, 1,
                           due, json.dumps(steps)))  # fmt: skip
        for day in range(14):
            t = now - day * 86400
            check = {"staff": "张三", "temperature": 36.5, "symptoms": [], "fit": True}
            events.append((str(uuid.uuid4()), device, site, day * 2 + 1, iso(t), "morning_check",
                           json.dumps(check, ensure_ascii=False), t))  # fmt: skip
            dis = {"area": "餐具", "method": "steam", "by": "李四", "minutes": 20}
            events.append((str(uuid.uuid4()), device, site, day * 2 + 2, iso(t), "disinfection",
                           json.dumps(dis, ensure_ascii=False), t))  # fmt: skip
    with store.db.tx() as conn:
        conn.executemany(
            "INSERT INTO alerts (id, key, state, severity, type, district, site, device, camera,"
            " source, title, first_seen, last_seen, count, due, history)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            alerts,
        )
        conn.executemany(
            "INSERT INTO events (id, device, site, seq, ts, kind, data, received)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            events,
        )
        conn.executemany(
            "INSERT INTO certs (number, site, kind, holder, expires) VALUES (?, ?, ?, ?, ?)",
            certs,
        )
    return len(alerts)


def make_patrols(store: Store, n_sites: int, now: float, rng: random.Random) -> int:
    """A patrol a month per site for a year, by 50 inspectors; every item answered, one in
    twenty failed (their hazards are not made: the alerts above stand for them)."""
    from cloud.patrol import checklists

    items = [i.id for i in checklists.load()["school_canteen"].items]
    tasks, results = [], []
    for i in range(n_sites):
        site, district = f"site-{i:04d}", f"d{i % 10:02d}"
        for month in range(12):
            due = now - month * YEAR / 12 + 7 * 86400
            done = month > 0
            tid = str(uuid.uuid4())
            tasks.append((tid, site, district, "school_canteen", f"insp-{rng.randrange(50):02d}",
                          due, "done" if done else "assigned", "wang", due - 14 * 86400,
                          due - 86400 if done else None))  # fmt: skip
            if done:
                results += [(tid, item, "fail" if rng.random() < 0.05 else "pass", "", "[]",
                             due - 86400, "insp") for item in items]  # fmt: skip
    with store.db.tx() as conn:
        conn.executemany(
            "INSERT INTO patrol_tasks (id, site, district, checklist, inspector, due, state,"
            " assigned_by, created, finished) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            tasks,
        )
        conn.executemany(
            "INSERT INTO patrol_items (task, item, result, note, photos, at, by)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            results,
        )
    return len(tasks)


class Browser:
    def __init__(self, base: str, name: str, password: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
        form = urllib.parse.urlencode({"name": name, "password": password}).encode()
        self.opener.open(urllib.request.Request(f"{base}/console/login", data=form)).read()

    def get_ms(self, path: str) -> float:
        t0 = time.perf_counter()
        with self.opener.open(self.base + path, timeout=30) as r:
            r.read()
            assert r.status == 200, (path, r.status)
        return (time.perf_counter() - t0) * 1000


def pct(xs: list[float], p: float) -> float:
    return round(sorted(xs)[min(len(xs) - 1, int(p * len(xs)))], 1)


def run(work: Path, n_sites: int, per_site: int, requests: int, url: str | None) -> dict[str, Any]:
    rng = random.Random(7)
    store = Store(url or work / "c.db", work / "snaps", engine=AlertEngine(AlertSettings()))
    now = time.time()
    t0 = time.monotonic()
    n = make_city(store, n_sites, per_site, now, rng)
    n_patrols = make_patrols(store, n_sites, now, rng)
    made_s = time.monotonic() - t0
    passwords = {"wang": "pw-wang", "chen": "pw-chen", "insp-07": "pw-insp"}
    BrokerFiles(work / "broker").set_passwords(passwords)
    store.sites.add_supervisor("wang", "d03")
    store.sites.add_supervisor("chen", "city", role="leader")
    store.sites.add_supervisor("insp-07", "d03", role="inspector")
    settings = ConsoleSettings(max_failures=100)
    accounts = Accounts(store.db, settings, work / "broker")
    web = WebServer(make_app(store, work / "keys", console=accounts), "127.0.0.1", 0)
    web.start()
    base = f"http://127.0.0.1:{web.port}"
    wang, chen = Browser(base, "wang", "pw-wang"), Browser(base, "chen", "pw-chen")
    insp = Browser(base, "insp-07", "pw-insp")
    mine = [f"site-{i:04d}" for i in range(3, n_sites, 10)]
    sql = "SELECT id FROM alerts WHERE district = 'd03' AND state != 'closed' LIMIT 200"
    open_ids = [r["id"] for r in store.db.query(sql)]
    sql = "SELECT id FROM patrol_tasks WHERE district = 'd03' AND state = 'done' LIMIT 200"
    visits = [r["id"] for r in store.db.query(sql)]
    pages: dict[str, Any] = {
        "list (supervisor)": lambda: wang.get_ms("/console"),
        "list, open only": lambda: wang.get_ms("/console?state=open"),
        "list, overdue": lambda: wang.get_ms("/console?overdue=1"),
        "list (leader, city)": lambda: chen.get_ms("/console"),
        "site page": lambda: wang.get_ms(f"/console/sites/{rng.choice(mine)}"),
        "alert page": lambda: wang.get_ms(f"/console/alerts/{rng.choice(open_ids)}"),
        "figures (8 weeks)": lambda: wang.get_ms("/console/figures"),
        "patrols (supervisor)": lambda: wang.get_ms("/console/patrols"),
        "patrols (leader, city)": lambda: chen.get_ms("/console/patrols"),
        "patrols (inspector's phone)": lambda: insp.get_ms("/console/patrol"),
        "patrol report": lambda: wang.get_ms(f"/console/patrol/{rng.choice(visits)}/report"),
    }
    w = Session("wang", "supervisor", "d03", "")
    baseline = {
        "list (supervisor)": lambda: queries.alerts(store.db, w, queries.Filters()),
        "site page": lambda: sites.site(store.db, w, rng.choice(mine), now),
    }  # fmt: skip
    out: dict[str, Any] = {"sites": n_sites, "alerts": n, "patrols": n_patrols,
                           "generated_s": round(made_s, 1)}  # fmt: skip
    for name, fn in pages.items():
        fn()  # warm
        ms = [fn() for _ in range(requests)]
        out[name] = {"p50_ms": pct(ms, 0.5), "p99_ms": pct(ms, 0.99), "n": len(ms)}
    for name, fn in baseline.items():
        ms = []
        for _ in range(requests):
            t = time.perf_counter()
            fn()
            ms.append((time.perf_counter() - t) * 1000)
        out[name]["store_p50_ms"] = pct(ms, 0.5)
        out[name]["store_p99_ms"] = pct(ms, 0.99)
    web.stop()
    store.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sites", type=int, default=1500)
    ap.add_argument("--alerts-per-site", type=int, default=100)
    ap.add_argument("--requests", type=int, default=200, help="per page")
    ap.add_argument(
        "--postgres", action="store_true", help="on a PostgreSQL server of its own (not SQLite)"
    )
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    server = None
    if args.postgres:
        from tests.support.postgres import Postgres

        server = Postgres().start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            url = server.new_database() if server is not None else None
            res = run(Path(tmp), args.sites, args.alerts_per_site, args.requests, url)
    finally:
        if server is not None:
            server.stop()
    res["store"] = "postgresql" if args.postgres else "sqlite"
    res["machine"] = f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}"
    res["command"] = "python bench/console.py " + " ".join(sys.argv[1:])
    res["median_of_p99_ms"] = statistics.median(
        v["p99_ms"] for v in res.values() if isinstance(v, dict)
    )
    print(json.dumps(res, indent=2, ensure_ascii=False) if args.json else res)


if __name__ == "__main__":
    main()
