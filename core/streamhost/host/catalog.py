"""Model names: listing what the providers advertise and resolving a name or alias to a provider."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from ..errors import UnknownModelError
from ..providers import ModelInfo, Provider
from ..services import MAX_MODEL_CHARS, ModelEntry
from .config import Config
from .loading import Registry

LISTED = "The list_models tool (`streamhost models` in a terminal) lists the models and aliases."
"""Where the models are listed, for both faces: an MCP client's model and a terminal user read the same error."""


@dataclass(frozen=True)
class Resolved:
    """A model name routed to its provider."""

    provider: Provider
    name: str
    """The part after the prefix, passed to the provider untouched."""
    id: str
    """The model id as lists show it: ``PROVIDER/NAME``."""
    info: ModelInfo | None


class Catalog:
    """The models of the loaded providers plus the config's aliases and default."""

    def __init__(self, registry: Registry, config: Config) -> None:
        self.registry = registry
        self.config = config

    def _infos(self) -> list[tuple[Provider, ModelInfo]]:
        return [(p, info) for p in self.registry.providers.values() for info in p.models()]

    def default_model(self) -> str | None:
        """The config's ``default_model``, else the first model a provider marks as default."""
        if self.config.default_model:
            return self.config.default_model
        for provider, info in self._infos():
            if info.default:
                return f"{provider.name}/{info.name}"
        return None

    def entries(self) -> list[ModelEntry]:
        """Every advertised model: the default first, then models with aliases, then the rest."""
        default = self.default_model()
        default = self.config.aliases.get(default or "", default)
        aliases: dict[str, list[str]] = {}
        for alias, target in self.config.aliases.items():
            aliases.setdefault(target, []).append(alias)
        entries = []
        for provider, info in self._infos():
            full = f"{provider.name}/{info.name}"
            names = tuple(aliases.get(full, [])) + info.aliases
            entries.append(ModelEntry(
                id=full,
                provider=provider.name,
                description=info.description,
                aliases=names,
                default=full == default,
                key_configured=provider.key_configured_for(info.name),
                key_variable=provider.key_variable_for(info.name),
                streaming=self.config.streaming_for(full),
                supports_schema=info.supports_schema,
            ))
        return sorted(entries, key=lambda e: (not e.default, not e.aliases))

    def resolve(self, name: str | None) -> Resolved:
        """Route a model name or alias; raise UnknownModelError with close matches."""
        requested = (name or "").strip() or self.default_model()
        if not requested:
            raise UnknownModelError(
                f"no model given and no default model: name one, or set default_model in the config file. {LISTED}"
            )
        if len(requested) > MAX_MODEL_CHARS:
            raise UnknownModelError(
                f"the model name is {len(requested):,} characters long; names are at most {MAX_MODEL_CHARS}. {LISTED}"
            )
        target = self.config.aliases.get(requested, requested)
        for owner, listed in self._infos():
            if target in listed.aliases:
                target = f"{owner.name}/{listed.name}"
        prefix, slash, rest = target.partition("/")
        provider: Provider | None = self.registry.providers.get(prefix) if slash and rest else None
        if provider is None and not slash:
            bare = [(p, i) for p, i in self._infos() if i.name == target]
            if len(bare) == 1:
                provider, rest = bare[0][0], target
        if provider is None:
            raise UnknownModelError(self._unknown_message(requested, prefix if slash else None))
        full = f"{provider.name}/{rest}"
        info = next((i for i in provider.models() if i.name == rest), None)
        return Resolved(provider=provider, name=rest, id=full, info=info)

    def _unknown_message(self, requested: str, prefix: str | None) -> str:
        known = [e.id for e in self.entries()] + list(self.config.aliases)
        close = difflib.get_close_matches(requested, known, n=5, cutoff=0.5)
        if prefix:
            rest = requested.partition("/")[2]
            fixed = difflib.get_close_matches(prefix, list(self.registry.providers), n=3, cutoff=0.5)
            close = [f"{name}/{rest}" for name in fixed if f"{name}/{rest}" not in close] + close
        what = f"unknown model {requested!r}"
        if prefix:
            what = f"unknown provider prefix {prefix!r} in model {requested!r}"
        hint = f"; close matches: {', '.join(close)}" if close else ""
        prefixes = ", ".join(f"{name}/" for name in self.registry.providers)
        prefixes = prefixes or "none (no provider plugin is loaded: see `streamhost doctor`)"
        return f"{what}{hint}. Use PROVIDER/MODEL with a provider from: {prefixes}. {LISTED}"
