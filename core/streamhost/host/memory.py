"""The engine's store, opened on first use: the database libraries are imported then, never at start-up.

A store that cannot be opened (a file it may not write, a database that is down) does not stop calls: they
run unrecorded, the reason is logged once, and what needs the store (threads) says why it is unavailable.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from ..errors import StreamhostError
from .config import Config
from .handoff import LiveRuns
from .remote_cancels import RemoteCancels
from .sweeping import Sweeper

if TYPE_CHECKING:
    from ..store.database import Store

log = logging.getLogger("streamhost.store")


class Memory:
    """Opens the store once per event loop and hands it out; None when it is turned off or failed to open."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._store: Store | None = None
        self._opening: asyncio.Future[Store | None] | None = None
        self.failure: str | None = None
        """Why the store could not be opened, once it failed."""
        self.sweeper = Sweeper()
        """Marks a dead replica's runs interrupted while this process runs; ``sweeper.listen`` hears of them."""
        self.live = LiveRuns()
        """The runs going on in this process past their request (handed off, or resumed after a restart)."""
        self.cancels = RemoteCancels(self.live)
        """Cancels this process's runs (live runs, and MCP tasks it ``watch``es) when another process asks to."""
        self.resume: Callable[[], Awaitable[None]] | None = None
        """Takes over the runs a stopped host left (set by the engine); ``wait`` calls it first, so right after a
        restart a run is followed, not reported interrupted."""

    @property
    def enabled(self) -> bool:
        """Whether ``[store] enabled`` is on."""
        return self.config.store.enabled

    @staticmethod
    def warm() -> None:
        """Import the database libraries (for the background warm-up thread)."""
        from ..store import preload

        preload()

    async def store(self) -> Store | None:
        """The open store; None when it is turned off or could not be opened (``failure`` says why)."""
        if not self.enabled or self.failure is not None:
            return None
        if self._store is not None:
            return self._store
        if self._opening is None:
            self._opening = asyncio.ensure_future(self._open())
        # Shielded: a call cancelled while the store opens must not leave it half open for the next call.
        return await asyncio.shield(self._opening)

    async def require(self, purpose: str) -> Store:
        """The open store, or a StreamhostError saying why ``purpose`` cannot be served without it."""
        store = await self.store()
        if store is not None:
            return store
        if not self.enabled:
            where = f" in {self.config.path}" if self.config.path else ""
            raise StreamhostError(f"{purpose} need the store, which is turned off ([store] enabled = false"
                                  f"{where}); turn it on to use them")
        raise StreamhostError(f"{purpose} need the store, which could not be opened: {self.failure}")

    async def _open(self) -> Store | None:
        try:
            from ..store.database import open_store

            self._store = await open_store(self.config.store)
        except Exception as exc:
            self.failure = f"{type(exc).__name__}: {exc}"
            log.error("the store could not be opened, calls go on unrecorded: %s", self.failure)
            return None
        self.sweeper.start(self._store)
        self.cancels.start(self._store)
        return self._store

    async def aclose(self) -> None:
        """Close the store if it was opened."""
        await self.live.cancel_all()  # before the store closes: each records how it ended
        store, self._store = self._store, None
        await self.sweeper.stop()
        await self.cancels.stop()
        if store is not None:
            await store.close()
