"""The requests in flight on one MCP session, and which of them the client has cancelled.

A cancel closes the call's upstream connections from the thread that read it: the sockets its provider
named (``streamhost.upstream_socket``) are shut down there and then, before the event loop, which may be
running each turn hundreds of ms late under load, gets to cancel the call's task.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import anyio
import mcp_types as types
from mcp.shared.dispatcher import coerce_request_id

from ..host.relay import stoppable_upstreams
from ..upstreams import UpstreamSockets, collect_upstream_sockets


class Calls:
    """Shared by the transport (which reads cancels and writes answers) and the tool handlers.

    The reader thread records requests and cancels as it reads them, and shuts down a cancelled call's
    upstream sockets; everything else runs on the event loop. Keys are request ids as the SDK correlates
    them (``"7"`` and ``7`` are one id).
    """

    def __init__(self) -> None:
        self._open: set[types.RequestId] = set()
        self._cancelled: set[types.RequestId] = set()
        self._scopes: dict[types.RequestId, anyio.CancelScope] = {}
        self._upstreams: dict[types.RequestId, Callable[[], None]] = {}
        self._sockets: dict[types.RequestId, UpstreamSockets] = {}

    def opened(self, key: types.RequestId) -> None:
        """A request was read."""
        self._open.add(key)
        self._cancelled.discard(key)  # a client that reuses an id gets the new request's notifications

    def cancel_read(self, key: types.RequestId) -> bool:
        """A cancel for ``key`` was read; True if that request is in flight (nothing more is sent for it).

        Its upstream connections are shut down at once (this runs on the reader thread). The read that
        fails on them is not retried: the reader schedules ``cancel_now`` right after this, and the loop
        runs it before the dead socket's error can reach the relay (that takes a turn of the loop for
        the socket's event and more for the tasks it wakes), let alone a retry's back-off.
        """
        if key not in self._open:
            return False
        self._cancelled.add(key)
        sockets = self._sockets.get(key)  # one dict read: atomic while the loop adds and removes calls
        if sockets is not None:
            sockets.shutdown()
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
            self._sockets[key].shutdown()  # a no-op after cancel_read; the first stop for a cancel on the loop

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
        with stoppable_upstreams() as stop, collect_upstream_sockets() as sockets:
            self._scopes[key], self._upstreams[key], self._sockets[key] = scope, stop, sockets
            try:
                with scope:
                    yield scope
            finally:
                if self._scopes.get(key) is scope:
                    del self._scopes[key], self._upstreams[key], self._sockets[key]
