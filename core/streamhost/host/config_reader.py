"""Turning the parsed TOML into a ``Config``: every value type- and range-checked, every unknown key warned
about, every wrong value reported at once (one line each, in file order, naming the file, line and key).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..options import number_problem
from .settings import (
    HOST_KEYS,
    HTTP_PORT,
    MESSAGE_MODES,
    MODEL_KEYS,
    Config,
    ContextSettings,
    HttpSettings,
    Limits,
    StoreSettings,
    StreamingSettings,
    SummarizeSettings,
    did_you_mean,
)

_KIND_NAMES = {bool: "boolean (true/false)", str: "string", list: "list", dict: "table"}


class ConfigReader:
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

