"""SSRF guard: refuses outbound URLs whose host resolves to a non-public address unless allowlisted.

The guard resolves a host name once per request and vets every address it gets. `GuardedTransport` then
connects to the vetted address itself (DNS pinning), so a name that changes its answer between the check
and the connection (DNS rebinding) cannot steer the request somewhere the guard never saw.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Awaitable, Callable, Iterable

import httpx

from a2a_gateway.errors import OutboundRefused, OutboundUnresolved

log = logging.getLogger(__name__)
# What a caller is told about any address-based refusal. Which addresses a name resolves to, or whether it
# resolves at all, is an answer of the gateway's DNS, so it goes to the log only (probing internal names).
NOT_ALLOWED = "endpoint not allowed"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[str]]]

_ALLOWED_SCHEMES = frozenset({"http", "https"})
_DEFAULT_PORTS = {"http": 80, "https": 443}

# Python 3.11's is_global misses several special-purpose ranges, so they are named explicitly.
_EXTRA_BLOCKED: tuple[tuple[IPNetwork, str], ...] = tuple(
    (ipaddress.ip_network(net), why)
    for net, why in (
        ("0.0.0.0/8", "unspecified"),
        ("100.64.0.0/10", "shared address space (CGNAT)"),
        ("192.0.0.0/24", "reserved"),
        ("198.18.0.0/15", "reserved"),
        ("::/96", "reserved"),
        ("64:ff9b:1::/48", "reserved"),
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


async def system_resolver(host: str, port: int) -> list[str]:
    """Resolve a host name with the event loop's getaddrinfo."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _embedded_ipv4(ip: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 address carries (mapped, 6to4, NAT64), so it is judged by that."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip.sixtofour is not None:
            return ip.sixtofour
        if ip in _NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


def blocked_reason(address: IPAddress) -> str | None:
    """Why an address must not be reached from the gateway, or None when it is publicly routable."""
    ip = _embedded_ipv4(address)
    checks = (
        (ip.is_loopback, "loopback"),
        (ip.is_link_local, "link-local"),
        (ip.is_unspecified, "unspecified"),
        (ip.is_multicast, "multicast"),
    )
    for hit, why in checks:
        if hit:
            return why
    for net, why in _EXTRA_BLOCKED:
        if ip.version == net.version and ip in net:
            return why
    if ip.is_private:
        return "private"
    if ip.is_reserved or not ip.is_global:
        return "reserved"
    return None


class SsrfGuard:
    """Checks outbound URLs against private/loopback/link-local ranges and a configured allowlist."""

    def __init__(self, allowlist: Iterable[str] = (), resolver: Resolver | None = None) -> None:
        self._networks: list[IPNetwork] = []
        self._hosts: set[str] = set()
        for entry in allowlist:
            try:
                self._networks.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError:
                self._hosts.add(_normalise_host(entry))
        self._resolve = resolver or system_resolver

    def _allowlisted(self, ip: IPAddress) -> bool:
        # A mapped/6to4/NAT64 address is allowed if either its own form or the IPv4 inside is listed.
        candidates = {ip, _embedded_ipv4(ip)}
        return any(c.version == n.version and c in n for c in candidates for n in self._networks)

    async def check(self, url: str) -> None:
        """Raise OutboundRefused unless the URL may be fetched; names are re-resolved on every call."""
        await self.pin(url)

    async def pin(self, url: str) -> IPAddress | None:
        """Vet the URL and return the address a connection must use, or None when the URL needs no rewrite.

        A host name is resolved afresh (never cached) and every address it resolves to must be public or
        allowlisted; the first of them is returned. An IP literal, or a host allowlisted by name, gives
        None: the URL already says where to connect. Raises OutboundRefused when the URL may not be fetched.
        """
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, TypeError, ValueError) as exc:
            raise OutboundRefused("Outbound URL is not a valid URL") from exc
        # Only scheme and host go into messages: the URL may carry userinfo or tokens.
        if parsed.scheme not in _ALLOWED_SCHEMES:
            raise OutboundRefused(f"Outbound URL scheme {parsed.scheme!r} is not allowed (http/https only)")
        host = _normalise_host(parsed.raw_host.decode("ascii", errors="replace"))
        if not host:
            raise OutboundRefused("Outbound URL has no host")
        if host in self._hosts:
            return None
        literal = _ip_literal(host)
        if literal is not None:
            self._vet(host, [literal])
            return None
        addresses = await self._resolve_name(host, parsed.port or _DEFAULT_PORTS[parsed.scheme])
        self._vet(host, addresses)
        return addresses[0]

    def _vet(self, host: str, addresses: list[IPAddress]) -> None:
        for ip in addresses:
            if self._allowlisted(ip):
                continue
            why = blocked_reason(ip)
            if why is not None:
                log.warning("outbound refused: host %r resolves to %s address %s", host[:255], why, ip)
                raise OutboundRefused(NOT_ALLOWED)

    async def _resolve_name(self, host: str, port: int) -> list[IPAddress]:
        try:
            resolved = await self._resolve(host, port)
        except (OSError, UnicodeError) as exc:
            log.info("outbound refused: host %r does not resolve (%s)", host[:255], type(exc).__name__)
            raise OutboundUnresolved(NOT_ALLOWED) from None
        if not resolved:
            log.info("outbound refused: host %r does not resolve (no addresses)", host[:255])
            raise OutboundUnresolved(NOT_ALLOWED)
        try:
            return [ipaddress.ip_address(a) for a in resolved]
        except ValueError:
            log.warning("outbound refused: host %r resolved to an unusable address", host[:255])
            raise OutboundRefused(NOT_ALLOWED) from None


def _ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _normalise_host(host: str) -> str:
    # A trailing dot names the same host, so "localhost." must not slip past a "localhost" rule.
    return host.strip().lower().rstrip(".")


def _pinned_request(request: httpx.Request, address: IPAddress) -> httpx.Request:
    """A copy of the request that connects to `address` but still names the original host.

    The URL's host becomes the IP literal (httpx brackets IPv6); the Host header keeps the original name, and
    for https the TLS SNI name (which certificate verification also uses) is the original host name.
    """
    headers = request.headers.copy()
    headers.setdefault("Host", request.url.netloc.decode("ascii"))
    extensions = dict(request.extensions)
    if request.url.scheme == "https":
        extensions["sni_hostname"] = _normalise_host(request.url.raw_host.decode("ascii"))
    return httpx.Request(
        request.method,
        request.url.copy_with(host=str(address)),
        headers=headers,
        stream=request.stream,
        extensions=extensions,
    )


class GuardedTransport(httpx.AsyncBaseTransport):
    """An httpx transport that vets every request, redirects included, and pins it to the vetted address."""

    def __init__(self, guard: SsrfGuard, inner: httpx.AsyncBaseTransport | None = None) -> None:
        self._guard = guard
        self._inner = inner or httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Check the destination, then hand the wrapped transport a request aimed at the vetted address.

        The client's own request object is left untouched, so redirects are resolved against the original
        URL and every hop comes back here to be checked and pinned again.
        """
        address = await self._guard.pin(str(request.url))
        if address is not None:
            request = _pinned_request(request, address)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        """Close the wrapped transport."""
        await self._inner.aclose()
