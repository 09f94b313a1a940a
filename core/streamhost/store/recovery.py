"""Which process owns a running run, and whether that process is gone.

A run records its owner as ``HOST:PID:START`` (START: when that process started, from ``/proc``, so a pid
reused by a later process is not mistaken for the owner). On open the store marks ``interrupted`` every
running run whose owner on this host is gone, and any running run, from any host, whose heartbeat is
older than ``STALE_S`` (a replica on another machine that died); a serving process sweeps again periodically
(``host/sweeping.py``).
"""

from __future__ import annotations

import os
import socket
from functools import cache

STALE_S = 120.0
"""A running run whose heartbeat is older than this is taken for dead, wherever its owner ran."""
_STALE_ENV = "STREAMHOST_STALE_S"  # tests shorten it (a killed replica's runs within seconds); not a setting


def stale_s() -> float:
    """How old a heartbeat makes a running run dead: :data:`STALE_S`, or ``$STREAMHOST_STALE_S`` (for tests)."""
    try:
        return max(float(os.environ.get(_STALE_ENV) or STALE_S), 0.5)
    except ValueError:
        return STALE_S


def heartbeat_s() -> float:
    """How often a running run beats: often enough that a slow beat is never taken for a dead process."""
    return min(10.0, stale_s() / 4)


def on_this_host() -> str:
    """A LIKE pattern for the owners on this host (whose processes :func:`gone` can check)."""
    host = socket.gethostname().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"{host}:%"


def _started(pid: int) -> str:
    """When process ``pid`` started, in clock ticks since boot (Linux); "" where /proc cannot tell."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            # The command name (field 2) may hold spaces and parentheses: count fields after its last ')'.
            return stat.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


@cache
def this_process() -> str:
    """This process as an owner: ``HOST:PID:START``."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_started(pid)}"


def gone(owner: str) -> bool:
    """Whether the owner process is known to have ended (only a process on this host can be checked)."""
    parts = owner.rsplit(":", 2)
    if len(parts) != 3 or parts[0] != socket.gethostname():
        return False
    _, pid_text, started = parts
    try:
        pid = int(pid_text)
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (ValueError, PermissionError, OSError):
        return False  # not ours to signal, or not a pid: it may well be alive
    return bool(started) and _started(pid) not in ("", started)
