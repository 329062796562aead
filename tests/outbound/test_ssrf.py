"""SSRF guard: blocked ranges, schemes, resolution, allowlists, and the guarded httpx transport."""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable

import httpx
import pytest

from a2a_gateway.errors import OutboundRefused
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


async def test_name_resolving_to_loopback_is_refused_with_reason() -> None:
    guard = SsrfGuard([], resolver=resolver_of({"evil.example": [PUBLIC, "127.0.0.1"]}))
    with pytest.raises(OutboundRefused) as info:
        await guard.check("https://user:hunter2@evil.example/hook?key=s3cret")
    message = info.value.message
    assert "evil.example" in message
    assert "loopback" in message
    assert "hunter2" not in message
    assert "s3cret" not in message


async def test_unresolvable_name_is_refused() -> None:
    with pytest.raises(OutboundRefused, match="does not resolve"):
        await SsrfGuard([], resolver=no_dns()).check("https://nowhere.invalid/")


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
    with pytest.raises(OutboundRefused, match="private"):
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
    assert seen == ["https://example.com/ok"]


async def test_guarded_transport_checks_every_redirect_hop() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(302, headers={"Location": "http://127.0.0.1/admin"})

    guard = SsrfGuard([], resolver=resolver_of({"example.com": [PUBLIC]}))
    transport = GuardedTransport(guard, httpx.MockTransport(handler))
    async with httpx.AsyncClient(transport=transport, follow_redirects=True) as client:
        with pytest.raises(OutboundRefused):
            await client.get("https://example.com/start")
    assert seen == ["https://example.com/start"]


async def test_default_resolver_refuses_localhost() -> None:
    with pytest.raises(OutboundRefused, match="loopback"):
        await SsrfGuard([]).check("http://localhost:8080/")
