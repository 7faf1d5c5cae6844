"""Patrol tasks and their results. This module owns the ``patrol_tasks`` and ``patrol_items``
tables (migration 11).

A task is one visit: a site, a checklist, a due date, and an inspector or a service firm (any
of the firm's inspectors takes it). The inspector records each item pass or fail, with a note
and photos, and changes them freely until the visit is finished. Finishing signs the report:
each failed item becomes a hazard (隐患), an alert of type ``hazard`` whose rectification is
requested at once, with the item's deadline. From there it runs the alerts' own loop: the
business answers from its box with a photo, and the inspector (or the district's supervisor)
verifies or reopens it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from cloud.console.accounts import Session
from cloud.console.photos import named
from cloud.db import Conn
from cloud.patrol.checklists import Checklist, for_kind
from cloud.store import Store
from shared.ids import uuid7

HAZARD_ACTIONS = ("request_rectification", "verify", "reopen")


class PatrolError(ValueError):
    """Refused, and why (shown to the officer as it is)."""


OPERATOR = Session("operator", "leader", "", "")
"""Who the command line acts as: the city's operator, who assigns anywhere."""


@dataclass
class Patrols:
    store: Store
    checklists: dict[str, Checklist]

    # -- who sees what ---------------------------------------------------------------------
    @staticmethod
    def _scope(who: Session, t: str = "") -> tuple[str, tuple[Any, ...]]:
        """The SQL condition (on table alias ``t``) of the tasks ``who`` may see."""
        if who.role == "leader":
            return "1 = 1", ()
        if who.role == "inspector":
            return f"({t}inspector = ? OR ({t}firm != '' AND {t}firm = ?))", (who.name, who.firm)
        return f"{t}district = ?", (who.district,)

    def tasks(self, who: Session, limit: int = 300) -> list[dict[str, Any]]:
        """The tasks ``who`` may see, the unfinished first, by due date."""
        where, params = self._scope(who)
        return self.store.db.query(
            f"SELECT * FROM patrol_tasks WHERE {where}"
            " ORDER BY CASE WHEN state = 'done' THEN 1 ELSE 0 END, due, id LIMIT ?",
            (*params, limit),
        )

    def task(self, who: Session, task_id: str) -> dict[str, Any] | None:
        """One task with its checklist and results, or None when ``who`` may not see it."""
        where, params = self._scope(who, "t.")
        rows = self.store.db.query(
            f"SELECT t.*, s.name AS site_name FROM patrol_tasks t LEFT JOIN sites s"
            f" ON s.site = t.site WHERE t.id = ? AND {where}",
            (task_id[:64], *params),
        )
        if not rows:
            return None
        t = rows[0]
        results = {
            r["item"]: {**r, "photos": json.loads(r["photos"])}
            for r in self.store.db.query("SELECT * FROM patrol_items WHERE task = ?", (t["id"],))
        }
        hazards = [r["hazard"] for r in results.values() if r["hazard"]]
        states = {
            a["id"]: a
            for a in self.store.db.query(
                "SELECT id, state, due, history FROM alerts WHERE id IN "
                f"({','.join('?' * len(hazards)) or 'NULL'})",
                tuple(hazards),
            )
        }
        checklist = self.checklists.get(t["checklist"])
        items = []
        for item in checklist.items if checklist else []:
            r = results.get(item.id)
            h = states.get(r["hazard"]) if r and r["hazard"] else None
            items.append({"item": item, "result": r, "hazard": h})
        return {**t, "checklist_of": checklist, "items": items}

    # -- assigning ---------------------------------------------------------------------------
    def assign(
        self,
        who: Session,
        site: str,
        due: float,
        now: float,
        inspector: str = "",
        firm: str = "",
        checklist: str = "",
    ) -> str:
        """A new task's id. A supervisor assigns in their district; a leader anywhere."""
        if who.role not in ("supervisor", "leader"):
            raise PatrolError("only a supervisor or a leader assigns patrols")
        if bool(inspector) == bool(firm):
            raise PatrolError("give the patrol to one inspector or to one service firm")
        rows = self.store.db.query("SELECT district, kind FROM sites WHERE site = ?", (site[:64],))
        if not rows:
            raise PatrolError(f"no site {site[:64]!r}")
        district, kind = rows[0]["district"], rows[0]["kind"]
        if who.role == "supervisor" and district != who.district:
            raise PatrolError(f"no site {site[:64]!r}")  # another district's: not found
        if not now < due <= now + 366 * 86400:
            raise PatrolError("the due date must be in the coming year")
        if checklist:
            chosen = self.checklists.get(checklist[:64])
            if chosen is None:
                raise PatrolError(f"no checklist {checklist[:64]!r} ({', '.join(self.checklists)})")
        else:
            found = for_kind(self.checklists, kind)
            if found is None:
                raise PatrolError(f"site {site} is of no kind a checklist is for: name one")
            chosen = found
        if inspector:
            sql, arg = "SELECT 1 FROM supervisors WHERE role = 'inspector' AND name = ?", inspector
        else:
            sql, arg = "SELECT 1 FROM supervisors WHERE role = 'inspector' AND firm = ?", firm
        if not self.store.db.query(sql, (arg[:64],)):
            raise PatrolError(f"no inspector {arg[:64]!r}" if inspector else
                              f"no service firm {arg[:64]!r} with an inspector")  # fmt: skip
        task_id = str(uuid7())
        with self.store.db.tx() as conn:
            conn.execute(
                "INSERT INTO patrol_tasks (id, site, district, checklist, inspector, firm, due,"
                " assigned_by, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (task_id, site, district, chosen.id, inspector, firm, due, who.name, now),
            )
        return task_id

    # -- the visit ---------------------------------------------------------------------------
    def _open_task(self, who: Session, task_id: str) -> dict[str, Any]:
        if who.role != "inspector":
            raise PatrolError("only the inspector on the patrol records it")
        t = self.task(who, task_id)
        if t is None:
            raise PatrolError("no such patrol")
        if t["state"] == "done":
            raise PatrolError("this patrol is finished: its report is signed")
        if t["checklist_of"] is None:
            raise PatrolError(f"checklist {t['checklist']} is no longer installed")
        return t

    @staticmethod
    def photos_of(conn: Conn, who: Session, text: str) -> list[str]:
        try:
            return named(conn, who, text)
        except ValueError as exc:
            raise PatrolError(str(exc)) from None

    def record(
        self,
        who: Session,
        task_id: str,
        item_id: str,
        result: str,
        note: str,
        photos: str,
        now: float,
        due_h: float | None = None,
    ) -> None:
        """Record (or change) one item's result. A failed item needs a note or a photo."""
        t = self._open_task(who, task_id)
        item = t["checklist_of"].item(item_id[:64])
        if item is None:
            raise PatrolError("no such item on this checklist")
        if result not in ("pass", "fail"):
            raise PatrolError("the result is pass or fail")
        if due_h is not None and not 1 <= due_h <= 720:
            raise PatrolError("the deadline must be 1 to 720 hours")
        note = note.strip()[:1000]
        with self.store.db.tx() as conn:
            ids = self.photos_of(conn, who, photos)
            if result == "fail" and not note and not ids:
                raise PatrolError("say what is wrong: a note or a photo")
            opened = conn.execute(
                "UPDATE patrol_tasks SET state = 'in_progress', started = coalesce(started, ?)"
                " WHERE id = ? AND state != 'done'",
                (now, t["id"]),
            ).rowcount
            if opened != 1:  # signed meanwhile, by a colleague: the report stands
                raise PatrolError("this patrol is finished: its report is signed")
            conn.execute(
                "INSERT INTO patrol_items (task, item, result, note, photos, due_h, at, by)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (task, item) DO UPDATE SET"
                " result = excluded.result, note = excluded.note, photos = excluded.photos,"
                " due_h = excluded.due_h, at = excluded.at, by = excluded.by",
                (t["id"], item.id, result, note, json.dumps(ids), due_h, now, who.name),
            )

    def finish(self, who: Session, task_id: str, now: float) -> list[str]:
        """Sign the report: every item must be answered; each failed one becomes a hazard
        with its rectification requested. The hazards' ids."""
        t = self._open_task(who, task_id)
        engine = self.store.engine
        if engine is None:
            raise PatrolError("this collector runs no alert engine")

        def sign(conn: Conn) -> list[str]:
            conn.lock("alerts")
            signed = conn.execute(  # first: a colleague's save or signature waits, or fails
                "UPDATE patrol_tasks SET state = 'done', finished = ?, finished_by = ?"
                " WHERE id = ? AND state != 'done'",
                (now, who.name, t["id"]),
            ).rowcount
            if signed != 1:
                raise PatrolError("this patrol is finished: its report is signed")
            rows = conn.execute(  # the results as they stand now, in this transaction
                "SELECT item, result, note, photos, due_h FROM patrol_items WHERE task = ?",
                (t["id"],),
            ).fetchall()
            results = {r[0]: {"result": r[1], "note": r[2], "photos": json.loads(r[3]),
                              "due_h": r[4]} for r in rows}  # fmt: skip
            missing = [i["item"].id for i in t["items"] if i["item"].id not in results]
            if missing:
                raise PatrolError(f"{len(missing)} item(s) not yet checked: "
                                  f"{', '.join(missing)}")  # fmt: skip
            made = []
            for i in t["items"]:
                item, r = i["item"], results[i["item"].id]
                if r["result"] != "fail":
                    continue
                a = engine.raise_(
                    conn, now, site=t["site"], type="hazard", source=f"{t['id']}.{item.id}",
                    title=f"隐患 Hazard: {item.zh} / {item.en}", severity=item.severity,
                    snapshot=r["photos"][0] if r["photos"] else None, quiet=True,
                    district=t["district"],
                )  # fmt: skip
                due_s = (r["due_h"] or item.due_h) * 3600
                engine.act(conn, now, a["id"], "request_rectification", who.actor, r["note"],
                           due_s, photos=r["photos"])  # fmt: skip
                conn.execute("UPDATE patrol_items SET hazard = ? WHERE task = ? AND item = ?",
                             (a["id"], t["id"], item.id))  # fmt: skip
                made.append(a["id"])
            return made

        hazards: list[str] = self.store.in_transaction(sign)
        return hazards

    def act_on_hazard(
        self,
        who: Session,
        task_id: str,
        alert_id: str,
        action: str,
        note: str,
        photos: str,
        now: float,
        due_h: float | None = None,
    ) -> None:
        """Verify, reopen or request again a hazard of this patrol: its inspector, or the
        district's supervisor."""
        if who.role not in ("inspector", "supervisor"):
            raise PatrolError("a leader reads; the inspector or the supervisor acts")
        t = self.task(who, task_id)
        if t is None or alert_id not in {i["hazard"]["id"] for i in t["items"] if i["hazard"]}:
            raise PatrolError("no such hazard on this patrol")
        if action not in HAZARD_ACTIONS:
            raise PatrolError(f"the action is one of {', '.join(HAZARD_ACTIONS)}")
        if due_h is not None and not 1 <= due_h <= 720:
            raise PatrolError("the deadline must be 1 to 720 hours")
        engine = self.store.engine
        if engine is None:
            raise PatrolError("this collector runs no alert engine")

        def apply(conn: Conn) -> None:
            ids = self.photos_of(conn, who, photos)
            engine.act(conn, now, alert_id, action, who.actor, note.strip()[:1000],
                       due_h * 3600 if due_h else None, photos=ids)  # fmt: skip

        self.store.in_transaction(apply)
