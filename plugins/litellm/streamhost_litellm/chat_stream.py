"""Reading an OpenAI-compatible Chat Completions body straight off the HTTP response litellm opened.

litellm still sends the request: routing, keys, each provider's parameter mapping, and HTTP errors as its own
exceptions. On its OpenAI-compatible routes the body is a plain SSE stream of ``chat.completion.chunk`` objects:
the routes it serves through the openai SDK (``openai/``, ``litellm_proxy/``, ``together_ai/``, ``lm_studio/``,
``perplexity/``, ``cerebras/``, ``nvidia_nim/``, ``deepinfra/``, ...) and those its own HTTP client reads with its
generic OpenAI-compatible parser (``hosted_vllm/``, ``deepseek/``, ``fireworks_ai/``). Read through litellm's
stream wrapper, every chunk becomes one or two pydantic objects and then litellm's ``ModelResponseStream``: ~1 ms
of CPU per token, 7–9× what reading the same stream with httpx and json costs (``bench/token_cpu.py``). Read
here, it costs about what that floor costs.

What the wrapper does on these routes that a user can see is done here too: text from ``choices[0]``, usage from
the usage chunk, the upstream's own ``finish_reason`` (none means the answer was cut short), an error event or
``finish_reason: "error"`` failing the call, and litellm's guard against a model looping on one chunk
(``REPEATED_STREAMING_CHUNK_LIMIT``). Where the wrapper does more — litellm callbacks or a cache someone set up,
a maximum streaming duration, a vendor's own chunk fields (``groq/``, ``xai/``, ``openrouter/``, ``mistral/``,
Anthropic, Gemini, ...) — :func:`direct_body` declines and the wrapper reads the stream as before.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

from streamhost import (
    Event,
    EventTooLarge,
    SSEDecoder,
    Status,
    StreamError,
    TextDelta,
    UpstreamTimeoutError,
    Usage,
    upstream_socket,
)

from .errors import CallContext, scrub

__all__ = ["CUT_SHORT", "FINISH_NOTICES", "ChatChunks", "direct_body", "http_response", "read_body", "response_socket"]

log = logging.getLogger("streamhost.litellm")

CUT_SHORT = "the upstream closed the stream before the model finished"
# Finish reasons that end an answer early without failing it: the user hears why it stops where it does.
FINISH_NOTICES = {
    "length": 'the answer stopped at the output token limit (finish_reason "length") and is cut short — '
              "a larger max_tokens gives more",
    "content_filter": 'the upstream\'s content filter stopped the answer (finish_reason "content_filter")',
}
ROUTES = frozenset({"openai"})
"""The wrapper's ``custom_llm_provider`` on litellm's OpenAI-client routes (every OpenAI-compatible vendor is
"openai" there): its chunks get no provider-specific handling. (``azure`` would qualify too, but the test server
cannot speak Azure's URLs, so it stays with the wrapper until that is tested.)"""
CALLBACK_LISTS = ("callbacks", "success_callback", "_async_success_callback", "failure_callback",
                  "_async_failure_callback")
"""litellm's module-level callback lists: a callback registered there expects the wrapper's chunks."""
DRAIN_S = 0.1
"""How long the rest of a body is read after ``[DONE]``, so the connection can be used again."""
_loads = json.loads


def direct_body(response: Any, litellm: Any, arguments: Mapping[str, Any]) -> Any | None:
    """The HTTP response under ``response`` (what ``acompletion`` returned) when its body can be read here;
    None when litellm's wrapper must read it.

    Here: an OpenAI-compatible chat stream that nothing has read yet — the openai SDK's stream on litellm's
    OpenAI-client routes, or the generic OpenAI-compatible line iterator of its own HTTP routes (``hosted_vllm/``,
    ``deepseek/``, ``fireworks_ai/``; not a vendor's subclass of it, which reads vendor fields) — on a litellm with
    no callback, cache or streaming deadline set up (those act on the wrapper's chunks), for a call that passed no
    callback of its own in ``arguments``.
    """
    import openai
    from litellm.llms.openai.chat.gpt_transformation import OpenAIChatCompletionStreamingHandler

    stream = getattr(response, "completion_stream", None)
    if not isinstance(response, litellm.CustomStreamWrapper) or response.sent_first_chunk or response.chunks:
        return None
    if isinstance(stream, openai.AsyncStream):
        if response.custom_llm_provider not in ROUTES:
            return None
    elif type(stream) is not OpenAIChatCompletionStreamingHandler or hasattr(stream, "async_response_iterator"):
        return None  # another chunk format, or a line iterator something already started
    if any(getattr(litellm, name, None) for name in CALLBACK_LISTS) or litellm.cache is not None:
        return None
    if any("callback" in name or name == "logger_fn" for name in arguments):
        return None
    from litellm import constants

    if getattr(constants, "LITELLM_MAX_STREAMING_DURATION_SECONDS", None) is not None:
        return None
    body = http_response(response)
    return None if body is None or getattr(body, "is_stream_consumed", True) else body


def http_response(response: Any) -> Any | None:
    """The HTTP response under litellm's stream wrapper, where one can be found; None elsewhere.

    On the OpenAI-client routes it is the openai SDK stream's ``response``. litellm's own HTTP routes keep only
    ``response.aiter_lines()`` (an async generator), and nothing of theirs closes the response when the stream is
    closed: the upstream went on generating after a cancel until garbage collection. The response is that
    generator's ``self``.
    """
    stream = getattr(response, "completion_stream", None)
    body = getattr(stream, "response", None)
    if body is None:
        lines = getattr(stream, "streaming_response", None)
        frame = getattr(lines, "ag_frame", None)  # None once the generator has finished
        if frame is not None and getattr(lines, "__qualname__", "") == "Response.aiter_lines":
            body = frame.f_locals.get("self")
    return body if hasattr(body, "aiter_bytes") and hasattr(body, "aclose") else None


def response_socket(body: Any) -> Any | None:
    """The socket an ``httpx``/``httpx2`` response's body comes over (``streamhost.upstream_socket``); None where
    it cannot be found or is not this response's alone (HTTP/2 multiplexes many responses over one connection).

    Neither HTTP stack shows it publicly: httpcore puts the connection in the response's extensions, and the
    aiohttp transports (litellm's, the openai SDK's) keep the aiohttp response in the stream that httpx wraps.
    """
    if getattr(body, "http_version", None) != "HTTP/1.1":
        return None
    network = body.extensions.get("network_stream")
    if network is not None:
        return network.get_extra_info("socket")
    stream = getattr(body.stream, "_stream", None)
    aiohttp_response = getattr(stream, "_aiohttp_response", None)
    connection = getattr(aiohttp_response, "connection", None)  # None once the body was read or released
    transport = getattr(connection, "transport", None)
    return transport.get_extra_info("socket") if transport is not None else None


class ChatChunks:
    """One Chat Completions stream: the data of each SSE event in, streamhost events out."""

    __slots__ = ("_last", "_repeats", "done", "finish_reason", "key", "label", "repeat_limit")

    def __init__(self, label: str, *, key: str | None, repeat_limit: int) -> None:
        self.label = label
        self.key = key
        self.repeat_limit = repeat_limit
        self.finish_reason: str | None = None
        self.done = False
        """``[DONE]`` came: nothing after it is read."""
        self._last = ""
        self._repeats = 1

    def take(self, data: str) -> list[Event]:
        """The events in one SSE event's data."""
        if data.startswith("[DONE]"):
            self.done = True
            return []
        try:
            chunk = _loads(data)
        except ValueError:
            raise StreamError(f"{self.label}: the upstream sent an event that is not JSON ({data!r:.80}); "
                              "the text so far is kept") from None
        if type(chunk) is not dict:
            raise StreamError(f"{self.label}: the upstream sent an event that is not a JSON object ({data!r:.80}); "
                              "the text so far is kept")
        if chunk.get("error"):
            raise StreamError(f"{self.label}: the upstream failed mid-stream: {self._reported(chunk['error'])}")
        events: list[Event] = []
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0):  # another of n answers: litellm's wrapper reads choices[0] only
                continue
            delta = choice.get("delta")
            content = delta.get("content") if delta else None
            if type(content) is str:
                if content:
                    self._check_repetition(content)
                    events.append(TextDelta(content))
            elif content is not None:  # litellm's wrapper drops such a chunk and goes on: so does this
                log.debug("%s: skipped text that is not a string (%s)", self.label, type(content).__name__)
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        usage = chunk.get("usage")
        if usage and (usage.get("prompt_tokens") is not None or usage.get("completion_tokens") is not None):
            events.append(Usage(input_tokens=usage.get("prompt_tokens"), output_tokens=usage.get("completion_tokens"),
                                total_tokens=usage.get("total_tokens")))
        return events

    def end(self) -> list[Event]:
        """What the end of the body says: nothing for a finished answer, a Status for one stopped by a limit.

        :raises StreamError: the upstream never sent a ``finish_reason`` (the answer was cut short), or sent
            ``"error"``.
        """
        if self.finish_reason is None:
            raise StreamError(f"{self.label}: {CUT_SHORT} (no finish_reason); the text so far is kept")
        if self.finish_reason == "error":
            raise StreamError(f'{self.label}: the upstream failed mid-stream (finish_reason "error"); '
                              "the text so far is kept")
        notice = FINISH_NOTICES.get(self.finish_reason)
        return [Status(f"{self.label}: {notice}")] if notice else []

    def _check_repetition(self, content: str) -> None:
        # litellm's guard against a model stuck in a loop (its issue 5158), with its limit and its rules: the same
        # text of more than two characters, chunk after chunk.
        if len(content) > 2 and content == self._last:
            self._repeats += 1
            if self._repeats >= self.repeat_limit:
                raise StreamError(f"{self.label}: the upstream failed mid-stream: the model sent the same text "
                                  f"{self._repeats} times in a row ({content!r:.40}); the text so far is kept")
        else:
            self._repeats = 1
        self._last = content

    def _reported(self, error: Any) -> str:
        if isinstance(error, dict) and isinstance(error.get("message"), str) and error["message"]:
            return scrub(error["message"], self.key)
        if isinstance(error, str) and error:
            return scrub(error, self.key)
        return "An error occurred during streaming"  # the openai SDK's words for an error without a message


async def read_body(body: Any, call: CallContext, repeat_limit: int) -> AsyncIterator[Event]:
    """The events of a chat stream's HTTP response (an ``httpx`` or ``httpx2`` response, as litellm opened it).

    Closing this generator, or cancelling the task reading it, stops reading at once; the caller closes the
    response. A cancel of the call shuts its connection down at once, even while the event loop is busy.
    """
    timeouts, transport = _transport_errors()
    parser = ChatChunks(call.label, key=call.key, repeat_limit=repeat_limit)
    decoder = SSEDecoder()
    # A cancel shuts this connection down from the thread that read it (the event loop may be busy).
    with upstream_socket(response_socket(body)):
        async with contextlib.aclosing(body.aiter_bytes()) as chunks:
            try:
                async for chunk in chunks:
                    for data in decoder.feed(chunk):
                        for event in parser.take(data):
                            yield event
                        if parser.done:
                            break
                    if parser.done:
                        break
            except timeouts:
                raise UpstreamTimeoutError(f"{call.label}: timed out talking to {call.where}") from None
            except transport as exc:  # a finished answer is whole whatever happens to the connection afterwards
                if parser.finish_reason is None:
                    raise StreamError(f"{call.label}: {CUT_SHORT} (connection lost: {type(exc).__name__}); the text so "
                                      "far is kept") from None
            except EventTooLarge as exc:
                raise StreamError(f"{call.label}: the upstream sent {exc} without ending it; the text so far is kept"
                                  ) from None
            except (AttributeError, TypeError) as exc:  # a field of the wrong kind: {"choices": 5}, "delta": [] …
                raise StreamError(f"{call.label}: the upstream sent an event this plugin cannot read ({exc}); "
                                  "the text so far is kept") from None
            if parser.done:
                await _drain(chunks)
    for event in parser.end():
        yield event


def _transport_errors() -> tuple[tuple[type[BaseException], ...], tuple[type[BaseException], ...]]:
    """(time-outs, other transport failures) of both HTTP stacks: litellm's clients are ``httpx`` (its aiohttp
    transport maps aiohttp's errors to httpx's), the openai SDK's own are ``httpx2``."""
    import ssl

    import httpx
    import httpx2

    return ((httpx.TimeoutException, httpx2.TimeoutException),
            (httpx.TransportError, httpx2.TransportError, ssl.SSLError))


async def _drain(chunks: AsyncIterator[bytes]) -> None:
    """Read what is left of the body for a moment; whatever happens there, the answer is already whole."""
    import anyio

    with anyio.move_on_after(DRAIN_S), contextlib.suppress(Exception):
        async for _ in chunks:
            pass
