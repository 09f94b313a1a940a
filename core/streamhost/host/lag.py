"""How loaded the event loop is: what widens the relay's coalescing windows before, and while, it falls behind.

Two signals, pooled per event loop. The number of streams relaying at once: every text notification costs the
server 0.2-0.7 ms of CPU (the MCP SDK's handling, more over HTTP than stdio), so the streams share a budget of
notifications per second and each one's window widens as they multiply (200 streams: 0.5 s each), before the loop
falls behind rather than after. And the loop's lag: every relay already sleeps on a timer between its flushes;
when the timer fires late, the loop was busy for that long, and windows widen further until it catches up. No
extra task or timer is needed to measure either.

The longest pauses of a busy server are not its own work but the collector's: see ``garbage.py``.
"""

from __future__ import annotations

import asyncio
import weakref

MAX_WINDOW_S = 0.5
"""The widest a coalescing window grows under lag: text still reaches the caller twice a second."""
WIDEN = 4.0
"""A window grows by this many times the loop's lag."""
QUIET_S = 0.005
"""Lag below this is the ordinary jitter of a loaded machine and widens nothing."""
HALF_LIFE_S = 1.0
"""How fast the lag is forgotten once the loop keeps up: windows widen at once and narrow gradually."""
NOTIFICATIONS_PER_S = 300.0
"""The text notifications per second the streams of one loop share (~0.2 s of CPU a second over HTTP): with more
streams than fit at their configured windows, each window widens to ``streams / NOTIFICATIONS_PER_S``."""


class LoopLag:
    """The load of one event loop: its recent lag (the largest late wake-up, decaying by half every
    ``HALF_LIFE_S``) and how many streams relay on it now (``streams``, counted by the relays)."""

    def __init__(self) -> None:
        self.level = 0.0
        self.at = 0.0
        self.streams = 0

    def observe(self, late: float, now: float) -> None:
        """A timer due ``late`` seconds before ``now`` has just run."""
        if late > self.current(now):
            self.level, self.at = late, now

    def current(self, now: float) -> float:
        """The lag now, in seconds."""
        if self.level == 0.0:
            return 0.0
        return self.level * 0.5 ** ((now - self.at) / HALF_LIFE_S)

    def busy(self, now: float) -> bool:
        """Whether the loop runs late enough to widen windows (a quiet loop's jitter does not count)."""
        return self.current(now) >= QUIET_S

    def window(self, base: float, now: float) -> float:
        """The coalescing window for a call configured with ``base`` seconds.

        ``base`` when the loop keeps up and its streams fit the shared budget; otherwise the widest of the
        stream's share of the budget and ``base`` plus ``WIDEN`` times the lag, up to ``MAX_WINDOW_S`` (a configured
        window wider than that is kept as it is). A window of 0 (every delta sent as it comes) is what the user
        asked for, and stays 0.
        """
        if base <= 0.0:
            return base
        wanted = max(base, self.streams / NOTIFICATIONS_PER_S)
        lag = self.current(now)
        if lag >= QUIET_S:
            wanted = max(wanted, base + WIDEN * lag)
        return max(base, min(MAX_WINDOW_S, wanted))


_LAGS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopLag] = weakref.WeakKeyDictionary()


def loop_lag() -> LoopLag:
    """The lag of the running event loop, shared by every relay on it."""
    loop = asyncio.get_running_loop()
    lag = _LAGS.get(loop)
    if lag is None:
        lag = _LAGS[loop] = LoopLag()
    return lag
