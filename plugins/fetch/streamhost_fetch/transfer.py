"""One HTTP transfer: open a URL following checked redirects, read its body under a byte cap and a deadline."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar
from urllib.parse import urlsplit

import anyio
import httpx2

from streamhost import FetchError, Status

from .guard import AddressRefusedError, UnresolvedError
from .options import MAX_REDIRECTS

T = TypeVar("T")

SCHEMES = ("http", "https")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
PROGRESS_EVERY_S = 0.25
"""Least time between two "N KB received" statuses: a fast transfer should not flood the relay."""


def amount(size: int) -> str:
    """A byte count for a status line: ``512 bytes``, ``87 KB``."""
    return f"{size} bytes" if size < 1024 else f"{size // 1024} KB"


class TransferError(FetchError):
    """The site could not be reached or did not answer in time (as opposed to a refusal by policy)."""


class HostNotFoundError(TransferError):
    """The URL's host name does not resolve: no robots.txt or retry setting helps, only the right address.

    :param reason: what the guard said, e.g. ``the host nowhere.example does not resolve (Name or
        service not known); check the address``.
    """

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"could not fetch {url}: {reason}")
        self.reason = reason


class RedirectLimitError(FetchError):
    """A URL redirected more than MAX_REDIRECTS times."""


class Deadline:
    """One overall time limit for a fetch. httpx2's read timeout is per socket read, so a server
    dripping a byte a second would never trip it: every await of the fetch goes through ``run``.

    :param knob: the ``[fetch]`` key that sets this limit, named in the error.
    """

    def __init__(self, seconds: float, url: str, *, knob: str = "timeout_s") -> None:
        self.seconds = seconds
        self.url = url
        self.knob = knob
        self.ends = time.monotonic() + seconds

    def within(self, seconds: float, url: str, *, knob: str) -> Deadline:
        """A shorter deadline for one part of the fetch (robots.txt), never past this one."""
        inner = Deadline(seconds, url, knob=knob)
        if inner.ends > self.ends:
            inner.ends, inner.seconds, inner.knob = self.ends, self.seconds, self.knob
        return inner

    def error(self, what: str = "") -> TransferError:
        """The error for a fetch that ran out of time."""
        during = f" ({what})" if what else ""
        return TransferError(
            f"{self.url} took longer than {self.seconds:g} s{during}; the site is slow or stalled. "
            f"Try again later, or raise [fetch] {self.knob}"
        )

    async def run(self, awaitable: Awaitable[T], *, what: str = "") -> T:
        """Await ``awaitable`` within what is left of the deadline."""
        try:
            with anyio.fail_after(max(self.ends - time.monotonic(), 0)):
                return await awaitable
        except TimeoutError:
            raise self.error(what) from None


def check_scheme(url: str) -> httpx2.URL:
    """Parse ``url``, refusing anything but an absolute http(s) URL with a message saying what is accepted."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in SCHEMES:
        what = f"a {parts.scheme}: URL" if parts.scheme else "not an absolute URL"
        raise FetchError(f"{url!r} is {what}: only http:// and https:// pages can be fetched")
    try:
        parsed = httpx2.URL(url)
    except httpx2.InvalidURL as exc:
        raise FetchError(f"{url!r} is not a valid URL ({exc}); write it as https://host/path") from None
    if not parsed.host:
        raise FetchError(f"{url!r} has no host name: write it as https://host/path")
    return parsed


def redirect_error(url: str, location: str) -> FetchError:
    """The error for a redirect that is not followed: to another scheme (``data:``, ``file:``) or no valid URL."""
    shown = location if len(location) <= 80 else location[:77] + "..."
    scheme = location.partition(":")[0].lower() if _SCHEME.match(location) else ""
    if scheme and scheme not in SCHEMES:
        return FetchError(
            f"{url} redirected to a {scheme}: URL ({shown}), which is refused: only http:// and https:// pages "
            "are fetched, redirects included"
        )
    return FetchError(f"{url} redirected to {shown!r}, which is not a valid http(s) URL; the site's redirect is broken")


def status_error(url: str, response: httpx2.Response) -> FetchError:
    """A clear error for a 4xx/5xx answer."""
    code = response.status_code
    reason = response.reason_phrase or ""
    if code in (401, 403):
        advice = "the page needs a login or refuses automated clients"
    elif code == 407:
        advice = ("the proxy wants credentials, or refused the ones given: write them in the proxy URL, "
                  "http://user:password@host:port")
    elif code in (404, 410):
        advice = "the page does not exist; check the address"
    elif code == 429:
        retry = response.headers.get("retry-after")
        advice = "the site is rate limiting; try again later" + (f" (it asks to wait {retry} s)" if retry else "")
    elif code >= 500:
        advice = "the site failed to serve it; try again later"
    else:
        advice = "the site refused the request"
    return FetchError(f"{url} answered HTTP {code} {reason}: {advice}".replace("  ", " "))


def describe(exc: httpx2.HTTPError, url: str) -> TransferError:
    """A TransferError for a transport failure, naming the URL and what to do."""
    if isinstance(exc, httpx2.TimeoutException):
        return TransferError(f"{url} did not answer in time ({type(exc).__name__}); try again later")
    if isinstance(exc.__cause__, UnresolvedError):
        return HostNotFoundError(url, str(exc.__cause__))
    if isinstance(exc, httpx2.ProxyError):
        return TransferError(f"the proxy did not fetch {url}: {exc}; check the proxy setting and its credentials")
    if isinstance(exc, httpx2.ConnectError):
        return TransferError(f"could not connect to {url}: {exc or 'connection failed'}; check the address")
    return TransferError(f"fetching {url} failed: {type(exc).__name__}: {exc}")


async def open_url(
    client: httpx2.AsyncClient,
    url: str,
    deadline: Deadline,
    *,
    before_hop: Callable[[str], Awaitable[None]] | None = None,
) -> tuple[httpx2.Response, list[str]]:
    """GET ``url`` and follow up to MAX_REDIRECTS redirects, each hop an ordinary guarded request.

    ``await before_hop(next_url)`` runs before each redirect is followed and may refuse it by raising.
    Returns the final (streaming, unread) response and the URLs redirected to. The caller closes it.
    """
    hops: list[str] = []
    request = client.build_request("GET", url)
    while True:
        check_scheme(str(request.url))
        try:
            response = await deadline.run(client.send(request, stream=True), what="connecting")
        except AddressRefusedError as exc:
            raise AddressRefusedError(f"{request.url}: {exc.message}") from exc
        except httpx2.HTTPError as exc:
            raise describe(exc, str(request.url)) from None
        next_request = response.next_request
        if next_request is None or next_request.url.scheme not in SCHEMES:
            if not response.has_redirect_location:
                return response, hops
            # httpx2 leaves next_request empty for a Location it cannot make into a URL (``data:…``):
            # returning the redirect itself would be an empty page passed off as a success.
            await response.aclose()
            raise redirect_error(str(request.url), response.headers["location"])
        await response.aclose()
        if len(hops) == MAX_REDIRECTS:
            last = response.next_request.url
            raise RedirectLimitError(f"{url} redirected more than {MAX_REDIRECTS} times (the last hop to {last})")
        request = next_request
        hops.append(str(request.url))
        if before_hop is not None:
            await before_hop(hops[-1])


class Body:
    """The body of a response read under a byte cap; ``read`` yields progress statuses as it goes."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.parts: list[bytes] = []
        self.size = 0
        self.truncated = False

    @property
    def data(self) -> bytes:
        return b"".join(self.parts)

    async def read(self, response: httpx2.Response, deadline: Deadline) -> AsyncIterator[Status]:
        """Read decoded bytes until the end or the cap. Counting decoded bytes keeps a gzip bomb bounded."""
        host = response.url.host
        iterator = response.aiter_bytes()
        last = time.monotonic()
        try:
            while True:
                try:
                    chunk = await deadline.run(anext(iterator), what="reading the page")
                except StopAsyncIteration:
                    break
                except httpx2.HTTPError as exc:
                    raise describe(exc, str(response.url)) from None
                room = self.max_bytes - self.size
                if len(chunk) > room:
                    self.parts.append(chunk[:room])
                    self.size += room
                    self.truncated = True
                    break
                self.parts.append(chunk)
                self.size += len(chunk)
                if time.monotonic() - last >= PROGRESS_EVERY_S:
                    last = time.monotonic()
                    yield Status(f"{host}: {amount(self.size)} received")
        finally:
            await iterator.aclose()  # type: ignore[attr-defined]
