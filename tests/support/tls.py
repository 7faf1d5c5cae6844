"""A throwaway CA and certificates made with the openssl command, for TLS tests."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_pki(workdir: Path, host_ip: str = "127.0.0.1") -> Pki:
    workdir.mkdir(parents=True, exist_ok=True)
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=Shian test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        cwd=workdir,
    )
    _openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        cwd=workdir,
    )
    (workdir / "san.ext").write_text(f"subjectAltName=IP:{host_ip},DNS:localhost\n")
    _openssl(
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "san.ext",
        "-out",
        "server.pem",
        cwd=workdir,
    )
    return Pki(workdir / "ca.pem", workdir / "server.pem", workdir / "server.key")


def add_user(password_file: Path, user: str, password: str) -> None:
    """Add a user to a Mosquitto password file with mosquitto_passwd (from the broker package)."""
    flags = ["-b"] if password_file.exists() else ["-c", "-b"]
    subprocess.run(
        ["mosquitto_passwd", *flags, str(password_file), user, password],
        check=True,
        capture_output=True,
    )
