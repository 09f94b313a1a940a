"""Which IP addresses are on the public internet: the IANA special-purpose address registries.

An address is public when it is "globally reachable" in the IANA IPv4 and IPv6 Special-Purpose
Address Registries (RFC 6890 and the RFCs that added rows since). The registries are written out
here with that column, rather than asked of ``ipaddress``: Python 3.11's ``is_global`` calls
``192.0.0.8`` and the rest of ``192.0.0.0/24`` public, and each Python release follows the registry
with a lag. An address takes the verdict of the most specific block it falls in (``192.0.0.9/32``,
globally reachable, inside ``192.0.0.0/24``, which is not). Outside the registries, IPv4 unicast
is public and IPv6 is public only inside the global unicast space ``2000::/3``.

Registries as of 2025: iana.org/assignments/iana-ipv4-special-registry and iana-ipv6-special-registry.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Block:
    """One row of a special-purpose registry."""

    network: IPNetwork
    name: str
    """The registry's name for the block."""
    globally_reachable: bool | None
    """The registry's "Globally Reachable" column; None where it says N/A (6to4, Teredo: it depends
    on the IPv4 address inside, which the guard judges instead)."""
    label: str = "special-purpose"
    """The word an error uses for addresses of this block."""


def _rows(*rows: tuple[str, str, bool | None] | tuple[str, str, bool | None, str]) -> tuple[Block, ...]:
    return tuple(Block(ipaddress.ip_network(row[0]), *row[1:]) for row in rows)


SPECIAL_PURPOSE = _rows(
    # IPv4
    ("0.0.0.0/8", "This network", False, "unspecified"),
    ("0.0.0.0/32", "This host on this network", False, "unspecified"),
    ("10.0.0.0/8", "Private-Use", False, "private"),
    ("100.64.0.0/10", "Shared Address Space", False),
    ("127.0.0.0/8", "Loopback", False, "loopback"),
    ("169.254.0.0/16", "Link Local", False, "link-local"),
    ("172.16.0.0/12", "Private-Use", False, "private"),
    ("192.0.0.0/24", "IETF Protocol Assignments", False),
    ("192.0.0.0/29", "IPv4 Service Continuity Prefix", False),
    ("192.0.0.8/32", "IPv4 dummy address", False),
    ("192.0.0.9/32", "Port Control Protocol Anycast", True),
    ("192.0.0.10/32", "Traversal Using Relays around NAT Anycast", True),
    ("192.0.0.170/32", "NAT64/DNS64 Discovery", False),
    ("192.0.0.171/32", "NAT64/DNS64 Discovery", False),
    ("192.0.2.0/24", "Documentation (TEST-NET-1)", False),
    ("192.31.196.0/24", "AS112-v4", True),
    ("192.52.193.0/24", "AMT", True),
    ("192.88.99.0/24", "Deprecated (6to4 Relay Anycast)", False),
    ("192.88.99.2/32", "6a44-relay anycast address", True),
    ("192.168.0.0/16", "Private-Use", False, "private"),
    ("192.175.48.0/24", "Direct Delegation AS112 Service", True),
    ("198.18.0.0/15", "Benchmarking", False),
    ("198.51.100.0/24", "Documentation (TEST-NET-2)", False),
    ("203.0.113.0/24", "Documentation (TEST-NET-3)", False),
    ("240.0.0.0/4", "Reserved", False),
    ("255.255.255.255/32", "Limited Broadcast", False, "limited broadcast"),
    # IPv6
    ("::1/128", "Loopback Address", False, "loopback"),
    ("::/128", "Unspecified Address", False, "unspecified"),
    ("::ffff:0:0/96", "IPv4-mapped Address", False),
    ("64:ff9b::/96", "IPv4-IPv6 Translat.", True),
    ("64:ff9b:1::/48", "IPv4-IPv6 Translat. (local-use)", False),
    ("100::/64", "Discard-Only Address Block", False),
    ("100:0:0:1::/64", "Dummy IPv6 Prefix", False),
    ("2001::/23", "IETF Protocol Assignments", False),
    ("2001::/32", "TEREDO", None),
    ("2001:1::1/128", "Port Control Protocol Anycast", True),
    ("2001:1::2/128", "Traversal Using Relays around NAT Anycast", True),
    ("2001:1::3/128", "DNS-SD Service Registration Protocol Anycast", True),
    ("2001:2::/48", "Benchmarking", False),
    ("2001:3::/32", "AMT", True),
    ("2001:4:112::/48", "AS112-v6", True),
    ("2001:10::/28", "Deprecated (previously ORCHID)", False),
    ("2001:20::/28", "ORCHIDv2", True),
    ("2001:30::/28", "Drone Remote ID Protocol Entity Tags (DETs) Prefix", True),
    ("2001:db8::/32", "Documentation", False),
    ("2002::/16", "6to4", None),
    ("2620:4f:8000::/48", "Direct Delegation AS112 Service", True),
    ("3fff::/20", "Documentation", False),
    ("5f00::/16", "Segment Routing (SRv6) SIDs", False),
    ("fc00::/7", "Unique-Local", False, "unique local (ULA)"),
    ("fe80::/10", "Link-Local Unicast", False, "link-local"),
)
"""Both registries, row by row. Nested rows are fine: the most specific block decides."""

GLOBAL_UNICAST_V6 = ipaddress.ip_network("2000::/3")
"""IPv6 outside it is unassigned, reserved or multicast (the IANA IPv6 Address Space registry)."""


def special_block(ip: IPAddress) -> Block | None:
    """The most specific registry block holding ``ip``, or None when no row covers it."""
    best: Block | None = None
    for block in SPECIAL_PURPOSE:
        if ip.version == block.network.version and ip in block.network:
            if best is None or block.network.prefixlen > best.network.prefixlen:
                best = block
    return best


def not_global_reason(ip: IPAddress) -> str | None:
    """Why ``ip`` itself is not globally reachable (``"loopback"``, ``"special-purpose (…)"``), or None.

    Judges the address as written: an IPv6 address wrapping an IPv4 one is the caller's to unwrap.
    """
    if ip.is_multicast:
        return "multicast"
    block = special_block(ip)
    if block is not None:
        if block.globally_reachable:
            return None
        if block.label != "special-purpose":
            return block.label
        return f"special-purpose ({block.name}, {block.network})"
    if isinstance(ip, ipaddress.IPv6Address) and ip not in GLOBAL_UNICAST_V6:
        return f"reserved (outside the global unicast space {GLOBAL_UNICAST_V6})"
    return None
