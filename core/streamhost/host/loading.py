"""Finding, loading and registering plugins: one at a time, so a broken one never stops the rest.

Every kind of thing a plugin registers (providers, fetchers, tools) is one entry of ``KINDS``: its
hook, its type, how it is named and configured. Loading, attribution, the collision rule and the
listings all work from that table, so a new hook kind is its hookspec and one entry here.
"""

from __future__ import annotations

import importlib
import logging
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from .. import __version__, hookspecs
from ..errors import PluginError
from ..fetchers import Fetcher
from ..providers import Provider
from ..tools import Tool
from . import plugin_options
from .config import Config, did_you_mean

log = logging.getLogger("streamhost.plugins")

GROUP = "streamhost"
LOAD_ENV = "STREAMHOST_LOAD_PLUGINS"
DISABLE_ENV = "STREAMHOST_DISABLE_PLUGINS"
STRICT_ENV = "STREAMHOST_STRICT_PLUGINS"
BUILTIN = "streamhost"
"""The record name of the host's own default plugins, which always load (the environment's lists do not apply)."""
BUILTIN_MODULES = ("streamhost.builtin_tools",)
BUNDLED = (BUILTIN, "streamhost-openai", "streamhost-litellm", "streamhost-fetch")
"""The host and the plugins shipped with it: a name one of them serves goes to a third party only by
``[plugins] prefer``."""
TOOL_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _named(item: Any) -> str:
    return item.name if isinstance(item.name, str) else ""


def _tool_name(tool: Tool) -> str:
    """A tool's name, which clients must be able to call; its input schema must be an object schema."""
    if not isinstance(tool.name, str) or not TOOL_NAME.fullmatch(tool.name):
        raise ValueError(f"tool name {tool.name!r} is not 1 to 64 letters, digits, '_' or '-'")
    if not isinstance(tool.input_schema, dict) or tool.input_schema.get("type") != "object":
        raise ValueError(f"tool {tool.name!r}: input_schema must be a JSON Schema with \"type\": \"object\"")
    return tool.name


@dataclass(frozen=True)
class Kind:
    """One kind of thing plugins register: everything the loader needs to know about it."""

    name: str
    """Plural, as the hook (``register_<name>``), ``Registry.registered`` and the listings call it."""
    base: type
    """What must be registered: an instance of this class."""
    key: Callable[[Any], str] = _named
    """The unique name of a registered item (raises ValueError when it is unusable)."""
    configure: Callable[[Any, Config], None] | None = None
    """Gives a registered item its config (raises ConfigError); None: the kind takes no config."""

    @property
    def singular(self) -> str:
        """``provider`` for ``providers``: in notes and collisions."""
        return self.name.removesuffix("s")


KINDS: tuple[Kind, ...] = (
    # A provider gets its [providers.NAME] table, a fetcher the [fetch] table, checked against what each declares.
    Kind("providers", Provider, configure=plugin_options.configure),
    Kind("fetchers", Fetcher, configure=plugin_options.configure),
    Kind("tools", Tool, key=_tool_name),
)
"""What each ``register_<kind>`` hook registers, in the order the listings show them."""


@dataclass
class PluginRecord:
    """What happened to one plugin: what it registered, or why it was skipped."""

    name: str
    version: str | None = None
    entry_point: str | None = None
    hooks: list[str] = field(default_factory=list)
    registered: dict[str, list[str]] = field(default_factory=lambda: {kind.name: [] for kind in KINDS})
    """The names it serves, by kind (``providers``, ``fetchers``, ``tools``)."""
    error: str | None = None
    skipped: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def providers(self) -> list[str]:
        """The provider names it serves."""
        return self.registered["providers"]

    @property
    def fetchers(self) -> list[str]:
        """The fetcher names it serves."""
        return self.registered["fetchers"]

    @property
    def tools(self) -> list[str]:
        """The tool names it serves."""
        return self.registered["tools"]

    def registrations(self) -> list[str]:
        """What it serves, one ``KIND NAME`` each (``provider openai``, ``tool generate``), for listings."""
        return [f"{kind.singular} {name}" for kind in KINDS for name in self.registered[kind.name]]

    def as_dict(self) -> dict[str, Any]:
        """For ``streamhost plugins --json``: each kind's names under its own key."""
        fields = {key: getattr(self, key) for key in self.__dataclass_fields__ if key != "registered"}
        return {**fields, **self.registered}


@dataclass
class Collision:
    """Several plugins registered the same name of one kind; one of them serves it."""

    kind: str
    """``provider``, ``fetcher`` or ``tool``."""
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
    """What loaded, by kind, and a record per plugin found."""

    registered: dict[str, dict[str, Any]] = field(default_factory=lambda: {kind.name: {} for kind in KINDS})
    """The items that serve each name, by kind: ``registered["tools"]["generate"]``."""
    plugins: list[PluginRecord] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    collisions: list[Collision] = field(default_factory=list)

    @property
    def providers(self) -> dict[str, Provider]:
        """The providers by name (model prefix)."""
        return self.registered["providers"]

    @property
    def fetchers(self) -> dict[str, Fetcher]:
        """The fetchers by name."""
        return self.registered["fetchers"]

    @property
    def tools(self) -> dict[str, Tool]:
        """The tools by name, the built-in ones first."""
        return self.registered["tools"]

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


@dataclass
class _Found:
    """A plugin to load: its record, how to import it, and whether the environment's lists apply."""

    record: PluginRecord
    load: Callable[[], object]
    builtin: bool = False


Claims = dict[tuple[Kind, str], list[tuple[PluginRecord, Any]]]


def load_plugins(
    config: Config,
    *,
    extra: Iterable[tuple[str, object]] = (),
    entry_points: Iterable[metadata.EntryPoint] | None = None,
) -> Registry:
    """Load the host's default plugins, the entry-point plugins of group ``streamhost`` and ``extra``
    in-process plugins, in that order.

    Raises PluginError on the first failure when ``STREAMHOST_STRICT_PLUGINS=1``.
    """
    strict = os.environ.get(STRICT_ENV, "").strip().lower() in ("1", "true", "yes")
    only = _names(os.environ.get(LOAD_ENV))
    disabled = (_names(os.environ.get(DISABLE_ENV)) or set()) | {normalize(n) for n in config.plugins_disable}
    registry = Registry()
    manager = pluggy.PluginManager("streamhost")
    manager.add_hookspecs(hookspecs)

    claims: Claims = {}
    for found in _found(extra, entry_points):
        record = found.record
        registry.plugins.append(record)
        key = normalize(record.name)
        if not found.builtin and only is not None and key not in only:
            record.skipped = f"not named in {LOAD_ENV}"
            continue
        if not found.builtin and key in disabled:
            record.skipped = "disabled (STREAMHOST_DISABLE_PLUGINS or [plugins] disable)"
            continue
        try:
            registered = _load_one(manager, record, found.load, config)
        except Exception as exc:  # a plugin's failure is its own, never the host's
            record.error = f"{type(exc).__name__}: {exc}"
            log.warning("plugin %s failed to load and is skipped: %s", record.name, record.error)
            if strict:
                raise PluginError(
                    f"plugin {record.name} failed to load: {record.error} "
                    f"(unset {STRICT_ENV} to skip broken plugins)"
                ) from exc
            continue
        for kind, item in registered:
            claims.setdefault((kind, kind.key(item)), []).append((record, item))

    for (kind, name), claimants in claims.items():
        record, item = _settle(registry, kind, name, claimants, config)
        registry.registered[kind.name][name] = item
        record.registered[kind.name].append(name)
    _check_prefer(registry, claims, config)
    registry.warnings += plugin_options.warnings(registry.providers, registry.fetchers, config)
    loaded = {normalize(r.name) for r in registry.plugins}
    for name in sorted((only or set()) - loaded):
        registry.warnings.append(f"{LOAD_ENV} names {name}, which is not installed")
    for name in sorted(set(config.providers) - set(registry.providers)):
        registry.warnings.append(f"config has [providers.{name}] but no loaded plugin registers provider {name!r}")
    return registry


def _found(extra: Iterable[tuple[str, object]], entry_points: Iterable[metadata.EntryPoint] | None) -> list[_Found]:
    """The plugins to load, in order: the built-in ones, the entry points by distribution name, then ``extra``."""
    found = [_Found(PluginRecord(name=BUILTIN, version=__version__, entry_point=module),
                    lambda module=module: importlib.import_module(module), builtin=True)
             for module in BUILTIN_MODULES]
    eps = metadata.entry_points(group=GROUP) if entry_points is None else entry_points
    for ep in sorted(eps, key=lambda e: (normalize(e.dist.name if e.dist else e.name), e.name)):
        record = PluginRecord(name=ep.dist.name if ep.dist else ep.name, version=ep.dist.version if ep.dist else None,
                              entry_point=f"{ep.name} = {ep.value}")
        found.append(_Found(record, ep.load))
    for name, plugin in extra:
        found.append(_Found(PluginRecord(name=name), lambda plugin=plugin: plugin))
    return found


def _load_one(
    manager: pluggy.PluginManager,
    record: PluginRecord,
    load: Callable[[], object],
    config: Config,
) -> list[tuple[Kind, Any]]:
    """Import one plugin and call its register hooks; what it registered, checked and configured."""
    try:
        module = load()
    except SystemExit as exc:
        raise RuntimeError(f"plugin called sys.exit({exc.code}) on import") from None
    manager.register(module, name=record.name)
    try:
        manager.check_pending()
        record.hooks = sorted(c.name for c in manager.get_hookcallers(module) or [])
        registered: list[tuple[Kind, Any]] = []
        for kind in KINDS:
            items: list[Any] = []
            for impl in getattr(manager.hook, f"register_{kind.name}").get_hookimpls():
                if impl.plugin_name == record.name:
                    impl.function(**{arg: items.append for arg in impl.argnames})
            for item in items:
                if not isinstance(item, kind.base) or not kind.key(item):
                    raise TypeError(f"register_{kind.name} got {item!r}: register a {kind.base.__name__} with a name")
                if kind.configure is not None:
                    kind.configure(item, config)
                registered.append((kind, item))
        return registered
    except BaseException:
        manager.unregister(module)
        raise


def _settle(
    registry: Registry, kind: Kind, name: str, claimants: list[tuple[PluginRecord, Any]], config: Config
) -> tuple[PluginRecord, Any]:
    """The claimant that serves a name: the one ``[plugins] prefer`` names, else a bundled one (the host's
    built-in tools included), else the first loaded. A collision is recorded, noted and, unless chosen, warned of."""
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
        winner = chosen[0].name
        refused = [record for record, item in claimants if item is not chosen[1]]
        collision = Collision(kind.singular, name, winner, [record.name for record in refused], reason,
                              preferred=normalize(winner) == wanted)
        registry.collisions.append(collision)
        for record in refused:
            record.notes.append(f"{kind.singular} {name!r} not registered: {winner} serves it ({reason})")
        if not collision.preferred:
            registry.warnings.append(collision.describe())
    return chosen


def _check_prefer(registry: Registry, claims: Claims, config: Config) -> None:
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
