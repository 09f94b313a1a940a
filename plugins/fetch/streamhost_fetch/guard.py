"""The SSRF guard: which addresses a fetch may reach, enforced where the socket is opened.

Checking a URL's host name and then letting the HTTP client connect by name is defeated by DNS
rebinding (the name answers a public address to the check and a private one to the connect). So the
check lives in the network backend httpcore uses to open every connection, redirects included:
resolve once, refuse if any answer is not public, then connect to the very address that was checked.
TLS still gets the host name for SNI and certificate checks, and the Host header is untouched,
because httpcore passes the URL's host to ``start_tls`` and the request, not the address we dial.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

import anyio
import httpcore2

from streamhost import FetchError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]
"""``await resolver(host, port)`` → the IP addresses ``host`` resolves to, as strings."""

METADATA_ADDRESSES = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
"""Deprecated ``::a.b.c.d``; stacks that still tunnel it automatically deliver to ``a.b.c.d``."""
_IPV4_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")
"""SIIT ``::ffff:0:a.b.c.d`` (RFC 2765), which a translator delivers to ``a.b.c.d``."""
_ULA = ipaddress.ip_network("fc00::/7")

# What ``allow_private = true`` opens. Metadata, unspecified and multicast addresses are never a
# page a user means; reaching them takes naming them in ``allow_hosts``.
_OPENED_BY_ALLOW_PRIVATE = frozenset({"loopback", "private", "link-local", "unique local (ULA)", "not public"})


class AddressRefusedError(FetchError):
    """The SSRF guard refused to connect to an address."""


async def system_resolver(host: str, port: int) -> list[str]:
    """Resolve ``host`` with the operating system's resolver (getaddrinfo), keeping its order."""
    try:
        infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise httpcore2.ConnectError(f"could not resolve {host}: {exc}") from exc
    addresses: list[str] = []
    for info in infos:
        address = str(info[4][0])
        if address not in addresses:
            addresses.append(address)
    return addresses


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, compatible, translated, 6to4, Teredo, NAT64): what gets reached."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64 or ip in _IPV4_TRANSLATED or (ip in _IPV4_COMPATIBLE and int(ip) > 1):  # not :: or ::1
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def refusal_reason(ip: IPAddress) -> str | None:
    """Why ``ip`` is not a public address (``"loopback"``, ``"private"``, …), or None when it is public."""
    embedded = _embedded_ipv4(ip)
    if embedded is not None:
        reason = refusal_reason(embedded)
        return None if reason is None else f"{reason}, as {ip.compressed}"
    if ip in METADATA_ADDRESSES:
        return "cloud metadata"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if isinstance(ip, ipaddress.IPv6Address) and ip in _ULA:
        return "unique local (ULA)"
    if isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local:
        return "private"  # fec0::/10, the deprecated predecessor of ULA
    if ip.is_private:
        return "private"
    if not ip.is_global:
        return "not public"
    return None


def parse_ip(text: str) -> IPAddress | None:
    """``text`` as an IP address (IPv6 brackets and zone ids allowed), or None when it is a host name."""
    try:
        return ipaddress.ip_address(text.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


class AddressPolicy:
    """Decides whether a host name resolved to an address may be connected to.

    :param allow_private: open loopback, private, link-local and ULA addresses.
    :param allow_hosts: host names, IP addresses and networks (``10.0.0.0/8``) always allowed.
    """

    def __init__(self, *, allow_private: bool = False, allow_hosts: Iterable[str] = ()) -> None:
        self.allow_private = allow_private
        self.names: set[str] = set()
        self.networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for entry in allow_hosts:
            try:
                self.networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                self.names.add(entry.lower().rstrip("."))

    def check(self, host: str, ip: IPAddress) -> None:
        """Return if ``host`` at ``ip`` may be reached; raise AddressRefusedError saying why not."""
        if host.lower().rstrip(".") in self.names or any(ip in network for network in self.networks):
            return
        reason = refusal_reason(ip)
        if reason is None or (self.allow_private and reason.split(",")[0] in _OPENED_BY_ALLOW_PRIVATE):
            return
        where = ip.compressed if parse_ip(host) == ip else f"{host} ({ip.compressed})"
        hint = (
            f'add "{host}" to [fetch] allow_hosts'
            if reason.startswith(("cloud metadata", "unspecified", "multicast"))
            else f'set [fetch] allow_private = true or add "{host}" to [fetch] allow_hosts'
        )
        raise AddressRefusedError(
            f"refused to connect to {where}: a {reason} address. To reach it deliberately, {hint}"
        )


class GuardedBackend(httpcore2.AsyncNetworkBackend):
    """An httpcore network backend that resolves once, checks every answer, and dials the checked address.

    :param policy: what may be reached.
    :param resolver: how names are resolved (the system's by default). Tests pass their own to play
        a public name that resolves to a private address, or DNS rebinding.
    :param backend: the backend that opens sockets (httpcore's default by default).
    """

    def __init__(
        self,
        policy: AddressPolicy,
        *,
        resolver: Resolver | None = None,
        backend: httpcore2.AsyncNetworkBackend | None = None,
    ) -> None:
        self.policy = policy
        self.resolver: Resolver = resolver or system_resolver
        self.backend = backend or httpcore2.AnyIOBackend()

    async def checked_addresses(self, host: str, port: int) -> list[IPAddress]:
        """Resolve ``host`` once and return its addresses, refusing if any of them is not allowed."""
        literal = parse_ip(host)
        if literal is not None:
            addresses = [literal]
        else:
            addresses = [ip for ip in map(parse_ip, await self.resolver(host, port)) if ip is not None]
            if not addresses:
                raise httpcore2.ConnectError(f"{host} resolved to no address")
        # One refused answer refuses the name: a host that mixes public and private answers is
        # exactly what a rebinding attack looks like.
        for ip in addresses:
            self.policy.check(host, ip)
        return addresses

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        """Open a TCP connection to a checked address of ``host``, trying each answer in turn."""
        error: Exception | None = None
        for ip in await self.checked_addresses(host, port):
            try:
                return await self.backend.connect_tcp(
                    ip.compressed, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore2.ConnectError, httpcore2.ConnectTimeout) as exc:
                error = exc
        assert error is not None
        raise error

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore2.AsyncNetworkStream:
        """Refused: a fetch reaches hosts on the network only."""
        raise AddressRefusedError(f"refused to connect to the unix socket {path}")

    async def sleep(self, seconds: float) -> None:
        await self.backend.sleep(seconds)
