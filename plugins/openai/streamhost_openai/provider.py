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
    Event,
    GenerationRequest,
    ModelInfo,
    Option,
    Pricing,
    Provider,
    TextDelta,
)

from .background import BackgroundEvents, follow, read_checkpoint
from .catalog import (
    MAX_LISTED,
    api_for,
    background_for,
    cache_stamp,
    model_infos,
    tools_for,
    was_listed,
    write_cache,
)
from .chat_events import ChatEvents
from .errors import CallContext, map_error
from .prices import context_window_for, price_for
from .responses_events import ResponsesEvents
from .streaming import stream_events
from .transport import http_client, transport_name

log = logging.getLogger("streamhost.openai")

OFFICIAL_URL = "https://api.openai.com/v1"
APIS = ("auto", "chat", "responses")
CONNECT_TIMEOUT_S = 10.0
"""How long a call waits to connect (at most ``timeout_s``)."""
LIST_TIMEOUT_S = 5.0
"""How long the warm-up waits for each read of a compatible endpoint's model list (2 s to connect)."""


def _http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError(f"must start with http:// or https://, got {value!r}")
    return value


class OpenAIProvider(Provider):
    """Every ``openai/NAME`` model, on api.openai.com or any OpenAI-compatible endpoint.

    A model with ``background`` on (o3-pro and the ``*-deep-research`` models by default) runs as an OpenAI
    background response: a dropped stream is picked up where it stopped, the stream yields
    :class:`~streamhost.Checkpoint` events whose state is ``{"id": "resp_...", "after": N, "chars": C}`` (the
    response, the ``sequence_number`` of the last event covered, the characters of text before it: see
    :mod:`.background`), :meth:`resume` continues from one after a restart, and :meth:`cancel_upstream` cancels
    the response. Closing the stream leaves the response running.
    """

    name = "openai"
    key_env_var = "OPENAI_API_KEY"
    supports_history = True
    supports_resume = True
    declared_options = (
        Option("base_url", str, None, "The endpoint: api.openai.com or any OpenAI-compatible server (vLLM, Ollama, "
               "LM Studio); unset: OPENAI_BASE_URL, else https://api.openai.com/v1", non_empty=True, check=_http_url),
        Option("api_key_env", str, None, "The environment variable that holds the key; unset: OPENAI_API_KEY",
               non_empty=True),
        Option("api", str, "auto", "Which API serves a model: chat (Chat Completions), responses, or auto "
               "(Responses for reasoning models, Chat Completions for the rest)", choices=APIS),
        Option("models", list[str], [], "Model names to list (besides the endpoint's own); any other name works "
               "too"),
        Option("timeout_s", float, 600, "Seconds one call may take (10 s of it to connect)", above=0),
    )
    declared_model_options = (
        Option("api", str, None, "Which API serves this model (auto, chat or responses); unset: providers.openai.api",
               choices=APIS),
        Option("background", bool, None, "Run each call as an OpenAI background response (Responses API), which "
               "goes on when the connection drops, is picked up where it stopped, resumes after a restart and is "
               "cancelled upstream when the user cancels; unset: on for o3-pro and the *-deep-research models unless "
               "api is chat"),
        Option("tools", list[str], None, "Built-in tools sent with each call, by type (e.g. web_search_preview, "
               "web_search, code_interpreter; Responses API); unset: web_search_preview for the *-deep-research "
               "models, which need a data source, none for the rest; [] sends none", non_empty=True),
    )

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
            infos = model_infos(base_url, base_url == OFFICIAL_URL, list(self.options["models"]))
            self._listed = (key, infos)
        return self._listed[1]

    def pricing(self, model: str) -> Pricing | None:
        """OpenAI's list price (prices.py); None on any other endpoint: a compatible server's model is not OpenAI's."""
        return price_for(model) if self.base_url == OFFICIAL_URL else None

    def context_window(self, model: str) -> int | None:
        """The model's input limit from prices.py on OpenAI's own endpoint; None elsewhere (the name may be reused)."""
        return context_window_for(model) if self.base_url == OFFICIAL_URL else None

    def warm(self) -> None:
        """Import the SDK; the first time a compatible endpoint is seen, list its models too."""
        openai = importlib.import_module("openai")
        # What the first call would otherwise do on the event loop, holding up every other call: build the TLS
        # settings (20-70 ms), and import the SDK's chat and responses resources, which it loads on first touch
        # of `client.chat` / `client.responses` (100-270 ms). A client that never sends anything touches them.
        client = openai.AsyncOpenAI(api_key="warm-up", base_url=self.base_url, http_client=http_client(openai, None))
        _ = client.chat.completions.with_streaming_response, client.responses.with_streaming_response
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
            error = map_error(exc, CallContext("openai", base_url, variable, key))
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
        timeout_s = self.options["timeout_s"]
        timeout = openai.Timeout(timeout_s, connect=min(CONNECT_TIMEOUT_S, timeout_s))
        client = openai.AsyncOpenAI(
            api_key=key, base_url=self.base_url, max_retries=0,  # the host retries, only before text
            timeout=timeout, http_client=http_client(openai, timeout),
        )
        log.debug("openai: a client for %s over %s", self.base_url, transport_name(client))
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
            mapped = map_error(exc, CallContext("openai", self.base_url, self.key_variable(), key))
            if mapped is exc:
                raise
            raise mapped from None  # the SDK's own text may echo part of the key
        write_cache(self.base_url, ids)
        return self.models()

    async def stream(self, request: GenerationRequest) -> AsyncIterator[Event]:
        key = self.require_key()
        client = await self._client(key)
        label = f"openai/{request.model}"
        # [models."openai/NAME"] keys (checked by the host when it loaded this plugin) win over [providers.openai].
        chosen = request.options.get("api") or self.options["api"]
        background = background_for(request.model, request.options.get("background"), chosen)
        tools = tools_for(request.model, request.options.get("tools"), chosen)
        # Background responses and built-in tools exist only in the Responses API: set, they choose it.
        api = "responses" if background or tools else api_for(request.model, chosen)
        events: AsyncIterator[Event]
        if background:
            events = follow(client, BackgroundEvents(label), _responses_arguments(request, tools))
        elif api == "responses":
            opened = client.responses.with_streaming_response.create(**_responses_arguments(request, tools))
            events = stream_events(opened, ResponsesEvents(label), label)
        else:
            events = _chat(client, request, label, official=self.base_url == OFFICIAL_URL)
        async for event in self._mapped(events, label, key):
            yield event

    async def resume(self, model: str, checkpoint: str) -> AsyncIterator[Event]:
        """Continue a background response from a checkpoint of its stream (after a restart): the text after it,
        then the rest to the end, as :meth:`stream` would have given them."""
        key = self.require_key()
        client = await self._client(key)
        label = f"openai/{model}"
        async for event in self._mapped(follow(client, read_checkpoint(checkpoint, label)), label, key):
            yield event

    async def cancel_upstream(self, model: str, checkpoint: str) -> None:
        """Cancel the background response a checkpoint names (``responses.cancel``); one that already ended,
        or that the endpoint no longer knows, is left as it is."""
        import openai

        key = self.require_key()
        client = await self._client(key)
        label = f"openai/{model}"
        response_id = read_checkpoint(checkpoint, label).response_id
        try:
            await client.responses.cancel(response_id)
        except openai.APIStatusError as exc:
            if exc.status_code not in (400, 404, 409):
                raise self._error(exc, label, key) from None
            log.info("%s: %s was not cancelled (HTTP %d): it has ended or is gone", label, response_id,
                     exc.status_code)
        except openai.OpenAIError as exc:
            raise self._error(exc, label, key) from None

    async def _mapped(self, events: AsyncIterator[Event], label: str, key: str | None) -> AsyncIterator[Event]:
        """``events``, closed with this stream (not when garbage-collected), SDK errors as streamhost's."""
        text_seen = False
        try:
            async with contextlib.aclosing(events):  # type: ignore[type-var]  # closed now, not when garbage-collected
                async for event in events:
                    text_seen = text_seen or isinstance(event, TextDelta)
                    yield event
        except Exception as exc:
            mapped = self._error(exc, label, key, mid_stream=text_seen)
            if mapped is exc:
                raise
            raise mapped from None

    def _error(self, exc: Exception, label: str, key: str | None, *, mid_stream: bool = False) -> Exception:
        return map_error(exc, CallContext(label, self.base_url, self.key_variable(), key), mid_stream=mid_stream)


_sdk: Any = None


async def _openai() -> Any:
    """The openai module. The first import runs in a thread so it never blocks the event loop; it
    waits for a warm-up already importing it (sys.modules may hold a half-initialised module then)."""
    global _sdk
    if _sdk is None:
        _sdk = await asyncio.to_thread(importlib.import_module, "openai")
    return _sdk


def _chat(client: Any, request: GenerationRequest, label: str, *, official: bool) -> AsyncIterator[Event]:
    # The SDK walks every parameter it is given against its TypedDicts before sending (0.6 ms for one message,
    # ~0.4 ms more per message: openai-python#3616), though ours are plain JSON that need no transform. Given as
    # extra_body they reach the body as they are: the same keys and values, in the SDK's own order.
    body: dict[str, Any] = {"messages": request.messages()}
    if request.max_tokens is not None:
        # OpenAI deprecated max_tokens on chat (reasoning models refuse it); compatible servers know max_tokens.
        body["max_completion_tokens" if official else "max_tokens"] = request.max_tokens
    if request.output_schema is not None:
        body["response_format"] = {"type": "json_schema",
                                   "json_schema": {"name": "output", "schema": request.output_schema}}
    body["stream_options"] = {"include_usage": True}
    if request.temperature is not None:
        body["temperature"] = request.temperature
    # The SDK sends the request; the body is read without its per-chunk models (streaming.py says why).
    opened = client.chat.completions.with_streaming_response.create(model=request.model, messages=[], stream=True,
                                                                     extra_body=body)
    return stream_events(opened, ChatEvents(label), label)


def _responses_arguments(request: GenerationRequest, tools: list[dict[str, Any]]) -> dict[str, Any]:
    """The arguments of ``responses.create`` for a streamed call."""
    # A thread's earlier turns go as input messages; a lone prompt stays the plain string it always was.
    prompt: Any = request.messages()[1 if request.system else 0:] if request.history else request.prompt
    kwargs: dict[str, Any] = {"model": request.model, "input": prompt, "stream": True}
    if request.system:
        kwargs["instructions"] = request.system
    if request.temperature is not None:
        kwargs["temperature"] = request.temperature
    if request.max_tokens is not None:
        kwargs["max_output_tokens"] = request.max_tokens
    if request.output_schema is not None:
        kwargs["text"] = {"format": {"type": "json_schema", "name": "output", "schema": request.output_schema}}
    if tools:
        kwargs["tools"] = tools
    return kwargs
