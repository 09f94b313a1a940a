"""One JSON line per stream event, for looking at latency over time. Lengths and timings only."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

log = logging.getLogger("streamhost.metrics")

CHECK_S = 1.0
"""How often the open file is checked against its path (rolled over by another process, removed)."""


def default_metrics_path() -> Path:
    """``metrics.jsonl`` in the platform's user state dir (``~/.local/state/streamhost`` on Linux)."""
    import platformdirs

    return Path(platformdirs.user_state_dir("streamhost")) / "metrics.jsonl"


class Metrics:
    """Appends events to a JSON-lines file; a failure to write is logged once, never raised.

    When the file passes ``max_bytes`` it is renamed to ``<name>.1`` (replacing an older one), so it
    never grows without bound. The file stays open between events (a record is one ``write`` on the event
    loop, not an open, a write and a close: ~10 µs instead of ~90); once a second, and when it is full, the
    path is checked again, so a file rolled over by another process or removed by the user is reopened.
    """

    def __init__(self, path: Path | None, enabled: bool = True, max_bytes: int = 10_000_000) -> None:
        self.path = path
        self.enabled = enabled and path is not None
        self.max_bytes = max_bytes
        self._warned = False
        self._fd: int | None = None
        self._checked_at = 0.0

    def record(self, event: str, **fields: Any) -> None:
        """Write one line: ``{"ts": ..., "event": event, **fields}``. Never pass prompt text or keys."""
        if not self.enabled or self.path is None:
            return
        now = time.time()
        line = json.dumps({"ts": round(now, 3), "event": event, **fields}, separators=(",", ":")) + "\n"
        try:
            fd = self._open(now)
            os.write(fd, line.encode())
            if os.lseek(fd, 0, os.SEEK_CUR) > self.max_bytes:
                self._roll_over(fd)
        except OSError as exc:
            self.close()
            if not self._warned:
                self._warned = True
                log.warning("cannot write metrics to %s: %s", self.path, exc)

    def close(self) -> None:
        """Close the file (the next event opens it again)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

    def _open(self, now: float) -> int:
        assert self.path is not None
        if self._fd is not None and now - self._checked_at >= CHECK_S and not self._still_ours(self._fd):
            self.close()
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
            self._checked_at = now
        elif now - self._checked_at >= CHECK_S:
            self._checked_at = now
        return self._fd

    def _still_ours(self, fd: int) -> bool:
        """Whether the path still names the open file (not rolled over elsewhere, not removed)."""
        assert self.path is not None
        try:
            return os.path.samestat(os.fstat(fd), os.stat(self.path))
        except OSError:
            return False

    def _roll_over(self, fd: int) -> None:
        assert self.path is not None
        if self._still_ours(fd):  # another process may have rolled it over already: then only reopen
            self.path.replace(self.path.with_name(self.path.name + ".1"))
        self.close()
