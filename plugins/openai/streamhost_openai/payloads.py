"""The JSON of one streamed event, read with the standard library: parsed, checked, its text and errors taken out.

Shared by :mod:`.chat_events` and :mod:`.responses_events`. Every way an upstream can break the protocol here is
a :class:`~streamhost.StreamError` that keeps the text streamed before it.
"""

from __future__ import annotations

import json
from typing import Any

from streamhost import StreamError

__all__ = ["CUT_SHORT", "parse", "reported", "text"]

CUT_SHORT = "the upstream closed the stream before the model finished"
_loads = json.loads


def parse(data: str, label: str) -> dict[str, Any]:
    """The JSON object an event's data holds."""
    try:
        value = _loads(data)
    except ValueError:
        raise StreamError(f"{label}: the upstream sent an event that is not JSON ({data!r:.80}); "
                          "the text so far is kept") from None
    if type(value) is not dict:
        raise StreamError(f"{label}: the upstream sent an event that is not a JSON object ({data!r:.80}); "
                          "the text so far is kept")
    return value


def text(value: Any, label: str) -> str:
    """A text delta from the wire, which a broken server may send as a number or an object."""
    if type(value) is not str:
        raise StreamError(f"{label}: the upstream sent text that is not a string ({type(value).__name__}: "
                          f"{value!r:.60}); the text so far is kept")
    return value


def reported(error: Any) -> str:
    """The message of an upstream's error object (or the error itself when it is a string)."""
    if isinstance(error, dict) and isinstance(error.get("message"), str) and error["message"]:
        return error["message"]
    if isinstance(error, str) and error:
        return error
    return "An error occurred during streaming"  # the openai SDK's words for an error without a message
