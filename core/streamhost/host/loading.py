"""Finding, loading and registering plugins: one at a time, so a broken one never stops the rest."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from .. import hookspecs
from ..errors import ConfigError, PluginError
from ..fetchers import Fetcher
from ..providers import Provider
from .config import Config, did_you_mean

log = logging.getLogger("streamhost.plugins")

GROUP = "streamhost"
LOAD_ENV = "STREAMHOST_LOAD_PLUGINS"
DISABLE_ENV = "STREAMHOST_DISABLE_PLUGINS"
STRICT_ENV = "STREAMHOST_STRICT_PLUGINS"
KINDS: tuple[tuple[str, type], ...] = (("providers", Provider), ("fetchers", Fetcher))
"""What each ``register_<kind>`` hook registers."""
BUNDLED = ("streamhost-openai", "streamhost-litellm", "streamhost-fetch")
"""The plugins shipped with streamhost: a name one of them serves goes to a third party only by ``[plugins] prefer``."""


@dataclass
class PluginRecord:
    """What happened to one plugin: what it registered, or why it was skipped."""

    name: str
    version: str | None = None
    entry_point: str | None = None
    hooks: list[str] = field(default_factory=list)
    providers: list[str] = field(default_factory=list)
    fetchers: list[str] = field(default_factory=list)
    error: str | None = None
    skipped: str | None = None
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """For ``streamhost plugins --json``."""
        return {key: getattr(self, key) for key in self.__dataclass_fields__}


@dataclass
class Collision:
    """Several plugins registered the same provider or fetcher name; one of them serves it."""

    kind: str
    """``provider`` or ``fetcher``."""
    name: str
    serves: str
    """The distribution that serves the name."""
    refused: list[str]
    """The distributions whose registration of the name was refused."""
    reason: str
    preferred: bool
    """Whether the config's ``[plugins] prefer`` chose (then it is not a warning)."""

    def as_dict(self) -> dict[str, Any]:
        """For ``streamhost plugins --json``, with the sentence ``describe`` gives as ``message``."""
        return {**{key: getattr(self, key) for key in self.__dataclass_fields__}, "message": self.describe()}

    def describe(self) -> str:
        """One sentence: who registers the name, who serves it, why, and how to choose."""
        text = (f"{self.kind} {self.name!r} is registered by {self.serves} and {', '.join(self.refused)}: "
                f"{self.serves} serves it ({self.reason})")
        if not self.preferred:
            text += f'; to choose, set [plugins] prefer = {{ {self.name} = "{self.refused[0]}" }} in the config'
        return text


@dataclass
class Registry:
    """The providers and fetchers that loaded, and a record per plugin found."""

    providers: dict[str, Provider] = field(default_factory=dict)
    fetchers: dict[str, Fetcher] = field(default_factory=dict)
    plugins: list[PluginRecord] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    collisions: list[Collision] = field(default_factory=list)

    def fetcher_for(self, scheme: str, host: str) -> Fetcher | None:
        """The fetcher naming this host, else the first serving this scheme."""
        candidates = [f for f in self.fetchers.values() if f.handles(scheme, host)]
        specific = [f for f in candidates if f.hosts]
        ranked = specific or candidates
        return ranked[0] if ranked else None


def normalize(name: str) -> str:
    """A distribution name as packaging compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _names(value: str | None) -> set[str] | None:
    if value is None:
        return None
    return {normalize(part.strip()) for part in value.split(",") if part.strip()}


def load_plugins(
    config: Config,
    *,
    extra: Iterable[tuple[str, object]] = (),
    entry_points: Iterable[metadata.EntryPoint] | None = None,
) -> Registry:
    """Load the entry-point plugins of group ``streamhost`` (and ``extra`` in-process plugins).

    Raises PluginError on the first failure when ``STREAMHOST_STRICT_PLUGINS=1``.
    """
    strict = os.environ.get(STRICT_ENV, "").strip().lower() in ("1", "true", "yes")
    only = _names(os.environ.get(LOAD_ENV))
    disabled = (_names(os.environ.get(DISABLE_ENV)) or set()) | {normalize(n) for n in config.plugins_disable}
    registry = Registry()
    manager = pluggy.PluginManager("streamhost")
    manager.add_hookspecs(hookspecs)

    found: list[tuple[str, str | None, str | None, Callable[[], object]]] = []
    eps = metadata.entry_points(group=GROUP) if entry_points is None else entry_points
    for ep in sorted(eps, key=lambda e: (normalize(e.dist.name if e.dist else e.name), e.name)):
        dist = ep.dist.name if ep.dist else ep.name
        found.append((dist, ep.dist.version if ep.dist else None, f"{ep.name} = {ep.value}", ep.load))
    for name, plugin in extra:
        found.append((name, None, None, _returning(plugin)))

    claims: dict[tuple[str, str], list[tuple[PluginRecord, Any]]] = {}
    for dist, version, entry, load in found:
        record = PluginRecord(name=dist, version=version, entry_point=entry)
        registry.plugins.append(record)
        key = normalize(dist)
        if only is not None and key not in only:
            record.skipped = f"not named in {LOAD_ENV}"
            continue
        if key in disabled:
            record.skipped = "disabled (STREAMHOST_DISABLE_PLUGINS or [plugins] disable)"
            continue
        try:
            registered = _load_one(manager, record, load, config)
        except Exception as exc:  # a plugin's failure is its own, never the host's
            record.error = f"{type(exc).__name__}: {exc}"
            log.warning("plugin %s failed to load and is skipped: %s", dist, record.error)
            if strict:
                raise PluginError(
                    f"plugin {dist} failed to load: {record.error} "
                    f"(unset {STRICT_ENV} to skip broken plugins)"
                ) from exc
            continue
        for kind, _ in KINDS:
            for item in registered[kind]:
                claims.setdefault((kind, item.name), []).append((record, item))

    for (kind, name), claimants in claims.items():
        record, item = _settle(registry, kind, name, claimants, config)
        getattr(registry, kind)[name] = item
        getattr(record, kind).append(name)
    _check_prefer(registry, claims, config)
    _check_fetch_keys(registry, config)
    loaded = {normalize(r.name) for r in registry.plugins}
    for name in sorted((only or set()) - loaded):
        registry.warnings.append(f"{LOAD_ENV} names {name}, which is not installed")
    for name in sorted(set(config.providers) - set(registry.providers)):
        registry.warnings.append(f"config has [providers.{name}] but no loaded plugin registers provider {name!r}")
    return registry


def _returning(plugin: object) -> Callable[[], object]:
    return lambda: plugin


def _load_one(
    manager: pluggy.PluginManager,
    record: PluginRecord,
    load: Callable[[], object],
    config: Config,
) -> dict[str, list[Any]]:
    """Import one plugin and call its register hooks; what it registered, checked and configured."""
    try:
        module = load()
    except SystemExit as exc:
        raise RuntimeError(f"plugin called sys.exit({exc.code}) on import") from None
    manager.register(module, name=record.name)
    try:
        manager.check_pending()
        record.hooks = sorted(c.name for c in manager.get_hookcallers(module) or [])
        registered: dict[str, list[Any]] = {kind: [] for kind, _ in KINDS}
        for kind, bucket in registered.items():
            for impl in getattr(manager.hook, f"register_{kind}").get_hookimpls():
                if impl.plugin_name == record.name:
                    impl.function(**{arg: bucket.append for arg in impl.argnames})
        for kind, base in KINDS:
            for item in registered[kind]:
                if not isinstance(item, (Provider, Fetcher)) or not isinstance(item, base) or not item.name:
                    raise TypeError(f"register_{kind} got {item!r}: register a {base.__name__} with a name")
                section = f"providers.{item.name}" if base is Provider else "fetch"
                table = config.providers.get(item.name, {}) if base is Provider else config.fetch
                try:
                    item.configure(table)
                except ConfigError as exc:
                    raise ConfigError(_located(exc.message, section, table, config)) from None
        return registered
    except BaseException:
        manager.unregister(module)
        raise


def _located(message: str, section: str, table: dict[str, Any], config: Config) -> str:
    """A plugin's ConfigError with the file and line of the key it names, and the close known key.

    The known keys are read from a ``(known: a, b, c)`` list in the message, as the bundled plugins write it.
    """
    named = sorted((match.start(), key) for key in table
                   if (match := re.search(rf"(?<![\w-]){re.escape(key)}(?![\w-])", message)))
    if not named:
        where = config.locate(section)
        return f"{where}: {message}" if where else message
    where = config.locate(f"{section}.{named[0][1]}")
    listed = re.search(r"\(known: ([^)]*)\)", message)
    known = [k.strip() for k in listed.group(1).split(",")] if listed else []
    hints = "".join(did_you_mean(key, known, f"{section}.") for _, key in named if known and key not in known)
    return f"{where + ': ' if where else ''}{message}{hints}"


def _settle(
    registry: Registry, kind: str, name: str, claimants: list[tuple[PluginRecord, Any]], config: Config
) -> tuple[PluginRecord, Any]:
    """The claimant that serves a name: the one ``[plugins] prefer`` names, else a bundled one, else the first."""
    wanted = normalize(config.plugins_prefer.get(name, ""))
    chosen = next((c for c in claimants if normalize(c[0].name) == wanted), None)
    reason = "chosen by [plugins] prefer"
    if chosen is None:
        chosen = next((c for c in claimants if normalize(c[0].name) in BUNDLED), None)
        reason = "bundled plugins win over third-party ones"
    if chosen is None:
        chosen = claimants[0]
        reason = "loaded first: distribution names in alphabetical order"
    if len(claimants) > 1:
        what = kind.removesuffix("s")
        winner = chosen[0].name
        refused = [record for record, item in claimants if item is not chosen[1]]
        collision = Collision(what, name, winner, [record.name for record in refused], reason,
                              preferred=normalize(winner) == wanted)
        registry.collisions.append(collision)
        for record in refused:
            record.notes.append(f"{what} {name!r} not registered: {winner} serves it ({reason})")
        if not collision.preferred:
            registry.warnings.append(collision.describe())
    return chosen


def _check_prefer(registry: Registry, claims: dict[tuple[str, str], list[tuple[PluginRecord, Any]]],
                  config: Config) -> None:
    """Warn about ``[plugins] prefer`` entries that choose nothing: an unknown name or a distribution that lacks it."""
    for name, dist in config.plugins_prefer.items():
        where = config.locate(f"plugins.prefer.{name}")
        prefix = f"{where}: " if where else ""
        owners = [record.name for (_, claimed), found in claims.items() if claimed == name for record, _ in found]
        if not owners:
            names = {claimed for _, claimed in claims}
            registry.warnings.append(f"{prefix}[plugins] prefer names {name!r}, which no loaded plugin registers"
                                     f"{did_you_mean(name, names)}")
        elif normalize(dist) not in {normalize(owner) for owner in owners}:
            registry.warnings.append(f"{prefix}[plugins] prefer gives {name!r} to {dist}, which does not register "
                                     f"it (registered by {', '.join(owners)}){did_you_mean(dist, owners)}")


def _check_fetch_keys(registry: Registry, config: Config) -> None:
    """Warn about ``[fetch]`` keys no loaded fetcher declares (only when every loaded fetcher declares its keys)."""
    declared = [fetcher.config_keys for fetcher in registry.fetchers.values()]
    if not declared or any(keys is None for keys in declared):
        return
    known = set().union(*declared)
    for key in config.fetch:
        if key not in known:
            registry.warnings.append(config.unknown_key("fetch", key, known))
