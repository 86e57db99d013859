"""tls.py: the local CA, SSL contexts and cluster-secret files, without a node."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from dynamo_toolkit.errors import ConfigurationError
from dynamo_toolkit.in_process_cluster import Cluster
from dynamo_toolkit_server.resp.server import start_resp_server
from dynamo_toolkit_server.service import StoreService
from dynamo_toolkit_server.tls import (
    client_context,
    issue_certificate,
    make_local_pki,
    peer_contexts,
    read_cluster_secret,
    read_cluster_secrets,
    server_context,
    write_cluster_secret,
)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_local_pki_issues_node_certificates_for_both_ends(tmp_path: Path) -> None:
    pki = make_local_pki(tmp_path / "pki", ["n1", "n2"])
    assert set(pki.nodes) == {"n1", "n2"}
    assert _mode(pki.ca_key) == 0o600
    for cert, key in [*pki.nodes.values(), pki.client]:
        assert _mode(key) == 0o600
        loaded = x509.load_pem_x509_certificate(cert.read_bytes())
        usage = loaded.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert set(usage) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
        names = loaded.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert "localhost" in names.get_values_for_type(x509.DNSName)
        assert {str(ip) for ip in names.get_values_for_type(x509.IPAddress)} == {
            "127.0.0.1",
            "::1",
        }
    ca = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_local_pki_keeps_its_ca_and_adds_missing_nodes(tmp_path: Path) -> None:
    first = make_local_pki(tmp_path, ["n1"])
    ca, n1 = first.ca_cert.read_bytes(), first.nodes["n1"][0].read_bytes()
    again = make_local_pki(tmp_path, ["n1", "n2"])
    assert again.ca_cert.read_bytes() == ca
    assert again.nodes["n1"][0].read_bytes() == n1
    assert again.nodes["n2"][0].exists()


def test_a_tls_connection_between_contexts_of_one_ca(tmp_path: Path) -> None:
    pki = make_local_pki(tmp_path, ["n1", "n2"])
    server, _ = peer_contexts(*pki.nodes["n1"], pki.ca_cert)
    _, client = peer_contexts(*pki.nodes["n2"], pki.ca_cert)
    assert server.verify_mode == ssl.CERT_REQUIRED
    assert client.check_hostname

    async def main() -> bytes:
        async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            peer = writer.get_extra_info("peercert")
            writer.write(dict(x[0] for x in peer["subject"])["commonName"].encode())
            await writer.drain()
            writer.close()

        listening = await asyncio.start_server(echo, "127.0.0.1", 0, ssl=server)
        port = listening.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=client, server_hostname="127.0.0.1"
        )
        answer = await reader.read()
        writer.close()
        listening.close()
        await listening.wait_closed()
        return answer

    assert asyncio.run(main()) == b"n2"  # the server saw the client's certificate


def test_server_context_modes(tmp_path: Path) -> None:
    pki = make_local_pki(tmp_path, ["n1"])
    cert, key = pki.nodes["n1"]
    assert server_context(cert, key).verify_mode == ssl.CERT_NONE
    optional = server_context(cert, key, pki.ca_cert, client_certs="optional")
    assert optional.verify_mode == ssl.CERT_OPTIONAL
    assert optional.minimum_version == ssl.TLSVersion.TLSv1_2
    with pytest.raises(ConfigurationError, match="needs a CA"):
        server_context(cert, key, client_certs="required")
    with pytest.raises(ConfigurationError, match="one of none, optional, required"):
        server_context(cert, key, pki.ca_cert, client_certs="sometimes")


def test_bad_files_are_named(tmp_path: Path) -> None:
    pki = make_local_pki(tmp_path, ["n1", "n2"])
    cert, key = pki.nodes["n1"]
    missing = tmp_path / "nowhere.crt"
    with pytest.raises(ConfigurationError, match=r"nowhere\.crt"):
        server_context(missing, key)
    with pytest.raises(ConfigurationError, match=r"n1\.crt.*n2\.key"):
        server_context(cert, pki.nodes["n2"][1])  # a key of another certificate
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    with pytest.raises(ConfigurationError, match=r"garbage\.pem"):
        client_context(garbage)
    with pytest.raises(ConfigurationError, match="both"):
        client_context(pki.ca_cert, cert=cert)


def test_cluster_secret_files(tmp_path: Path) -> None:
    path = tmp_path / "cluster.secret"
    write_cluster_secret(path)
    assert _mode(path) == 0o600
    secret = read_cluster_secret(path)
    assert len(secret) == 64  # 32 random bytes, hex
    write_cluster_secret(path)  # kept, not replaced
    assert read_cluster_secret(path) == secret
    path.write_text(f"\n  new-secret  \n{secret.decode()}\n")
    assert read_cluster_secrets(path) == (b"new-secret", secret)  # rotation: first proves


def test_cluster_secret_refusals(tmp_path: Path) -> None:
    path = tmp_path / "cluster.secret"
    with pytest.raises(ConfigurationError, match=r"cluster\.secret"):
        read_cluster_secret(path)
    path.write_text("  \n")
    path.chmod(0o600)
    with pytest.raises(ConfigurationError, match="is empty"):
        read_cluster_secret(path)
    path.write_text("s3cret\n")
    path.chmod(0o644)
    with pytest.raises(ConfigurationError, match=r"readable by others.*chmod 600"):
        read_cluster_secret(path)


def test_client_ports_refuse_missing_expired_and_foreign_client_certificates(
    tmp_path: Path,
) -> None:
    """With tls_client_certs = "required", only a valid certificate of the CA gets in."""
    pki = make_local_pki(tmp_path / "pki", ["n1"])
    cert, key = pki.nodes["n1"]
    expired = (tmp_path / "expired.crt", tmp_path / "expired.key")
    past = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=30)
    issue_certificate(
        *expired,
        "old-client",
        ca_cert=pki.ca_cert,
        ca_key=pki.ca_key,
        not_before=past - datetime.timedelta(days=1),
        not_after=past,
    )
    foreign = make_local_pki(tmp_path / "foreign", [])

    async def scenario() -> None:
        async with await Cluster.start(1, {"store": {"n": 1, "r": 1, "w": 1}}) as cluster:
            server = await start_resp_server(
                StoreService(cluster.node("n1")),
                "127.0.0.1",
                0,
                tls=server_context(cert, key, pki.ca_cert, "required"),
            )
            try:

                async def ping(client_cert: tuple[Path, Path] | None) -> bytes:
                    context = client_context(pki.ca_cert, *(client_cert or (None, None)))
                    reader, writer = await asyncio.open_connection(
                        "127.0.0.1", server.port, ssl=context, server_hostname="127.0.0.1"
                    )
                    try:
                        writer.write(b"PING\r\n")
                        return await asyncio.wait_for(reader.readline(), 10)
                    finally:
                        writer.close()
                        with contextlib.suppress(OSError, ssl.SSLError):
                            await writer.wait_closed()

                async def refused(client_cert: tuple[Path, Path] | None) -> bool:
                    # TLS 1.3 tells the client after the handshake: its first read
                    # fails, or the connection closes without an answer.
                    try:
                        return await ping(client_cert) == b""
                    except (ssl.SSLError, ConnectionError):
                        return True

                assert await ping(pki.client) == b"+PONG\r\n"
                for client_cert in (None, expired, foreign.client):
                    assert await refused(client_cert), client_cert
            finally:
                await server.close()

    asyncio.run(scenario())
