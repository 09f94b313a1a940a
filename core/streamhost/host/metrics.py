"""One JSON line per stream event, for looking at latency over time. Lengths and timings only."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

log = logging.getLogger("streamhost.metrics")


def default_metrics_path() -> Path:
    """``metrics.jsonl`` in the platform's user state dir (``~/.local/state/streamhost`` on Linux)."""
    import platformdirs

    return Path(platformdirs.user_state_dir("streamhost")) / "metrics.jsonl"


class Metrics:
    """Appends events to a JSON-lines file; a failure to write is logged once, never raised.

    When the file passes ``max_bytes`` it is renamed to ``<name>.1`` (replacing an older one), so it
    never grows without bound.
    """

    def __init__(self, path: Path | None, enabled: bool = True, max_bytes: int = 10_000_000) -> None:
        self.path = path
        self.enabled = enabled and path is not None
        self.max_bytes = max_bytes
        self._warned = False

    def record(self, event: str, **fields: Any) -> None:
        """Write one line: ``{"ts": ..., "event": event, **fields}``. Never pass prompt text or keys."""
        if not self.enabled or self.path is None:
            return
        line = json.dumps({"ts": round(time.time(), 3), "event": event, **fields}, separators=(",", ":"))
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(line + "\n")
                full = handle.tell() > self.max_bytes
            if full:
                self.path.replace(self.path.with_name(self.path.name + ".1"))
        except OSError as exc:
            if not self._warned:
                self._warned = True
                log.warning("cannot write metrics to %s: %s", self.path, exc)
