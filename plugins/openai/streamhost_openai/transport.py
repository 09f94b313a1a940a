"""The HTTP client the openai SDK sends through: its aiohttp transport when aiohttp is installed, else its default.

Why aiohttp: reading a stream through the SDK's default transport (httpx2 → httpcore2 → h11 → anyio) costs a
cancel scope, a timer and an h11 state-machine step for every socket read, which was over half of the server's
CPU per streamed token. The SDK's optional aiohttp transport (``openai.DefaultAioHttpClient``, the extra
``openai[aiohttp]``) parses HTTP in C and hands over everything that has queued up in one read: about half the
CPU per token (``bench/token_cpu.py``). It is still an ``httpx2.AsyncClient`` on the outside, so the SDK's
request building, time-outs, proxies from the environment (``HTTP(S)_PROXY``, ``NO_PROXY``, chosen by httpx2),
TLS settings (``SSL_CERT_FILE``) and error statuses work as before.

One thing it gets wrong is fixed here, in :func:`timed_out`: it reports every aiohttp connection failure
(refused, DNS, a server that hung up) as ``httpx2.ConnectTimeout``, so the SDK raises ``APITimeoutError``.
Neither transport shows a response's socket publicly; :func:`response_socket` finds it, so that a cancel
can shut the connection down without waiting for the event loop (``streamhost.upstream_socket``).
"""

from __future__ import annotations

import asyncio
import os
import ssl
import sys
from typing import Any

__all__ = ["http_client", "response_socket", "ssl_context", "timed_out", "transport_name"]


_contexts: dict[tuple[str | None, str | None], ssl.SSLContext] = {}


def ssl_context() -> ssl.SSLContext:
    """The TLS settings every client shares, as httpx2 builds them (the system's CAs, or ``SSL_CERT_FILE`` /
    ``SSL_CERT_DIR``). Building them takes 20-70 ms here: once per process (the warm-up does it), not per client."""
    import httpx2

    key = (os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
    context = _contexts.get(key)
    if context is None:  # two threads may both build one; either will do
        context = _contexts[key] = httpx2.create_ssl_context()
    return context


def http_client(openai: Any, timeout: Any) -> Any:
    """An ``httpx2.AsyncClient`` for the SDK: on its aiohttp transport, or its default one (the same the SDK
    builds when given none) when aiohttp is not installed."""
    try:
        return openai.DefaultAioHttpClient(timeout=timeout, verify=ssl_context())
    except RuntimeError:  # how the SDK says it was installed without aiohttp
        return openai.DefaultAsyncHttpxClient(timeout=timeout, verify=ssl_context())


def transport_name(client: Any) -> str:
    """``aiohttp`` or ``httpx2``: what an SDK client sends through (for logs and tests)."""
    transport = type(client._client._transport)  # neither the SDK nor httpx2 has a public accessor for it
    return "aiohttp" if transport.__module__.endswith("httpx_aiohttp.transport") else "httpx2"


def timed_out(exc: BaseException) -> bool:
    """Whether an SDK ``APITimeoutError`` really was a time-out, not an aiohttp connection failure in disguise.

    A real time-out has a ``TimeoutError`` behind it (aiohttp's ``ServerTimeoutError`` is one, and so is what
    httpx2's own transport wraps); an aiohttp ``ClientError`` that is not one is a failure to connect or a lost
    connection.
    """
    aiohttp = sys.modules.get("aiohttp")  # only in the chain when it was imported
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if aiohttp is not None and isinstance(current, aiohttp.ClientError):
            return isinstance(current, (TimeoutError, asyncio.TimeoutError))
        current = current.__cause__ or current.__context__
    return True


def response_socket(http: Any) -> Any | None:
    """The socket an ``httpx2.Response``'s body comes over, on either transport; None where it cannot be found or
    is not this response's alone (HTTP/2 multiplexes many responses over one connection)."""
    if http.http_version != "HTTP/1.1":
        return None
    network = http.extensions.get("network_stream")
    if network is not None:  # httpx2's own transport (httpcore2) shows its connection here
        return network.get_extra_info("socket")
    stream = getattr(http.stream, "_stream", None)  # httpx2 wraps the transport's stream to time it
    aiohttp_response = getattr(stream, "_aiohttp_response", None)  # the SDK's aiohttp transport
    connection = getattr(aiohttp_response, "connection", None)  # None once the body was read or released
    transport = getattr(connection, "transport", None)
    return transport.get_extra_info("socket") if transport is not None else None
