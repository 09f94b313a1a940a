"""The ``litellm`` provider: ``litellm/SUB/NAME`` goes to ``litellm.acompletion`` and streams back as events."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator, Mapping
from typing import Any

from streamhost import (
    Event,
    GenerationRequest,
    MissingKeyError,
    ModelInfo,
    Option,
    Pricing,
    Provider,
    ProviderError,
    Status,
    StreamError,
    TextDelta,
    Usage,
    check_options,
)

from . import sdk
from .chat_stream import CUT_SHORT, FINISH_NOTICES, direct_body, http_response, read_body
from .errors import CallContext, map_error
from .keys import first_set, known_variables, sub_provider
from .prices import context_window_for, price_for

log = logging.getLogger("streamhost.litellm")

RESERVED = {
    "model": "it is the part after litellm/",
    "messages": "streamhost builds them from prompt and system",
    "stream": "streamhost always streams",
    "stream_options": "streamhost always asks for usage",
    "api_key": "keep keys out of the config file: put the key in a variable and name it with api_key_env",
    "num_retries": "streamhost retries itself, and only before the first token",
    "max_retries": "streamhost retries itself, and only before the first token",
}
"""acompletion arguments a config may not set, and why."""
CLOSE_S = 5.0
"""The longest closing a stream's HTTP response may take (it is usually a few ms)."""
MODEL_OPTIONS = (
    Option("api_base", str, None, "This model's endpoint; unset: providers.litellm.api_base, else litellm's own",
           non_empty=True),
    Option("api_key_env", str, None, "The environment variable that holds this model's key; unset: "
           "providers.litellm.api_key_env, else the one litellm reads for the sub-provider", non_empty=True),
    *(Option(name, object, refused=why) for name, why in RESERVED.items()),
    Option("*", object, description="Any other litellm.acompletion argument (top_p, seed, reasoning_effort, "
           "extra_headers, ...), passed on as it is"),
)
"""What ``[models."litellm/NAME"]`` and ``[providers.litellm.params."NAME"]`` tables may hold."""

class LiteLLMProvider(Provider):
    """Every ``litellm/SUB/NAME`` model: Anthropic, Gemini, Mistral, Groq, Bedrock, Ollama, a LiteLLM proxy, …"""

    name = "litellm"
    supports_history = True
    key_env_var = None  # the key variable depends on the sub-provider: see key_variable_for
    declared_options = (
        Option("api_base", str, None, "Where every litellm call goes (a LiteLLM proxy, Ollama, vLLM); unset: each "
               "sub-provider's own endpoint", non_empty=True),
        Option("api_key_env", str, None, "The environment variable that holds the key for every litellm call; "
               "unset: the one litellm reads for each sub-provider (ANTHROPIC_API_KEY, ...)", non_empty=True),
        Option("models", list[str], [], "Models list_models advertises, as litellm names "
               '("anthropic/claude-sonnet-4-5"); any litellm/NAME works anyway', non_empty=True),
        Option("params", dict, {}, 'Per-model litellm.acompletion arguments: [providers.litellm.params."NAME"] '
               'tables, as in [models."litellm/NAME"]', each=MODEL_OPTIONS),
        Option("timeout_s", float, 600, "Seconds one request may take", above=0),
        Option("debug", bool, False, "litellm's own banners and verbose output (on stderr under streamhost serve)"),
        Option("warmup", bool, True, "Import litellm in the background once serving; only done when a "
               "[providers.litellm] table sets something"),
    )
    declared_model_options = MODEL_OPTIONS

    def __init__(self) -> None:
        super().__init__()
        self._infos: list[ModelInfo] = []
        self._set_up = False

    def configure(self, options: Mapping[str, Any]) -> None:
        super().configure(options)
        self._set_up = bool(options)  # a [providers.litellm] table that sets something, not only the defaults
        sdk.set_debug(self.options["debug"])
        # Whether a model enforces JSON Schema is litellm's knowledge (an import away), so listing says no:
        # the host then also asks in words, and stream() still asks natively where litellm says it can.
        self._infos = [ModelInfo(name=m, description=f"{sub_provider(m) or 'litellm'} via litellm",
                                 supports_schema=False) for m in dict.fromkeys(self.options["models"])]

    def models(self) -> list[ModelInfo]:
        return self._infos

    def key_variable_for(self, model: str) -> str | None:
        explicit = self._explicit_key_variable(model, {})
        if explicit:
            return explicit
        variables = known_variables(model)
        return (first_set(variables) or variables[0]) if variables else None

    def key_configured_for(self, model: str) -> bool:
        variable = self.key_variable_for(model)
        return variable is None or bool(os.environ.get(variable))

    def pricing(self, model: str) -> Pricing | None:
        """litellm's cost map (prices.py), once a call has imported litellm; None before."""
        return price_for(model, self.options["params"].get(model, {}).get("api_base") or self.options.get("api_base"))

    def context_window(self, model: str) -> int | None:
        """``max_input_tokens`` from litellm's cost map, once a call has imported litellm; None before."""
        api_base = self.options["params"].get(model, {}).get("api_base") or self.options.get("api_base")
        return context_window_for(model, api_base)

    def warm(self) -> None:
        # Imported, litellm holds ~130 MiB for as long as the server runs: warm it ahead only for a user who
        # set it up (a [providers.litellm] table); one who merely has it installed pays on the first call.
        if self._set_up and self.options["warmup"]:
            sdk.warm()

    async def aclose(self) -> None:
        """Close the HTTP clients litellm cached (only if it was ever imported)."""
        litellm = sdk.loaded()
        if litellm is not None:
            with contextlib.suppress(Exception):
                await litellm.close_litellm_async_clients()

    async def stream(self, request: GenerationRequest) -> AsyncIterator[Event]:
        label = f"litellm/{request.model}"
        # The per-model tables were checked when the host loaded this plugin; checked again here because a
        # reserved argument (api_key above all) must never reach litellm, whoever built the request.
        check_options(MODEL_OPTIONS, request.options, f'models."{label}"').raise_errors()
        extra = {**self.options["params"].get(request.model, {}), **request.options}
        variable, key, explicit = self._key(request.model, extra)
        api_base = extra.pop("api_base", None) or self.options.get("api_base")
        call = CallContext(label=label, api_base=api_base, key_variable=variable, key=key)
        try:
            litellm = await sdk.load_async()
        except ImportError as exc:
            raise ProviderError(f"{label}: litellm cannot be imported ({exc}) — reinstall streamhost-litellm with "
                                "its constraints file") from None
        kwargs = _arguments(litellm, request, extra, timeout=self.options["timeout_s"])
        if api_base:
            kwargs["api_base"] = api_base
        if explicit:
            kwargs["api_key"] = key  # otherwise litellm reads the sub-provider's own variable itself
        response = http = None
        try:
            response = await litellm.acompletion(**kwargs)
            http = http_response(response)  # found now: closing the wrapper forgets it
            body = direct_body(response, litellm, kwargs)
            events = (read_body(body, call, litellm.REPEATED_STREAMING_CHUNK_LIMIT) if body is not None
                      else wrapped_events(response, label))
            async with contextlib.aclosing(events):
                async for event in events:
                    yield event
        except Exception as exc:
            mapped = map_error(exc, call)
            if mapped is exc:
                raise
            raise mapped from None  # litellm's own text may carry the key
        finally:
            if response is not None:
                await _close(response, http, label)

    def _explicit_key_variable(self, model: str, options: Mapping[str, Any]) -> str | None:
        params = self.options["params"].get(model, {})
        return options.get("api_key_env") or params.get("api_key_env") or self.options.get("api_key_env")

    def _key(self, model: str, extra: dict[str, Any]) -> tuple[str | None, str | None, bool]:
        """(variable, key, whether the config named the variable); MissingKeyError when it is unset."""
        explicit = self._explicit_key_variable(model, extra)
        extra.pop("api_key_env", None)
        if explicit:
            key = os.environ.get(explicit)
            if not key:
                raise MissingKeyError(f"{explicit} is not set: export it, or change api_key_env "
                                      f"(providers.litellm or models.\"litellm/{model}\") to the variable that holds "
                                      "the key")
            return explicit, key, True
        variables = known_variables(model)
        if not variables:
            return None, None, False
        found = first_set(variables)
        if found is None:
            alternatives = f" (or {', '.join(variables[1:])})" if len(variables) > 1 else ""
            raise MissingKeyError(f"{variables[0]}{alternatives} is not set: litellm reads it for "
                                  f"{sub_provider(model)}/ models — export it, or set providers.litellm.api_key_env "
                                  "to the variable that holds the key")
        return found, os.environ[found], False


def _arguments(litellm: Any, request: GenerationRequest, extra: dict[str, Any], *, timeout: float) -> dict[str, Any]:
    messages = request.messages()
    kwargs: dict[str, Any] = {
        "model": request.model, "messages": messages, "stream": True, "stream_options": {"include_usage": True},
        # The host retries 429/5xx, and only before the first token: litellm must not retry underneath it.
        "num_retries": 0, "max_retries": 0, "timeout": timeout,
        # A parameter one provider lacks (temperature on some reasoning models) is dropped, not an error.
        "drop_params": True,
    }
    if request.temperature is not None:
        kwargs["temperature"] = request.temperature
    if request.max_tokens is not None:
        kwargs["max_tokens"] = request.max_tokens
    if request.output_schema is not None and _supports_schema(litellm, request.model):
        kwargs["response_format"] = {"type": "json_schema",
                                     "json_schema": {"name": "output", "schema": request.output_schema}}
    kwargs.update(extra)
    return kwargs


def _supports_schema(litellm: Any, model: str) -> bool:
    try:
        return bool(litellm.supports_response_schema(model=model))
    except Exception:  # a model litellm does not know: ask in words only (the host already does)
        return False


async def wrapped_events(response: Any, label: str) -> AsyncIterator[Event]:
    """The events of a stream read through litellm's wrapper: its routes with their own chunk formats (Anthropic,
    Gemini, Bedrock, Ollama, ...), and any stream :func:`~.chat_stream.direct_body` leaves to it."""
    async for chunk in response:
        for event in chunk_events(chunk, label):
            yield event
    for event in finish_events(response, label):
        yield event


def chunk_events(chunk: Any, label: str) -> list[Event]:
    """The events in one litellm stream chunk. Usage comes on a chunk with no choices (litellm ≥ 1.109) or
    with one empty delta (1.83–1.106): both are read the same way."""
    events: list[Event] = []
    for choice in getattr(chunk, "choices", None) or []:
        delta = getattr(choice, "delta", None)
        content = getattr(delta, "content", None) if delta is not None else None
        if content is not None and not isinstance(content, str):
            raise StreamError(f"{label}: the upstream sent text that is not a string ({type(content).__name__}: "
                              f"{content!r:.60}); the text so far is kept")
        if content:
            events.append(TextDelta(content))
    usage = getattr(chunk, "usage", None)
    if usage is not None and (usage.prompt_tokens is not None or usage.completion_tokens is not None):
        events.append(Usage(input_tokens=usage.prompt_tokens, output_tokens=usage.completion_tokens,
                            total_tokens=usage.total_tokens))
    return events


def finish_events(response: Any, label: str) -> list[Event]:
    """What the end of a stream says: nothing for a finished answer, a Status for one stopped early by a limit.

    :raises StreamError: the upstream never said the model finished (the body just ended, or the connection
        dropped): litellm then makes up a ``finish_reason`` of "stop" on its last chunk, so the reason the
        upstream itself sent is read from the stream wrapper.
    """
    if not hasattr(response, "received_finish_reason"):  # a litellm that no longer keeps it: cannot tell
        return []
    reason = response.received_finish_reason or getattr(response, "intermittent_finish_reason", None)
    if reason is None:
        raise StreamError(f"{label}: {CUT_SHORT} (no finish_reason); the text so far is kept")
    return [Status(f"{label}: {FINISH_NOTICES[reason]}")] if reason in FINISH_NOTICES else []


async def _close(response: Any, http: Any, label: str) -> None:
    """Close the upstream HTTP response now, not when it is garbage-collected: litellm's wrapper closes it on the
    OpenAI-client routes only, so ``http`` (:func:`~.chat_stream.http_response`, when found) is closed as well."""
    import anyio

    # Shielded as litellm's own close is: under a cancelled anyio scope every await here would be cancelled too.
    with anyio.move_on_after(CLOSE_S, shield=True):
        for closing in (response, http):
            if closing is None:
                continue
            try:
                await closing.aclose()
            except Exception as exc:  # closing must not hide the call's own outcome
                log.debug("%s: closing the stream failed: %r", label, exc)
