"""Turning litellm exceptions into streamhost's typed errors, without ever showing a key."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from streamhost import (
    MissingKeyError,
    ProviderError,
    StreamError,
    UnknownModelError,
    UpstreamConnectionError,
    UpstreamTimeoutError,
    error_for_status,
)

from .keys import KEY_VARIABLES

# Key shapes of the common vendors (OpenAI/Anthropic sk-, Google AIza, Groq gsk_, xAI xai-).
_KEYLIKE = re.compile(r"\b(sk-[A-Za-z0-9_\-*]{3,}|AIza[0-9A-Za-z_\-]{10,}|gsk_[A-Za-z0-9]{10,}|xai-[A-Za-z0-9]{10,})")
# litellm stacks prefixes: "litellm.RateLimitError: RateLimitError: OpenAIException - the real message".
_PREFIX = re.compile(r"^\s*(?:litellm\.\w+:\s*|\w+(?:Error|Exception)(?::\s*|\s+-\s+))")
_CONNECTION_NAMES = {"APIConnectionError", "ConnectError", "ConnectTimeout", "ClientConnectorError"}
# aiohttp (litellm's native routes, e.g. ollama/) puts "ssl:<ssl.SSLContext object at 0x…>" in connection errors.
_SSL_REPR = re.compile(r"\s*ssl:(?:<[^>]*>|default)")
NOT_FOUND = "check the model name after litellm/ (SUB-PROVIDER/MODEL)"


@dataclass(frozen=True)
class CallContext:
    """What an error message needs to name: the model, where it was sent, which variable held the key."""

    label: str
    api_base: str | None
    key_variable: str | None
    key: str | None

    @property
    def where(self) -> str:
        return self.api_base or "the provider's endpoint"


def scrub(text: str, key: str | None) -> str:
    """Remove the key, any known key variable's value, and anything that looks like a key."""
    secrets = {key} if key else set()
    secrets.update(os.environ[n] for names in KEY_VARIABLES.values() for n in names if os.environ.get(n))
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= 4:
            text = text.replace(secret, "***")
    return _KEYLIKE.sub("***", text)


def _detail(exc: BaseException, key: str | None) -> str:
    text = str(getattr(exc, "message", None) or exc).strip()
    while (match := _PREFIX.match(text)) is not None:
        text = text[match.end():]
    return scrub(_SSL_REPR.sub("", text.splitlines()[0]) if text else type(exc).__name__, key)


def _headers(exc: Any) -> Any:
    """The upstream's response headers, where litellm kept them."""
    return getattr(exc, "litellm_response_headers", None) or getattr(getattr(exc, "response", None), "headers", None)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and the exceptions it was raised from or while handling."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _connection_failed(exc: BaseException) -> bool:
    return any(type(e).__name__ in _CONNECTION_NAMES or isinstance(e, ConnectionError)
               or str(e).strip() == "Connection error." for e in _chain(exc))


def map_error(exc: Exception, call: CallContext) -> Exception:
    """The streamhost error for a litellm exception (other exceptions are returned unchanged).

    What only litellm knows (mid-stream failures, context windows, missing credentials or packages, lost
    connections) is mapped here; HTTP error statuses get the words every provider uses, from
    :func:`streamhost.error_for_status`.
    """
    import litellm
    from litellm import exceptions as litellm_errors

    if not isinstance(exc, (*litellm.LITELLM_EXCEPTION_TYPES, litellm_errors.APIError)):
        return exc
    if isinstance(exc, litellm_errors.MidStreamFallbackError):
        original = exc.original_exception
        if exc.is_pre_first_chunk and isinstance(original, Exception) and original is not exc:
            return map_error(original, call)
        return StreamError(f"{call.label}: the upstream failed mid-stream: {_detail(original or exc, call.key)}")
    detail = _detail(exc, call.key)
    status = getattr(exc, "status_code", None)

    def for_status(code: int) -> ProviderError:
        return error_for_status(code, detail, label=call.label, where=call.where, headers=_headers(exc),
                                key_variable=call.key_variable or "the key litellm uses for this provider",
                                not_found=NOT_FOUND)

    # litellm's classes say what happened even where its status_code does not (a connection error is a 500).
    if isinstance(exc, (litellm_errors.AuthenticationError, litellm_errors.PermissionDeniedError)):
        return for_status(status if status in (401, 403) else 401)
    if isinstance(exc, litellm_errors.RateLimitError):
        return for_status(429)
    if isinstance(exc, litellm_errors.ContextWindowExceededError):
        return ProviderError(f"{call.label}: the prompt does not fit the model's context window: {detail} — "
                             "shorten the prompt or choose a model with a longer context", status=status)
    if isinstance(exc, litellm_errors.NotFoundError):
        return for_status(404)
    if isinstance(exc, litellm_errors.Timeout):
        return UpstreamTimeoutError(f"{call.label}: timed out talking to {call.where}")
    if "Missing credentials" in detail:
        return MissingKeyError(f"{call.label}: no API key: {detail} — export the provider's key variable or set "
                               "providers.litellm.api_key_env")
    if any(isinstance(e, ImportError) for e in _chain(exc)):
        # litellm reports a missing optional SDK (boto3 for bedrock/, google-auth for vertex_ai/) as a
        # connection error; retrying cannot help, installing can.
        return ProviderError(f"{call.label}: litellm needs a package that is not installed: {detail} — install it "
                             "in the environment streamhost runs in (streamhost install PACKAGE)")
    if isinstance(exc, litellm_errors.APIConnectionError) or _connection_failed(exc):
        return UpstreamConnectionError(f"{call.label}: cannot reach {call.where}: {detail}")
    if isinstance(exc, litellm_errors.BadRequestError) and "LLM Provider NOT provided" in detail:
        return UnknownModelError(
            f"{call.label}: litellm cannot tell which provider serves this model — name it as "
            "litellm/SUB-PROVIDER/MODEL, e.g. litellm/anthropic/claude-sonnet-4-5 or litellm/ollama/llama3.2"
        )
    if isinstance(status, int) and status >= 400:
        return for_status(status)
    return ProviderError(f"{call.label}: request rejected (HTTP {status or '?'}): {detail}", status=status)
