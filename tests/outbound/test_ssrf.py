"""SSRF guard: blocked ranges, schemes, resolution, allowlists, and the guarded httpx transport (with DNS
pinning: the connection goes to the address that was checked, never to a second answer for the name)."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from a2a_gateway.errors import OutboundRefused, OutboundUnresolved
from a2a_gateway.outbound.ssrf import GuardedTransport, SsrfGuard

PUBLIC = "93.184.216.34"


def resolver_of(
    table: dict[str, list[str]], calls: list[str] | None = None
) -> Callable[[str, int], Awaitable[list[str]]]:
    """A resolver answering from a table; unknown names fail like getaddrinfo does."""

    async def resolve(host: str, port: int) -> list[str]:
        if calls is not None:
            calls.append(host)
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return table[host]

    return resolve


def no_dns() -> Callable[[str, int], Awaitable[list[str]]]:
    return resolver_of({})


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://127.8.9.10:8080/hook",
        "http://10.0.0.1/",
        "http://172.16.5.4/",
        "http://192.168.1.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://100.64.0.1/",
        "http://0.0.0.0/",
        "http://224.0.0.1/",
        "http://240.0.0.1/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:169.254.169.254]/",
        "http://[fe80::1]/",
        "http://[fc00::1]/",
        "http://[64:ff9b::a00:1]/",
        "http://[2002:7f00:1::1]/",
        "https://[::]/",
    ],
)
async def test_non_public_addresses_are_refused(url: str) -> None:
    with pytest.raises(OutboundRefused):
        await SsrfGuard([], resolver=no_dns()).check(url)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/x", "gopher://example.com/"])
async def test_other_schemes_are_refused(url: str) -> None:
    guard = SsrfGuard(["example.com"], resolver=resolver_of({"example.com": [PUBLIC]}))
    with pytest.raises(OutboundRefused, match="scheme"):
        await guard.check(url)


async def test_url_without_host_is_refused() -> None:
    with pytest.raises(OutboundRefused, match="no host"):
        await SsrfGuard([], resolver=no_dns()).check("http:///hook")


async def test_name_resolving_to_loopback_is_refused_and_only_the_log_says_why(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="a2a_gateway.outbound.ssrf")
    guard = SsrfGuard([], resolver=resolver_of({"evil.example": [PUBLIC, "127.0.0.1"]}))
    with pytest.raises(OutboundRefused) as info:
        await guard.check("https://user:hunter2@evil.example/hook?key=s3cret")
    # The caller learns nothing of the gateway's DNS answer.
    assert info.value.message == "endpoint not allowed"
    assert not isinstance(info.value, OutboundUnresolved)
    # The operator does: host, reason and address, but no credentials or query.
    assert "evil.example" in caplog.text and "loopback" in caplog.text and "127.0.0.1" in caplog.text
    assert "hunter2" not in caplog.text and "s3cret" not in caplog.text


async def test_unresolvable_name_is_refused_as_unresolved_with_the_same_message(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="a2a_gateway.outbound.ssrf")
    with pytest.raises(OutboundUnresolved) as info:
        await SsrfGuard([], resolver=no_dns()).check("https://nowhere.invalid/")
    assert info.value.message == "endpoint not allowed"
    assert "nowhere.invalid" in caplog.text and "does not resolve" in caplog.text


async def test_blocked_literal_is_not_reported_as_unresolved() -> None:
    with pytest.raises(OutboundRefused) as info:
        await SsrfGuard([], resolver=no_dns()).check("http://10.0.0.1/")
    assert not isinstance(info.value, OutboundUnresolved)
    assert info.value.message == "endpoint not allowed"


async def test_public_address_is_allowed_and_resolved_every_time() -> None:
    calls: list[str] = []
    guard = SsrfGuard([], resolver=resolver_of({"example.com": [PUBLIC, "2606:2800:220:1::1"]}, calls))
    await guard.check("https://example.com/hook")
    await guard.check("https://Example.COM./hook")
    await guard.check(f"http://{PUBLIC}:8080/")
    assert calls == ["example.com", "example.com"]


@pytest.mark.parametrize(
    ("allowlist", "url"),
    [
        (["127.0.0.1"], "http://127.0.0.1:9000/hook"),
        (["127.0.0.1"], "http://[::ffff:127.0.0.1]/"),
        (["::1"], "http://[::1]/"),
        (["10.1.0.0/16"], "http://10.1.2.3/"),
        (["localhost"], "http://localhost:8000/"),
        (["LocalHost"], "http://localhost./"),
    ],
)
async def test_allowlisted_destinations_pass(allowlist: list[str], url: str) -> None:
    # The resolver knows no names: an allowlisted host name must not even be looked up.
    await SsrfGuard(allowlist, resolver=no_dns()).check(url)


async def test_allowlist_covers_only_what_it_names() -> None:
    guard = SsrfGuard(["10.1.0.0/16", "localhost"], resolver=resolver_of({"intranet": ["10.2.0.5"]}))
    with pytest.raises(OutboundRefused):
        await guard.check("http://10.2.0.1/")
    with pytest.raises(OutboundRefused, match="endpoint not allowed"):
        await guard.check("http://intranet/")


async def test_name_whose_addresses_are_all_allowlisted_passes() -> None:
    guard = SsrfGuard(["127.0.0.1", "::1"], resolver=resolver_of({"dev.local": ["127.0.0.1", "::1"]}))
    await guard.check("http://dev.local/")


async def test_guarded_transport_stops_refused_requests_before_the_wire() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200)

    guard = SsrfGuard([], resolver=resolver_of({"example.com": [PUBLIC]}))
    async with httpx.AsyncClient(transport=GuardedTransport(guard, httpx.MockTransport(handler))) as client:
        assert (await client.get("https://example.com/ok")).status_code == 200
        with pytest.raises(OutboundRefused):
            await client.get("http://169.254.169.254/latest/meta-data/")
    assert seen == [f"https://{PUBLIC}/ok"]


@pytest.mark.parametrize("location", ["http://127.0.0.1/admin", "http://rebound.example/admin"])
async def test_guarded_transport_checks_every_redirect_hop(location: str) -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(302, headers={"Location": location})

    table = {"example.com": [PUBLIC], "rebound.example": ["10.0.0.7"]}
    guard = SsrfGuard([], resolver=resolver_of(table))
    transport = GuardedTransport(guard, httpx.MockTransport(handler))
    async with httpx.AsyncClient(transport=transport, follow_redirects=True) as client:
        with pytest.raises(OutboundRefused):
            await client.get("https://example.com/start")
    assert seen == [f"https://{PUBLIC}/start"]


class Recorder(httpx.AsyncBaseTransport):
    """Stands in for the network: records each request exactly as the wire would get it."""

    def __init__(self, answer: Callable[[httpx.Request], httpx.Response] | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self.bodies: list[bytes] = []
        self._answer = answer or (lambda _: httpx.Response(200))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.bodies.append(await request.aread())
        return self._answer(request)


async def test_relative_redirect_is_resolved_against_the_name_and_pinned_again() -> None:
    calls: list[str] = []
    inner = Recorder(
        lambda r: httpx.Response(302 if r.url.path == "/start" else 200, headers={"Location": "/next"})
    )
    guard = SsrfGuard([], resolver=resolver_of({"example.com": [PUBLIC]}, calls))
    async with httpx.AsyncClient(transport=GuardedTransport(guard, inner), follow_redirects=True) as client:
        response = await client.get("https://example.com/start")
    assert response.status_code == 200 and str(response.url) == "https://example.com/next"
    assert [str(r.url) for r in inner.requests] == [f"https://{PUBLIC}/start", f"https://{PUBLIC}/next"]
    assert [r.headers["host"] for r in inner.requests] == ["example.com", "example.com"]
    assert [r.extensions["sni_hostname"] for r in inner.requests] == ["example.com", "example.com"]
    assert calls == ["example.com", "example.com"]  # each hop resolved again, nothing cached


async def test_request_is_pinned_to_the_vetted_address() -> None:
    inner = Recorder()
    guard = SsrfGuard([], resolver=resolver_of({"example.com": [PUBLIC, "2606:2800:220:1::1"]}))
    async with httpx.AsyncClient(transport=GuardedTransport(guard, inner)) as client:
        response = await client.post("http://example.com:8080/hook?x=1", json={"a": 1}, headers={"X-T": "t"})
    (sent,) = inner.requests
    assert str(sent.url) == f"http://{PUBLIC}:8080/hook?x=1"
    assert sent.headers["host"] == "example.com:8080" and sent.headers["x-t"] == "t"
    assert inner.bodies == [b'{"a":1}'] and sent.headers["content-length"] == "7"
    assert "sni_hostname" not in sent.extensions  # plain http: no TLS name to keep
    # The caller still sees the URL it asked for.
    assert str(response.url) == "http://example.com:8080/hook?x=1"


async def test_https_keeps_the_name_for_tls() -> None:
    inner = Recorder()
    guard = SsrfGuard([], resolver=resolver_of({"api.example.com": [PUBLIC]}))
    async with httpx.AsyncClient(transport=GuardedTransport(guard, inner)) as client:
        await client.get("https://API.Example.com./v1", timeout=3.0)
    (sent,) = inner.requests
    assert sent.url.host == PUBLIC and sent.url.scheme == "https" and sent.url.port is None
    assert sent.headers["host"].lower().rstrip(".") == "api.example.com"
    assert sent.extensions["sni_hostname"] == "api.example.com"
    assert sent.extensions["timeout"]["connect"] == 3.0  # the client's other extensions survive


async def test_ipv6_address_is_pinned_in_bracket_form() -> None:
    inner = Recorder()
    guard = SsrfGuard([], resolver=resolver_of({"v6.example": ["2606:2800:220:1::1"]}))
    async with httpx.AsyncClient(transport=GuardedTransport(guard, inner)) as client:
        await client.get("https://v6.example:8443/x")
    (sent,) = inner.requests
    assert str(sent.url) == "https://[2606:2800:220:1::1]:8443/x"
    assert sent.url.host == "2606:2800:220:1::1" and sent.headers["host"] == "v6.example:8443"
    assert sent.extensions["sni_hostname"] == "v6.example"


class Rebinding:
    """A DNS answer that is public for the guard's look-up and loopback for every look-up after it."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, host: str, port: int) -> list[str]:
        self.calls += 1
        return [PUBLIC] if self.calls == 1 else ["127.0.0.1"]


class ResolvingNetwork(httpx.AsyncBaseTransport):
    """Connects the way a real transport does: an IP literal as is, a name through the resolver again."""

    def __init__(self, resolve: Rebinding) -> None:
        self.resolve = resolve
        self.connected: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        try:
            ipaddress.ip_address(host)
        except ValueError:
            host = (await self.resolve(host, request.url.port or 80))[0]
        self.connected.append(host)
        return httpx.Response(200)


async def test_dns_rebinding_cannot_move_the_connection() -> None:
    rebinding = Rebinding()
    network = ResolvingNetwork(rebinding)
    transport = GuardedTransport(SsrfGuard([], resolver=rebinding), network)
    async with httpx.AsyncClient(transport=transport) as client:
        assert (await client.get("http://rebind.example/")).status_code == 200
        # The name is resolved again for the next request, and now it is refused.
        with pytest.raises(OutboundRefused, match="endpoint not allowed"):
            await client.get("http://rebind.example/")
    assert network.connected == [PUBLIC]
    assert rebinding.calls == 2  # once per request by the guard; the network never had to ask


async def test_pin_returns_the_address_to_connect_to() -> None:
    table = {"example.com": [PUBLIC, "2606:2800:220:1::1"], "dev.local": ["127.0.0.1"]}
    guard = SsrfGuard(["127.0.0.0/8", "localhost"], resolver=resolver_of(table))
    assert await guard.pin("https://example.com/") == ipaddress.ip_address(PUBLIC)
    # A name whose addresses are allowlisted is pinned like any other.
    assert await guard.pin("http://dev.local:9000/") == ipaddress.ip_address("127.0.0.1")
    # IP literals and names allowlisted by name need no rewrite.
    assert await guard.pin(f"http://{PUBLIC}/") is None
    assert await guard.pin("http://[2606:2800:220:1::1]/") is None
    assert await guard.pin("http://localhost:8000/") is None


async def test_literals_and_names_allowlisted_by_name_are_sent_unchanged() -> None:
    inner = Recorder()
    guard = SsrfGuard(["localhost"], resolver=no_dns())
    async with httpx.AsyncClient(transport=GuardedTransport(guard, inner)) as client:
        await client.get("http://localhost:8000/a")
        await client.get(f"https://{PUBLIC}/b")
        await client.get("http://[2606:2800:220:1::1]/c")
    sent = [str(r.url) for r in inner.requests]
    assert sent == ["http://localhost:8000/a", f"https://{PUBLIC}/b", "http://[2606:2800:220:1::1]/c"]
    assert all("sni_hostname" not in r.extensions for r in inner.requests)


def _tls_files(tmp_path: Path, name: str) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for `name` only (no IP address in it)."""
    pytest.importorskip("cryptography")  # comes with the dev tools (google-auth), not a direct dependency
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.now(UTC)

    def cert(
        subject: str,
        key: ec.EllipticCurvePrivateKey,
        issuer: str,
        signer: ec.EllipticCurvePrivateKey,
        ca: bool,
    ) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if ca:
            builder = builder.add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
            )
        else:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False
            )
        return builder.sign(signer, hashes.SHA256())

    ca_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_cert = cert("pinning test CA", ca_key, "pinning test CA", ca_key, ca=True)
    leaf = cert(name, leaf_key, "pinning test CA", ca_key, ca=False)
    paths = (tmp_path / "ca.pem", tmp_path / "leaf.pem", tmp_path / "leaf.key")
    paths[0].write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        leaf_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return paths


async def test_real_tls_connection_to_the_pinned_ip_verifies_the_name(tmp_path: Path) -> None:
    # pinned.test exists in no DNS: only the pinned address can get this request anywhere, and the
    # certificate names pinned.test only, so verification passes only if TLS still uses the name.
    ca, leaf, key = _tls_files(tmp_path, "pinned.test")
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(leaf, key)
    sni: list[str | None] = []

    def record_sni(_sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
        sni.append(name)

    server_tls.sni_callback = record_sni

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        host = next(
            line.split(":", 1)[1].strip() for line in head.split("\r\n") if line.lower().startswith("host:")
        )
        writer.write(
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s"
            % (len(host), host.encode())
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=server_tls)
    port = server.sockets[0].getsockname()[1]
    guard = SsrfGuard(["127.0.0.0/8"], resolver=resolver_of({"pinned.test": ["127.0.0.1"]}))
    inner = httpx.AsyncHTTPTransport(verify=ssl.create_default_context(cafile=str(ca)))
    try:
        async with httpx.AsyncClient(transport=GuardedTransport(guard, inner)) as client:
            response = await client.get(f"https://pinned.test:{port}/x")
    finally:
        server.close()
        await server.wait_closed()
    assert response.status_code == 200 and response.text == f"pinned.test:{port}"
    assert sni == ["pinned.test"]


async def test_default_resolver_refuses_localhost() -> None:
    with pytest.raises(OutboundRefused, match="endpoint not allowed"):
        await SsrfGuard([]).check("http://localhost:8080/")
