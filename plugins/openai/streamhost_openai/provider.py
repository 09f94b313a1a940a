"""The ``openai`` provider: streams Chat Completions or Responses events as streamhost events."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import itertools
import logging
import os
import weakref
from collections.abc import AsyncIterator, Mapping
from typing import Any

from streamhost import (
    ConfigError,
    Event,
    GenerationRequest,
    ModelInfo,
    Provider,
    Status,
    StreamError,
    TextDelta,
    Usage,
)

from .catalog import MAX_LISTED, api_for, cache_stamp, model_infos, was_listed, write_cache
from .errors import map_error

log = logging.getLogger("streamhost.openai")

OFFICIAL_URL = "https://api.openai.com/v1"
OPTIONS = {"base_url", "api_key_env", "api", "models", "timeout_s"}
LIST_TIMEOUT_S = 5.0
"""How long the warm-up waits for each read of a compatible endpoint's model list (2 s to connect)."""


class OpenAIProvider(Provider):
    """Every ``openai/NAME`` model, on api.openai.com or any OpenAI-compatible endpoint."""

    name = "openai"
    key_env_var = "OPENAI_API_KEY"

    def __init__(self) -> None:
        super().__init__()
        # One client per event loop (its connections belong to that loop), replaced when the key changes.
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[Any, Any]] = (
            weakref.WeakKeyDictionary()
        )
        # models() runs on every call (routing): re-read the on-disk list only when it or the endpoint
        # changed (a `streamhost models --refresh` in another process still shows up here).
        self._listed: tuple[tuple[str, int | None], list[ModelInfo]] | None = None

    def configure(self, options: Mapping[str, Any]) -> None:
        unknown = sorted(set(options) - OPTIONS)
        if unknown:
            raise ConfigError(
                f"providers.openai: unknown key {', '.join(unknown)} (known: {', '.join(sorted(OPTIONS))})"
            )
        _check_api(options.get("api", "auto"), "providers.openai.api")
        models = options.get("models", [])
        if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
            raise ConfigError("providers.openai.models must be a list of model names")
        for key in ("base_url", "api_key_env"):
            if key in options and not (isinstance(options[key], str) and options[key]):
                raise ConfigError(f"providers.openai.{key} must be a non-empty string")
        if "base_url" in options and not options["base_url"].startswith(("http://", "https://")):
            raise ConfigError(f"providers.openai.base_url must start with http:// or https://, got "
                              f"{options['base_url']!r}")
        timeout = options.get("timeout_s", 600)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout < float("inf"):
            raise ConfigError(f"providers.openai.timeout_s must be a number of seconds > 0, got {timeout!r}")
        super().configure(options)
        self._listed = None

    @property
    def base_url(self) -> str:
        """The endpoint: config ``base_url``, else ``OPENAI_BASE_URL``, else api.openai.com."""
        return (self.options.get("base_url") or os.environ.get("OPENAI_BASE_URL") or OFFICIAL_URL).rstrip("/")

    def models(self) -> list[ModelInfo]:
        base_url = self.base_url
        key = (base_url, cache_stamp())
        if self._listed is None or self._listed[0] != key:
            infos = model_infos(base_url, base_url == OFFICIAL_URL, list(self.options.get("models", [])))
            self._listed = (key, infos)
        return self._listed[1]

    def warm(self) -> None:
        """Import the SDK; the first time a compatible endpoint is seen, list its models too."""
        importlib.import_module("openai")
        # The HTTP transport is imported when the first client is built (~30 ms): do that now too.
        with contextlib.suppress(ImportError):
            importlib.import_module("httpcore2")
        if self.base_url != OFFICIAL_URL and not was_listed(self.base_url):
            self._list_endpoint()

    def _list_endpoint(self) -> None:
        """Cache what a compatible endpoint (vLLM, Ollama, LM Studio) serves, so its models are listed and the
        first becomes the default without a `streamhost models --refresh`. Bounded, and quiet on failure: the
        host works without the list."""
        import openai

        base_url, variable = self.base_url, self.key_variable()
        key = os.environ.get(variable) if variable else None
        if not key:
            log.debug("openai: %s is not set: the models of %s are not listed", variable, base_url)
            return
        try:
            with openai.OpenAI(api_key=key, base_url=base_url, max_retries=0,
                               timeout=openai.Timeout(LIST_TIMEOUT_S, connect=2.0)) as client:
                ids = [str(model.id) for model in itertools.islice(client.models.list(), MAX_LISTED)]
        except Exception as exc:  # the warm-up is best effort: calls work without the list
            error = map_error(exc, "openai", base_url, variable, key)
            said = getattr(error, "message", None) or f"openai: {base_url}: {type(exc).__name__}"
            log.info("%s — listing its models failed; `streamhost models --refresh` tries again", said)
            return
        write_cache(base_url, ids)

    async def _client(self, key: str | None) -> Any:
        openai = await _openai()
        loop = asyncio.get_running_loop()
        identity = (key, self.base_url)
        cached = self._clients.get(loop)
        if cached is not None and cached[0] == identity:
            return cached[1]
        client = openai.AsyncOpenAI(
            api_key=key, base_url=self.base_url, max_retries=0,  # the host retries, only before text
            timeout=openai.Timeout(float(self.options.get("timeout_s", 600)), connect=10.0),
        )
        self._clients[loop] = (identity, client)
        if cached is not None:
            await cached[1].close()
        return client

    async def aclose(self) -> None:
        """Close this loop's client and its connections."""
        cached = self._clients.pop(asyncio.get_running_loop(), None)
        if cached is not None:
            await cached[1].close()

    async def refresh_models(self) -> list[ModelInfo]:
        key = self.require_key()
        client = await self._client(key)
        try:
            ids = [model.id async for model in client.models.list()]
        except Exception as exc:
            mapped = map_error(exc, "openai", self.base_url, self.key_variable(), key)
            if mapped is exc:
                raise
            raise mapped from None  # the SDK's own text may echo part of the key
        write_cache(self.base_url, ids)
        return self.models()

    async def stream(self, request: GenerationRequest) -> AsyncIterator[Event]:
        key = self.require_key()
        client = await self._client(key)
        forced = request.options.get("api")
        _check_api(forced or "auto", f'models."openai/{request.model}".api')
        api = api_for(request.model, forced or self.options.get("api"))
        label = f"openai/{request.model}"
        events = (_responses(client, request, label) if api == "responses"
                  else _chat(client, request, label, official=self.base_url == OFFICIAL_URL))
        text_seen = False
        try:
            async with contextlib.aclosing(events):  # closed with this stream, not when garbage-collected
                async for event in events:
                    text_seen = text_seen or isinstance(event, TextDelta)
                    yield event
        except Exception as exc:
            mapped = map_error(exc, label, self.base_url, self.key_variable(), key, mid_stream=text_seen)
            if mapped is exc:
                raise
            raise mapped from None


_sdk: Any = None


async def _openai() -> Any:
    """The openai module. The first import runs in a thread so it never blocks the event loop; it
    waits for a warm-up already importing it (sys.modules may hold a half-initialised module then)."""
    global _sdk
    if _sdk is None:
        _sdk = await asyncio.to_thread(importlib.import_module, "openai")
    return _sdk


def _check_api(value: Any, where: str) -> None:
    if value not in ("auto", "chat", "responses"):
        raise ConfigError(f"{where} must be auto, chat or responses, got {value!r}")


CUT_SHORT = "the upstream closed the stream before the model finished"
# Finish reasons that end an answer early without failing it: the text is whole up to there, so the call
# succeeds, and the user hears why it stops where it does.
FINISH_NOTICES = {
    "length": 'the answer stopped at the output token limit (finish_reason "length") and is cut short — '
              "a larger max_tokens gives more",
    "content_filter": 'the upstream\'s content filter stopped the answer (finish_reason "content_filter")',
}


def _text(value: Any, label: str) -> str:
    """A text delta from the wire, which a broken server may send as a number or an object."""
    if not isinstance(value, str):
        raise StreamError(f"{label}: the upstream sent text that is not a string ({type(value).__name__}: "
                          f"{value!r:.60}); the text so far is kept")
    return value


async def _chat(client: Any, request: GenerationRequest, label: str, *, official: bool) -> AsyncIterator[Event]:
    messages = [{"role": "system", "content": request.system}] if request.system else []
    messages.append({"role": "user", "content": request.prompt})
    kwargs: dict[str, Any] = {"model": request.model, "messages": messages, "stream": True,
                              "stream_options": {"include_usage": True}}
    if request.temperature is not None:
        kwargs["temperature"] = request.temperature
    if request.max_tokens is not None:
        # OpenAI deprecated max_tokens on chat (reasoning models refuse it); compatible servers know max_tokens.
        kwargs["max_completion_tokens" if official else "max_tokens"] = request.max_tokens
    if request.output_schema is not None:
        kwargs["response_format"] = {"type": "json_schema",
                                     "json_schema": {"name": "output", "schema": request.output_schema}}
    # The SDK ends iteration quietly both at `data: [DONE]` and at a body that simply stops, so only a
    # finish_reason tells a whole answer from one cut short (many servers send it on the last chunk only).
    finish_reason = None
    stream = await client.chat.completions.create(**kwargs)
    async with stream:
        async for chunk in stream:
            for choice in chunk.choices or []:
                content = getattr(choice.delta, "content", None) if choice.delta else None
                if content is not None and (text := _text(content, label)):
                    yield TextDelta(text)
                if choice.finish_reason:
                    finish_reason = choice.finish_reason
                    if finish_reason in FINISH_NOTICES:
                        yield Status(f"{label}: {FINISH_NOTICES[finish_reason]}")
            if chunk.usage is not None:
                yield Usage(input_tokens=chunk.usage.prompt_tokens, output_tokens=chunk.usage.completion_tokens,
                            total_tokens=chunk.usage.total_tokens)
    if finish_reason is None:
        raise StreamError(f"{label}: {CUT_SHORT} (no finish_reason); the text so far is kept")


async def _responses(client: Any, request: GenerationRequest, label: str) -> AsyncIterator[Event]:
    kwargs: dict[str, Any] = {"model": request.model, "input": request.prompt, "stream": True}
    if request.system:
        kwargs["instructions"] = request.system
    if request.temperature is not None:
        kwargs["temperature"] = request.temperature
    if request.max_tokens is not None:
        kwargs["max_output_tokens"] = request.max_tokens
    if request.output_schema is not None:
        kwargs["text"] = {"format": {"type": "json_schema", "name": "output", "schema": request.output_schema}}
    completed = False
    stream = await client.responses.create(**kwargs)
    async with stream:
        async for event in stream:
            kind = getattr(event, "type", "")
            if kind == "response.output_text.delta":
                if event.delta is not None and (text := _text(event.delta, label)):
                    yield TextDelta(text)
            elif kind == "response.completed":
                completed = True
                usage = getattr(event.response, "usage", None)
                if usage is not None:
                    yield Usage(input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
                                total_tokens=usage.total_tokens)
            elif kind == "error":
                raise StreamError(f"{label}: the upstream reported an error mid-stream: {event.message}")
            elif kind == "response.failed":
                error = getattr(event.response, "error", None)
                detail = getattr(error, "message", None) or "no reason given"
                raise StreamError(f"{label}: the response failed: {detail}")
            elif kind == "response.incomplete":
                details = getattr(event.response, "incomplete_details", None)
                reason = getattr(details, "reason", None) or "unknown reason"
                raise StreamError(f"{label}: the response stopped incomplete ({reason}); output so far is kept")
    if not completed:
        raise StreamError(f"{label}: {CUT_SHORT} (no response.completed); the text so far is kept")
