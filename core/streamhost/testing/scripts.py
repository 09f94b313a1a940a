"""What :class:`~streamhost.testing.LLMTestServer` is told to do (:class:`Script`) and what it
records (:class:`RequestRecord`). Standard library only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["RequestRecord", "Script"]

_ERROR_KINDS = ("error", "response.failed", "response.incomplete")


@dataclass
class Script:
    """How the server answers one request (see the field comments for the protocol effects).

    Timing: ``rate`` (absolute schedule from the moment the request is handled, no drift)
    takes precedence over ``delay_s`` (a relative pause before every token but the first).
    ``error_after`` / ``stall_after`` larger than the number of tokens act after the last
    token (instead of finishing the stream); if both apply at the same point, the stall wins.
    For non-streaming requests the pacing still elapses before the single reply;
    ``stall_after`` sends nothing at all and ``error_after`` gives HTTP 500 (or, for the
    Responses API with ``error_kind`` ``response.failed``/``response.incomplete``, a 200
    response object with that status). Default ``usage``: prompt = number of words in all
    messages / input / instructions, completion = number of tokens sent.
    """

    tokens: list[str] | None = None  # one SSE event each; None -> "echo: <last user message>"
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

    def __post_init__(self) -> None:
        """Validate the field combinations that would otherwise fail inside the server thread."""
        if self.rate is not None and self.rate <= 0:
            raise ValueError("Script.rate must be > 0")
        if self.error_kind not in _ERROR_KINDS:
            raise ValueError(f"Script.error_kind must be one of {_ERROR_KINDS}")


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
