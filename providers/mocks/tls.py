"""
A throw-away certificate authority for the TLS mocks (APNs, FCM).

The mocks ship with the product (`pushgw mock-providers`, `pushgw demo`), so
they may only use the product's own dependencies: this is built on
`cryptography` rather than the test-only `trustme`, and keeps the small part of
trustme's interface the mocks use (`cert_pem`, `private_key_pem`, `issue_cert`,
`configure_cert`, `configure_trust`). ECDSA P-256 keys: fast to make, and what
Apple's and Google's servers present today.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import tempfile
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALID_FOR = datetime.timedelta(days=365)


class Pem:
    """PEM bytes, with trustme's `.bytes()` accessor."""

    __slots__ = ("_data",)

    def __init__(self, data: bytes) -> None:
        self._data = data

    def bytes(self) -> bytes:
        return self._data


class LeafCert:
    """A server certificate and its key, for an `ssl.SSLContext`."""

    def __init__(self, cert_pem: bytes, key_pem: bytes) -> None:
        self.cert_pem = Pem(cert_pem)
        self.private_key_pem = Pem(key_pem)

    def configure_cert(self, ctx: ssl.SSLContext) -> None:
        # load_cert_chain reads files only: a private temporary directory.
        with tempfile.TemporaryDirectory() as directory:
            cert, key = Path(directory, "cert.pem"), Path(directory, "key.pem")
            cert.write_bytes(self.cert_pem.bytes())
            key.write_bytes(self.private_key_pem.bytes())
            ctx.load_cert_chain(cert, key)


class MockCA:
    """A self-signed CA that issues certificates for loopback servers."""

    def __init__(self) -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pushgw mock CA")])
        now = _now()
        self._cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + VALID_FOR)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(self._key, hashes.SHA256())
        )
        self.cert_pem = Pem(self._cert.public_bytes(serialization.Encoding.PEM))
        self.private_key_pem = Pem(_key_pem(self._key))

    def issue_cert(self, *hosts: str) -> LeafCert:
        """A server certificate for these host names and IP addresses."""
        names: list[x509.GeneralName] = []
        for host in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        key = ec.generate_private_key(ec.SECP256R1())
        now = _now()
        cert = (
            x509.CertificateBuilder()
            .subject_name(
                x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])])
            )
            .issuer_name(self._cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + VALID_FOR)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                critical=False,
            )
            .sign(self._key, hashes.SHA256())
        )
        return LeafCert(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))

    def configure_trust(self, ctx: ssl.SSLContext) -> None:
        ctx.load_verify_locations(cadata=self.cert_pem.bytes().decode())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)
