"""Errors a plugin raises and the host shows to the user.

Every error carries a message that says what happened and what to do. ``retryable`` errors may be
retried by the host, but only before any text has been streamed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


class StreamhostError(Exception):
    """Base of every error streamhost shows to a user as a clear message."""

    retryable: bool = False
    """Whether the host may retry the call after this error (only ever before any text has streamed)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(StreamhostError):
    """The config file or a setting is wrong; the message names the file, line or key.

    Raised by a plugin's ``configure``, it only needs to name the key: the host adds the file and line.
    For an unknown key, end the message with ``(known: a, b, c)`` and the host adds the closest one.
    """


class PluginError(StreamhostError):
    """A plugin failed to load or to register (raised only in strict mode)."""


class UnknownModelError(StreamhostError):
    """The model name or alias matches no registered provider; the message lists close matches."""


class InvalidArgumentError(StreamhostError):
    """A tool or command argument is wrong; the message names the field."""


class ProviderError(StreamhostError):
    """An upstream model call failed. Subclasses say how."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class MissingKeyError(ProviderError):
    """The API key variable is not set; the message names the variable."""


class AuthenticationError(ProviderError):
    """The upstream refused the key (HTTP 401/403)."""


class RateLimitError(ProviderError):
    """HTTP 429. ``retry_after`` is the upstream's Retry-After in seconds, when it sent one."""

    retryable = True

    def __init__(self, message: str, *, status: int | None = 429, retry_after: float | None = None) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class UpstreamServerError(ProviderError):
    """HTTP 5xx from the upstream."""

    retryable = True

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class UpstreamConnectionError(ProviderError):
    """The upstream could not be reached (refused, reset, DNS)."""

    retryable = True
    retry_after: float | None = None


class UpstreamTimeoutError(ProviderError):
    """The upstream took longer than allowed, or the call passed its overall deadline."""


class StreamError(ProviderError):
    """The upstream reported an error event in the middle of a stream (error, response.failed, …)."""


class OutputValidationError(StreamhostError):
    """Structured output did not match the requested schema; carries the raw text."""

    def __init__(self, message: str, raw_text: str) -> None:
        super().__init__(message)
        self.raw_text = raw_text


class BudgetExceededError(StreamhostError):
    """The calls of the last 24 hours cost ``[limits] daily_usd`` or more: new calls are refused until the limit
    is raised or earlier calls age out of the window. The message says the limit, what was spent and where to
    change it."""


class ProgressError(StreamhostError):
    """Sending progress to the caller failed; the call stops and keeps the text streamed so far."""


class FetchError(StreamhostError):
    """A page could not be fetched or converted; the message names the URL and the cause."""


class CallFailed(Exception):
    """A call failed after it started streaming: ``error`` is what to tell the user, ``result`` what came before.

    The host's services raise it (``Services.generate``, ``Services.stream``) once a stream has begun, so
    the text already shown is not lost. A tool that lets it propagate gets an ``isError`` result that
    keeps the partial text; ``ToolResult.failure`` builds the same result with more metadata. It wraps a
    :class:`StreamhostError` rather than being one: the error inside is what the user reads.
    """

    error: StreamhostError
    """The user-facing error."""
    result: Any
    """What the call produced before the error: its ``text``, and for a relayed call ``usage``, ``attempts``
    and timings."""

    metadata: dict[str, Any]
    """What the host knows of the call besides its text, for the result's metadata (``run``: the run id)."""

    def __init__(self, error: StreamhostError, result: Any) -> None:
        super().__init__(error.message)
        self.error = error
        self.result = result
        self.metadata = {}

    @property
    def text(self) -> str:
        """The text streamed before the error (empty when none was)."""
        return str(getattr(self.result, "text", ""))


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """The wait an upstream asked for, in seconds, from its ``retry-after-ms`` or ``retry-after`` header.

    :param headers: the response headers (any mapping with ``get``; an HTTP client's headers are
        case-insensitive already), or None.
    :returns: the seconds to pass as ``retry_after`` to :class:`RateLimitError` or
        :class:`UpstreamServerError`; None when there is no such header or it is not a finite
        number of seconds ≥ 0 (an HTTP date is not read).
    """
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = (headers or {}).get(name)
        if value is not None:
            try:
                seconds = float(value) * scale
            except ValueError:
                return None
            return seconds if math.isfinite(seconds) and seconds >= 0 else None
    return None


def error_for_status(status: int, detail: str, *, label: str, where: str, key_variable: str | None = None,
                     headers: Mapping[str, str] | None = None, not_found: str | None = None) -> ProviderError:
    """The error for an upstream's HTTP error status, in the words every provider uses.

    A provider's own error mapping handles what only its SDK knows (a lost connection, a time-out, an
    error event mid-stream) and hands every HTTP error status to this.

    :param status: the HTTP status, 400 or above.
    :param detail: the upstream's own message, already scrubbed of keys.
    :param label: what was called (``openai/gpt-4.1-mini``): every message starts with it.
    :param where: the endpoint, named when it has no such thing (404).
    :param key_variable: the variable holding the key, named when the key is refused (401, 403).
    :param headers: the response headers: the wait a 429 or 5xx asks for becomes ``retry_after``.
    :param not_found: what to do about a 404, e.g. where to see the names that exist.
    :returns: :class:`AuthenticationError` (401, 403), :class:`RateLimitError` (429),
        :class:`UpstreamServerError` (5xx), else :class:`ProviderError`; each with ``status`` set.
    """
    if status in (401, 403):
        check = f"check {key_variable}" if key_variable else "check the API key"
        return AuthenticationError(f"{label}: the upstream refused the API key (HTTP {status}): {detail} — {check}",
                                   status=status)
    if status == 429:
        return RateLimitError(f"{label}: rate limited (HTTP 429): {detail}", retry_after=retry_after_seconds(headers))
    if status == 404:
        return ProviderError(f"{label}: not found at {where} (HTTP 404): {detail}"
                             + (f" — {not_found}" if not_found else ""), status=status)
    if status >= 500:
        return UpstreamServerError(f"{label}: upstream server error (HTTP {status}): {detail}", status=status,
                                   retry_after=retry_after_seconds(headers))
    return ProviderError(f"{label}: request rejected (HTTP {status}): {detail}", status=status)
