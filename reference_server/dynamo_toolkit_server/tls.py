"""TLS and the cluster secret: a local certificate authority, SSL contexts, secret files.

:func:`make_local_pki` issues what a local cluster needs (``dtk cluster up
--tls``): a CA (ECDSA P-256) and, per node, a certificate for its loopback
names that serves as a server and a client one, so the same certificate
carries the node's side of mutual TLS between nodes. :func:`server_context`,
:func:`client_context` and :func:`peer_contexts` build :mod:`ssl` contexts
from PEM files, with a :class:`~dynamo_toolkit.errors.ConfigurationError`
naming the file when one is missing, unreadable or does not match its key.

Private keys and the cluster secret are written readable by their owner only
(``0600``) and never printed.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import secrets
import ssl
from collections.abc import Mapping, Sequence
from pathlib import Path

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from dynamo_toolkit.errors import ConfigurationError

__all__ = [
    "CLIENT_NAME",
    "LocalPki",
    "client_context",
    "issue_certificate",
    "make_local_pki",
    "peer_contexts",
    "read_cluster_secret",
    "read_cluster_secrets",
    "server_context",
    "write_cluster_secret",
]

#: Name of the client certificate :func:`make_local_pki` issues for ``dtk`` itself.
CLIENT_NAME = "dtk-client"
_CA_NAME = "dtk local CA"
_PRIVATE = 0o600
#: A node's certificate serves when it listens and when it connects (mutual TLS).
_BOTH_ENDS = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]


@attrs.frozen
class LocalPki:
    """Where :func:`make_local_pki` put the CA, the nodes' and the client's files (PEM)."""

    directory: Path
    ca_cert: Path
    ca_key: Path
    #: Node name -> (certificate, private key).
    nodes: Mapping[str, tuple[Path, Path]]
    #: (certificate, private key) for ``dtk`` and other clients of the cluster.
    client: tuple[Path, Path]


# -- issuing ---------------------------------------------------------------------


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to a new file readable by its owner only (never briefly wider)."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.unlink(missing_ok=True)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _PRIVATE)
    with os.fdopen(descriptor, "wb") as out:
        out.write(data)
    temporary.replace(path)


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _san(hosts: Sequence[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host.strip("[]"))))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def issue_certificate(
    cert_path: Path,
    key_path: Path,
    common_name: str,
    *,
    hosts: Sequence[str] = (),
    ca_cert: Path | None = None,
    ca_key: Path | None = None,
    is_ca: bool = False,
    days: int = 825,
    not_before: datetime.datetime | None = None,
    not_after: datetime.datetime | None = None,
) -> None:
    """Issue a certificate and a new ECDSA P-256 key into ``cert_path`` and ``key_path``.

    Signed by ``ca_cert``/``ca_key``, or self-signed without them (a CA, with
    ``is_ca``). A leaf certificate is for servers and clients alike, with
    ``hosts`` (IP addresses and DNS names) as its subject alternative names.
    Valid from ``not_before`` (default: an hour ago, for clock skew) to
    ``not_after`` (default: ``days`` after now); tests pass dates in the past
    for an expired certificate.
    """
    key = _new_key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    if ca_cert is not None and ca_key is not None:
        issuer_cert = x509.load_pem_x509_certificate(_read(ca_cert, "CA certificate"))
        signer = serialization.load_pem_private_key(_read(ca_key, "CA key"), password=None)
        if not isinstance(signer, ec.EllipticCurvePrivateKey):
            raise ConfigurationError(f"{ca_key}: the CA key is not an ECDSA key")
        issuer = issuer_cert.subject
        authority = x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key())
    elif ca_cert is None and ca_key is None:
        signer, issuer = key, subject
        authority = x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key())
    else:
        raise ConfigurationError("issue_certificate needs both ca_cert and ca_key, or neither")
    start = not_before or _now() - datetime.timedelta(hours=1)
    end = not_after or _now() + datetime.timedelta(days=days)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(authority, False)
    )
    if is_ca:
        builder = builder.add_extension(
            x509.BasicConstraints(ca=True, path_length=0), critical=True
        ).add_extension(
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
    else:
        builder = builder.add_extension(
            x509.BasicConstraints(ca=False, path_length=None), critical=True
        ).add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        if hosts:
            builder = builder.add_extension(x509.SubjectAlternativeName(_san(hosts)), False)
    certificate = builder.sign(signer, hashes.SHA256())
    _write_private(key_path, _key_pem(key))
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))


def make_local_pki(
    directory: Path,
    node_names: Sequence[str],
    hosts: Sequence[str] = ("127.0.0.1", "localhost", "::1"),
    days: int = 825,
) -> LocalPki:
    """A CA and a certificate per node (and one for ``dtk``) in ``directory``.

    Run again on the same directory, it keeps the CA and the certificates
    already there and issues only the missing ones: a restarted or grown
    cluster keeps trusting its nodes. Files: ``ca.crt``/``ca.key``,
    ``<node>.crt``/``<node>.key``, ``dtk-client.crt``/``dtk-client.key``.
    """
    directory.mkdir(parents=True, exist_ok=True)
    ca_cert, ca_key = directory / "ca.crt", directory / "ca.key"
    if not (ca_cert.exists() and ca_key.exists()):
        issue_certificate(ca_cert, ca_key, _CA_NAME, is_ca=True, days=days)
    issued: dict[str, tuple[Path, Path]] = {}
    for name in [*node_names, CLIENT_NAME]:
        if not name or "/" in name or name.startswith("."):
            raise ConfigurationError(f"a node name for a certificate file, got {name!r}")
        cert, key = directory / f"{name}.crt", directory / f"{name}.key"
        if not (cert.exists() and key.exists()):
            issue_certificate(
                cert, key, name, hosts=hosts, ca_cert=ca_cert, ca_key=ca_key, days=days
            )
        issued[name] = (cert, key)
    client = issued.pop(CLIENT_NAME)
    return LocalPki(directory, ca_cert, ca_key, issued, client)


# -- contexts --------------------------------------------------------------------


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"cannot read the {what} {path}: {exc.strerror}") from None


def _load_chain(context: ssl.SSLContext, cert: Path, key: Path) -> None:
    _read(cert, "certificate")
    _read(key, "private key")
    try:
        context.load_cert_chain(cert, key)
    except ssl.SSLError as exc:
        raise ConfigurationError(
            f"cannot use the certificate {cert} with the key {key}: {exc.reason or exc} "
            "(not PEM, or the key does not match the certificate)"
        ) from None


def _load_ca(context: ssl.SSLContext, ca: Path) -> None:
    _read(ca, "CA certificate")
    try:
        context.load_verify_locations(cafile=ca)
    except ssl.SSLError as exc:
        raise ConfigurationError(
            f"cannot use the CA certificate {ca}: {exc.reason or exc}"
        ) from None


_CLIENT_CERT_MODES = {
    "none": ssl.CERT_NONE,
    "optional": ssl.CERT_OPTIONAL,
    "required": ssl.CERT_REQUIRED,
}


def server_context(
    cert: Path, key: Path, ca: Path | None = None, client_certs: str = "none"
) -> ssl.SSLContext:
    """A TLS 1.2+ server context presenting ``cert``.

    ``client_certs``: ``"none"`` asks for no client certificate; ``"optional"``
    checks one against ``ca`` when sent; ``"required"`` refuses a client
    without one.
    """
    if client_certs not in _CLIENT_CERT_MODES:
        raise ConfigurationError(
            f"client_certs must be one of {', '.join(_CLIENT_CERT_MODES)}, got {client_certs!r}"
        )
    if client_certs != "none" and ca is None:
        raise ConfigurationError(f"client_certs = {client_certs!r} needs a CA to check them")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    _load_chain(context, cert, key)
    if ca is not None:
        _load_ca(context, ca)
    context.verify_mode = _CLIENT_CERT_MODES[client_certs]
    return context


def client_context(
    ca: Path | None, cert: Path | None = None, key: Path | None = None
) -> ssl.SSLContext:
    """A TLS 1.2+ client context checking the server against ``ca`` (and its name).

    ``ca`` None trusts the system's CAs. With ``cert`` and ``key`` it presents
    a client certificate.
    """
    if (cert is None) != (key is None):
        raise ConfigurationError("a client certificate needs both its cert and key files")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies, and checks host names
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if ca is None:
        context.load_default_certs()
    else:
        _load_ca(context, ca)
    if cert is not None and key is not None:
        _load_chain(context, cert, key)
    return context


def peer_contexts(cert: Path, key: Path, ca: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """``(server, client)`` contexts for mutual TLS between nodes.

    The server requires a client certificate signed by ``ca``; the client
    checks the server's against ``ca`` and presents ``cert``. Both ends use
    the node's one certificate.
    """
    return (
        server_context(cert, key, ca, client_certs="required"),
        client_context(ca, cert, key),
    )


# -- the cluster secret ----------------------------------------------------------


def read_cluster_secrets(path: Path) -> tuple[bytes, ...]:
    """Every secret in ``path``, one a line (blank lines skipped): the first proves.

    Several lines serve a rotation: a node accepts a peer proving any of
    them. A file that others than its owner may read is refused.
    """
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise ConfigurationError(f"cannot read the cluster secret {path}: {exc.strerror}") from None
    if mode & 0o077:
        raise ConfigurationError(
            f"the cluster secret {path} is readable by others (mode {mode & 0o777:o}); "
            f"chmod 600 {path}"
        )
    text = _read(path, "cluster secret").decode("utf-8", errors="replace")
    found = tuple(line.strip().encode() for line in text.splitlines() if line.strip())
    if not found:
        raise ConfigurationError(f"the cluster secret {path} is empty")
    return found


def read_cluster_secret(path: Path) -> bytes:
    """The secret a node proves with: the first line of ``path``."""
    return read_cluster_secrets(path)[0]


def write_cluster_secret(path: Path) -> None:
    """Write a new random secret (32 bytes, hex) to ``path``, ``0600``; keep one already there."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_private(path, (secrets.token_hex(32) + "\n").encode())
