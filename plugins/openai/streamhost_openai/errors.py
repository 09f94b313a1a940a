"""Turning openai SDK exceptions into streamhost's typed errors, without ever showing the key."""

from __future__ import annotations

import re
from typing import Any

from streamhost import (
    AuthenticationError,
    ProviderError,
    RateLimitError,
    StreamError,
    UpstreamConnectionError,
    UpstreamServerError,
    UpstreamTimeoutError,
    retry_after_seconds,
)

_KEYLIKE = re.compile(r"\b(sk-[A-Za-z0-9_\-*]{3,})")


def scrub(text: str, key: str | None) -> str:
    """Remove the key (and anything that looks like one) from an upstream message."""
    if key:
        text = text.replace(key, "***")
    return _KEYLIKE.sub("sk-***", text)


def _retry_after(exc: Any) -> float | None:
    return retry_after_seconds(getattr(getattr(exc, "response", None), "headers", None))


def _message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return inner["message"]
        if isinstance(body.get("message"), str):
            return body["message"]
    return str(getattr(exc, "message", None) or exc)


def map_error(exc: Exception, label: str, base_url: str, key_variable: str | None, key: str | None, *,
              mid_stream: bool = False) -> Exception:
    """The streamhost error for an openai SDK exception (other exceptions are returned unchanged).

    ``mid_stream``: text has streamed already, so a lost connection cut the answer short (the endpoint
    was reachable).
    """
    import openai

    if not isinstance(exc, openai.OpenAIError):
        return exc
    detail = scrub(_message(exc), key)
    status = getattr(exc, "status_code", None)
    if isinstance(exc, (openai.AuthenticationError, openai.PermissionDeniedError)):
        return AuthenticationError(
            f"{label}: the endpoint refused the API key (HTTP {status}): {detail} — check {key_variable}",
            status=status,
        )
    if isinstance(exc, openai.RateLimitError):
        return RateLimitError(f"{label}: rate limited (HTTP 429): {detail}", retry_after=_retry_after(exc))
    if isinstance(exc, openai.NotFoundError):
        return ProviderError(
            f"{label}: not found at {base_url} (HTTP 404): {detail} — `streamhost models --refresh` lists "
            "what the endpoint serves",
            status=status,
        )
    if isinstance(exc, openai.APIStatusError):
        if status is not None and status >= 500:
            return UpstreamServerError(f"{label}: upstream server error (HTTP {status}): {detail}",
                                       status=status, retry_after=_retry_after(exc))
        return ProviderError(f"{label}: request rejected (HTTP {status}): {detail}", status=status)
    if isinstance(exc, openai.APITimeoutError):
        return UpstreamTimeoutError(f"{label}: timed out talking to {base_url}")
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc.__context__
        reason = f": {scrub(str(cause), key)}" if cause else ""
        if mid_stream:
            return StreamError(f"{label}: the upstream closed the stream before the model finished (connection "
                               f"lost{reason}); the text so far is kept")
        return UpstreamConnectionError(f"{label}: cannot reach {base_url}{reason}")
    return StreamError(f"{label}: the upstream reported an error mid-stream: {detail}")
