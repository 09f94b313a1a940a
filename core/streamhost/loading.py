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

from . import hookspecs
from .config import Config
from .errors import PluginError
from .fetchers import Fetcher
from .providers import Provider

log = logging.getLogger("streamhost.plugins")

GROUP = "streamhost"
LOAD_ENV = "STREAMHOST_LOAD_PLUGINS"
DISABLE_ENV = "STREAMHOST_DISABLE_PLUGINS"
STRICT_ENV = "STREAMHOST_STRICT_PLUGINS"
KINDS: tuple[tuple[str, type], ...] = (("providers", Provider), ("fetchers", Fetcher))
"""What each ``register_<kind>`` hook registers."""


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
class Registry:
    """The providers and fetchers that loaded, and a record per plugin found."""

    providers: dict[str, Provider] = field(default_factory=dict)
    fetchers: dict[str, Fetcher] = field(default_factory=dict)
    plugins: list[PluginRecord] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

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
            _load_one(manager, registry, record, load, config)
        except Exception as exc:  # a plugin's failure is its own, never the host's
            record.error = f"{type(exc).__name__}: {exc}"
            log.warning("plugin %s failed to load and is skipped: %s", dist, record.error)
            if strict:
                raise PluginError(
                    f"plugin {dist} failed to load: {record.error} "
                    f"(unset {STRICT_ENV} to skip broken plugins)"
                ) from exc

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
    registry: Registry,
    record: PluginRecord,
    load: Callable[[], object],
    config: Config,
) -> None:
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
        _admit(registry, record, registered, config)
    except BaseException:
        manager.unregister(module)
        raise


def _admit(registry: Registry, record: PluginRecord, registered: dict[str, list[Any]], config: Config) -> None:
    """Check and configure what one plugin registered, then add it; nothing is added on failure."""
    for kind, base in KINDS:
        for item in registered[kind]:
            if not isinstance(item, (Provider, Fetcher)) or not isinstance(item, base) or not item.name:
                raise TypeError(f"register_{kind} got {item!r}: register a {base.__name__} with a name")
            item.configure(config.providers.get(item.name, {}) if base is Provider else config.fetch)
    for kind, base in KINDS:
        admitted: dict[str, Any] = getattr(registry, kind)
        for item in registered[kind]:
            owner = next((r.name for r in registry.plugins if item.name in getattr(r, kind)), None)
            if owner:
                what = base.__name__.lower()
                record.notes.append(f"{what} {item.name!r} not registered: {owner} already provides it")
                log.warning("plugin %s: %s %r is already provided by %s", record.name, what, item.name, owner)
                continue
            admitted[item.name] = item
            getattr(record, kind).append(item.name)
