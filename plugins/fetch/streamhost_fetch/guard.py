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

from .addresses import IPAddress, not_global_reason

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

# What ``allow_private = true`` does not open. Metadata, unspecified, multicast and broadcast
# addresses are never a page a user means; reaching them takes naming them in ``allow_hosts``.
_NEVER_OPENED_BY_ALLOW_PRIVATE = ("cloud metadata", "unspecified", "multicast", "limited broadcast")


class AddressRefusedError(FetchError):
    """The SSRF guard refused to connect to an address."""


class UnresolvedError(httpcore2.ConnectError):
    """A host name did not resolve, at the connection layer. httpx2 reports it as a ConnectError caused
    by this one; the transfer turns that into a ``HostNotFoundError`` naming the URL.

    :param why: what the resolver said; ``proxy``: the proxy the request was for, when there is one.
    """

    def __init__(self, host: str, why: str, *, proxy: str | None = None) -> None:
        if proxy is None:
            message = f"the host {host} does not resolve ({why}); check the address"
        else:
            message = (
                f"the host {host} does not resolve here ({why}), so it cannot be checked before it goes to the "
                f'proxy {proxy}. Check the address; if only the proxy can resolve it, add "{host}" to '
                "[fetch] allow_hosts"
            )
        super().__init__(message)
        self.host = host
        self.why = why


async def system_resolver(host: str, port: int) -> list[str]:
    """Resolve ``host`` with the operating system's resolver (getaddrinfo), keeping its order.

    A name that does not resolve raises ``socket.gaierror`` (an OSError), as getaddrinfo does.
    """
    infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
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
    """Why ``ip`` is not a public address (``"loopback"``, ``"private"``, …), or None when it is public.

    Public means globally reachable in the IANA special-purpose registries (see ``addresses``); an IPv6
    address that wraps an IPv4 one is judged by the IPv4 address it delivers to.
    """
    if ip in METADATA_ADDRESSES:
        return "cloud metadata"
    embedded = _embedded_ipv4(ip)
    if embedded is not None:
        reason = refusal_reason(embedded)
        return None if reason is None else f"{reason}, as {ip.compressed}"
    return not_global_reason(ip)


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

    def allows_name(self, host: str) -> bool:
        """Whether ``host`` is named in ``allow_hosts``: allowed whatever it resolves to."""
        return host.lower().rstrip(".") in self.names

    def check(self, host: str, ip: IPAddress) -> None:
        """Return if ``host`` at ``ip`` may be reached; raise AddressRefusedError saying why not."""
        if self.allows_name(host) or any(ip in network for network in self.networks):
            return
        reason = refusal_reason(ip)
        if reason is None or (self.allow_private and not reason.startswith(_NEVER_OPENED_BY_ALLOW_PRIVATE)):
            return
        where = ip.compressed if parse_ip(host) == ip else f"{host} ({ip.compressed})"
        hint = (
            f'add "{host}" to [fetch] allow_hosts'
            if reason.startswith(_NEVER_OPENED_BY_ALLOW_PRIVATE)
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
            try:
                answers = await self.resolver(host, port)
            except OSError as exc:  # socket.gaierror: no such name, or no DNS server answering
                raise UnresolvedError(host, str(exc.strerror or exc)) from exc
            addresses = [ip for ip in map(parse_ip, answers) if ip is not None]
            if not addresses:
                raise UnresolvedError(host, "no address in the answer")
        # One refused answer refuses the name: a host that mixes public and private answers is
        # exactly what a rebinding attack looks like.
        for ip in addresses:
            self.policy.check(host, ip)
        return addresses

    async def check_target(self, host: str, port: int, *, proxy: str) -> None:
        """Check a host that the forward proxy ``proxy`` will connect to, before the request goes there.

        The socket goes to the proxy, so the check above cannot see the target's address: resolve the
        name here and refuse it as a direct connection would be. The proxy resolves the name again
        itself and could get another answer (its own DNS, or rebinding): a documented limit. A name in
        ``allow_hosts`` is not resolved, so a host only the proxy can resolve can still be allowed.
        """
        if self.policy.allows_name(host):
            return
        try:
            await self.checked_addresses(host, port)
        except UnresolvedError as exc:
            raise UnresolvedError(host, exc.why, proxy=proxy) from exc

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
