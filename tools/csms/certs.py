"""Run-time X.509 material (cryptography): test CAs, server/client certificates, CSR signing."""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def new_key(kind: str = "ec") -> PrivateKey:
    """A P-256 key (fast) or, with kind="rsa", RSA 2048."""
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _name(cn: str, org: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


def _validity(builder: x509.CertificateBuilder, days: int) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return builder.not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(
        now + datetime.timedelta(days=days)
    )


def make_ca(cn: str = "evfleet test CA", days: int = 365, kind: str = "ec") -> tuple[bytes, bytes]:
    """A self-signed CA: (certificate PEM, key PEM)."""
    key = new_key(kind)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
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
        )  # fmt: skip
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    cert = _validity(builder, days).sign(key, hashes.SHA256())
    return cert_pem(cert), key_pem(key)


def _issue(
    ca_cert_pem: bytes,
    ca_key_pem: bytes,
    subject: x509.Name,
    public_key: object,
    *,
    server_names: Sequence[str] = (),
    client: bool = False,
    days: int = 365,
) -> x509.Certificate:
    ca_cert = x509.load_pem_x509_certificate(ca_cert_pem)
    ca_key = serialization.load_pem_private_key(ca_key_pem, password=None)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(public_key)  # type: ignore[arg-type]
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
    )
    if server_names:
        alt: list[x509.GeneralName] = []
        for name in server_names:
            try:
                alt.append(x509.IPAddress(ipaddress.ip_address(name)))
            except ValueError:
                alt.append(x509.DNSName(name))
        builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
    return _validity(builder, days).sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]


def make_cert(
    ca_cert_pem: bytes,
    ca_key_pem: bytes,
    cn: str,
    *,
    server_names: Sequence[str] = ("localhost", "127.0.0.1"),
    client: bool = False,
    days: int = 365,
    kind: str = "ec",
) -> tuple[bytes, bytes]:
    """A leaf certificate signed by the CA: (certificate PEM, key PEM). client=True: a charger's."""
    key = new_key(kind)
    names = () if client else server_names
    cert = _issue(
        ca_cert_pem, ca_key_pem, _name(cn), key.public_key(), server_names=names, client=client,
        days=days,
    )  # fmt: skip
    return cert_pem(cert), key_pem(key)


def make_csr(cn: str, key: PrivateKey, org: str | None = None) -> bytes:
    """A PEM certificate signing request (what a charger puts in SignCertificate.csr)."""
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(_name(cn, org))
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM)


def sign_csr(csr_pem: bytes, ca_cert_pem: bytes, ca_key_pem: bytes, days: int = 365) -> bytes:
    """Issue a charge point (client) certificate for a CSR; raises ValueError if it is not valid."""
    csr = x509.load_pem_x509_csr(csr_pem)
    if not csr.is_signature_valid:
        raise ValueError("CSR signature is not valid")
    cert = _issue(ca_cert_pem, ca_key_pem, csr.subject, csr.public_key(), client=True, days=days)
    return cert_pem(cert)


def write_pem(directory: Path, name: str, cert: bytes, key: bytes) -> tuple[str, str]:
    """Write <name>.crt and <name>.key; return their paths."""
    cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
    cert_path.write_bytes(cert)
    key_path.write_bytes(key)
    return str(cert_path), str(key_path)


class CsrSigner:
    """Answers SignCertificate: signs the charger's CSR with a CA read from files."""

    def __init__(self, ca_cert_path: str, ca_key_path: str, days: int = 365) -> None:
        self.ca_cert = Path(ca_cert_path).read_bytes()
        self.ca_key = Path(ca_key_path).read_bytes()
        self.days = days

    def can_sign(self, csr_pem: str) -> bool:
        try:
            return x509.load_pem_x509_csr(csr_pem.encode()).is_signature_valid
        except ValueError:
            return False

    def sign(self, csr_pem: str) -> str:
        """The certificate chain (leaf then CA) as PEM text."""
        leaf = sign_csr(csr_pem.encode(), self.ca_cert, self.ca_key, self.days)
        return (leaf + self.ca_cert).decode()
