"""The ``__NAME__`` provider: streams chat completions from an OpenAI-compatible endpoint with httpx2.

Replace the HTTP part with your service's own protocol or SDK; keep the shape: declare the config's
options once (``declared_options``: the host checks them, fills in the defaults and lists them in
``streamhost config show``), import heavy libraries inside ``stream``, look the key up only when a model is called,
yield ``TextDelta`` as text arrives and ``Usage`` at the end, raise streamhost's errors with a
message that says what to do.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from typing import Any

from streamhost import (
    ConfigError,
    Event,
    GenerationRequest,
    ModelInfo,
    Option,
    Provider,
    ProviderError,
    StreamError,
    TextDelta,
    UpstreamConnectionError,
    UpstreamTimeoutError,
    Usage,
    error_for_status,
)

BASE_URL_ENV = "__ENV___BASE_URL"


def _http_url(value: str) -> str:
    """A further check of ``base_url``: the message says what is wrong, after the key's name."""
    if not value.startswith(("http://", "https://")):
        raise ValueError(f"must start with http:// or https://, got {value!r}")
    return value.rstrip("/")


class __CLASS__Provider(Provider):
    """Serves ``__NAME__/MODEL``: any model the endpoint knows, listed in the config or not."""

    name = "__NAME__"
    supports_history = True  # stream() sends a thread's earlier turns: request.messages() holds them
    key_env_var = "__ENV___API_KEY"
    # [providers.__NAME__]: the host rejects a wrong type, a value out of range and an unknown key (with the
    # file, line and close match), and self.options holds every one of them, the defaults filled in.
    declared_options = (
        Option("base_url", str, None, f"The endpoint; unset: {BASE_URL_ENV}", non_empty=True, check=_http_url),
        Option("api_key_env", str, None, "The environment variable that holds the key; unset: __ENV___API_KEY",
               non_empty=True),
        Option("models", list[str], [], "Model names to list, the first one the default; any other name works too",
               non_empty=True),
        Option("timeout_s", float, 600, "Seconds one call may take", above=0),
    )

    def models(self) -> list[ModelInfo]:
        """The names in ``models`` (the first is the default); any other name still works."""
        return [ModelInfo(name=name, default=i == 0, supports_schema=False)
                for i, name in enumerate(self.options["models"])]

    def base_url(self) -> str:
        """The endpoint: ``base_url`` from the config, else ``__ENV___BASE_URL``."""
        url = self.options["base_url"] or os.environ.get(BASE_URL_ENV)
        if not url:
            raise ConfigError(f"no endpoint for __NAME__: set [providers.__NAME__] base_url or {BASE_URL_ENV}")
        return str(url).rstrip("/")

    async def stream(self, request: GenerationRequest) -> AsyncIterator[Event]:
        """Stream one chat completion; closing this generator closes the HTTP request."""
        import httpx2  # here, not at module top: listing plugins must not pay for it

        url, key = f"{self.base_url()}/chat/completions", self.require_key()
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        timeout = httpx2.Timeout(self.options["timeout_s"], connect=10.0)
        try:
            # One client per call keeps the example short; a real plugin may keep one per event loop.
            async with httpx2.AsyncClient(timeout=timeout) as client, \
                    client.stream("POST", url, json=_body(request), headers=headers) as response:
                if response.status_code != 200:
                    await response.aread()
                    raise _status_error(response, url, self.key_variable())
                async for line in response.aiter_lines():
                    for event in _events(line):
                        yield event
        except httpx2.TimeoutException as exc:
            raise UpstreamTimeoutError(f"__NAME__ at {url} timed out ({type(exc).__name__}): "
                                       "raise [providers.__NAME__] timeout_s or try again") from None
        except httpx2.TransportError as exc:
            raise UpstreamConnectionError(f"cannot reach __NAME__ at {url}: {exc or type(exc).__name__}; "
                                          "is the server running and base_url right?") from None


def _body(request: GenerationRequest) -> dict[str, Any]:
    body: dict[str, Any] = {"model": request.model, "messages": request.messages(), "stream": True,
                            "stream_options": {"include_usage": True}}
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.max_tokens is not None:
        body["max_tokens"] = request.max_tokens
    return body


def _events(line: str) -> list[Event]:
    """The events in one server-sent-events line (``data: {...}``); none for keep-alives and ``[DONE]``."""
    if not line.startswith("data:") or line[5:].strip() == "[DONE]":
        return []
    chunk = json.loads(line[5:])
    if "error" in chunk:
        message = (chunk["error"] or {}).get("message", "unknown error")
        raise StreamError(f"__NAME__ failed mid-stream: {message}")
    events: list[Event] = [TextDelta(text) for choice in chunk.get("choices") or []
                           if (text := (choice.get("delta") or {}).get("content"))]
    if usage := chunk.get("usage"):
        events.append(Usage(input_tokens=usage.get("prompt_tokens"), output_tokens=usage.get("completion_tokens"),
                            total_tokens=usage.get("total_tokens")))
    return events


def _status_error(response: Any, url: str, key_variable: str | None) -> ProviderError:
    """The error for a response that is not 200: the endpoint's own message in streamhost's words."""
    try:
        detail = json.loads(response.text)["error"]["message"]
    except (ValueError, KeyError, TypeError):
        detail = response.text[:200] or "no details"
    # error_for_status also picks the class: a 429 or 5xx is retried by the host (before any text), a 401 is not.
    return error_for_status(response.status_code, detail, label="__NAME__", where=url, key_variable=key_variable,
                            headers=response.headers)
