"""The client's MCP roots, for ``generate``'s ``files``: asked once, cached, forgotten when they change.

A client that declares the ``roots`` capability (handshake era, up to 2025-11-25) is asked ``roots/list``
the first time a call needs them, not at start: most sessions never send ``files``. The 2026-07-28
protocol has no server-to-client requests and no roots (SEP-2577): there, and for a client that
declares none, the host uses its working directory.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any
from urllib.parse import unquote_to_bytes, urlsplit

import mcp_types as types
from mcp.server.session import ServerSession
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

log = logging.getLogger("streamhost.roots")

ASK_TIMEOUT_S = 10.0
"""How long a client may take to answer ``roots/list`` before the working directory is used instead."""


def file_paths(roots: list[types.Root]) -> list[Path]:
    """The local directories of ``file://`` roots; roots of other schemes, or on another host, are left out."""
    paths: list[Path] = []
    for root in roots:
        parts = urlsplit(str(root.uri))
        if parts.scheme != "file" or parts.netloc not in ("", "localhost"):
            continue
        # Percent-escapes are bytes: a directory whose name is not UTF-8 still maps to itself.
        paths.append(Path(os.fsdecode(unquote_to_bytes(parts.path))))
    return paths


class ClientRoots:
    """The roots of the one client a stdio server has; calling it returns them (``[]``: it offers none).

    Set as ``HostServices.roots``. The server shows it each request's session (:meth:`seen`) so the
    ``roots/list`` request goes to the connected client, and routes ``notifications/roots/list_changed``
    to :meth:`changed`. An HTTP face with several sessions would need one of these per connection.
    """

    def __init__(self, timeout_s: float = ASK_TIMEOUT_S) -> None:
        self.timeout_s = timeout_s
        self._session: ServerSession | None = None
        self._cached: list[Path] | None = None
        self._version = 0
        self._lock = asyncio.Lock()

    def seen(self, session: ServerSession) -> None:
        """Remember the session of the request being handled (the channel for ``roots/list``)."""
        self._session = session

    async def changed(self, ctx: Any, params: Any) -> None:
        """``notifications/roots/list_changed``: forget the cached roots; the next call asks again."""
        self._version += 1
        self._cached = None
        log.info("the client's roots changed; they are asked again when next needed")

    async def __call__(self) -> list[Path]:
        """The client's roots as local directories; ``[]`` when it offers none or did not answer."""
        async with self._lock:  # concurrent calls share one roots/list request
            if self._cached is not None:
                return self._cached
            version = self._version
            roots = await self._ask()
            if version == self._version:  # a change notice that arrived meanwhile wins
                self._cached = roots
            return roots

    async def _ask(self) -> list[Path]:
        session = self._session
        if session is None or session.protocol_version in MODERN_PROTOCOL_VERSIONS:
            return []
        if not session.check_client_capability(types.ClientCapabilities(roots=types.RootsCapability())):
            return []
        try:
            # send_request, not the SDK's list_roots(): that one warns on every call that roots are
            # deprecated in 2026-07-28, which this session (an earlier version) does not speak.
            result = await session.send_request(types.ListRootsRequest(), types.ListRootsResult,
                                                request_read_timeout_seconds=self.timeout_s)
        except Exception as exc:  # an error answer, a timeout, a malformed result: the working directory
            log.warning("the client declared roots but roots/list failed (%s); using the working directory",
                        f"{type(exc).__name__}: {exc}"[:300])
            return []
        paths = file_paths(list(result.roots))
        log.info("client roots: %s", ", ".join(map(str, paths)) or "none on this machine")
        return paths
