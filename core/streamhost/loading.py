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
HOOKS = ("register_providers", "register_fetchers")


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
        return (specific or candidates or [None])[0]


def normalize(name: str) -> str:
    """A distribution name as packaging compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _names(value: str | None) -> set[str] | None:
    if value is None:
        return None
    return {normalize(part) for part in value.split(",") if part.strip()}


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
        found.append((name, None, None, lambda plugin=plugin: plugin))

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
        providers: list[Provider] = []
        fetchers: list[Fetcher] = []
        for hook, bucket in (("register_providers", providers), ("register_fetchers", fetchers)):
            for impl in getattr(manager.hook, hook).get_hookimpls():
                if impl.plugin_name == record.name:
                    impl.function(**{arg: bucket.append for arg in impl.argnames})
        _admit(registry, record, providers, fetchers, config)
    except BaseException:
        manager.unregister(module)
        raise


def _admit(
    registry: Registry, record: PluginRecord, providers: list[Provider], fetchers: list[Fetcher], config: Config
) -> None:
    """Check and configure what one plugin registered, then add it; nothing is added on failure."""
    for provider in providers:
        if not isinstance(provider, Provider) or not provider.name:
            raise TypeError(f"register_providers got {provider!r}: register a Provider with a name")
        provider.configure(config.providers.get(provider.name, {}))
    for fetcher in fetchers:
        if not isinstance(fetcher, Fetcher) or not fetcher.name:
            raise TypeError(f"register_fetchers got {fetcher!r}: register a Fetcher with a name")
        fetcher.configure(config.fetch)
    for provider in providers:
        owner = _owner(registry, "providers", provider.name)
        if owner:
            record.notes.append(f"provider {provider.name!r} not registered: {owner} already provides it")
            log.warning("plugin %s: provider %r is already provided by %s", record.name, provider.name, owner)
            continue
        registry.providers[provider.name] = provider
        record.providers.append(provider.name)
    for fetcher in fetchers:
        owner = _owner(registry, "fetchers", fetcher.name)
        if owner:
            record.notes.append(f"fetcher {fetcher.name!r} not registered: {owner} already provides it")
            log.warning("plugin %s: fetcher %r is already provided by %s", record.name, fetcher.name, owner)
            continue
        registry.fetchers[fetcher.name] = fetcher
        record.fetchers.append(fetcher.name)


def _owner(registry: Registry, kind: str, name: str) -> str | None:
    for record in registry.plugins:
        if name in getattr(record, kind):
            return record.name
    return None
