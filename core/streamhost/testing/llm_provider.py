"""A provider for :class:`~streamhost.testing.LLMTestServer`, so that a fetcher or tool plugin can be
tested with a real model call (``summarize_urls``, ``generate``) without a provider plugin installed.

It is also a plugin: ``run_host(my_plugin, LLMTestProvider(llm.url, key))`` serves ``llmtest/MODEL``
from the test server, streamed over loopback HTTP (Chat Completions) like any provider's upstream.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from streamhost.errors import (
    ProviderError,
    StreamError,
    UpstreamConnectionError,
    UpstreamTimeoutError,
    error_for_status,
)
from streamhost.events import Event, TextDelta, Usage
from streamhost.hookspecs import hookimpl
from streamhost.providers import GenerationRequest, Provider

__all__ = ["LLMTestProvider"]


class LLMTestProvider(Provider):
    """Serves ``NAME/MODEL`` (``llmtest/MODEL`` by default) from an OpenAI-compatible test server.

    Pass the instance to ``run_host`` (or register it with ``register_providers``): it registers
    itself. Every model name is routed to the server as it is; none is listed.

    :param url: the server's base URL (``LLMTestServer.url``).
    :param key: the bearer key to send (``streamhost_api_key`` for ``streamhost_llm``); None sends none.
    :param name: the model prefix it serves.
    :param timeout_s: how long to wait for each read from the server.
    """

    key_env_var = None
    supports_history = True

    def __init__(self, url: str, key: str | None = None, *, name: str = "llmtest", timeout_s: float = 60.0) -> None:
        self.name = name
        self.url = url.rstrip("/")
        self.key = key
        self.timeout_s = timeout_s
        super().__init__()

    @hookimpl
    def register_providers(self, register: Any) -> None:
        """Register this provider (it is its own plugin)."""
        register(self)

    async def stream(self, request: GenerationRequest) -> AsyncIterator[Event]:
        """Stream one chat completion from the server; closing the generator closes the request."""
        import httpx2

        url = f"{self.url}/chat/completions"
        headers = {"Authorization": f"Bearer {self.key}"} if self.key else {}
        try:
            async with httpx2.AsyncClient(timeout=httpx2.Timeout(self.timeout_s, connect=10.0)) as client, \
                    client.stream("POST", url, json=_body(request), headers=headers) as response:
                if response.status_code != 200:
                    await response.aread()
                    raise _status_error(response, f"{self.name}/{request.model}", url)
                async for line in response.aiter_lines():
                    for event in _events(self.name, line):
                        yield event
        except httpx2.TimeoutException as exc:
            raise UpstreamTimeoutError(f"{self.name}: the test server at {url} timed out "
                                       f"({type(exc).__name__})") from None
        except httpx2.TransportError as exc:
            raise UpstreamConnectionError(f"{self.name}: cannot reach the test server at {url}: "
                                          f"{exc or type(exc).__name__}") from None


def _body(request: GenerationRequest) -> dict[str, Any]:
    messages = request.messages()
    body: dict[str, Any] = {"model": request.model, "messages": messages, "stream": True,
                            "stream_options": {"include_usage": True}}
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.max_tokens is not None:
        body["max_tokens"] = request.max_tokens
    return body


def _events(name: str, line: str) -> list[Event]:
    if not line.startswith("data:") or line[5:].strip() == "[DONE]":
        return []
    chunk = json.loads(line[5:])
    if "error" in chunk:
        raise StreamError(f"{name} failed mid-stream: {(chunk['error'] or {}).get('message', 'unknown error')}")
    events: list[Event] = [TextDelta(text) for choice in chunk.get("choices") or []
                           if isinstance(text := (choice.get("delta") or {}).get("content"), str) and text]
    if usage := chunk.get("usage"):
        events.append(Usage(input_tokens=usage.get("prompt_tokens"), output_tokens=usage.get("completion_tokens"),
                            total_tokens=usage.get("total_tokens")))
    return events


def _status_error(response: Any, label: str, url: str) -> ProviderError:
    try:
        detail = json.loads(response.text)["error"]["message"]
    except (ValueError, KeyError, TypeError):
        detail = response.text[:200] or "no details"
    return error_for_status(response.status_code, detail, label=label, where=url, headers=response.headers)
