"""What the store keeps, as plain dataclasses: runs, their files, threads and their turns, usage rows.

Nothing here imports a database library, so the rest of the host can name these types at start-up.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Literal

from streamhost.errors import StreamhostError

RunStatus = Literal["running", "completed", "failed", "cancelled", "interrupted"]
EndStatus = Literal["completed", "failed", "cancelled", "interrupted"]
UsageKey = Literal["model", "day", "thread", "token"]

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford's base32, lower case: URL-safe, no i/l/o/u
_TIME_CHARS = 9  # milliseconds since the epoch: 45 bits, enough until the year 3084
_RANDOM_CHARS = 5
_id_lock = threading.Lock()
_last: list[int] = [0, 0]  # the last id's millisecond and random part, to keep ids of one millisecond ordered


class StoreError(StreamhostError):
    """The store cannot be opened or written; the message names the file or URL and what to do."""


def _base32(value: int, width: int) -> str:
    chars = []
    for _ in range(width):
        value, digit = divmod(value, 32)
        chars.append(_ALPHABET[digit])
    return "".join(reversed(chars))


def new_id(kind: Literal["run", "thread"]) -> str:
    """A new id: ``r_`` or ``t_`` then 14 URL-safe characters, sorting in the order they were made.

    The first 9 characters are the time in milliseconds, the last 5 random; two ids made in the same
    millisecond by one process still sort in order (the random part is incremented, as ULIDs do).
    """
    prefix = {"run": "r_", "thread": "t_"}[kind]
    with _id_lock:
        now = time.time_ns() // 1_000_000
        if now <= _last[0]:
            now, tail = _last[0], _last[1] + 1
        else:
            tail = secrets.randbits(_RANDOM_CHARS * 5 - 1)  # one spare bit so increments rarely overflow
        _last[:] = [now, tail]
    return prefix + _base32(now, _TIME_CHARS) + _base32(tail % 32**_RANDOM_CHARS, _RANDOM_CHARS)


@dataclass(frozen=True)
class FileRecord:
    """A local file sent to the model as context: where it was, how big, and its SHA-256 (hex)."""

    path: str
    size: int
    sha256: str


@dataclass(frozen=True)
class RunStart:
    """What is known when a run starts. ``prompt`` is None when ``[store] keep_text`` is off."""

    id: str
    tool: str
    """The tool that made the run: ``generate``, ``summarize_urls``, ..."""
    model: str | None
    thread_id: str | None = None
    prompt: str | None = None
    files: list[FileRecord] = field(default_factory=list)
    owner_token: str | None = None
    """The name of the caller's token (HTTP serving); None for a local caller."""


@dataclass(frozen=True)
class RunEnd:
    """How a run ended: status, timings, usage (``usage_estimated``: counted by the host, not the provider)."""

    status: EndStatus
    ttft_ms: float | None = None
    duration_ms: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    usage_estimated: bool = False
    cost_usd: float | None = None
    error: str | None = None
    model: str | None = None
    """The model that answered, when it differs from the one the run started with."""
    chars: int | None = None
    """The answer's length (the journal fills it in); None: the length of the text journaled."""


@dataclass(frozen=True)
class RunRecord:
    """One run as stored. ``chars`` is the length of the text journaled so far (counted even without keep_text)."""

    id: str
    tool: str
    model: str | None
    status: RunStatus
    thread_id: str | None
    started_at: float
    ended_at: float | None
    ttft_ms: float | None
    duration_ms: float | None
    input_tokens: int | None
    output_tokens: int | None
    usage_estimated: bool
    cost_usd: float | None
    error: str | None
    chars: int
    prompt: str | None
    files: list[FileRecord]
    owner_token: str | None


@dataclass(frozen=True)
class Turn:
    """One message of a thread. ``at`` is when it was added (0: now, when appended)."""

    role: Literal["user", "assistant"]
    content: str
    model: str | None = None
    run_id: str | None = None
    at: float = 0


@dataclass(frozen=True)
class ThreadSummary:
    """A thread without its turns: cheap to list. ``title`` is its first user turn, at most 80 characters."""

    id: str
    created_at: float
    updated_at: float
    turns: int
    last_model: str | None
    title: str


@dataclass(frozen=True)
class UsageRow:
    """Usage for one key (a model, a day ``YYYY-MM-DD``, a thread id or a token name; ``-`` when none).

    ``estimated``: some of the runs' tokens were counted by the host; ``unpriced``: runs without a cost.
    """

    key: str
    runs: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    estimated: bool
    unpriced: int
