"""The unary upstream clients (the hand-written LeanHttp and httpcore's pool, PooledHttp) against real
sockets: keep-alive reuse, the vetted (pinned) address with the name in the Host header and as the TLS
server name, SSRF refusals, response framings, limits."""

from __future__ import annotations

import asyncio
import datetime
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from a2a_gateway.errors import OutboundRefused
from a2a_gateway.outbound.lean_http import LeanHttp, LeanHttpError, UnaryHttp
from a2a_gateway.outbound.pooled_http import PooledHttp
from a2a_gateway.outbound.ssrf import SsrfGuard

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
Make = Callable[..., UnaryHttp]


@pytest.fixture(params=[LeanHttp, PooledHttp], ids=["lean", "pooled"])
def make(request: pytest.FixtureRequest) -> Make:
    """Each unary client, built as the gateway builds it: ``make(guard, **options)``."""
    client: Make = request.param
    return client


async def loopback_resolver(host: str, port: int) -> list[str]:
    return ["127.0.0.1"] if host == "agent.test" else []


def guard(allow: bool = True) -> SsrfGuard:
    return SsrfGuard(["127.0.0.0/8"] if allow else [], resolver=loopback_resolver)


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
    )
    return head, await reader.readexactly(length)


@pytest.fixture
async def server() -> AsyncIterator[Callable[[Handler], Awaitable[int]]]:
    """Start raw TCP servers on loopback; their port. Connections still open at the end are closed."""
    servers: list[asyncio.Server] = []
    handlers: set[asyncio.Task[Any]] = set()

    async def start(handler: Handler) -> int:
        async def tracked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            handlers.add(task)
            try:
                await handler(reader, writer)
            finally:
                writer.close()

        srv = await asyncio.start_server(tracked, "127.0.0.1", 0)
        servers.append(srv)
        port: int = srv.sockets[0].getsockname()[1]
        return port

    yield start
    for task in handlers:
        task.cancel()
    await asyncio.gather(*handlers, return_exceptions=True)
    for srv in servers:
        srv.close()
        await srv.wait_closed()


def keep_alive_json(seen: list[Any]) -> Handler:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        try:
            while True:
                head, body = await read_request(reader)
                seen.append((peer, head, body))
                answer = b'{"ok":true}'
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
                    % (len(answer), answer)
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    return handle


async def test_connections_are_reused_and_pinned_with_the_name_kept(server: Any, make: Make) -> None:
    seen: list[Any] = []
    port = await server(keep_alive_json(seen))
    client = make(guard())
    try:
        for n in range(3):
            reply = await client.post(
                f"http://agent.test:{port}/a2a", b'{"n":%d}' % n, {"A2A-Version": "1.0"}
            )
            assert reply.status == 200 and reply.body == b'{"ok":true}'
    finally:
        await client.aclose()
    assert len({peer for peer, _, _ in seen}) == 1  # one connection for all three
    head = seen[0][1].decode().lower()
    assert head.startswith("post /a2a http/1.1\r\n") and f"\r\nhost: agent.test:{port}\r\n" in head
    assert "\r\na2a-version: 1.0\r\n" in head and [b for _, _, b in seen] == [
        b'{"n":0}',
        b'{"n":1}',
        b'{"n":2}',
    ]


async def test_forbidden_destinations_are_refused_before_connecting(server: Any, make: Make) -> None:
    seen: list[Any] = []
    port = await server(keep_alive_json(seen))
    client = make(guard(allow=False))
    for url in (
        f"http://127.0.0.1:{port}/a2a",
        f"http://agent.test:{port}/a2a",
        "http://169.254.169.254/a2a",
    ):
        with pytest.raises(OutboundRefused):
            await client.post(url, b"{}", {})
    assert seen == []


async def test_chunked_and_connection_framed_bodies(server: Any, make: Make) -> None:
    async def chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(
            b'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n4\r\n{"a"\r\n3;x=y\r\n:1}\r\n0\r\n\r\n'
        )
        await writer.drain()

    async def until_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.0 200 OK\r\ncontent-type: application/json\r\n\r\n[1,2,3]")
        writer.close()

    client = make(guard())
    assert (await client.post(f"http://127.0.0.1:{await server(chunked)}/", b"{}", {})).body == b'{"a":1}'
    assert (await client.post(f"http://127.0.0.1:{await server(until_close)}/", b"{}", {})).body == b"[1,2,3]"
    await client.aclose()


async def test_a_connection_the_server_closed_is_not_reused(server: Any, make: Make) -> None:
    peers: list[Any] = []

    async def one_shot(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peers.append(writer.get_extra_info("peername"))
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")
        await writer.drain()
        writer.close()  # without saying "Connection: close"

    port = await server(one_shot)
    client = make(guard())
    for _ in range(2):
        assert (await client.post(f"http://127.0.0.1:{port}/", b"{}", {})).body == b"{}"
        await asyncio.sleep(0.05)  # the close reaches the client's connection
    await client.aclose()
    assert len(set(peers)) == 2


async def test_time_limit_and_size_limit(server: Any, make: Make) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.Event().wait()  # never answers

    async def huge(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 999999999\r\n\r\n")
        await writer.drain()
        await reader.read()  # until the client hangs up

    client = make(guard(), answer_seconds=0.2, max_body_bytes=1024)
    with pytest.raises(LeanHttpError, match="timed out"):
        await client.post(f"http://127.0.0.1:{await server(silent)}/", b"{}", {})
    with pytest.raises(LeanHttpError):
        await client.post(f"http://127.0.0.1:{await server(huge)}/", b"{}", {})
    with pytest.raises(LeanHttpError):
        await client.post("http://127.0.0.1:9/", b"{}", {})  # nothing listens on the discard port
    await client.aclose()


def certificate_for(name: str, folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate naming only ``name``, and its key (PEM files)."""
    pytest.importorskip("cryptography")
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_file, key_file


async def test_tls_names_the_url_host_while_connecting_to_the_vetted_address(
    make: Make, tmp_path: Path
) -> None:
    cert_file, key_file = certificate_for("agent.test", tmp_path)
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    served.load_cert_chain(cert_file, key_file)
    names: list[str | None] = []
    served.sni_callback = lambda _sock, name, _ctx: names.append(name)
    seen: list[Any] = []
    srv = await asyncio.start_server(keep_alive_json(seen), "127.0.0.1", 0, ssl=served)
    port = srv.sockets[0].getsockname()[1]
    client = make(guard(), tls=ssl.create_default_context(cafile=str(cert_file)))
    try:
        reply = await client.post(f"https://agent.test:{port}/a2a", b"{}", {})
        assert reply.status == 200 and reply.body == b'{"ok":true}'
        # agent.test resolves (in this test) to 127.0.0.1 only: the connection went to the vetted address,
        # and the TLS handshake and the Host header named the URL's host.
        assert names == ["agent.test"] and f"host: agent.test:{port}\r\n" in seen[0][1].decode().lower()
        with pytest.raises(LeanHttpError):  # the certificate names agent.test, not the address
            await client.post(f"https://127.0.0.1:{port}/a2a", b"{}", {})
    finally:
        await client.aclose()
        srv.close()
        await srv.wait_closed()
