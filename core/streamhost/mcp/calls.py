"""The requests in flight on one MCP session, and which of them the client has cancelled."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import anyio
import mcp_types as types
from mcp.shared.dispatcher import coerce_request_id

from ..host.relay import stoppable_upstreams


class Calls:
    """Shared by the transport (which reads cancels and writes answers) and the tool handlers.

    The reader thread records requests and cancels as it reads them; everything else runs on the
    event loop. Keys are request ids as the SDK correlates them (``"7"`` and ``7`` are one id).
    """

    def __init__(self) -> None:
        self._open: set[types.RequestId] = set()
        self._cancelled: set[types.RequestId] = set()
        self._scopes: dict[types.RequestId, anyio.CancelScope] = {}
        self._upstreams: dict[types.RequestId, Callable[[], None]] = {}

    def opened(self, key: types.RequestId) -> None:
        """A request was read."""
        self._open.add(key)
        self._cancelled.discard(key)  # a client that reuses an id gets the new request's notifications

    def cancel_read(self, key: types.RequestId) -> bool:
        """A cancel for ``key`` was read; True if that request is in flight (nothing more is sent for it)."""
        if key not in self._open:
            return False
        self._cancelled.add(key)
        return True

    def is_cancelled(self, key: types.RequestId) -> bool:
        """Whether the client cancelled this request."""
        return key in self._cancelled

    def closed(self, key: types.RequestId) -> bool:
        """The request is settled; True if it was cancelled (then its answer must not be written).

        The cancel mark stays: a notification the handler sent just before it stopped may still be queued.
        """
        self._open.discard(key)
        return key in self._cancelled

    def idle(self) -> bool:
        """No tool call is running (safe to ask from any thread)."""
        return not self._scopes

    def cancel_now(self, key: types.RequestId) -> None:
        """Cancel the handler running ``key``, if one is, and its upstream requests (called on the event loop)."""
        scope = self._scopes.get(key)
        if scope is not None:
            scope.cancel()
            self._upstreams[key]()

    @contextmanager
    def running(self, request_id: types.RequestId | None) -> Iterator[anyio.CancelScope]:
        """A cancel scope for a handler, which a cancel read by the transport cancels at once."""
        scope = anyio.CancelScope()
        if request_id is None:
            with scope:
                yield scope
            return
        key = coerce_request_id(request_id)
        if key in self._cancelled:
            scope.cancel()
        with stoppable_upstreams() as stop:
            self._scopes[key], self._upstreams[key] = scope, stop
            try:
                with scope:
                    yield scope
            finally:
                if self._scopes.get(key) is scope:
                    del self._scopes[key], self._upstreams[key]
