"""The TOML config file: where it is, what it holds, and clear errors when it is wrong."""

from __future__ import annotations

import math
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

CONFIG_ENV = "STREAMHOST_CONFIG"
MESSAGE_MODES = ("tail", "delta")
SECRET_KEY = re.compile(r"(^|[_-])(api[_-]?key|apikey|key|token|secret|password|authorization)$")


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
    warmup: bool = True
    metrics_enabled: bool = True
    metrics_path: str | None = None
    warnings: list[str] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)

    def streaming_for(self, model: str) -> bool:
        """Whether the given full model name streams (per-model override, else the global toggle)."""
        value = self.models.get(model, {}).get("streaming")
        return self.streaming.enabled if value is None else bool(value)

    def model_options(self, model: str) -> dict[str, Any]:
        """The ``[models."NAME"]`` settings the host does not use itself, for the provider."""
        return {k: v for k, v in self.models.get(model, {}).items() if k != "streaming"}


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


class _Reader:
    """Turns parsed TOML into a Config, checking types and collecting unknown keys."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.lines = text.splitlines()
        self.warnings: list[str] = []

    def build(self, data: dict[str, Any]) -> Config:
        known = {"default_model", "aliases", "streaming", "limits", "models", "providers", "fetch",
                 "summarize", "plugins", "metrics"}
        self._unknown("", data, known)
        streaming = self._table(data, "streaming")
        self._unknown("streaming", streaming, {"enabled", "coalesce_ms", "chunk_delay_ms", "heartbeat_s",
                                                "message"})
        limits = self._table(data, "limits")
        self._unknown("limits", limits, {"deadline_s", "max_retries", "retry_max_wait_s"})
        plugins = self._table(data, "plugins")
        self._unknown("plugins", plugins, {"disable", "warmup"})
        metrics = self._table(data, "metrics")
        self._unknown("metrics", metrics, {"enabled", "path"})
        fetch = self._table(data, "fetch")
        self._get(fetch, "fetch", "allow_private", bool, None)
        self._get(fetch, "fetch", "allow_hosts", list, None)
        self._number(fetch, "fetch", "max_bytes", None, minimum=1)
        self._number(fetch, "fetch", "timeout_s", None, minimum=0.001)
        models = self._table(data, "models")
        for name, table in models.items():
            if not isinstance(table, dict):
                self._fail(f"models.{name}", f'must be a table ([models."{name}"])')
            self._get(table, f'models."{name}"', "streaming", bool, None)
        providers = self._table(data, "providers")
        for name, table in providers.items():
            if not isinstance(table, dict):
                self._fail(f"providers.{name}", f"must be a table ([providers.{name}])")
        aliases = self._table(data, "aliases")
        for alias, target in aliases.items():
            if not isinstance(target, str):
                self._fail(f"aliases.{alias}", f"must be a model name string, got {target!r}")
        message = self._get(streaming, "streaming", "message", str, "tail")
        if message not in MESSAGE_MODES:
            self._fail("streaming.message", f"must be one of {', '.join(MESSAGE_MODES)}, got {message!r}")
        disable = self._get(plugins, "plugins", "disable", list, [])
        return Config(
            path=self.path,
            default_model=self._get(data, "", "default_model", str, None),
            aliases=dict(aliases),
            streaming=StreamingSettings(
                enabled=self._get(streaming, "streaming", "enabled", bool, True),
                coalesce_ms=self._number(streaming, "streaming", "coalesce_ms", 50, minimum=0),
                chunk_delay_ms=self._number(streaming, "streaming", "chunk_delay_ms", 0, minimum=0),
                heartbeat_s=self._number(streaming, "streaming", "heartbeat_s", 10, minimum=0.01),
                message=message,
            ),
            limits=Limits(
                deadline_s=self._number(limits, "limits", "deadline_s", 600, minimum=0.001),
                max_retries=self._whole(limits, "limits", "max_retries", 2),
                retry_max_wait_s=self._number(limits, "limits", "retry_max_wait_s", 30, minimum=0),
            ),
            models={name: dict(table) for name, table in models.items()},
            providers={name: dict(table) for name, table in providers.items()},
            fetch=dict(fetch),
            summarize=self._summarize(self._table(data, "summarize")),
            plugins_disable=[str(name) for name in disable],
            warmup=self._get(plugins, "plugins", "warmup", bool, True),
            metrics_enabled=self._get(metrics, "metrics", "enabled", bool, True),
            metrics_path=self._get(metrics, "metrics", "path", str, None),
            warnings=self.warnings,
            raw=data,
        )

    def _summarize(self, table: dict[str, Any]) -> SummarizeSettings:
        self._unknown("summarize", table, {"model", "concurrency", "map_concurrency", "max_input_tokens",
                                           "max_input_tokens_per_model"})
        per_model = self._get(table, "summarize", "max_input_tokens_per_model", dict, {})
        for model in per_model:
            self._whole(per_model, "summarize.max_input_tokens_per_model", model, 0, minimum=1000)
        return SummarizeSettings(
            model=self._get(table, "summarize", "model", str, None),
            concurrency=self._whole(table, "summarize", "concurrency", 4, minimum=1),
            map_concurrency=self._whole(table, "summarize", "map_concurrency", 2, minimum=1),
            max_input_tokens=self._whole(table, "summarize", "max_input_tokens", 12_000, minimum=1000),
            max_input_tokens_per_model={model: int(value) for model, value in per_model.items()},
        )

    def _where(self, dotted: str) -> str:
        section, _, key = dotted.rpartition(".")
        key = key.strip('"')
        line = self._line_of(section, key)
        return f"{self.path}, line {line}" if line else str(self.path)

    def _line_of(self, section: str, key: str) -> int | None:
        current = ""
        header = re.compile(r"^\s*\[+\s*([^\]]+?)\s*\]+")
        assign = re.compile(rf'^\s*"?{re.escape(key)}"?\s*=')
        for number, line in enumerate(self.lines, 1):
            match = header.match(line)
            if match:
                current = match.group(1).replace('"', "").replace(" ", "")
                if not section and current == key:
                    return number
                continue
            if current == section.replace('"', "") and assign.match(line):
                return number
        return None

    def _fail(self, dotted: str, problem: str) -> None:
        raise ConfigError(f"{self._where(dotted)}: {dotted} {problem}")

    def _unknown(self, section: str, table: dict[str, Any], known: set[str]) -> None:
        for key in table:
            if key not in known:
                dotted = f"{section}.{key}" if section else key
                self.warnings.append(
                    f"{self._where(dotted)}: unknown key {dotted} (known: {', '.join(sorted(known))})"
                )

    def _table(self, data: dict[str, Any], key: str) -> dict[str, Any]:
        value = data.get(key, {})
        if not isinstance(value, dict):
            self._fail(key, f"must be a table ([{key}]), got {type(value).__name__}")
        return value

    def _get(self, table: dict[str, Any], section: str, key: str, kind: type, default: Any) -> Any:
        if key not in table:
            return default
        value = table[key]
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            dotted = f"{section}.{key}" if section else key
            self._fail(dotted, f"must be a {_KIND_NAMES.get(kind, kind.__name__)}, got {value!r}")
        return value

    def _whole(self, table: dict[str, Any], section: str, key: str, default: int, minimum: int = 0) -> int:
        value = self._number(table, section, key, default, minimum=minimum)
        if not isinstance(value, int):
            self._fail(f"{section}.{key}", f"must be a whole number ≥ {minimum}, got {value!r}")
        return int(value)

    def _number(self, table: dict[str, Any], section: str, key: str, default: Any, *, minimum: float) -> Any:
        if key not in table:
            return default
        value = table[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or value < minimum:
            self._fail(f"{section}.{key}", f"must be a number ≥ {minimum:g}, got {value!r}")
        return value


_KIND_NAMES = {bool: "boolean (true/false)", str: "string", list: "list", dict: "table"}


def masked(data: Any, key: str = "") -> Any:
    """A copy of the raw config with secret-looking values replaced, for ``config show``."""
    if isinstance(data, dict):
        return {k: masked(v, k) for k, v in data.items()}
    if isinstance(data, list):
        return [masked(item, key) for item in data]
    if SECRET_KEY.search(key.lower()):
        return "****"
    return data
