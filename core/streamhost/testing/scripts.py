"""What :class:`~streamhost.testing.LLMTestServer` is told to do (:class:`Script`) and what it
records (:class:`RequestRecord`). Standard library only."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["RequestRecord", "Script", "play"]

_ERROR_KINDS = ("error", "response.failed", "response.incomplete")
_END_FRAMES = ("finish", "done")


@dataclass
class Script:
    """How the server answers one request (see the field comments for the protocol effects).

    Timing: ``rate`` (absolute schedule from the moment the request is handled, no drift)
    takes precedence over ``delay_s`` (a relative pause before every token but the first).
    ``error_after`` / ``end_after`` / ``stall_after`` larger than the number of tokens act after
    the last token (instead of finishing the stream); if several apply at the same point, the
    stall wins over the early end, which wins over the error.
    For non-streaming requests the pacing still elapses before the single reply;
    ``stall_after`` sends nothing at all and ``error_after`` gives HTTP 500 (or, for the
    Responses API with ``error_kind`` ``response.failed``/``response.incomplete``, a 200
    response object with that status). Default ``usage``: prompt = number of words in all
    messages / input / instructions, completion = number of tokens sent.

    A server that breaks the protocol: ``end_after`` ends a streamed body early, as when an
    upstream dies or a proxy cuts the stream: no finish frames, no usage, no ``[DONE]`` unless
    ``end_with`` names them ("finish": chat's chunk carrying ``finish_reason``, or the Responses
    API's item-closing events but never ``response.completed``; "done": ``data: [DONE]``);
    ``drop_connection`` then closes the connection instead of ending the chunked body cleanly
    (a non-streaming reply just holds the tokens before ``end_after``). A token that is not a
    ``str`` goes out as that JSON value (``5`` gives ``"content":5``); a lone surrogate in a
    token goes out as a JSON escape (``"\\ud800"``).

    Background responses (a Responses request with ``background: true``) play on server-side whether or not a
    client listens: ``drop_after`` closes the connection that created one after that many tokens (a network
    failure) while the response goes on; ``resume_window_s`` is how long after its creation its stream can be
    picked up again (``GET /v1/responses/{id}?stream=true&starting_after=N``; later that is an HTTP 400 and only
    polling works). ``searches`` are web searches (deep-research steps) made before the text, on any Responses
    stream.
    """

    tokens: list[Any] | None = None  # one SSE event each; None -> "echo: <last user message>"
    delay_s: float = 0.0  # pause between tokens
    rate: float | None = None  # tokens/s on an absolute schedule (token i at t0 + first_delay_s + i/rate)
    first_delay_s: float = 0.0  # pause before the first token
    headers_delay: bool = False  # spend first_delay_s before sending the response headers
    status: int = 200  # non-200: OpenAI-style JSON error with this status, no stream
    retry_after: float | None = None  # Retry-After header (seconds) on a non-200 response
    error_message: str = "scripted error"
    error_after: int | None = None  # mid-stream failure after this many tokens
    error_kind: str = "error"  # Responses API failure: "error" | "response.failed" | "response.incomplete"
    stall_after: int | None = None  # after this many tokens hold the connection open silently
    usage: tuple[int, int] | None = None  # (prompt_tokens, completion_tokens); default: word count, tokens
    finish_reason: str = "stop"
    end_after: int | None = None  # streamed body ends after this many tokens, without its finish frames
    end_with: tuple[str, ...] = ()  # frames still sent at end_after: "finish", "done"
    drop_connection: bool = False  # at end_after close the connection mid-body (no last chunk)
    drop_after: int | None = None  # background: the creating connection closes after this many tokens
    resume_window_s: float | None = None  # background: its stream can be resumed this long; None: always
    searches: tuple[str, ...] = ()  # Responses: web searches (query each) before the text

    def __post_init__(self) -> None:
        """Validate the field combinations that would otherwise fail inside the server thread."""
        if self.rate is not None and self.rate <= 0:
            raise ValueError("Script.rate must be > 0")
        if self.error_kind not in _ERROR_KINDS:
            raise ValueError(f"Script.error_kind must be one of {_ERROR_KINDS}")
        unknown = set(self.end_with) - set(_END_FRAMES)
        if isinstance(self.end_with, str) or unknown:
            raise ValueError(f"Script.end_with must be a tuple of {_END_FRAMES}, got {self.end_with!r}")
        if isinstance(self.searches, str):
            raise ValueError(f"Script.searches must be a tuple of queries, got {self.searches!r}")


@dataclass
class RequestRecord:
    """What the server saw and did for one HTTP request (times are ``time.monotonic()``).

    :attr:`LLMTestServer.requests` hands out copies; the server updates its own records
    just before writing the corresponding bytes, so anything a client has received is
    already reflected. API key values are never stored.
    """

    method: str
    path: str
    model: str | None
    body: dict[str, Any] | None
    api: str  # "chat" | "responses" | "models" | "other"
    stream: bool
    authorized: bool  # bearer key matched require_key (or any bearer key when require_key is None)
    started: float
    first_token: float | None = None
    ended: float | None = None
    tokens_sent: int = 0
    disconnected: bool = False
    disconnected_at: float | None = None
    action: str | None = None  # Responses: "create" | "retrieve" (GET /v1/responses/{id}) | "cancel"
    response_id: str | None = None  # the response a retrieve or cancel names
    starting_after: int | None = None  # a retrieve's ``starting_after`` query parameter


async def play(script: Script, tokens: list[Any], t0: float, send: Callable[[Any], Awaitable[None]]) -> str | None:
    """Emit tokens on the script's schedule; returns None, "error", "end" or "stall" (where it stopped)."""
    stop_at, outcome = len(tokens), None
    if script.error_after is not None:
        stop_at, outcome = min(script.error_after, stop_at), "error"
    if script.end_after is not None and min(script.end_after, len(tokens)) <= stop_at:
        stop_at, outcome = min(script.end_after, len(tokens)), "end"
    if script.stall_after is not None and min(script.stall_after, len(tokens)) <= stop_at:
        stop_at, outcome = min(script.stall_after, len(tokens)), "stall"
    loop = asyncio.get_running_loop()
    origin = t0 + script.first_delay_s
    for i in range(stop_at):
        if script.rate is not None:
            pause = origin + i / script.rate - loop.time()
        elif i == 0:
            pause = origin - loop.time()
        else:
            pause = script.delay_s
        if pause > 0:
            await asyncio.sleep(pause)
        elif i % 32 == 31:
            await asyncio.sleep(0)  # let other connections and the EOF watcher run
        await send(tokens[i])
    if stop_at == 0 and (pause := origin - loop.time()) > 0:
        await asyncio.sleep(pause)
    return outcome
