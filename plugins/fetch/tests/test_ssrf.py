"""The SSRF matrix: what the guard refuses by default, what opens it, redirects, and DNS rebinding.

The fake DNS and the routing network below stand in for the outside world (a resolver and the
internet), not for our code: they are passed to the guard through its public constructor arguments.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from typing import Any

import httpcore2
import pytest

from streamhost_fetch import HttpFetcher
from streamhost_fetch.guard import AddressPolicy, AddressRefusedError, refusal_reason

PUBLIC = "93.184.216.34"


class FakeDNS:
    """A resolver answering from a table; a list of answer lists is served one per lookup (rebinding)."""

    def __init__(self, table: dict[str, Any]) -> None:
        self.table = table
        self.lookups: list[str] = []

    async def __call__(self, host: str, port: int) -> Sequence[str]:
        self.lookups.append(host)
        answers = self.table[host]
        if answers and isinstance(answers[0], list):
            return answers[min(self.lookups.count(host), len(answers)) - 1]
        return answers


class RoutingNetwork(httpcore2.AsyncNetworkBackend):
    """The network: records every address dialled and routes chosen "public" addresses to the loopback site."""

    def __init__(self, routes: dict[str, str] | None = None) -> None:
        self.routes = routes or {}
        self.dialled: list[str] = []
        self.inner = httpcore2.AnyIOBackend()

    async def connect_tcp(
        self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        self.dialled.append(host)
        return await self.inner.connect_tcp(self.routes.get(host, host), port, timeout=timeout)

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


def guarded(dns: FakeDNS | None = None, network: RoutingNetwork | None = None, **options: Any) -> HttpFetcher:
    fetcher = HttpFetcher(resolver=dns, backend=network)
    fetcher.configure(options)
    return fetcher


# -- the classification itself -----------------------------------------------------------------------

@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"), ("127.255.0.9", "loopback"), ("::1", "loopback"),
        ("0.0.0.0", "unspecified"), ("::", "unspecified"),
        ("10.1.2.3", "private"), ("172.16.0.1", "private"), ("192.168.1.1", "private"),
        ("169.254.169.254", "cloud metadata"), ("fd00:ec2::254", "cloud metadata"),
        ("169.254.1.1", "link-local"), ("fe80::1", "link-local"),
        ("fd12:3456::1", "unique local (ULA)"), ("fc00::1", "unique local (ULA)"),
        ("::ffff:127.0.0.1", "loopback, as ::ffff:7f00:1"), ("::ffff:10.0.0.1", "private, as ::ffff:a00:1"),
        ("64:ff9b::7f00:1", "loopback, as 64:ff9b::7f00:1"),
        ("::127.0.0.1", "loopback, as ::7f00:1"), ("::169.254.169.254", "cloud metadata, as ::a9fe:a9fe"),
        ("::ffff:0:127.0.0.1", "loopback, as ::ffff:0:7f00:1"),
        ("fec0::1", "reserved (outside the global unicast space 2000::/3)"),
        ("2002:a9fe:a9fe::1", "cloud metadata, as 2002:a9fe:a9fe::1"),
        ("224.0.0.1", "multicast"), ("ff02::1", "multicast"),
        ("100.64.0.1", "special-purpose (Shared Address Space, 100.64.0.0/10)"),
        ("192.0.2.10", "special-purpose (Documentation (TEST-NET-1), 192.0.2.0/24)"),
        ("192.0.0.192", "special-purpose (IETF Protocol Assignments, 192.0.0.0/24)"),
        ("255.255.255.255", "limited broadcast"),
        (PUBLIC, None), ("2606:4700:4700::1111", None), ("::ffff:93.184.216.34", None),
    ],
)
def test_refusal_reasons(address: str, reason: str | None) -> None:
    assert refusal_reason(ipaddress.ip_address(address)) == reason


def test_allow_private_does_not_open_metadata_or_unspecified() -> None:
    policy = AddressPolicy(allow_private=True)
    policy.check("a", ipaddress.ip_address("10.0.0.1"))
    policy.check("a", ipaddress.ip_address("::1"))
    for address in ("169.254.169.254", "0.0.0.0", "224.0.0.1"):
        with pytest.raises(AddressRefusedError, match="allow_hosts"):
            policy.check("a", ipaddress.ip_address(address))
    AddressPolicy(allow_hosts=["169.254.169.254"]).check("a", ipaddress.ip_address("169.254.169.254"))


# -- default config against the real loopback site ----------------------------------------------------

LOOPBACK_SPELLINGS = [
    "127.0.0.1", "127.1", "2130706433", "0x7f000001", "0177.0.0.1", "127.000.000.001", "[::1]",
    "[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "[0:0:0:0:0:ffff:7f00:1]", "localhost", "LocalHost", "0.0.0.0", "0",
]
"""Spellings of this machine. httpx2 rejects the octal and zero-padded ones as invalid URLs: refused too."""


@pytest.mark.anyio
@pytest.mark.parametrize("host", LOOPBACK_SPELLINGS)
async def test_loopback_is_refused_in_every_spelling(stocked_site: Any, run_fetch: Any, host: str) -> None:
    fetcher = guarded()  # the default config: no allow_private, no allow_hosts
    outcome = await run_fetch(fetcher, f"http://{host}:{stocked_site.port}/article", model_initiated=False)
    assert outcome.document is None
    if host.startswith(("0177", "127.000")):
        assert "is not a valid URL" in str(outcome.error)
    else:
        assert isinstance(outcome.error, AddressRefusedError), outcome.error
        assert "allow_private" in str(outcome.error) or "allow_hosts" in str(outcome.error)
    assert stocked_site.requests == []


@pytest.mark.anyio
@pytest.mark.parametrize(
    "host",
    ["10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254", "[fd00::1]", "[fe80::1]", "100.64.1.1",
     "[64:ff9b::a9fe:a9fe]", "[2002:7f00:1::]", "224.0.0.1", "[::]", "192.0.0.192", "192.0.0.8", "[2001:db8::1]"],
)
async def test_private_targets_are_refused_before_any_connection(run_fetch: Any, host: str) -> None:
    network = RoutingNetwork()
    outcome = await run_fetch(guarded(network=network), f"http://{host}/latest/meta-data/", model_initiated=False)
    assert isinstance(outcome.error, AddressRefusedError), outcome.error
    assert network.dialled == []


@pytest.mark.anyio
async def test_robots_fetch_is_guarded_too(stocked_site: Any, run_fetch: Any) -> None:
    outcome = await run_fetch(guarded(), stocked_site.url("/article"))  # model-initiated: robots.txt first
    assert outcome.statuses == [f"checking {stocked_site.url('/robots.txt')}"]
    assert isinstance(outcome.error, AddressRefusedError)
    assert str(outcome.error).startswith(f"{stocked_site.url('/article')}: refused to connect to 127.0.0.1")
    assert stocked_site.requests == []


@pytest.mark.anyio
async def test_a_robots_txt_redirecting_to_a_private_address_is_unreadable(stocked_site: Any, run_fetch: Any) -> None:
    dns = FakeDNS({"site.example": [PUBLIC], "intranet.example": ["10.0.0.5"]})
    network = RoutingNetwork({PUBLIC: "127.0.0.1"})
    stocked_site.redirect("/robots.txt", "http://intranet.example/robots.txt")
    url = f"http://site.example:{stocked_site.port}/article"
    outcome = await run_fetch(guarded(dns, network), url)
    message = str(outcome.error)
    assert message.startswith(f"{url} was not fetched: its site's robots.txt") and "intranet.example" in message
    assert network.dialled == [PUBLIC] and not stocked_site.requests_for("/article")


# -- names, with a fake DNS at the connection layer ----------------------------------------------------

@pytest.mark.anyio
async def test_public_name_resolving_to_a_private_address_is_refused(run_fetch: Any) -> None:
    dns = FakeDNS({"intranet.example": ["10.0.0.5"], "meta.example": ["169.254.169.254"]})
    network = RoutingNetwork()
    for name, words in (("intranet.example", "intranet.example (10.0.0.5): a private address"),
                        ("meta.example", "a cloud metadata address")):
        outcome = await run_fetch(guarded(dns, network, allow_private=name == "meta.example"), f"http://{name}/")
        assert isinstance(outcome.error, AddressRefusedError) and words in str(outcome.error)
    assert network.dialled == []


@pytest.mark.anyio
async def test_a_name_with_one_private_answer_among_public_ones_is_refused(run_fetch: Any) -> None:
    network = RoutingNetwork()
    dns = FakeDNS({"mixed.example": [PUBLIC, "127.0.0.1"]})
    outcome = await run_fetch(guarded(dns, network), "http://mixed.example/", model_initiated=False)
    assert isinstance(outcome.error, AddressRefusedError) and network.dialled == []


@pytest.mark.anyio
async def test_dns_rebinding_cannot_switch_the_address_after_the_check(stocked_site: Any, run_fetch: Any) -> None:
    # First answer public, every later answer loopback: a check-then-connect-by-name client would
    # check the first and connect to the second. The guard dials the address it checked.
    dns = FakeDNS({"rebind.example": [[PUBLIC], ["127.0.0.1"]]})
    network = RoutingNetwork({PUBLIC: "127.0.0.1"})  # the "public" host is played by the loopback site
    url = f"http://rebind.example:{stocked_site.port}/article"
    outcome = await run_fetch(guarded(dns, network), url, model_initiated=False)
    assert "# Life in the tide pools" in outcome.unwrap().document.content
    assert dns.lookups == ["rebind.example"]  # resolved once
    assert network.dialled == [PUBLIC]  # connected to the checked address, never to 127.0.0.1
    [record] = stocked_site.requests
    assert record.headers["host"] == f"rebind.example:{stocked_site.port}"  # Host keeps the name


@pytest.mark.anyio
async def test_rebinding_the_other_way_is_refused_at_the_first_answer(run_fetch: Any) -> None:
    dns = FakeDNS({"rebind.example": [["127.0.0.1"], [PUBLIC]]})
    outcome = await run_fetch(guarded(dns, RoutingNetwork()), "http://rebind.example/", model_initiated=False)
    assert isinstance(outcome.error, AddressRefusedError) and dns.lookups == ["rebind.example"]


# -- redirects: every hop is checked -----------------------------------------------------------------

@pytest.mark.anyio
@pytest.mark.parametrize(
    "target", ["http://intranet.example/admin", "http://169.254.169.254/latest/meta-data/", "http://[::1]:{port}/article",
               "http://localhost:{port}/article", "http://10.0.0.1/"],
)
async def test_redirect_to_a_private_address_is_refused(stocked_site: Any, run_fetch: Any, target: str) -> None:
    dns = FakeDNS({"intranet.example": ["10.0.0.5"], "localhost": ["127.0.0.1", "::1"]})
    network = RoutingNetwork()
    location = target.format(port=stocked_site.port)
    stocked_site.redirect("/jump", location)
    # the site itself is allowed by IP; what it redirects to is not
    fetcher = guarded(dns, network, allow_hosts=["127.0.0.1"])
    outcome = await run_fetch(fetcher, stocked_site.url("/jump"), model_initiated=False)
    assert isinstance(outcome.error, AddressRefusedError), outcome.error
    assert location.split("/")[2].split(":")[0].strip("[]") in str(outcome.error)
    assert network.dialled == ["127.0.0.1"]  # only the first hop was dialled
    assert [r.path for r in stocked_site.requests] == ["/jump"]


# -- opening the guard deliberately --------------------------------------------------------------------

@pytest.mark.anyio
@pytest.mark.parametrize(
    "options",
    [{"allow_private": True}, {"allow_hosts": ["127.0.0.0/8"]}, {"allow_hosts": ["localhost"]}],
)
async def test_config_opens_loopback_deliberately(stocked_site: Any, run_fetch: Any, options: dict[str, Any]) -> None:
    dns = FakeDNS({"localhost": ["127.0.0.1"]})
    outcome = await run_fetch(guarded(dns, **options), f"http://localhost:{stocked_site.port}/article")
    assert "# Life in the tide pools" in outcome.unwrap().document.content


@pytest.mark.anyio
async def test_allowing_one_host_does_not_allow_others(stocked_site: Any, run_fetch: Any) -> None:
    dns = FakeDNS({"wiki.internal": ["127.0.0.1"], "db.internal": ["127.0.0.1"]})
    fetcher = guarded(dns, allow_hosts=["wiki.internal"])
    ok = await run_fetch(fetcher, f"http://wiki.internal:{stocked_site.port}/docs", model_initiated=False)
    refused = await run_fetch(fetcher, f"http://db.internal:{stocked_site.port}/docs", model_initiated=False)
    assert "parse_config" in ok.unwrap().document.content
    assert isinstance(refused.error, AddressRefusedError) and "db.internal" in str(refused.error)
