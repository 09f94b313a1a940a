"""Turning openai SDK exceptions into streamhost's typed errors, without ever showing the key."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from streamhost import (
    StreamError,
    UpstreamConnectionError,
    UpstreamTimeoutError,
    error_for_status,
)

from .transport import timed_out

_KEYLIKE = re.compile(r"\b(sk-[A-Za-z0-9_\-*]{3,})")
NOT_FOUND = "`streamhost models --refresh` lists what the endpoint serves"


@dataclass(frozen=True)
class CallContext:
    """What an error message needs to name: the call, where it was sent, which variable held the key."""

    label: str
    where: str
    key_variable: str | None
    key: str | None


def scrub(text: str, key: str | None) -> str:
    """Remove the key (and anything that looks like one) from an upstream message."""
    if key:
        text = text.replace(key, "***")
    return _KEYLIKE.sub("sk-***", text)


def _message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return inner["message"]
        if isinstance(body.get("message"), str):
            return body["message"]
    return str(getattr(exc, "message", None) or exc)


def map_error(exc: Exception, call: CallContext, *, mid_stream: bool = False) -> Exception:
    """The streamhost error for an openai SDK exception (other exceptions are returned unchanged).

    What only the SDK knows (time-outs, lost connections) is mapped here; HTTP error statuses get the
    words every provider uses, from :func:`streamhost.error_for_status`. ``mid_stream``: text has
    streamed already, so a lost connection cut the answer short (the endpoint was reachable).
    """
    import openai

    if not isinstance(exc, openai.OpenAIError):
        return exc
    detail = scrub(_message(exc), call.key)
    if isinstance(exc, openai.APIStatusError):
        return error_for_status(exc.status_code, detail, label=call.label, where=call.where,
                                key_variable=call.key_variable, headers=exc.response.headers, not_found=NOT_FOUND)
    if isinstance(exc, openai.APITimeoutError) and timed_out(exc):
        return UpstreamTimeoutError(f"{call.label}: timed out talking to {call.where}")
    if isinstance(exc, openai.APIConnectionError):  # also a time-out that was a failure to connect
        cause = exc.__cause__ or exc.__context__
        reason = f": {scrub(str(cause), call.key)}" if cause else ""
        if mid_stream:
            return StreamError(f"{call.label}: the upstream closed the stream before the model finished "
                               f"(connection lost{reason}); the text so far is kept")
        return UpstreamConnectionError(f"{call.label}: cannot reach {call.where}{reason}")
    return StreamError(f"{call.label}: the upstream reported an error mid-stream: {detail}")
