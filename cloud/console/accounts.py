"""Who is logged in to the console: logins checked against the supervisor's own broker login,
sessions, lockout after failed tries, and the audit log of every action. This module owns the
``console_sessions``, ``console_logins`` and ``audit`` tables (migration 9).

A session is a random token in an HttpOnly, SameSite=Strict cookie; the database keeps only its
sha256, so a copy of the database logs nobody in. Each session has its own CSRF token, which
every form sends back.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cloud.broker_files import BrokerFiles, check_password
from cloud.config import ConsoleSettings
from cloud.db import Db

ROLES = ("supervisor", "leader", "inspector")
"""A supervisor sees and acts in their district; a leader reads the whole city and assigns
patrols; an inspector (the regulator's, or a service firm's) works the patrols given to them
or to their firm, at ``/patrol``."""


@dataclass(frozen=True)
class Session:
    name: str
    role: str
    district: str
    csrf: str
    firm: str = ""

    @property
    def actor(self) -> str:
        return f"{self.role}:{self.name}"

    @property
    def photo_owner(self) -> str:
        """Whose snapshots an officer's uploaded photos are (a form may name only these)."""
        return f"officer.{self.name}"

    def sees(self, district: str) -> bool:
        return self.role == "leader" or district == self.district


class LoginRefused(Exception):
    """Wrong name or password, or locked out: the message says which, never which part."""


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Accounts:
    def __init__(self, db: Db, settings: ConsoleSettings, broker_dir: Path) -> None:
        self.db, self.s = db, settings
        self.broker = BrokerFiles(broker_dir)

    # -- logging in ---------------------------------------------------------------------------
    def login(self, name: str, password: str, address: str, now: float) -> tuple[str, Session]:
        """A new session's cookie token and the session; LoginRefused otherwise (counted
        towards the lockout, and audited)."""
        name = name.strip()[:64]
        key = f"{name}@{address}"  # a stranger's failures lock out the stranger, not wang
        row = self.db.query("SELECT failures, locked_until FROM console_logins WHERE name = ?",
                            (key,))  # fmt: skip
        if row and (row[0]["locked_until"] or 0) > now:
            self.audit(name, "login_locked", "", "", address, now)
            mins = int(((row[0]["locked_until"] or now) - now) // 60) + 1
            raise LoginRefused(f"locked after {self.s.max_failures} failed tries; try again in "
                               f"{mins} min 登录失败次数过多，请{mins}分钟后再试")  # fmt: skip
        who = self.db.query("SELECT district, role, firm FROM supervisors WHERE name = ?",
                            (name,))  # fmt: skip
        hashed = self.broker.users().get(name)
        ok = bool(who) and hashed is not None and check_password(password, hashed)
        if not ok:
            self._failed(key if who else "", name, address, now)
            raise LoginRefused("wrong name or password 用户名或密码错误")
        token = secrets.token_urlsafe(32)
        w = who[0]
        session = Session(name, w["role"], w["district"], secrets.token_urlsafe(24), w["firm"])
        with self.db.tx() as conn:
            conn.execute("DELETE FROM console_logins WHERE name = ?", (key,))
            conn.execute(
                "INSERT INTO console_sessions (id, name, csrf, created, seen)"
                " VALUES (?, ?, ?, ?, ?)",
                (_digest(token), name, session.csrf, now, now),
            )
        self.audit(name, "login", "", "", address, now)
        return token, session

    def _failed(self, key: str, name: str, address: str, now: float) -> None:
        """Count a failure towards the lockout of a known name from this address (an unknown
        name stores nothing but its audit line), and audit it."""
        self.audit(name, "login_failed", "", "", address, now)
        if not key:
            return
        with self.db.tx() as conn:
            conn.execute(
                "INSERT INTO console_logins (name, failures) VALUES (?, 1) ON CONFLICT (name)"
                " DO UPDATE SET failures = console_logins.failures + 1",
                (key,),
            )
            conn.execute(
                "UPDATE console_logins SET locked_until = ?, failures = 0"
                " WHERE name = ? AND failures >= ?",
                (now + self.s.lockout_s, key, self.s.max_failures),
            )

    # -- sessions -----------------------------------------------------------------------------
    def session(self, token: str, now: float, renew: bool = True) -> Session | None:
        """The live session of a cookie token (its idle time renewed when ``renew``), or
        None."""
        if not token or len(token) > 128:
            return None
        rows = self.db.query(
            "SELECT s.name, s.csrf, s.created, s.seen, p.district, p.role, p.firm"
            " FROM console_sessions s"
            " JOIN supervisors p ON p.name = s.name WHERE s.id = ?",
            (_digest(token),),
        )
        if not rows:
            return None
        r = rows[0]
        if now - r["seen"] > self.s.idle_timeout_s or now - r["created"] > self.s.max_age_s:
            self.logout(token)
            return None
        if renew and now - r["seen"] > 30:  # not a write per request
            with self.db.tx() as conn:
                conn.execute("UPDATE console_sessions SET seen = ? WHERE id = ?",
                             (now, _digest(token)))  # fmt: skip
        return Session(r["name"], r["role"], r["district"], r["csrf"], r["firm"])

    def logout(self, token: str) -> None:
        with self.db.tx() as conn:
            conn.execute("DELETE FROM console_sessions WHERE id = ?", (_digest(token),))

    @staticmethod
    def csrf_ok(session: Session, sent: str) -> bool:
        return bool(sent) and hmac.compare_digest(session.csrf.encode(), sent.encode()[:128])

    # -- the audit log ------------------------------------------------------------------------
    def audit(
        self, actor: str, action: str, target: str, detail: str, address: str, now: float
    ) -> None:
        with self.db.tx() as conn:
            conn.execute(
                "INSERT INTO audit (at, actor, action, target, detail, address)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (now, actor[:64], action, target[:64], detail[:1000], address[:64]),
            )

    def audit_log(self, limit: int = 200) -> list[dict[str, Any]]:
        return self.db.query("SELECT * FROM audit ORDER BY id DESC LIMIT ?", (limit,))
