"""The broker's TLS: a CA of the city's own and Mosquitto's server certificate, made with the
``cryptography`` library (``shian-cloud broker certs``), so an installer needs no openssl
recipe. The CA's key never leaves the cloud; boxes get ``ca.pem`` in their bundles.

Files (in ``--dir``, default ``<data_dir>/tls``): ``ca.key`` (0600), ``ca.pem``, ``server.key``
(0640, the broker's group, so Mosquitto running as its own user reads it), ``server.pem``. An
existing CA is kept: run it again to renew the server certificate or add a name.
"""

from __future__ import annotations

import datetime as dt
import grp
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from shared.secretfiles import write_secret


@dataclass(frozen=True)
class BrokerCerts:
    ca: Path
    ca_key: Path
    server_cert: Path
    server_key: Path


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _ca(folder: Path, days: int) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert_path, key_path = folder / "ca.pem", folder / "ca.key"
    if cert_path.exists() != key_path.exists():
        raise ValueError(
            f"{cert_path if cert_path.exists() else key_path} is here without its other half: "
            "put the CA's key (or certificate) back to renew the broker's certificate (a new "
            "CA would cut off every box that trusts the old one)"
        )
    if cert_path.exists() and key_path.exists():
        key = serialization.load_pem_private_key(key_path.read_bytes(), None)
        assert isinstance(key, ec.EllipticCurvePrivateKey), "ca.key is not an EC key"
        return x509.load_pem_x509_certificate(cert_path.read_bytes()), key
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("Shian broker CA"))
        .issuer_name(_name("Shian broker CA"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    write_secret(key_path, _key_pem(key))
    write_secret(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return cert, key


def make_broker_certs(
    folder: Path, names: list[str], days: int = 825, group: str = "mosquitto"
) -> BrokerCerts:
    """A CA (kept if there is one) and a server certificate for ``names`` (host names or IP
    addresses, the first is the common name), valid ``days``."""
    if not names:
        raise ValueError("give the broker's host name or address (--host)")
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o755)  # Mosquitto, as its own user, must reach its files here
    ca, ca_key = _ca(folder, max(days, 3650))
    alt: list[x509.GeneralName] = []
    for n in names:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            alt.append(x509.DNSName(n))
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(names[0]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    out = BrokerCerts(
        folder / "ca.pem", folder / "ca.key", folder / "server.pem", folder / "server.key"
    )
    # Mosquitto runs as its own user: its group may read the key, nobody else
    write_secret(out.server_key, _key_pem(key), 0o640, group)
    write_secret(out.server_cert, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    try:
        gid = grp.getgrnam(group).gr_gid
    except KeyError:
        return out  # no such group here (a test machine): the key stays its owner's
    if out.server_key.stat().st_gid != gid:
        raise PermissionError(
            f"{out.server_key} could not be given to group {group}, so Mosquitto could not "
            f"read it: run broker certs as root, or add this user to group {group}"
        )
    return out
