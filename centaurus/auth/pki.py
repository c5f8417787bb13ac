"""The project's own CA, generated on first start under the state dir, and the certificates it
signs: the API server's serving certificate and client certificates.

Client certificate convention (documented in docs/ARCHITECTURE.md): ``CN`` = user name,
``O`` = tenant, each ``OU`` = one group. Kubernetes puts groups in ``O``; Arktos needs a tenant
too, and a certificate whose subject says which tenant it belongs to cannot be replayed into
another tenant.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_VALID = dt.timedelta(days=3650)


@dataclass(frozen=True)
class CertPair:
    cert_pem: bytes
    key_pem: bytes


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write(path: Path, data: bytes, mode: int = 0o600) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


class CA:
    """A CA kept as ``ca.crt``/``ca.key`` in ``pki_dir``; created when missing."""

    def __init__(self, pki_dir: Path) -> None:
        self.dir = pki_dir
        self.cert_path = pki_dir / "ca.crt"
        self.key_path = pki_dir / "ca.key"
        if not self.cert_path.exists() or not self.key_path.exists():
            self._create()
        self.cert = x509.load_pem_x509_certificate(self.cert_path.read_bytes())
        loaded = serialization.load_pem_private_key(self.key_path.read_bytes(), None)
        assert isinstance(loaded, ec.EllipticCurvePrivateKey)
        self.key = loaded

    @property
    def cert_pem(self) -> bytes:
        return self.cert_path.read_bytes()

    def _create(self) -> None:
        key = _key()
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "centaurus-ca")])
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + _VALID)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
            )
            .sign(key, hashes.SHA256())
        )
        _write(self.key_path, _pem_key(key))
        _write(self.cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)

    def _sign(
        self, subject: x509.Name, usage: x509.ObjectIdentifier, sans: list[x509.GeneralName] | None = None
    ) -> CertPair:
        key = _key()
        now = dt.datetime.now(dt.UTC)
        b = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + _VALID)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if sans:
            b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = b.sign(self.key, hashes.SHA256())
        return CertPair(cert.public_bytes(serialization.Encoding.PEM), _pem_key(key))

    def server_cert(self, hosts: list[str]) -> CertPair:
        sans: list[x509.GeneralName] = []
        for h in hosts:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(h)))
            except ValueError:
                sans.append(x509.DNSName(h))
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "centaurus-apiserver")])
        return self._sign(subject, ExtendedKeyUsageOID.SERVER_AUTH, sans)

    def client_cert(self, user: str, tenant: str, groups: list[str] | None = None) -> CertPair:
        attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, tenant)]
        attrs += [x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, g) for g in groups or []]
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, user))
        return self._sign(x509.Name(attrs), ExtendedKeyUsageOID.CLIENT_AUTH)

    def ensure_server_files(self, hosts: list[str]) -> tuple[Path, Path]:
        crt, key = self.dir / "apiserver.crt", self.dir / "apiserver.key"
        if not crt.exists() or not key.exists():
            pair = self.server_cert(hosts)
            _write(key, pair.key_pem)
            _write(crt, pair.cert_pem, 0o644)
        return crt, key


def identity_from_peercert(peercert: dict[str, object] | None) -> tuple[str, str, list[str]] | None:
    """(user, tenant, groups) from ``ssl.SSLSocket.getpeercert()``'s subject, or None."""
    if not peercert:
        return None
    user, tenant, groups = None, None, []
    subject: Any = peercert.get("subject", ())
    for rdn in subject:
        for k, v in rdn:
            if k == "commonName":
                user = v
            elif k == "organizationName" and tenant is None:
                tenant = v
            elif k == "organizationalUnitName":
                groups.append(v)
    if not user:
        return None
    return user, tenant or "system", groups
