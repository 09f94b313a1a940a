"""The guard's idea of "public": globally reachable in the IANA special-purpose registries.

The registries are written out again below, independently of the guard's table, as the oracle: every
block is probed at its first, a middle and its last address, IPv4 and IPv6, then every non-global
IPv4 block wrapped in each IPv6 form that delivers to it.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from streamhost_fetch.guard import AddressPolicy, AddressRefusedError, refusal_reason

REGISTRY: list[tuple[str, bool | None]] = [
    # IANA IPv4 Special-Purpose Address Registry: (block, Globally Reachable)
    ("0.0.0.0/8", False), ("0.0.0.0/32", False), ("10.0.0.0/8", False), ("100.64.0.0/10", False),
    ("127.0.0.0/8", False), ("169.254.0.0/16", False), ("172.16.0.0/12", False), ("192.0.0.0/24", False),
    ("192.0.0.0/29", False), ("192.0.0.8/32", False), ("192.0.0.9/32", True), ("192.0.0.10/32", True),
    ("192.0.0.170/32", False), ("192.0.0.171/32", False), ("192.0.2.0/24", False), ("192.31.196.0/24", True),
    ("192.52.193.0/24", True), ("192.88.99.0/24", False), ("192.88.99.2/32", True), ("192.168.0.0/16", False),
    ("192.175.48.0/24", True), ("198.18.0.0/15", False), ("198.51.100.0/24", False), ("203.0.113.0/24", False),
    ("240.0.0.0/4", False), ("255.255.255.255/32", False),
    # IANA IPv6 Special-Purpose Address Registry
    ("::1/128", False), ("::/128", False), ("64:ff9b:1::/48", False), ("100::/64", False),
    ("100:0:0:1::/64", False), ("2001::/23", False), ("2001::/32", None), ("2001:1::1/128", True),
    ("2001:1::2/128", True), ("2001:1::3/128", True), ("2001:2::/48", False), ("2001:3::/32", True),
    ("2001:4:112::/48", True), ("2001:10::/28", False), ("2001:20::/28", True), ("2001:30::/28", True),
    ("2001:db8::/32", False), ("2620:4f:8000::/48", True), ("3fff::/20", False), ("5f00::/16", False),
    ("fc00::/7", False), ("fe80::/10", False),
]
"""Rows whose addresses wrap an IPv4 address (IPv4-mapped ::ffff:0:0/96, NAT64 64:ff9b::/96, 6to4
2002::/16) are judged by that address instead and tested below. Teredo (N/A) stays in: the blocks
around it reach into it, and the IPv4 client inside those probes is never global."""


def _verdict(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Globally reachable per the oracle: the most specific row decides; no row means public."""
    rows = [(ipaddress.ip_network(block), ok) for block, ok in REGISTRY]
    matching = [(net.prefixlen, ok) for net, ok in rows if net.version == ip.version and ip in net]
    return max(matching)[1] is True if matching else True


def _probes() -> list[tuple[str, str, bool]]:
    probes = []
    for block, _ in REGISTRY:
        net = ipaddress.ip_network(block)
        for where, ip in (("first", net[0]), ("middle", net[net.num_addresses // 2]), ("last", net[-1])):
            probes.append((block, f"{where} {ip}", _verdict(ip)))
    return probes


@pytest.mark.parametrize(("block", "probe", "reachable"), _probes())
def test_every_special_purpose_block(block: str, probe: str, reachable: bool) -> None:
    ip = ipaddress.ip_address(probe.split()[1])
    reason = refusal_reason(ip)
    assert (reason is None) is reachable, f"{ip} in {block}: {reason}"
    if not reachable:
        with pytest.raises(AddressRefusedError):
            AddressPolicy().check("example.org", ip)


@pytest.mark.parametrize(
    "address",
    ["192.0.0.8", "192.0.0.192", "192.0.0.170", "100:0:0:1::5", "3fff::1", "5f00::1", "4000::1", "ff0e::1",
     "224.0.0.251", "::ffff:0:0:0"],
)
def test_addresses_python_or_older_lists_call_public_are_refused(address: str) -> None:
    assert refusal_reason(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize(
    "address", ["93.184.216.34", "1.1.1.1", "192.0.0.9", "192.31.196.1", "2606:4700:4700::1111", "2001:4:112::1"],
)
def test_public_addresses_pass(address: str) -> None:
    assert refusal_reason(ipaddress.ip_address(address)) is None
    AddressPolicy().check("example.org", ipaddress.ip_address(address))


def _teredo(client: ipaddress.IPv4Address) -> ipaddress.IPv6Address:
    server = int(ipaddress.ip_address("65.54.227.120"))
    return ipaddress.IPv6Address((0x20010000 << 96) | (server << 64) | ((40000 ^ 0xFFFF) << 32)
                                 | (int(client) ^ 0xFFFFFFFF))


WRAPPERS: dict[str, Any] = {
    "IPv4-mapped": lambda v4: ipaddress.IPv6Address((0xFFFF << 32) | int(v4)),
    "IPv4-compatible": lambda v4: ipaddress.IPv6Address(int(v4)),
    "SIIT-translated": lambda v4: ipaddress.IPv6Address((0xFFFF << 48) | int(v4)),
    "6to4": lambda v4: ipaddress.IPv6Address((0x2002 << 112) | (int(v4) << 80) | 1),
    "Teredo": _teredo,
    "NAT64": lambda v4: ipaddress.IPv6Address(int(ipaddress.ip_address("64:ff9b::")) | int(v4)),
}


def _non_global_v4() -> list[str]:
    return [block for block, ok in REGISTRY if ok is False and "." in block]


@pytest.mark.parametrize("wrapper", sorted(WRAPPERS))
@pytest.mark.parametrize("block", _non_global_v4())
def test_ipv6_forms_wrapping_a_non_global_ipv4_are_refused(wrapper: str, block: str) -> None:
    net = ipaddress.ip_network(block)
    v4 = net[net.num_addresses // 2]
    wrapped = WRAPPERS[wrapper](v4)
    assert not _verdict(v4)
    reason = refusal_reason(wrapped)
    assert reason is not None, wrapped
    if int(wrapped) > 1:  # "::0.0.0.0" is "::" itself, refused as unspecified, not as a wrapper
        assert reason.endswith(f", as {wrapped.compressed}"), (wrapped, reason)


@pytest.mark.parametrize("wrapper", sorted(WRAPPERS))
def test_ipv6_forms_wrapping_a_public_ipv4_pass(wrapper: str) -> None:
    assert refusal_reason(WRAPPERS[wrapper](ipaddress.ip_address("93.184.216.34"))) is None


def test_local_use_nat64_is_refused_whatever_it_wraps() -> None:
    assert refusal_reason(ipaddress.ip_address("64:ff9b:1::5db8:d822")) is not None
