"""The ``__NAME__`` provider: streams chat completions from an OpenAI-compatible endpoint with httpx2.

Replace the HTTP part with your service's own protocol or SDK; keep the shape: read the config in
``configure``, import heavy libraries inside ``stream``, look the key up only when a model is called,
yield ``TextDelta`` as text arrives and ``Usage`` at the end, raise streamhost's errors with a
message that says what to do.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Mapping
from typing import Any

from streamhost import (
    AuthenticationError,
    ConfigError,
    Event,
    GenerationRequest,
    ModelInfo,
    Provider,
    ProviderError,
    RateLimitError,
    StreamError,
    TextDelta,
    UpstreamConnectionError,
    UpstreamServerError,
    UpstreamTimeoutError,
    Usage,
)

OPTIONS = ("base_url", "api_key_env", "models", "timeout_s")
BASE_URL_ENV = "__ENV___BASE_URL"


class __CLASS__Provider(Provider):
    """Serves ``__NAME__/MODEL``: any model the endpoint knows, listed in the config or not."""

    name = "__NAME__"
    key_env_var = "__ENV___API_KEY"

    def configure(self, options: Mapping[str, Any]) -> None:
        """Take ``[providers.__NAME__]``: ``base_url``, ``api_key_env``, ``models``, ``timeout_s``."""
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise ConfigError(f"[providers.__NAME__] does not take {', '.join(unknown)}; it takes {', '.join(OPTIONS)}")
        models = options.get("models", [])
        if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
            raise ConfigError('[providers.__NAME__] models must be a list of names, e.g. models = ["my-model"]')
        super().configure(options)

    def models(self) -> list[ModelInfo]:
        """The names in ``models`` (the first is the default); any other name still works."""
        return [ModelInfo(name=name, default=i == 0, supports_schema=False)
                for i, name in enumerate(self.options.get("models", []))]

    def base_url(self) -> str:
        """The endpoint: ``base_url`` from the config, else ``__ENV___BASE_URL``."""
        url = self.options.get("base_url") or os.environ.get(BASE_URL_ENV)
        if not url:
            raise ConfigError(f"no endpoint for __NAME__: set [providers.__NAME__] base_url or {BASE_URL_ENV}")
        return str(url).rstrip("/")

    async def stream(self, request: GenerationRequest) -> AsyncIterator[Event]:
        """Stream one chat completion; closing this generator closes the HTTP request."""
        import httpx2  # here, not at module top: listing plugins must not pay for it

        url, key = f"{self.base_url()}/chat/completions", self.require_key()
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        timeout = httpx2.Timeout(float(self.options.get("timeout_s", 600)), connect=10.0)
        try:
            # One client per call keeps the example short; a real plugin may keep one per event loop.
            async with httpx2.AsyncClient(timeout=timeout) as client, \
                    client.stream("POST", url, json=_body(request), headers=headers) as response:
                if response.status_code != 200:
                    await response.aread()
                    raise _status_error(response.status_code, response.text, response.headers, self.key_variable())
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
    messages = [{"role": "system", "content": request.system}] if request.system else []
    messages.append({"role": "user", "content": request.prompt})
    body: dict[str, Any] = {"model": request.model, "messages": messages, "stream": True,
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


def _status_error(status: int, text: str, headers: Mapping[str, str], key_variable: str | None) -> ProviderError:
    try:
        detail = json.loads(text)["error"]["message"]
    except (ValueError, KeyError, TypeError):
        detail = text[:200] or "no details"
    if status in (401, 403):
        return AuthenticationError(f"__NAME__ refused the key in {key_variable} (HTTP {status}): {detail}",
                                   status=status)
    retry_after = headers.get("retry-after")
    wait = float(retry_after) if retry_after and retry_after.replace(".", "", 1).isdigit() else None
    if status == 429:
        return RateLimitError(f"__NAME__ is rate limiting (HTTP 429): {detail}", retry_after=wait)
    if status >= 500:
        return UpstreamServerError(f"__NAME__ server error (HTTP {status}): {detail}", status=status, retry_after=wait)
    return ProviderError(f"__NAME__ rejected the request (HTTP {status}): {detail}", status=status)
