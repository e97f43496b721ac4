"""Throwaway PKI for the stand-in: a CA, a server certificate and client certificates.

Everything is made with `cryptography` in a few milliseconds (EC P-256 keys).  The
server certificate carries SANs for ``127.0.0.1`` and ``localhost``.  A client
certificate has ``CN=<tool>`` (the user name kube-apiserver derives from a client
certificate) and ``O=toolforge``.

A "foreign" CA is also made: Python's ``ssl`` module cannot request a client certificate
without verifying it during the handshake (kube-apiserver, written in Go, uses
``RequestClientCert`` and checks the chain later, answering 401).  So the server trusts
both CAs at the TLS layer and the authenticator then accepts only certificates signed by
the cluster CA: a certificate from the foreign CA gets 401 ``Unauthorized`` exactly like a
real API server.  A certificate from a CA unknown to both fails the TLS handshake.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _key():
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def _pem_cert(cert) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _name(cn: str, org: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attrs.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


@dataclass
class Authority:
    """A certificate authority able to sign leaf certificates."""

    key: object
    cert: x509.Certificate

    @classmethod
    def create(cls, cn: str) -> "Authority":
        key = _key()
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(cn))
            .issuer_name(_name(cn))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, key_cert_sign=True,
                    crl_sign=True, encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .sign(key, hashes.SHA256())
        )
        return cls(key, cert)

    @property
    def cert_pem(self) -> bytes:
        return _pem_cert(self.cert)

    def issue(self, cn: str, *, org: str | None = None, server: bool = False, expired: bool = False):
        """Return (cert_pem, key_pem) for a leaf certificate signed by this CA (``expired``:
        valid from 30 days ago until yesterday)."""
        key = _key()
        now = datetime.datetime.now(datetime.timezone.utc)
        if expired:
            now -= datetime.timedelta(days=2)
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(cn, org))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=28 if expired else 0, hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]),
                critical=False,
            ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        else:
            builder = builder.add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
            )
        cert = builder.sign(self.key, hashes.SHA256())
        return _pem_cert(cert), _pem_key(key)

    def signed(self, der: bytes) -> bool:
        """True if the DER certificate was issued (and signed) by this CA."""
        try:
            cert = x509.load_der_x509_certificate(der)
        except ValueError:
            return False
        if cert.issuer != self.cert.subject:
            return False
        try:
            self.cert.public_key().verify(
                cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm)
            )
        except Exception:  # InvalidSignature and friends
            return False
        now = datetime.datetime.now(datetime.timezone.utc)
        not_after = getattr(cert, "not_valid_after_utc", None) or cert.not_valid_after.replace(
            tzinfo=datetime.timezone.utc)
        return now <= not_after


def common_name(der: bytes) -> str | None:
    cert = x509.load_der_x509_certificate(der)
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return names[0].value if names else None


class PKI:
    """The cluster CA, the server certificate and a foreign CA, written to ``directory``."""

    def __init__(self, directory: str):
        self.directory = directory
        os.makedirs(directory, exist_ok=True)
        self.ca = Authority.create("standin-kubernetes-ca")
        self.foreign_ca = Authority.create("some-other-ca")
        self.ca_file = self._write("ca.crt", self.ca.cert_pem)
        self.trust_file = self._write("trusted-at-tls.crt", self.ca.cert_pem + self.foreign_ca.cert_pem)
        cert, key = self.ca.issue("kube-apiserver", server=True)
        self.server_cert_file = self._write("server.crt", cert)
        self.server_key_file = self._write("server.key", key)
        self._clients: dict[tuple[str, bool, bool], tuple[str, str]] = {}

    def _write(self, name: str, data: bytes) -> str:
        path = os.path.join(self.directory, name)
        with open(path, "wb") as f:
            f.write(data)
        os.chmod(path, 0o600)
        return path

    def client_files(self, cn: str, *, foreign: bool = False, expired: bool = False) -> tuple[str, str]:
        """(cert path, key path) of a client certificate for ``cn``, made on first use
        (``expired``: one that expired yesterday)."""
        if (cn, foreign, expired) not in self._clients:
            ca = self.foreign_ca if foreign else self.ca
            cert, key = ca.issue(cn, org="toolforge", expired=expired)
            prefix = ("foreign-" if foreign else "") + ("expired-" if expired else "")
            self._clients[(cn, foreign, expired)] = (
                self._write(f"{prefix}{cn}.crt", cert),
                self._write(f"{prefix}{cn}.key", key),
            )
        return self._clients[(cn, foreign, expired)]

    def client_pem(self, cn: str, *, foreign: bool = False) -> tuple[bytes, bytes]:
        cert_path, key_path = self.client_files(cn, foreign=foreign)
        with open(cert_path, "rb") as c, open(key_path, "rb") as k:
            return c.read(), k.read()
