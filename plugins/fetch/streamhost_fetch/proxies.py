"""Which forward proxy, if any, a URL goes through: ``[fetch] proxy``, else the usual environment variables.

- ``proxy = ""`` (the default): ``https_proxy`` for https URLs, ``http_proxy`` for http URLs,
  ``all_proxy`` for either when the specific one is unset; each in lower or upper case (lower case
  wins, as in curl and urllib). ``no_proxy`` / ``NO_PROXY`` lists the hosts that go direct.
- ``proxy = "http://host:port"`` (or ``https://``): that proxy for every URL; ``NO_PROXY`` still applies.
- ``proxy = "none"``: never a proxy, whatever the environment says.

A proxy written without a scheme (``proxy.corp:3128``) is ``http://``. Credentials in the proxy URL
(``http://user:password@proxy:3128``) are sent as ``Proxy-Authorization`` and never shown: messages
name a proxy by host and port only. Only http and https proxies are spoken; a socks proxy is refused
with an error saying so.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field

import httpx2

from streamhost import FetchError

NO_PROXY_SETTING = "none"
"""``[fetch] proxy = "none"``: ignore the proxy environment variables."""
_DEFAULT_PORTS = {"http": 80, "https": 443}


def parse_proxy(value: str, source: str) -> httpx2.Proxy:
    """``value`` as an http(s) proxy; ValueError says what is wrong, naming ``source`` (the key or variable)."""
    try:
        return _proxy(value)
    except ValueError as exc:
        raise ValueError(f"{source} {exc}") from None


def _proxy(value: str) -> httpx2.Proxy:
    """``value`` as an http(s) proxy; ValueError says what is wrong, to follow the name of its source."""
    text = value.strip()
    if "://" not in text:
        text = f"http://{text}"
    try:
        url = httpx2.URL(text)
    except httpx2.InvalidURL as exc:
        raise ValueError(f"is not a valid proxy URL ({exc}); write it as http://host:port") from None
    if url.scheme not in ("http", "https"):
        raise ValueError(f"is a {url.scheme}:// proxy; streamhost-fetch speaks to http:// and https:// proxies only")
    if not url.host:
        raise ValueError("has no host name; write it as http://host:port")
    return httpx2.Proxy(url)


def proxy_label(proxy: httpx2.Proxy) -> str:
    """``host:port`` of a proxy, for messages: never its credentials."""
    return proxy.url.netloc.decode("ascii").rsplit("@", 1)[-1]


def check_setting(value: str) -> str:
    """The ``[fetch] proxy`` value checked: ``""``, ``"none"`` or an http(s) proxy URL; ValueError otherwise."""
    value = value.strip()
    if value and value.lower() != NO_PROXY_SETTING:
        _proxy(value)
    return value


@dataclass(frozen=True)
class ProxyRoutes:
    """Where each URL goes: through which proxy, or direct."""

    proxies: Mapping[str, tuple[httpx2.Proxy, str]] = field(default_factory=dict)
    """URL scheme → (proxy, the setting or variable it came from)."""
    no_proxy: tuple[str, ...] = ()
    """The ``NO_PROXY`` entries: ``*``, host names (a domain also covers its subdomains), IPs, networks."""

    def proxy_for(self, url: httpx2.URL) -> tuple[httpx2.Proxy, str] | None:
        """The proxy ``url`` goes through and where it was set, or None to connect directly."""
        route = self.proxies.get(url.scheme)
        if route is None or self._bypassed(url):
            return None
        return route

    def _bypassed(self, url: httpx2.URL) -> bool:
        host = url.host.lower().rstrip(".")
        address = _ip(host)
        for entry in self.no_proxy:
            if entry == "*":
                return True
            name, port = _split_port(entry)
            if port is not None and port != (url.port or _DEFAULT_PORTS.get(url.scheme)):
                continue
            if address is not None:
                try:
                    if address in ipaddress.ip_network(name, strict=False):
                        return True
                except ValueError:
                    pass
                continue
            name = name.lstrip("*").lstrip(".")
            if name and (host == name or host.endswith(f".{name}")):
                return True
        return False


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None


def _split_port(entry: str) -> tuple[str, int | None]:
    """``host:8080`` → (host, 8080); a bare IPv6 address or network keeps its colons."""
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        return host, int(rest[1:]) if rest[1:].isdigit() else None
    host, sep, port = entry.rpartition(":")
    if sep and port.isdigit() and ":" not in host:
        return host, int(port)
    return entry, None


def proxy_routes(setting: str, environ: Mapping[str, str]) -> ProxyRoutes:
    """The routes for one fetch, from ``[fetch] proxy`` and the environment.

    Raises FetchError naming the variable when an environment proxy cannot be used (a socks proxy,
    a malformed URL), rather than quietly connecting directly.
    """
    if setting.lower() == NO_PROXY_SETTING:
        return ProxyRoutes()
    found = _environment_proxies(environ)
    no_proxy = tuple(entry.lower() for entry in found.get("no", ("", ""))[0].replace(",", " ").split())
    if setting:
        proxy = parse_proxy(setting, "fetch.proxy")  # checked by check_setting at configure time
        return ProxyRoutes({"http": (proxy, "[fetch] proxy"), "https": (proxy, "[fetch] proxy")}, no_proxy)
    routes: dict[str, tuple[httpx2.Proxy, str]] = {}
    for scheme in ("http", "https"):
        value, variable = found.get(scheme) or found.get("all") or ("", "")
        if value:
            try:
                routes[scheme] = (parse_proxy(value, variable), variable)
            except ValueError as exc:
                raise FetchError(f"{exc}. Fix {variable}, or set [fetch] proxy to a proxy URL or to \"none\"") from None
    return ProxyRoutes(routes, no_proxy)


def _environment_proxies(environ: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """``{"http": (value, "HTTP_PROXY"), "https": …, "all": …, "no": …}`` from the variables that are set.

    urllib's rules: lower case wins, an empty lower-case variable cancels the upper-case one, and
    ``HTTP_PROXY`` is ignored in a CGI script (where a client can set it with a ``Proxy:`` header).
    The variable each value came from is kept for messages.
    """
    found: dict[str, tuple[str, str]] = {}
    for name, value in environ.items():
        if value and name.lower().endswith("_proxy"):
            found[name[:-6].lower()] = (value, name)
    if "REQUEST_METHOD" in environ:
        found.pop("http", None)
    for name, value in environ.items():
        if name.endswith("_proxy"):
            if value:
                found[name[:-6].lower()] = (value, name)
            else:
                found.pop(name[:-6].lower(), None)
    return {kind: found[kind] for kind in ("http", "https", "all", "no") if kind in found}
