"""Mosquitto's password file and ACL file, written from the registry.

Two plain files are easy to back up, to read in a review and to reason about, and the ACL is
written whole from the registry each time, so it cannot drift. Each user gets lines of its own
role only: a box may publish its own events, status and snapshots and read its own commands; a
supervisor reads its district's alerts and escalations and writes its own commands; the
collector reads and writes everything. (Mosquitto's ``pattern`` lines would apply to every
user, supervisors too, so none are used.) Every name was checked by the registry; the ACL
writer checks again, since one bad name could open another's topics.

Passwords are hashed here, in Mosquitto 2.0's own format (PBKDF2-HMAC-SHA512, ``$7$``), so no
password ever goes on a command line (``mosquitto_passwd -b`` would show it in ``ps``). Both
files are created 0640 for the broker's group (``mosquitto``), which Mosquitto, running as its
own user, reads when it starts and when it reloads.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import time
from collections.abc import Iterable
from pathlib import Path

from cloud import broker_nats
from cloud.registry import Identity
from shared.secretfiles import write_secret
from shared.topics import check_name

ITERATIONS = 101
"""What ``mosquitto_passwd`` of Mosquitto 2.0 uses (and stores in each line, so a later
change of this number leaves the older lines valid)."""
SALT_BYTES = 12


def hash_password(password: str, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    """A password-file hash as ``mosquitto_passwd`` writes it: ``$7$iter$salt$hash``."""
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    b64 = base64.b64encode
    return f"$7${iterations}${b64(salt).decode()}${b64(digest).decode()}"


def check_password(password: str, hashed: str) -> bool:
    """Whether ``password`` matches a ``$7$`` line's hash (the console's login, and the tests'
    independent check), compared in constant time. The passwords are the collector's own
    random ones (128 bits and more), so Mosquitto's few iterations are no weakness."""
    parts = hashed.split("$")
    if len(parts) != 5 or parts[1] != "7" or not parts[2].isdigit():
        return False
    try:
        salt = base64.b64decode(parts[3], validate=True)
    except ValueError:
        return False
    mine = hash_password(password, salt, min(int(parts[2]), 10**6))
    return hmac.compare_digest(mine.encode(), hashed.encode())


def acl_text(collector: str, devices: Iterable[Identity], supervisors: Iterable[Identity]) -> str:
    out = [
        "# Written by shian-cloud from its registry; edits here are overwritten.\n",
        "# Each user has the topics of its role only (no patterns: they would apply to all).\n",
        f"\n# the collector\nuser {check_name(collector, 'collector')}\n",
        "topic readwrite shian/v1/#\n",
    ]
    for d in sorted(devices, key=lambda i: i.name):
        name = check_name(d.name, "device")
        base = f"shian/v1/dev/{name}"
        out.append(
            f"\n# box ({check_name(d.role, 'role')} at {check_name(d.site, 'site')})\nuser {name}\n"
            f"topic write {base}/events\ntopic write {base}/status\n"
            f"topic write {base}/snap/+\ntopic write {base}/live/+\n"
            f"topic read {base}/cmd/#\n"
            "topic read shian/v1/collector/hello\n"
            "topic read shian/v1/collector/clock\n"
        )
    for s in sorted(supervisors, key=lambda i: i.name):
        name, district = check_name(s.name, "supervisor"), check_name(s.district, "district")
        if s.role == "inspector":  # their login is for /patrol: no alerts, no commands
            out.append(f"\n# inspector (patrols only)\nuser {name}\n")
            continue
        out.append(
            f"\n# supervisor of {district}\nuser {name}\n"
            f"topic read shian/v1/alerts/{district}/+\n"
            f"topic read shian/v1/escalations/{district}\n"
            f"topic write shian/v1/sup/{name}/cmd\n"
            f"topic read shian/v1/sup/{name}/reply\n"
        )
    return "".join(out)


class BrokerFiles:
    """``passwd`` and ``acl`` in ``folder``, readable by the broker's ``group``."""

    def __init__(self, folder: Path, group: str = "mosquitto") -> None:
        self.folder, self.group = folder, group
        self.passwd, self.acl = folder / "passwd", folder / "acl"
        self.nats_passwd, self.nats_users = folder / "nats-passwd", folder / "nats-users.conf"
        """The same users for a NATS cluster (``cloud.broker_nats``): bcrypt hashes, and
        the users with their permissions that every node includes, readable by the group
        ``nats`` (Debian's nats-server runs as that user)."""

    def users(self, path: Path | None = None) -> dict[str, str]:
        """Each user's hashed password, as the passwd file (or ``path``) holds it."""
        path = path or self.passwd
        if not path.exists():
            return {}
        users: dict[str, str] = {}
        for line in path.read_text().splitlines():
            name, sep, hashed = line.partition(":")
            if sep and name:
                users[name] = hashed
        return users

    def _write_passwd(self, users: dict[str, str], path: Path | None = None) -> None:
        text = "".join(f"{name}:{hashed}\n" for name, hashed in sorted(users.items()))
        write_secret(path or self.passwd, text, 0o640, self.group)

    def set_passwords(self, passwords: dict[str, str]) -> None:
        """Set (or replace) the passwords of these users, in one write of each file."""
        users, nats = self.users(), self.users(self.nats_passwd)
        for name, password in passwords.items():
            users[check_name(name, "user")] = hash_password(password)
            nats[name] = broker_nats.hash_password(password)
        self._write_passwd(users)
        self._write_passwd(nats, self.nats_passwd)

    def remove(self, name: str) -> None:
        for path in (self.passwd, self.nats_passwd):
            users = self.users(path)
            if users.pop(name, None) is not None:
                self._write_passwd(users, path)

    def touch_reload(self) -> None:
        """Written after both files are in place: ``shian-broker-reload.path`` watches it."""
        write_secret(self.folder / "reload", f"{time.time():.3f}\n", 0o640, self.group)

    def write_acl(
        self, collector: str, devices: Iterable[Identity], supervisors: Iterable[Identity]
    ) -> None:
        devices, supervisors = list(devices), list(supervisors)
        write_secret(self.acl, acl_text(collector, devices, supervisors), 0o640, self.group)
        hashes = self.users(self.nats_passwd)
        text = broker_nats.users_text(collector, devices, supervisors, hashes)
        write_secret(self.nats_users, text, 0o640, "nats")
