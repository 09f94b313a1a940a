"""The ``http`` fetcher: robots.txt, a guarded transfer, then the page as markdown, text or raw."""

from __future__ import annotations

import logging
import os
import ssl
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import anyio
import httpcore2
import httpx2

from streamhost import FORMATS, Document, Fetcher, FetchError, FetchEvent, FetchRequest, Status

from .client import make_client
from .content import Kind, decode_body, kind_of, parse_content_type, pretty_json, sniff_kind
from .extract import extract, load_trafilatura
from .guard import AddressPolicy, AddressRefusedError, GuardedBackend, Resolver
from .options import OPTIONS, FetchSettings
from .proxies import proxy_label, proxy_routes
from .robots import MAX_ROBOTS_BYTES, RobotsRules, robots_url
from .transfer import (
    Body,
    Deadline,
    HostNotFoundError,
    RedirectLimitError,
    TransferError,
    amount,
    check_scheme,
    open_url,
    status_error,
)

ROBOTS_TTL_S = 600.0
"""How long a site's robots.txt is trusted before it is read again."""
# trafilatura logs ERROR ("lxml parsing failed: Document is empty") and WARNING ("discarding data") for
# pages it finds no main content in; the fallback and the "no text" note handle those, so under
# `streamhost serve` its lines would only alarm the user reading the client's server log.
logging.getLogger("trafilatura").setLevel(logging.CRITICAL)
_MIME_OF_KIND = {"html": "text/html", "markdown": "text/markdown", "text": "text/plain", "json": "application/json"}


class HttpFetcher(Fetcher):
    """Fetches http(s) pages behind an SSRF guard and turns them into markdown, text or raw text.

    :param resolver: resolves host names for the SSRF guard (the system resolver by default).
    :param backend: the httpcore network backend that opens the checked sockets (default: anyio's).
    :param ssl_context: the TLS client context (default: the operating system's trust store), e.g.
        one that also trusts a private CA.
    The resolver and backend are for tests that play DNS and the network; all three are public
    attributes and can be set later too.
    """

    name = "http"
    schemes = ("http", "https")
    declared_options = OPTIONS

    def __init__(
        self,
        *,
        resolver: Resolver | None = None,
        backend: httpcore2.AsyncNetworkBackend | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__()
        self.settings = FetchSettings.of(self.options)
        self.resolver = resolver
        self.backend = backend
        self.ssl_context = ssl_context
        self._robots: dict[str, tuple[float, RobotsRules]] = {}
        self._robots_reading: dict[str, anyio.Event] = {}

    def configure(self, options: Mapping[str, Any]) -> None:
        """Take the ``[fetch]`` table; a bad value raises ConfigError naming the key."""
        super().configure(options)
        self.settings = FetchSettings.of(self.options)

    def warm(self) -> None:
        """Import trafilatura and load the TLS trust store ahead of the first fetch."""
        load_trafilatura()
        self._tls()

    def _tls(self) -> ssl.SSLContext:
        # Loading the OS trust store takes tens of ms: once per fetcher, not once per page.
        if self.ssl_context is None:
            self.ssl_context = httpx2.create_ssl_context()
        return self.ssl_context

    def guard(self) -> GuardedBackend:
        """The network backend every connection of a fetch goes through."""
        policy = AddressPolicy(allow_private=self.settings.allow_private, allow_hosts=self.settings.allow_hosts)
        return GuardedBackend(policy, resolver=self.resolver, backend=self.backend)

    async def fetch(self, request: FetchRequest) -> AsyncIterator[FetchEvent]:  # type: ignore[override]
        """Yield statuses (robots.txt, connecting, KB received, extracting), then one Document."""
        settings = self.settings
        url = request.url.strip()
        parsed = check_scheme(url)
        if request.format not in FORMATS:
            raise FetchError(f"format {request.format!r} is not one of {', '.join(FORMATS)}")
        started = time.monotonic()
        deadline = Deadline(settings.timeout_s, url)
        routes = proxy_routes(settings.proxy, os.environ)
        client = make_client(
            self.guard(), self._tls(), user_agent=settings.agent, timeout_s=settings.timeout_s, routes=routes
        )
        async with client:
            obey_robots = request.model_initiated and settings.robots

            async def before_hop(next_url: str) -> None:
                check_scheme(next_url)
                if obey_robots and robots_url(next_url) != robots_url(url):
                    await self._check_robots(client, next_url, deadline)  # a redirect to another site

            if obey_robots:
                yield Status(f"checking {robots_url(url)}")
                await self._check_robots(client, url, deadline)
            route = routes.proxy_for(parsed)
            via = f" through the proxy {proxy_label(route[0])}" if route else ""
            yield Status(f"connecting to {parsed.host}{via}")
            response, hops = await open_url(client, url, deadline, before_hop=before_hop)
            try:
                final_url = str(response.url)
                if response.status_code >= 400:
                    raise status_error(final_url, response)
                mime, charset = parse_content_type(response.headers.get("content-type"))
                kind = kind_of(mime, final_url)
                body = Body(settings.max_bytes)
                async for status in body.read(response, deadline):
                    yield status
            finally:
                await response.aclose()
        data = body.data
        kind = kind or sniff_kind(data, final_url)
        text, codec = decode_body(data, charset, kind)
        cut = " (cut at max_bytes)" if body.truncated else ""
        yield Status(f"{response.url.host}: {amount(body.size)} received{cut}")
        if kind == "html" and request.format != "raw":
            yield Status(f"extracting the main content of {final_url}")
        content, title, extractor = await _convert(text, kind, request.format, final_url)
        metadata: dict[str, Any] = {
            "status": response.status_code,
            "charset": codec,
            "bytes": body.size,
            "extractor": extractor,
            "redirects": hops,
            "elapsed_ms": round((time.monotonic() - started) * 1000),
        }
        if body.truncated:
            metadata["note"] = f"cut at {settings.max_bytes} bytes ([fetch] max_bytes)"
        yield Document(
            url=url,
            final_url=final_url,
            content=content,
            title=title,
            content_type=mime or _MIME_OF_KIND[kind],
            truncated=body.truncated,
            metadata=metadata,
        )

    async def _check_robots(self, client: httpx2.AsyncClient, url: str, deadline: Deadline) -> None:
        """Refuse ``url`` when the site's robots.txt disallows it, or when robots.txt cannot be read."""
        where = robots_url(url)
        reading = self._robots_reading.get(where)
        if reading is not None:
            # Pages of one site fetched together (summarize_urls) share one robots.txt request.
            wait = deadline.within(self.settings.robots_timeout_s, where, knob="robots_timeout_s")
            await wait.run(reading.wait(), what="waiting for robots.txt")
        cached = self._robots.get(where)
        if cached is not None and cached[0] > time.monotonic():
            rules = cached[1]
        else:
            self._robots_reading[where] = done = anyio.Event()
            try:
                rules = await self._read_robots(client, where, url, deadline)
            finally:
                self._robots_reading.pop(where, None)
                done.set()
            self._robots[where] = (time.monotonic() + ROBOTS_TTL_S, rules)
        if not rules.allows(self.settings.agent, url):
            raise FetchError(
                f"{url} is disallowed by {where} for {self.settings.agent}: the site asks automated clients "
                "not to fetch it. A user's own `streamhost fetch` ignores robots.txt; [fetch] robots = false "
                "turns it off for assistants too"
            )

    async def _read_robots(self, client: httpx2.AsyncClient, where: str, url: str, deadline: Deadline) -> RobotsRules:
        """The rules of ``where``, read for the page ``url``, which every error names."""

        def unreadable(why: str) -> FetchError:
            return FetchError(
                f"{url} was not fetched: its site's robots.txt ({where}) could not be read ({why}), and a "
                'robots.txt that cannot be read means "disallow all" until it answers. Try again later, or set '
                "[fetch] robots = false"
            )

        deadline = deadline.within(self.settings.robots_timeout_s, where, knob="robots_timeout_s")
        try:
            response, _ = await open_url(client, where, deadline)
        except RedirectLimitError:
            return RobotsRules()  # RFC 9309: too many redirects counts as unavailable, i.e. no rules
        except HostNotFoundError as exc:
            # The page is on the same host: robots = false would not help, the address is wrong.
            raise HostNotFoundError(url, exc.reason) from None
        except AddressRefusedError as exc:
            if exc.message.startswith(f"{httpx2.URL(where)}: ") and isinstance(exc.__cause__, AddressRefusedError):
                raise AddressRefusedError(f"{url}: {exc.__cause__.message}") from None  # the page's own host
            raise unreadable(f"it redirects to a refused address: {exc.message}") from None
        except TransferError as exc:
            raise unreadable(exc.message) from None
        try:
            if response.status_code >= 500:
                raise unreadable(f"HTTP {response.status_code}")
            if response.status_code >= 300:
                return RobotsRules()  # RFC 9309: 4xx means there are no rules
            body = Body(MAX_ROBOTS_BYTES)
            async for _ in body.read(response, deadline):
                pass
        except TransferError as exc:
            raise unreadable(exc.message) from None
        finally:
            await response.aclose()
        return RobotsRules.parse(body.data.decode("utf-8", errors="replace"))


async def _convert(text: str, kind: Kind, output: str, url: str) -> tuple[str, str | None, str]:
    """(content, title, extractor) for a decoded body in the requested format."""
    if output == "raw":
        return text, None, "raw"
    if kind == "json":
        return pretty_json(text), None, "json"
    if kind != "html":
        return text, None, "passthrough"
    # Extraction is CPU-bound (up to ~1 s on a large page): keep the event loop streaming meanwhile,
    # and let a cancelled call return at once rather than wait for the thread to finish.
    result = await anyio.to_thread.run_sync(lambda: extract(text, url=url, output=output), abandon_on_cancel=True)
    return result.text, result.title, result.extractor
