"""Errors a plugin raises and the host shows to the user.

Every error carries a message that says what happened and what to do. ``retryable`` errors may be
retried by the host, but only before any text has been streamed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping


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


class ProgressError(StreamhostError):
    """Sending progress to the caller failed; the call stops and keeps the text streamed so far."""


class FetchError(StreamhostError):
    """A page could not be fetched or converted; the message names the URL and the cause."""


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
