"""Naming the socket an upstream response is read from, so that a cancel can close it from any thread.

A cancel the client sends is read by the MCP transport's reader thread, but the stream it stops is read
by the event loop: under load the loop runs each of its turns late (hundreds of ms with fifty busy
streams), and the upstream request stayed open, still generating, until the loop got round to cancelling
it. ``shutdown(SHUT_RDWR)`` on a socket is safe from any thread: the upstream sees the connection closed
at once, and the loop later finds the socket dead while the call's cancellation proceeds as before.

A provider names the socket it is reading from with :func:`upstream_socket`, for as long as it reads.
Each call the host runs collects those in an :class:`UpstreamSockets`; a cancel shuts them down.
The socket is never closed here, only shut down: its owner (the HTTP client) closes it as usual, and a
shut-down connection is never put back in a pool (a read on it ends at once, which marks it broken).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any, Protocol

__all__ = ["UpstreamSockets", "collect_upstream_sockets", "upstream_socket"]

log = logging.getLogger("streamhost.upstreams")


class _HasFileno(Protocol):
    def fileno(self) -> int: ...


_CURRENT: ContextVar[UpstreamSockets | None] = ContextVar("streamhost_upstream_sockets", default=None)


class UpstreamSockets:
    """The sockets one call's upstream responses are being read from; :meth:`shutdown` is safe from any thread.

    Each socket is held as a duplicate of its file descriptor, closed when its read ends: the number a
    shutdown acts on can never have been closed and handed to another connection meanwhile.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._fds: dict[int, int] = {}
        self._next = 0
        self._shut = False
        self._retired = False

    @property
    def shut(self) -> bool:
        """Whether :meth:`shutdown` was called (a socket named afterwards is shut down at once)."""
        return self._shut

    def add(self, sock: _HasFileno) -> int | None:
        """Hold ``sock``'s connection until :meth:`discard`; a handle for that, or None if nothing is held."""
        try:
            fd = os.dup(sock.fileno())
        except (OSError, ValueError):  # closed already (fileno -1), or not a file descriptor
            return None
        with self._lock:
            if not self._retired and not self._shut:
                self._next += 1
                self._fds[self._next] = fd
                return self._next
            shut = self._shut and not self._retired
        if shut:  # the cancel came while the request was being sent: it ends here
            _shutdown(fd)
        os.close(fd)
        return None

    def discard(self, handle: int | None) -> None:
        """The read that named this socket ended: let its connection go."""
        if handle is None:
            return
        with self._lock:
            fd = self._fds.pop(handle, None)
        if fd is not None:
            os.close(fd)

    def shutdown(self) -> int:
        """Shut down every connection held, and any named later (from any thread); how many were shut down."""
        with self._lock:  # held across the calls: a concurrent discard cannot close an fd being shut down
            if self._shut or self._retired:
                return 0
            self._shut = True
            return sum(_shutdown(fd) for fd in self._fds.values())

    def retire(self) -> None:
        """The call is over: let every connection go; whatever is named later is not held."""
        with self._lock:
            self._retired = True
            fds, self._fds = list(self._fds.values()), {}
        for fd in fds:
            os.close(fd)


def _shutdown(fd: int) -> bool:
    try:
        sock = socket.socket(fileno=fd)
    except OSError:  # not a socket after all
        return False
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError as exc:  # already closed by the peer: nothing left to stop
        log.debug("shutting down an upstream socket: %r", exc)
        return False
    finally:
        sock.detach()  # the duplicate is closed by discard/retire, not by this object
    return True


@contextlib.contextmanager
def upstream_socket(sock: Any) -> Iterator[None]:
    """For a provider: the response being read in this block comes over ``sock``, which a cancel may shut down.

    ``sock`` is anything with a ``fileno()``: a ``socket.socket``, or what an asyncio transport's
    ``get_extra_info("socket")`` returns; None names nothing (so a lookup that may fail can be passed
    as is). Name only a connection this one response uses alone (HTTP/1.1, not a shared HTTP/2 one):
    when the client cancels the call, the host shuts it down from the thread that read the cancel,
    without waiting for the event loop, and the read in this block ends with a connection error while
    the call's task is being cancelled. Outside a call the host runs this does nothing.

    Use it around the read of the body, e.g.::

        with streamhost.upstream_socket(response.connection.transport.get_extra_info("socket")):
            async for chunk in response.content.iter_any():
                ...
    """
    sockets = _CURRENT.get()
    handle = sockets.add(sock) if sockets is not None and sock is not None else None
    try:
        yield
    finally:
        if handle is not None:
            sockets.discard(handle)  # type: ignore[union-attr]  # a handle means sockets is set


@contextlib.contextmanager
def collect_upstream_sockets() -> Iterator[UpstreamSockets]:
    """For the host: collect the sockets named with :func:`upstream_socket` in this context (one call's)."""
    sockets = UpstreamSockets()
    token = _CURRENT.set(sockets)
    try:
        yield sockets
    finally:
        _CURRENT.reset(token)
        sockets.retire()
