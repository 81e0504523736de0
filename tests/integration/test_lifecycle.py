"""Reference 1.4, 1.6: activity timeout (server ping, 4201), graceful shutdown on SIGTERM (4200),
and TLS on the same port (wss:// and https://)."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import signal
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from it_support import (
    MAIN,
    SOCKET_ID_RE,
    TIMEOUT,
    WsClient,
    data_of,
    error_code,
    http_request,
    open_ws,
    signed_params,
    spawn_clarion,
)

# ---- activity timeout -------------------------------------------------------------------


async def test_silent_client_is_pinged_then_closed_with_4201(start_server):
    server = await start_server(activity_timeout=1, pong_timeout=1)
    client = await server.connect()
    assert client.activity_timeout == 1
    # Activity timeout 1 s, swept every second: the ping comes within ~2 s.
    ping = await client.recv(within=2 * TIMEOUT)
    assert ping["event"] == "pusher:ping", ping
    # We never answer: pusher:error 4201, then close 4201 (reference 1.4).
    code, frames = await client.closed(within=2 * TIMEOUT)
    assert [f["event"] for f in frames] == ["pusher:error"], frames
    assert error_code(frames[0]) == 4201
    assert code == 4201


async def test_client_that_answers_pings_stays_open(start_server):
    server = await start_server(activity_timeout=1, pong_timeout=1)
    client = await server.connect()
    await server.subscribe_ok(client, "news")
    for _ in range(2):
        ping = await client.recv(within=2 * TIMEOUT)
        assert ping["event"] == "pusher:ping", ping
        await client.send_event("pusher:pong")
    # Two pong timeouts have passed since the first ping: still open and subscribed.
    await server.trigger("news", "alive", "yes")
    msg = await client.recv(within=2 * TIMEOUT)
    while msg["event"] == "pusher:ping":  # a third ping may have crossed our trigger
        await client.send_event("pusher:pong")
        msg = await client.recv(within=2 * TIMEOUT)
    assert msg["event"] == "alive"


# ---- SIGTERM ------------------------------------------------------------------------------


async def test_sigterm_closes_clients_with_4200_and_exits_0():
    proc, port = await spawn_clarion()
    try:
        ws = await open_ws(port, MAIN.key)
        client = WsClient(ws, json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT)))
        assert SOCKET_ID_RE.match(client.socket_id)
        await client.subscribe("news")
        await client.expect_succeeded("news")

        proc.send_signal(signal.SIGTERM)
        code, frames = await client.closed(within=2 * TIMEOUT)
        assert code == 4200, (code, frames)
        assert all(f["event"] == "pusher:error" for f in frames), frames
        _, stderr = await asyncio.wait_for(proc.communicate(), 3 * TIMEOUT)
        assert proc.returncode == 0, stderr.decode()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


# ---- TLS ----------------------------------------------------------------------------------


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 / localhost, made for this test."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "clarion-test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path = tmp_path / "cert.pem"
    key_path = tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_path), str(key_path)


async def test_tls_websocket_and_https_api(start_server, tls_files):
    cert, key = tls_files
    server = await start_server(ssl_cert=cert, ssl_key=key)
    context = ssl.create_default_context(cafile=cert)

    client = await server.connect(ssl_context=context)
    assert SOCKET_ID_RE.match(client.socket_id)
    assert data_of(client.established)["activity_timeout"] > 0
    await server.subscribe_ok(client, "secure-news")

    # The official SDK over https, verifying our certificate.
    api = server.sdk(ssl_ca=cert)
    assert await server.call(api.trigger, "secure-news", "over-tls", {"ok": True}) == {}
    msg = await client.expect("over-tls", "secure-news")
    assert data_of(msg) == {"ok": True}
    info = await server.call(api.channel_info, "secure-news", ["subscription_count"])
    assert info == {"occupied": True, "subscription_count": 1}

    # And a plain https client with the same context.
    path = f"/apps/{MAIN.id}/channels"
    status, body = await asyncio.to_thread(
        http_request,
        server.port,
        "GET",
        path,
        params=signed_params(MAIN, "GET", path),
        ssl_context=context,
    )
    assert status == 200, body
    assert b"secure-news" in body


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
async def test_shutdown_does_not_wait_for_idle_keep_alive_api_clients(start_server, tls_files, tls):
    # An app server's SDK keeps its HTTP connection open between requests. Shutting down must
    # tell WebSocket clients to go and let such idle connections go at once, not wait for
    # shutdown_timeout (clarion's own rule: `close_idle_http`).
    cert, key = tls_files
    settings = {"ssl_cert": cert, "ssl_key": key} if tls else {}
    server = await start_server(shutdown_timeout=4 * TIMEOUT, **settings)
    context = ssl.create_default_context(cafile=cert) if tls else None
    client = await server.connect(ssl_context=context)
    api = server.sdk(ssl_ca=cert) if tls else server.sdk()
    assert await server.call(api.channels_info) == {"channels": {}}
    try:
        # Well within shutdown_timeout (4 * TIMEOUT).
        await asyncio.wait_for(server.running.shutdown(), TIMEOUT)
        code, _ = await client.closed()
        assert code == 4200
    finally:
        api._pusher_client.http.session.close()


async def test_tls_server_refuses_an_untrusting_client(start_server, tls_files):
    cert, key = tls_files
    server = await start_server(ssl_cert=cert, ssl_key=key)
    with pytest.raises(ssl.SSLCertVerificationError):
        await open_ws(server.port, MAIN.key, ssl_context=ssl.create_default_context())
    # The server is fine afterwards.
    client = await server.connect(ssl_context=ssl.create_default_context(cafile=cert))
    await client.assert_nothing_pending()
