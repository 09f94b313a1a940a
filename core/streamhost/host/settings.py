"""What the config holds: the typed settings of each table the host reads, their defaults, and the ``Config``
that gathers them (with where in the file each key is, for messages).

Reading and checking the file is ``config_reader.py``'s job; finding it is ``config.py``'s.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STORE_ENV = "STREAMHOST_STORE"
"""A store path or URL that wins over ``[store] path`` / ``url``."""
MESSAGE_MODES = ("tail", "delta")
HOST_KEYS: dict[str, tuple[str, ...]] = {
    "": ("default_model", "aliases", "streaming", "limits", "models", "providers", "fetch", "summarize", "plugins",
         "metrics", "store", "context", "http"),
    "streaming": ("enabled", "coalesce_ms", "chunk_delay_ms", "heartbeat_s", "message"),
    "limits": ("deadline_s", "max_retries", "retry_max_wait_s", "daily_usd", "handoff_s"),
    "summarize": ("model", "concurrency", "map_concurrency", "max_input_tokens", "max_input_tokens_per_model"),
    "plugins": ("disable", "prefer", "warmup"),
    "metrics": ("enabled", "path"),
    "store": ("enabled", "path", "url", "keep_text", "keep_days"),
    "context": ("roots", "allow", "max_files", "max_file_kb", "max_total_kb"),
    "http": ("host", "port", "workers", "allowed_hosts", "allowed_origins", "roots", "loopback_without_token"),
    'models."NAME"': ("streaming", "price_in", "price_out", "context_window"),
}
"""The keys the host reads itself, per table (``""``: the top level). ``[aliases]`` maps any name; the keys of
``[providers.NAME]``, ``[fetch]`` and the rest of ``[models."NAME"]`` are the ones the plugins declare."""
TOP_KEYS = frozenset(HOST_KEYS[""])
MODEL_KEYS = frozenset(HOST_KEYS['models."NAME"'])
"""The ``[models."NAME"]`` keys the host reads; every other key goes to the model's provider."""


def did_you_mean(word: str, choices: Iterable[str], prefix: str = "") -> str:
    """`` (did you mean PREFIXchoice?)`` for the closest choice, or an empty string when none is close."""
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {prefix}{close[0]}?)" if close else ""


@dataclass(frozen=True)
class StreamingSettings:
    """How text reaches the client; per-model ``streaming`` overrides ``enabled``."""

    enabled: bool = True
    coalesce_ms: float = 50
    chunk_delay_ms: float = 0
    heartbeat_s: float = 10
    message: str = "tail"


@dataclass(frozen=True)
class Limits:
    """Bounds on one model call."""

    deadline_s: float = 600
    max_retries: int = 2
    retry_max_wait_s: float = 30
    daily_usd: float | None = None
    """New calls are refused once the runs of the last 24 hours cost this much; None: no budget."""
    handoff_s: float | None = None
    """A call still running after this long returns what it has and goes on (``wait`` gets the rest); 0: never;
    None: the client's own default (50 s, Claude Code 110 s)."""


@dataclass(frozen=True)
class StoreSettings:
    """Where runs, threads and usage are kept (``[store]``); ``STREAMHOST_STORE`` overrides path and url."""

    enabled: bool = True
    path: str | None = None
    """The SQLite file; None: ``streamhost.db`` in the platform's user data dir."""
    url: str | None = None
    """A database URL (``postgresql://…``, ``sqlite:///…``); wins over ``path``."""
    keep_text: bool = True
    """Whether prompts, answers and file contents are kept (False: only ids, models, times, sizes and usage)."""
    keep_days: float = 30
    """Runs older than this are deleted (at start and by ``streamhost runs prune``); 0: kept for ever."""

    def location(self) -> str | None:
        """``$STREAMHOST_STORE``, else ``url``, else ``path`` (None: the default file)."""
        return os.environ.get(STORE_ENV) or self.url or self.path


@dataclass(frozen=True)
class ContextSettings:
    """Local files as context (``[context]``): where ``files`` may be read from, and how much."""

    roots: tuple[str, ...] = ()
    """Allowed roots besides the client's MCP roots (or, without them, the working directory)."""
    allow: tuple[str, ...] = ()
    """Paths or globs of secret-looking files (``.env``, keys) that may be sent all the same."""
    max_files: int = 50
    max_file_kb: int = 512
    max_total_kb: int = 2048


HTTP_PORT = 8707
"""``streamhost serve --http`` listens here unless ``--port`` or ``[http] port`` says otherwise."""


@dataclass(frozen=True)
class HttpSettings:
    """``streamhost serve --http`` (``[http]``): where it listens and whom it answers; flags win over these."""

    host: str = "127.0.0.1"
    port: int = HTTP_PORT
    workers: int = 1
    """Processes sharing the port (each its own engine; they share the store)."""
    allowed_hosts: tuple[str, ...] = ()
    """``Host`` headers answered besides loopback and the listening host (DNS-rebinding protection): the name
    clients use, e.g. behind a proxy; ``"name:*"`` allows any port; ``["*"]`` turns the check off."""
    allowed_origins: tuple[str, ...] = ()
    """Browser ``Origin`` headers answered besides loopback ones (requests without an Origin always are)."""
    roots: tuple[str, ...] = ()
    """Directories ``files`` may be read from over HTTP; empty: local files as context are off over HTTP."""
    loopback_without_token: bool = False
    """Whether callers on loopback may call without a bearer token."""


@dataclass(frozen=True)
class SummarizeSettings:
    """How ``summarize_urls`` works: pages fetched at once, model budget, parts summarized at once."""

    model: str | None = None
    """The model for summaries when the call names none; None: the default model."""
    concurrency: int = 4
    map_concurrency: int = 2
    max_input_tokens: int = 12_000
    """Page text per model call (estimated as characters / 4); longer pages are split (map-reduce)."""
    max_input_tokens_per_model: dict[str, int] = field(default_factory=dict)

    def budget_for(self, model: str) -> int:
        """The input-token budget for one call to ``model`` (a full ``PROVIDER/NAME``)."""
        return self.max_input_tokens_per_model.get(model, self.max_input_tokens)


@dataclass
class Config:
    """The whole configuration; a missing file gives the defaults."""

    path: Path | None = None
    default_model: str | None = None
    aliases: dict[str, str] = field(default_factory=dict)
    streaming: StreamingSettings = field(default_factory=StreamingSettings)
    limits: Limits = field(default_factory=Limits)
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    providers: dict[str, dict[str, Any]] = field(default_factory=dict)
    fetch: dict[str, Any] = field(default_factory=dict)
    summarize: SummarizeSettings = field(default_factory=SummarizeSettings)
    plugins_disable: list[str] = field(default_factory=list)
    plugins_prefer: dict[str, str] = field(default_factory=dict)
    """``[plugins] prefer``: provider or fetcher name -> the distribution that should serve it."""
    warmup: bool = True
    metrics_enabled: bool = True
    metrics_path: str | None = None
    store: StoreSettings = field(default_factory=StoreSettings)
    context: ContextSettings = field(default_factory=ContextSettings)
    http: HttpSettings = field(default_factory=HttpSettings)
    warnings: list[str] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)
    text: str = field(default="", repr=False)
    """The file as written, to point at the line of a key."""

    def streaming_for(self, model: str) -> bool:
        """Whether the given full model name streams (per-model override, else the global toggle)."""
        value = self.models.get(model, {}).get("streaming")
        return self.streaming.enabled if value is None else bool(value)

    def model_options(self, model: str) -> dict[str, Any]:
        """The ``[models."NAME"]`` settings the host does not use itself, for the provider."""
        return {k: v for k, v in self.models.get(model, {}).items() if k not in MODEL_KEYS}

    def line_of(self, dotted: str) -> int | None:
        """The line that sets a dotted key (``providers.openai.base_url``), else that of its nearest table."""
        return _line_of(self.text.splitlines(), dotted)

    def locate(self, dotted: str) -> str:
        """``FILE, line N`` of a dotted key (``providers.openai.base_url``), else of its nearest table.

        Just the file when no line is found; empty for a config that was not read from a file.
        """
        if self.path is None:
            return ""
        line = self.line_of(dotted)
        return f"{self.path}, line {line}" if line else str(self.path)

    def unknown_key(self, section: str, key: str, known: Iterable[str]) -> str:
        """The warning for a key of ``[section]`` nothing reads: where it is, and the close known key."""
        dotted = f"{section}.{key}" if section else key
        known = sorted(known)
        where = self.locate(dotted)
        hint = did_you_mean(key, known, f"{section}." if section else "")
        return f"{where + ': ' if where else ''}unknown key {dotted}{hint}; known: {', '.join(known) or 'none'}"


def _line_of(lines: list[str], dotted: str) -> int | None:
    """The line that sets ``dotted`` (or opens it as a table), else that of its nearest enclosing table."""
    section, _, key = dotted.rpartition(".")
    header = re.compile(r"^\s*\[+\s*([^\]]+?)\s*\]+")
    key = key.strip('"')
    assign = re.compile(rf'^\s*"?{re.escape(key)}"?\s*=')
    wanted = section.replace('"', "")
    current = ""
    for number, line in enumerate(lines, 1):
        match = header.match(line)
        if match:
            current = match.group(1).replace('"', "").replace(" ", "")
            if current == dotted.replace('"', ""):
                return number
            continue
        if current == wanted and assign.match(line):
            return number
    # An inline table (`prefer = { openai = "x" }`) or a key the file does not spell out: its parent.
    return _line_of(lines, section) if section else None
