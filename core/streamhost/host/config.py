"""The TOML config file: where it is, what it holds, and clear errors when it is wrong."""

from __future__ import annotations

import difflib
import os
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..options import number_problem

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

CONFIG_ENV = "STREAMHOST_CONFIG"
STORE_ENV = "STREAMHOST_STORE"
"""A store path or URL that wins over ``[store] path`` / ``url``."""
MESSAGE_MODES = ("tail", "delta")
SECRET_KEY = re.compile(r"(^|[_-])(api[_-]?key|apikey|key|token|secret|password|authorization)$")
URL_CREDENTIALS = re.compile(r"(?<=://)[^/@\s]+@")
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


def config_path() -> Path:
    """``$STREAMHOST_CONFIG``, else the platform's user config dir + ``config.toml``."""
    explicit = os.environ.get(CONFIG_ENV)
    if explicit:
        return Path(explicit).expanduser()
    import platformdirs

    return Path(platformdirs.user_config_dir("streamhost")) / "config.toml"


def load_config(path: Path | None = None) -> Config:
    """Read and check the config file; raise ConfigError naming the file, line and key."""
    path = path or config_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if os.environ.get(CONFIG_ENV) and path == config_path():
            raise ConfigError(f"{path}: config file not found (named by {CONFIG_ENV})") from None
        return Config(path=path)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        where = "" if "line" in str(exc) else f" (line {max(len(text.splitlines()), 1)})"
        raise ConfigError(f"{path}: invalid TOML: {exc}{where}") from None
    return _Reader(path, text).build(data)


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


class _Reader:
    """Turns parsed TOML into a Config, checking types; collects every error and unknown key."""

    def __init__(self, path: Path, text: str) -> None:
        self.config = Config(path=path, text=text)
        self.warnings: list[str] = []
        self.errors: list[tuple[int, str]] = []

    def build(self, data: dict[str, Any]) -> Config:
        """The Config; raises one ConfigError listing every wrong value, one per line, in file order."""
        self._unknown("", data)
        streaming = self._table(data, "streaming")
        self._unknown("streaming", streaming)
        limits = self._table(data, "limits")
        self._unknown("limits", limits)
        plugins = self._table(data, "plugins")
        self._unknown("plugins", plugins)
        metrics = self._table(data, "metrics")
        self._unknown("metrics", metrics)
        store = self._table(data, "store")
        self._unknown("store", store)
        context = self._table(data, "context")
        self._unknown("context", context)
        http = self._table(data, "http")
        self._unknown("http", http)
        # [fetch], [providers.NAME] and the provider's keys of [models."NAME"] belong to the plugins: they are
        # checked against what each plugin declares when it loads (plugin_options.py).
        fetch = self._table(data, "fetch")
        models = self._tables(data, "models", 'models."{}"')
        for name, table in models.items():
            self._get(table, f'models."{name}"', "streaming", bool, None)
            for key in ("price_in", "price_out"):
                self._number(table, f'models."{name}"', key, None, minimum=0)
            self._whole(table, f'models."{name}"', "context_window", 0, minimum=1)
            # Other keys go to the provider untouched, so only a near miss of a host key is a sure typo.
            for key in table:
                if key not in MODEL_KEYS and did_you_mean(key, MODEL_KEYS):
                    self.warnings.append(self.config.unknown_key(f'models."{name}"', key, MODEL_KEYS)
                                         + " (other keys are passed to the provider)")
        providers = self._tables(data, "providers", "providers.{}")
        aliases = self._table(data, "aliases")
        for alias, target in aliases.items():
            if not isinstance(target, str):
                self._fail(f"aliases.{alias}", f"must be a model name string, got {target!r}")
        message = self._get(streaming, "streaming", "message", str, "tail")
        if message not in MESSAGE_MODES:
            self._fail("streaming.message", f"must be one of {', '.join(MESSAGE_MODES)}, got {message!r}")
        disable = self._get(plugins, "plugins", "disable", list, [])
        prefer = self._get(plugins, "plugins", "prefer", dict, {})
        for name, dist in prefer.items():
            if not isinstance(dist, str) or not dist:
                self._fail(f"plugins.prefer.{name}", "must be the distribution name of a plugin "
                           f'(prefer = {{ {name} = "streamhost-NAME" }}), got {dist!r}')
        config = self.config
        config.default_model = self._get(data, "", "default_model", str, None)
        config.aliases = {alias: target for alias, target in aliases.items() if isinstance(target, str)}
        config.streaming = StreamingSettings(
            enabled=self._get(streaming, "streaming", "enabled", bool, True),
            coalesce_ms=self._number(streaming, "streaming", "coalesce_ms", 50, minimum=0),
            chunk_delay_ms=self._number(streaming, "streaming", "chunk_delay_ms", 0, minimum=0),
            heartbeat_s=self._number(streaming, "streaming", "heartbeat_s", 10, minimum=0.01),
            message=message if message in MESSAGE_MODES else "tail",
        )
        config.limits = Limits(
            deadline_s=self._number(limits, "limits", "deadline_s", 600, minimum=0.001),
            max_retries=self._whole(limits, "limits", "max_retries", 2),
            retry_max_wait_s=self._number(limits, "limits", "retry_max_wait_s", 30, minimum=0),
            daily_usd=self._number(limits, "limits", "daily_usd", None, minimum=0),
            handoff_s=self._number(limits, "limits", "handoff_s", None, minimum=0),
        )
        config.models = models
        config.providers = providers
        config.fetch = dict(fetch)
        config.summarize = self._summarize(self._table(data, "summarize"))
        config.plugins_disable = [str(name) for name in disable]
        config.plugins_prefer = {str(name): dist for name, dist in prefer.items() if isinstance(dist, str) and dist}
        config.warmup = self._get(plugins, "plugins", "warmup", bool, True)
        config.metrics_enabled = self._get(metrics, "metrics", "enabled", bool, True)
        config.metrics_path = self._get(metrics, "metrics", "path", str, None)
        config.store = StoreSettings(
            enabled=self._get(store, "store", "enabled", bool, True),
            path=self._get(store, "store", "path", str, None),
            url=self._get(store, "store", "url", str, None),
            keep_text=self._get(store, "store", "keep_text", bool, True),
            keep_days=self._number(store, "store", "keep_days", 30, minimum=0),
        )
        config.context = ContextSettings(
            roots=tuple(self._strings(context, "context", "roots")),
            allow=tuple(self._strings(context, "context", "allow")),
            max_files=self._whole(context, "context", "max_files", 50, minimum=1),
            max_file_kb=self._whole(context, "context", "max_file_kb", 512, minimum=1),
            max_total_kb=self._whole(context, "context", "max_total_kb", 2048, minimum=1),
        )
        config.http = HttpSettings(
            host=self._get(http, "http", "host", str, "127.0.0.1"),
            port=self._whole(http, "http", "port", HTTP_PORT, minimum=1),
            workers=self._whole(http, "http", "workers", 1, minimum=1),
            allowed_hosts=tuple(self._strings(http, "http", "allowed_hosts")),
            allowed_origins=tuple(self._strings(http, "http", "allowed_origins")),
            roots=tuple(self._strings(http, "http", "roots")),
            loopback_without_token=self._get(http, "http", "loopback_without_token", bool, False),
        )
        config.warnings = self.warnings
        config.raw = data
        if self.errors:
            raise ConfigError("\n".join(message for _, message in sorted(self.errors, key=lambda e: e[0])))
        return config

    def _summarize(self, table: dict[str, Any]) -> SummarizeSettings:
        self._unknown("summarize", table)
        per_model = self._get(table, "summarize", "max_input_tokens_per_model", dict, {})
        budgets = {model: self._whole(per_model, "summarize.max_input_tokens_per_model", model, 0, minimum=1000)
                   for model in per_model}
        return SummarizeSettings(
            model=self._get(table, "summarize", "model", str, None),
            concurrency=self._whole(table, "summarize", "concurrency", 4, minimum=1),
            map_concurrency=self._whole(table, "summarize", "map_concurrency", 2, minimum=1),
            max_input_tokens=self._whole(table, "summarize", "max_input_tokens", 12_000, minimum=1000),
            max_input_tokens_per_model=budgets,
        )

    def _fail(self, dotted: str, problem: str) -> None:
        line = self.config.line_of(dotted)
        where = f"{self.config.path}, line {line}" if line else str(self.config.path)
        self.errors.append((line or 0, f"{where}: {dotted} {problem}"))

    def _unknown(self, section: str, table: dict[str, Any]) -> None:
        known = HOST_KEYS[section]
        for key in table:
            if key not in known:
                self.warnings.append(self.config.unknown_key(section, key, known))

    def _table(self, data: dict[str, Any], key: str) -> dict[str, Any]:
        value = data.get(key, {})
        if not isinstance(value, dict):
            self._fail(key, f"must be a table ([{key}]), got {type(value).__name__}")
            return {}
        return value

    def _tables(self, data: dict[str, Any], key: str, header: str) -> dict[str, dict[str, Any]]:
        """A table of tables (``[models."X"]``, ``[providers.X]``); the entries that are not tables are errors."""
        tables = {}
        for name, table in self._table(data, key).items():
            if isinstance(table, dict):
                tables[name] = dict(table)
            else:
                self._fail(f"{key}.{name}", f"must be a table ([{header.format(name)}])")
        return tables

    def _get(self, table: dict[str, Any], section: str, key: str, kind: type, default: Any) -> Any:
        if key not in table:
            return default
        value = table[key]
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            dotted = f"{section}.{key}" if section else key
            self._fail(dotted, f"must be a {_KIND_NAMES.get(kind, kind.__name__)}, got {value!r}")
            return default
        return value

    def _strings(self, table: dict[str, Any], section: str, key: str) -> list[str]:
        values = self._get(table, section, key, list, [])
        if not all(isinstance(value, str) for value in values):
            self._fail(f"{section}.{key}", f"must be a list of strings, got {values!r}")
            return []
        return values

    def _whole(self, table: dict[str, Any], section: str, key: str, default: int, minimum: int = 0) -> int:
        return self._number(table, section, key, default, minimum=minimum, whole=True)

    def _number(self, table: dict[str, Any], section: str, key: str, default: Any, *, minimum: float,
                whole: bool = False) -> Any:
        if key not in table:
            return default
        problem = number_problem(table[key], whole=whole, minimum=minimum)
        if problem:
            self._fail(f"{section}.{key}", problem)
            return default
        return table[key]


_KIND_NAMES = {bool: "boolean (true/false)", str: "string", list: "list", dict: "table"}


def masked(data: Any, key: str = "") -> Any:
    """A copy of the raw config with secret-looking values replaced, for ``config show``.

    Values of keys named like a secret become ``****``, and so do the credentials in a URL
    (``http://user:password@proxy:3128`` shows as ``http://****@proxy:3128``).
    """
    if isinstance(data, dict):
        return {k: masked(v, k) for k, v in data.items()}
    if isinstance(data, list):
        return [masked(item, key) for item in data]
    if SECRET_KEY.search(key.lower()):
        return "****"
    return URL_CREDENTIALS.sub("****@", data) if isinstance(data, str) else data
