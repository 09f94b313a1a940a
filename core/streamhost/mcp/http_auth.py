"""Who may call the HTTP server: an ASGI middleware that lets a request through only with a valid bearer token.

``Authorization: Bearer TOKEN`` is digested (SHA-256) and looked up in the store's tokens; a missing, wrong or
revoked token gets the same 401 with ``WWW-Authenticate: Bearer`` and nothing else, so a caller learns nothing
about which tokens exist. On success the token's :class:`~streamhost.host.callers.Caller` goes into the ASGI scope
under ``streamhost.caller``, where the MCP face takes it for the call (``CALLER``). Callers on loopback may
come without a token only when ``[http] loopback_without_token = true``; they are then the local user (None).

Lookups are cached for :data:`CACHE_S` seconds per digest, valid and invalid alike, so a busy client costs the
database one query every few seconds, not one per request; a revoke or a changed limit takes effect within
that time on every replica.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import time
from typing import TYPE_CHECKING, Any

from starlette.types import ASGIApp, Receive, Scope, Send

from ..host.callers import TOKEN_CACHE_S, Caller

if TYPE_CHECKING:
    from ..host.memory import Memory

log = logging.getLogger("streamhost.http.auth")

CALLER_KEY = "streamhost.caller"
"""The ASGI scope key of the authenticated caller (None: a local caller on loopback, allowed without a token)."""
CACHE_S = TOKEN_CACHE_S
"""How long a token lookup is trusted: a revoked token stops working within this many seconds."""
CACHE_SIZE = 4096
"""Digests remembered at most: a client trying random tokens cannot grow the cache without bound."""
OPEN_PATHS = ("/healthz", "/readyz")
"""Paths answered without a token: a load balancer's probes carry none."""
MAX_TOKEN_CHARS = 512
CHALLENGE = [(b"www-authenticate", b'Bearer realm="streamhost"'), (b"content-type", b"application/json"),
             (b"cache-control", b"no-store")]
PROXY_HEADERS = (b"forwarded", b"x-forwarded-for", b"x-real-ip")


class Unavailable(Exception):
    """The tokens cannot be read (the store failed to open or stopped answering)."""


class TokenCache:
    """Token digests to callers, read from the store and kept :data:`CACHE_S` seconds."""

    def __init__(self, memory: Memory, *, ttl_s: float = CACHE_S, size: int = CACHE_SIZE) -> None:
        self._memory = memory
        self._ttl_s = ttl_s
        self._size = size
        self._known: dict[str, tuple[float, Caller | None]] = {}
        self._warned = False

    async def caller(self, token: str) -> Caller | None:
        """The caller holding ``token``; None when it is no valid token. Raises :class:`Unavailable`."""
        from ..store.tokens import digest

        token_digest = digest(token)
        now = time.monotonic()
        # A dict lookup by digest leaks nothing useful by its timing: the digest of a guess cannot be steered
        # towards a stored one (that is what SHA-256 is for).
        cached = self._known.get(token_digest)
        if cached is not None and cached[0] > now:
            return cached[1]
        found = await self._lookup(token_digest)
        if len(self._known) >= self._size:
            self._known = {key: entry for key, entry in self._known.items() if entry[0] > now}
            if len(self._known) >= self._size:
                self._known.clear()
        self._known[token_digest] = (now + self._ttl_s, found)
        return found

    async def _lookup(self, token_digest: str) -> Caller | None:
        try:
            store = await self._memory.store()
            if store is None:
                if self._memory.enabled:
                    raise Unavailable(self._memory.failure or "the store could not be opened")
                if not self._warned:
                    self._warned = True
                    log.warning("[store] enabled = false: no token can be checked, so every HTTP caller is refused "
                                "(turn the store on and add tokens with `streamhost tokens add NAME`)")
                return None
            record = await store.token_by_digest(token_digest)
        except Unavailable:
            raise
        except Exception as exc:  # a database that went away
            raise Unavailable(f"{type(exc).__name__}: {exc}") from None
        if record is None or record.revoked or not hmac.compare_digest(record.digest, token_digest):
            return None
        return Caller.of(record)


class BearerAuth:
    """ASGI middleware: requests pass with a valid bearer token (or from loopback, when allowed), else 401."""

    def __init__(self, app: ASGIApp, memory: Memory, *, loopback_without_token: bool | None = None,
                 open_paths: tuple[str, ...] = OPEN_PATHS, cache_s: float = CACHE_S) -> None:
        """
        :param app: the app behind it (the MCP endpoint, the probes).
        :param memory: the engine's store, where the tokens are.
        :param loopback_without_token: let loopback callers in without a token; None: ``[http]
            loopback_without_token`` of the engine's config.
        :param open_paths: paths answered without a token (the health probes).
        :param cache_s: how long a lookup is trusted (:data:`CACHE_S`).
        """
        self.app = app
        self.tokens = TokenCache(memory, ttl_s=cache_s)
        if loopback_without_token is None:
            loopback_without_token = memory.config.http.loopback_without_token
        self.loopback_without_token = loopback_without_token
        self.open_paths = open_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})  # no websocket is served: refused unread
            return
        if scope["type"] != "http" or scope.get("path") in self.open_paths:
            await self.app(scope, receive, send)
            return
        token = _bearer(scope)
        if token is None:
            if not (self.loopback_without_token and _from_loopback(scope)):
                await _refuse(send, 401, b'{"error": "unauthorized"}', CHALLENGE)
                return
            caller = None
        else:
            try:
                caller = await self.tokens.caller(token) if token else None
            except Unavailable as exc:
                log.error("cannot check a bearer token, the request is refused: %s", exc)
                await _refuse(send, 503, b'{"error": "unavailable"}', [
                    (b"content-type", b"application/json"), (b"retry-after", b"5")])
                return
            if caller is None:
                await _refuse(send, 401, b'{"error": "unauthorized"}', CHALLENGE)
                return
        await self.app({**scope, CALLER_KEY: caller}, receive, send)


def _bearer(scope: Scope) -> str | None:
    """The token of the request's ``Authorization: Bearer`` header; None without the header, "" when it holds no
    bearer token (another scheme, an empty or oversized token): refused like a wrong token, even on loopback."""
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").strip().partition(" ")
            token = token.strip()
            if scheme.lower() != "bearer" or len(token) > MAX_TOKEN_CHARS:
                return ""
            return token
    return None


def _from_loopback(scope: Scope) -> bool:
    """Whether the request comes from this machine itself, not through a proxy on it.

    A reverse proxy on the same machine connects from loopback for every client it forwards: a forwarded request
    is never taken for a local one.
    """
    if any(name in PROXY_HEADERS for name, _ in scope.get("headers", ())):
        return False
    client = scope.get("client")
    if not client:
        return False
    try:
        address: Any = ipaddress.ip_address(client[0])
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return bool((mapped or address).is_loopback)


async def _refuse(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [*headers, (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})

