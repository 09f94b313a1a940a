"""Server-sent events and compact JSON, as the OpenAI API frames its streams; standard library only."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["dumps", "json_bytes", "sse"]


def dumps(obj: Any) -> str:
    """Compact JSON text, non-ASCII characters left as they are."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def json_bytes(obj: Any) -> bytes:
    """Compact JSON as UTF-8; text UTF-8 cannot hold (a lone surrogate) goes out as ``\\uXXXX`` escapes."""
    try:
        return dumps(obj).encode()
    except UnicodeEncodeError:
        return json.dumps(obj, separators=(",", ":")).encode()


def sse(data: Any, event: str | None = None) -> bytes:
    """Encode one SSE event (``event: NAME`` line optional); ``data`` is JSON-encoded unless ``str``."""
    payload = data.encode() if isinstance(data, str) else json_bytes(data)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: ".encode() + payload + b"\n\n"
