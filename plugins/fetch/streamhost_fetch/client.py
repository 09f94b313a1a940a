"""The httpx2 client every fetch uses: no environment proxies, no automatic redirects, the SSRF guard underneath."""

from __future__ import annotations

import ssl

import httpcore2
import httpx2

from .guard import GuardedBackend


class GuardedTransport(httpx2.AsyncHTTPTransport):
    """httpx2's own transport, with its connection pool opening sockets through the guard."""

    def __init__(self, backend: GuardedBackend, ssl_context: ssl.SSLContext) -> None:
        super().__init__(verify=ssl_context, trust_env=False)
        # AsyncHTTPTransport builds its pool without a way to pass a network backend, and the pool is
        # where sockets are opened: swap in the same pool built on the guard.
        self._pool = httpcore2.AsyncConnectionPool(ssl_context=ssl_context, network_backend=backend)


ACCEPT = "text/html,application/xhtml+xml,text/markdown;q=0.9,text/plain;q=0.8,application/json;q=0.8,*/*;q=0.1"


def make_client(
    backend: GuardedBackend, ssl_context: ssl.SSLContext, *, user_agent: str, timeout_s: float
) -> httpx2.AsyncClient:
    """A client for one fetch. Redirects are followed by the caller, one checked hop at a time."""
    return httpx2.AsyncClient(
        transport=GuardedTransport(backend, ssl_context),
        trust_env=False,
        follow_redirects=False,
        timeout=httpx2.Timeout(timeout_s),
        headers={
            "User-Agent": user_agent,
            "Accept": ACCEPT,
            "Accept-Encoding": "gzip, deflate",
        },
    )
