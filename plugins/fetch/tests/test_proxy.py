"""Forward proxies: the environment variables and ``[fetch] proxy``, a real proxy on loopback, and the
SSRF guard still refusing private targets before anything reaches the proxy.

The guard's view of DNS is a table passed as the fetcher's ``resolver``; the proxy has its own table
(``ForwardProxy(hosts=...)``), as a corporate proxy with its own DNS would. Names the guard sees as
public are played by the loopback site through the proxy.
"""

from __future__ import annotations

import importlib.util
import socket
import ssl
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx2
import pytest

from streamhost import ConfigError
from streamhost_fetch import HttpFetcher
from streamhost_fetch.guard import AddressRefusedError
from streamhost_fetch.proxies import ProxyRoutes, proxy_routes

pytestmark = pytest.mark.anyio
PUBLIC = "93.184.216.34"
SECRET = "s3cret-proxy-pw"


class Resolver:
    """The guard's DNS: a table, and a record of the names asked for. An unknown name does not resolve."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.lookups: list[str] = []

    async def __call__(self, host: str, port: int) -> Sequence[str]:
        self.lookups.append(host)
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return self.table[host]


@pytest.fixture
def proxy(stocked_site: Any) -> Iterator[Any]:
    """A forward proxy that resolves ``site.example`` to the loopback site."""
    from fetch_test_proxy import ForwardProxy

    with ForwardProxy(hosts={"site.example": "127.0.0.1", "only-proxy.example": "127.0.0.1"}) as running:
        yield running


def fetcher_for(resolver: Resolver, **options: Any) -> HttpFetcher:
    fetcher = HttpFetcher(resolver=resolver)
    fetcher.configure(options)
    return fetcher


async def test_http_goes_through_the_proxy_from_http_proxy(
        stocked_site: Any, proxy: Any, run_fetch: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    resolver = Resolver({"site.example": [PUBLIC]})
    url = f"http://site.example:{stocked_site.port}/article"
    outcome = await run_fetch(fetcher_for(resolver), url)  # the default guard: no allow_hosts
    assert "# Life in the tide pools" in outcome.unwrap().document.content
    assert [(r.method, r.target) for r in proxy.requests] == [
        ("GET", f"http://site.example:{stocked_site.port}/robots.txt"), ("GET", url)]
    assert stocked_site.requests[-1].headers["host"] == f"site.example:{stocked_site.port}"
    assert f"connecting to site.example through the proxy 127.0.0.1:{proxy.port}" in outcome.statuses
    assert set(resolver.lookups) == {"site.example"}, "the guard resolved the target itself"


async def test_https_goes_through_a_connect_tunnel_from_https_proxy(
        tmp_path: Path, run_fetch: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from fetch_test_proxy import ForwardProxy
    from fetch_test_site import WebSite

    tls = _sibling("test_tls")
    ca, cert, key = tls._certificate(tmp_path, "secure.example")
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)
    with WebSite(ssl_context=server) as site, ForwardProxy(hosts={"secure.example": "127.0.0.1"}) as proxy:
        site.add("/page", "<html><body><article><h1>Tunnelled</h1><p>" + "Sealed words. " * 40
                 + "</p></article></body></html>")
        monkeypatch.setenv("https_proxy", proxy.url)
        fetcher = HttpFetcher(resolver=Resolver({"secure.example": [PUBLIC]}),
                              ssl_context=ssl.create_default_context(cafile=str(ca)))
        outcome = await run_fetch(fetcher, f"https://secure.example:{site.port}/page", model_initiated=False)
        assert "# Tunnelled" in outcome.unwrap().document.content
        assert [(r.method, r.target) for r in proxy.requests] == [("CONNECT", f"secure.example:{site.port}")]


@pytest.mark.parametrize(
    "url", ["http://intranet.example/admin", "https://intranet.example/admin", "http://169.254.169.254/latest/",
            "https://10.1.2.3/", "http://[::1]/", "http://192.0.0.192/"],
)
async def test_a_private_target_is_refused_before_it_reaches_the_proxy(
        proxy: Any, run_fetch: Any, monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    outcome = await run_fetch(fetcher_for(Resolver({"intranet.example": ["10.0.0.5"]})), url, model_initiated=False)
    assert isinstance(outcome.error, AddressRefusedError), outcome.error
    assert str(outcome.error).startswith(url)
    assert proxy.requests == []


async def test_a_redirect_to_a_private_target_is_refused_through_the_proxy(
        stocked_site: Any, proxy: Any, run_fetch: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    stocked_site.redirect("/jump", "http://intranet.example/admin")
    resolver = Resolver({"site.example": [PUBLIC], "intranet.example": ["10.0.0.5"]})
    url = f"http://site.example:{stocked_site.port}/jump"
    outcome = await run_fetch(fetcher_for(resolver), url, model_initiated=False)
    assert isinstance(outcome.error, AddressRefusedError) and "intranet.example (10.0.0.5)" in str(outcome.error)
    assert [r.target for r in proxy.requests] == [url]


async def test_no_proxy_hosts_go_direct_through_the_guard(
        stocked_site: Any, proxy: Any, run_fetch: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    allowed = await run_fetch(fetcher_for(Resolver({}), allow_hosts=["127.0.0.1"]), stocked_site.url("/article"))
    refused = await run_fetch(fetcher_for(Resolver({})), stocked_site.url("/docs"), model_initiated=False)
    assert "# Life in the tide pools" in allowed.unwrap().document.content
    assert "connecting to 127.0.0.1" in allowed.statuses
    assert isinstance(refused.error, AddressRefusedError), "direct connections keep the guard"
    assert proxy.requests == []


async def test_proxy_none_ignores_the_environment(
        stocked_site: Any, proxy: Any, run_fetch: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    outcome = await run_fetch(fetcher_for(Resolver({}), allow_hosts=["127.0.0.1"], proxy="none"),
                              stocked_site.url("/article"))
    assert "# Life in the tide pools" in outcome.unwrap().document.content and proxy.requests == []


async def test_the_configured_proxy_with_credentials_never_shows_them(
        stocked_site: Any, run_fetch: Any) -> None:
    from fetch_test_proxy import ForwardProxy

    with ForwardProxy(hosts={"site.example": "127.0.0.1"}, credentials=("fetcher", SECRET)) as proxy:
        resolver = Resolver({"site.example": [PUBLIC]})
        url = f"http://site.example:{stocked_site.port}/article"
        good = await run_fetch(fetcher_for(resolver, proxy=f"http://fetcher:{SECRET}@127.0.0.1:{proxy.port}"), url)
        bad = await run_fetch(fetcher_for(resolver, proxy=f"http://fetcher:wrong-{SECRET}@127.0.0.1:{proxy.port}"),
                              url, model_initiated=False)
        tunnel = await run_fetch(fetcher_for(resolver, proxy=f"http://fetcher:wrong-{SECRET}@127.0.0.1:{proxy.port}"),
                                 f"https://site.example:{stocked_site.port}/article", model_initiated=False)
    assert "# Life in the tide pools" in good.unwrap().document.content
    assert proxy.requests[0].headers["proxy-authorization"].startswith("Basic ")
    assert "proxy-authorization" not in stocked_site.requests[-1].headers, "credentials stop at the proxy"
    assert "407" in str(bad.error) and "proxy" in str(bad.error)
    assert "407" in str(tunnel.error) and f"the proxy 127.0.0.1:{proxy.port}" in str(tunnel.error)
    shown = [*good.statuses, *bad.statuses, *tunnel.statuses, str(bad.error), str(tunnel.error),
             good.unwrap().document.content]
    assert not [text for text in shown if SECRET in text]


async def test_a_proxy_that_is_down_is_named_in_the_error(run_fetch: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]  # closed again before the fetch: nothing listens there
    monkeypatch.setenv("HTTPS_PROXY", f"http://user:{SECRET}@127.0.0.1:{port}")
    outcome = await run_fetch(fetcher_for(Resolver({"site.example": [PUBLIC]})), "https://site.example/",
                              model_initiated=False)
    message = str(outcome.error)
    assert f"through the proxy 127.0.0.1:{port}, from HTTPS_PROXY" in message and SECRET not in message


async def test_a_target_only_the_proxy_can_resolve(proxy: Any, stocked_site: Any, run_fetch: Any,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    resolver = Resolver({})
    url = f"http://only-proxy.example:{stocked_site.port}/article"
    refused = await run_fetch(fetcher_for(resolver), url, model_initiated=False)
    assert "the host only-proxy.example does not resolve here" in str(refused.error)
    assert 'add "only-proxy.example" to [fetch] allow_hosts' in str(refused.error) and proxy.requests == []
    allowed = await run_fetch(fetcher_for(resolver, allow_hosts=["only-proxy.example"]), url, model_initiated=False)
    assert "# Life in the tide pools" in allowed.unwrap().document.content
    assert resolver.lookups == ["only-proxy.example"], "a name in allow_hosts is not resolved"
    assert [r.target for r in proxy.requests] == [url]


# -- the settings -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("value", "words"),
    [("socks5://127.0.0.1:1080", "socks5:// proxy"), (3128, "must be a string"), ("http://", "no host name"),
     ("http://proxy.corp:port", "not a valid proxy URL")],
)
def test_a_bad_proxy_setting_is_a_config_error(value: Any, words: str) -> None:
    with pytest.raises(ConfigError, match=r"fetch\.proxy") as raised:
        HttpFetcher().configure({"proxy": value})
    assert words in str(raised.value)


async def test_a_socks_proxy_in_the_environment_is_an_error_naming_the_variable(
        run_fetch: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALL_PROXY", "socks5h://127.0.0.1:1080")
    outcome = await run_fetch(fetcher_for(Resolver({})), "https://example.org/")
    assert "ALL_PROXY is a socks5h:// proxy" in str(outcome.error) and '"none"' in str(outcome.error)


def _route(routes: ProxyRoutes, url: str) -> str | None:
    route = routes.proxy_for(httpx2.URL(url))
    return None if route is None else f"{route[0].url.host} from {route[1]}"


def test_which_variable_applies() -> None:
    env = {"HTTPS_PROXY": "http://upper:1", "https_proxy": "lower:2", "ALL_PROXY": "http://all:3"}
    routes = proxy_routes("", env)
    assert _route(routes, "https://a.example/") == "lower from https_proxy"  # lower case wins
    assert _route(routes, "http://a.example/") == "all from ALL_PROXY"
    assert _route(proxy_routes("", {"HTTP_PROXY": "http://p:1", "REQUEST_METHOD": "GET"}), "http://a/") is None
    assert _route(proxy_routes("", {"HTTP_PROXY": "http://p:1", "http_proxy": ""}), "http://a/") is None
    assert _route(proxy_routes("none", env), "https://a.example/") is None
    assert _route(proxy_routes("http://conf:8", env), "http://a.example/") == "conf from [fetch] proxy"


@pytest.mark.parametrize(
    ("no_proxy", "url", "direct"),
    [("example.org", "https://example.org/", True), ("example.org", "https://docs.example.org/", True),
     (".example.org", "https://example.org/", True), ("example.org", "https://notexample.org/", False),
     ("*", "https://anything/", True), ("10.0.0.0/8", "http://10.1.2.3/", True),
     ("10.0.0.0/8", "http://11.1.2.3/", False), ("::1", "http://[::1]:8080/", True),
     ("intranet:8080", "http://intranet:8080/", True), ("intranet:8080", "http://intranet/", False),
     ("intranet:80", "http://intranet:8080/", False), ("intranet:443", "https://intranet/", True),
     ("a.example, intranet", "http://intranet/", True), ("*.corp.example", "https://wiki.corp.example/", True)],
)
def test_no_proxy_matching(no_proxy: str, url: str, direct: bool) -> None:
    routes = proxy_routes("", {"https_proxy": "http://p:1", "http_proxy": "http://p:1", "no_proxy": no_proxy})
    assert (_route(routes, url) is None) is direct


def _sibling(name: str) -> Any:
    """Another test module of this folder (for the TLS test's certificate helper)."""
    module = f"streamhost_fetch_{name}"
    if module not in sys.modules:
        spec = importlib.util.spec_from_file_location(module, Path(__file__).with_name(f"{name}.py"))
        assert spec is not None and spec.loader is not None
        sys.modules[module] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[module])
    return sys.modules[module]
