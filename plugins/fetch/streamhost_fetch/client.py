"""The httpx2 client every fetch uses: no automatic redirects, the SSRF guard underneath, our own proxy routing.

httpx2's ``trust_env`` proxies would send requests to the proxy past the guard (the guard sits where
sockets open, and with a proxy the only socket is the proxy's), so the client never reads the
environment itself: ``proxies.py`` decides the route of each request, and a proxied request has its
target checked by the guard before it is handed to the proxy.
"""

from __future__ import annotations

import ssl

import httpcore2
import httpx2

from .guard import GuardedBackend, UnresolvedError
from .proxies import ProxyRoutes, proxy_label

_DEFAULT_PORTS = {b"http": 80, b"https": 443}


class GuardedTransport(httpx2.AsyncHTTPTransport):
    """httpx2's own transport, with its connection pool opening sockets through the guard."""

    def __init__(self, backend: GuardedBackend, ssl_context: ssl.SSLContext) -> None:
        super().__init__(verify=ssl_context, trust_env=False)
        # AsyncHTTPTransport builds its pool without a way to pass a network backend, and the pool is
        # where sockets are opened: swap in the same pool built on the guard.
        self._pool = httpcore2.AsyncConnectionPool(ssl_context=ssl_context, network_backend=backend)


class GuardedProxyPool(httpcore2.AsyncHTTPProxy):
    """httpcore's forward-proxy pool (absolute-URI requests for http, CONNECT tunnels for https), with
    each request's target checked by the guard before anything is sent to the proxy.

    The connection to the proxy itself is not checked: the user configured it, and it often sits on
    a private network.
    """

    def __init__(self, guard: GuardedBackend, proxy: httpx2.Proxy, ssl_context: ssl.SSLContext) -> None:
        super().__init__(
            proxy_url=httpcore2.URL(
                scheme=proxy.url.raw_scheme, host=proxy.url.raw_host, port=proxy.url.port, target=proxy.url.raw_path
            ),
            proxy_auth=proxy.raw_auth,
            proxy_headers=proxy.headers.raw,
            ssl_context=ssl_context,
            # TLS to the proxy itself only for an https:// proxy (httpcore refuses the argument otherwise).
            proxy_ssl_context=ssl_context if proxy.url.scheme == "https" else None,
            network_backend=guard.backend,
        )
        self.guard = guard
        self.label = proxy_label(proxy)

    async def handle_async_request(self, request: httpcore2.Request) -> httpcore2.Response:
        """Refuse the request if its target is refused; otherwise send it through the proxy."""
        url = request.url
        await self.guard.check_target(
            url.host.decode("ascii"), url.port or _DEFAULT_PORTS.get(url.scheme, 443), proxy=self.label
        )
        return await super().handle_async_request(request)


class ProxiedTransport(httpx2.AsyncHTTPTransport):
    """httpx2's transport over a :class:`GuardedProxyPool`."""

    def __init__(self, guard: GuardedBackend, proxy: httpx2.Proxy, ssl_context: ssl.SSLContext) -> None:
        super().__init__(verify=ssl_context, trust_env=False)
        self._pool = GuardedProxyPool(guard, proxy, ssl_context)


class RoutingTransport(httpx2.AsyncBaseTransport):
    """Sends each request direct or through its proxy, as ``routes`` say; redirects are routed afresh."""

    def __init__(self, guard: GuardedBackend, ssl_context: ssl.SSLContext, routes: ProxyRoutes) -> None:
        self.guard = guard
        self.ssl_context = ssl_context
        self.routes = routes
        self.direct = GuardedTransport(guard, ssl_context)
        self.proxied: dict[str, ProxiedTransport] = {}

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        """Route ``request``; a proxy that cannot be reached is named in the error."""
        route = self.routes.proxy_for(request.url)
        if route is None:
            return await self.direct.handle_async_request(request)
        proxy, source = route
        key = str(proxy.url)
        if key not in self.proxied:
            self.proxied[key] = ProxiedTransport(self.guard, proxy, self.ssl_context)
        try:
            return await self.proxied[key].handle_async_request(request)
        except (httpx2.ConnectError, httpx2.ConnectTimeout, httpx2.ProxyError) as exc:
            if isinstance(exc.__cause__, UnresolvedError):
                raise  # the target does not resolve here: the guard's message says so
            raise type(exc)(f"{exc} (through the proxy {proxy_label(proxy)}, from {source})") from exc

    async def aclose(self) -> None:
        """Close the direct pool and every proxy pool."""
        await self.direct.aclose()
        for transport in self.proxied.values():
            await transport.aclose()


ACCEPT = "text/html,application/xhtml+xml,text/markdown;q=0.9,text/plain;q=0.8,application/json;q=0.8,*/*;q=0.1"


def make_client(
    backend: GuardedBackend,
    ssl_context: ssl.SSLContext,
    *,
    user_agent: str,
    timeout_s: float,
    routes: ProxyRoutes | None = None,
) -> httpx2.AsyncClient:
    """A client for one fetch. Redirects are followed by the caller, one checked hop at a time.

    :param routes: which URLs go through which proxy (none by default).
    """
    return httpx2.AsyncClient(
        transport=RoutingTransport(backend, ssl_context, routes or ProxyRoutes()),
        trust_env=False,
        follow_redirects=False,
        timeout=httpx2.Timeout(timeout_s),
        headers={
            "User-Agent": user_agent,
            "Accept": ACCEPT,
            "Accept-Encoding": "gzip, deflate",
        },
    )
