"""What a provider plugin implements: a named source of models that streams typed events."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from .errors import MissingKeyError
from .events import Event
from .options import Option, check_options


@dataclass(frozen=True)
class Pricing:
    """What a model costs, in USD per million tokens."""

    input: float
    """Per million input (prompt) tokens."""
    output: float
    """Per million output (completion) tokens."""

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        """The USD cost of one call with these token counts."""
        return (input_tokens * self.input + output_tokens * self.output) / 1_000_000


@dataclass(frozen=True)
class ModelInfo:
    """One model a provider advertises. ``name`` is without the provider prefix."""

    name: str
    description: str = ""
    default: bool = False
    """Listed first and used when no model is given and the config names no default."""
    supports_schema: bool = True
    """Whether the model can be asked for JSON-schema output natively."""
    aliases: tuple[str, ...] = ()
    pricing: Pricing | None = None
    """What a call costs; None: not known (the host then records tokens without a cost)."""
    context_window: int | None = None
    """The most tokens the model takes in (input and output); None: not known (the host assumes 128,000)."""


@dataclass(frozen=True)
class Message:
    """One earlier turn of a conversation: what the user asked or what a model answered."""

    role: Literal["user", "assistant"]
    content: str


@dataclass(frozen=True)
class GenerationRequest:
    """Everything a provider needs for one call. ``model`` is without the provider prefix."""

    model: str
    prompt: str
    system: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    output_schema: dict[str, Any] | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    """Per-model settings from the config's ``[models."PROVIDER/NAME"]`` table that the host does not use."""
    history: tuple[Message, ...] = ()
    """The earlier turns of the thread this call continues, oldest first; ``prompt`` comes after them. Only
    given to a provider that sets ``supports_history``: for the others the host writes them into ``prompt``."""

    def messages(self) -> list[dict[str, str]]:
        """The request as chat messages: ``system`` (when set), the history, then ``prompt`` as the last user
        message; each a ``{"role": ..., "content": ...}`` dict, as chat-completion APIs take them."""
        messages = [{"role": "system", "content": self.system}] if self.system else []
        messages += [{"role": turn.role, "content": turn.content} for turn in self.history]
        messages.append({"role": "user", "content": self.prompt})
        return messages


class Provider:
    """Base class of a provider. Subclass it, set ``name``, and implement ``stream``.

    Registering and listing must be cheap: import your SDK inside ``stream`` (or ``warm``), never at
    module top. Look the key up when a model is called (``require_key``), never at registration.
    """

    name: ClassVar[str] = ""
    """The model prefix this provider answers to: ``openai`` serves ``openai/NAME``."""
    key_env_var: ClassVar[str | None] = None
    """The variable holding the API key by default; None if no key is needed."""
    supports_history: ClassVar[bool] = False
    """Whether ``stream`` sends ``GenerationRequest.history`` as earlier messages (``request.messages()`` does it).
    False: the host writes a thread's earlier turns into ``prompt`` instead, so any provider can continue a thread."""
    supports_resume: ClassVar[bool] = False
    """Whether ``resume`` works: the provider yields :class:`Checkpoint` events on streams that can be picked up
    again (e.g. OpenAI background responses), and ``resume`` continues one after a restart."""
    declared_options: ClassVar[tuple[Option, ...] | None] = None
    """The options of ``[providers.NAME]``: the host checks the table against them (a key not declared is
    an error) and ``options`` holds them, defaults filled in. None: the table reaches ``configure`` unchecked."""
    declared_model_options: ClassVar[tuple[Option, ...] | None] = None
    """The options of a ``[models."NAME/MODEL"]`` table besides the host's own ``streaming``: checked when the
    host loads (a key not declared is a warning) and passed to ``stream`` as ``GenerationRequest.options``
    as written, without defaults (a key left out falls back to the provider-wide setting). None: unchecked."""

    def __init__(self) -> None:
        # The [providers.NAME] settings in effect: with declared options, each one, from the config or its default.
        self.options: dict[str, Any] = {}
        if self.declared_options is not None:
            self.options = check_options(self.declared_options, {}, f"providers.{self.name}").values

    def configure(self, options: Mapping[str, Any]) -> None:
        """Take this provider's ``[providers.NAME]`` table as written in the config.

        With ``declared_options``, ``self.options`` becomes the checked values with the defaults filled in, and
        a bad or undeclared key raises ConfigError. Override to derive more from them: call ``super()`` first.
        """
        if self.declared_options is None:
            self.options = dict(options)
            return
        checked = check_options(self.declared_options, options, f"providers.{self.name}")
        checked.raise_errors()
        self.options = checked.values

    def models(self) -> list[ModelInfo]:
        """The models to advertise. Any ``NAME/REST`` is still routed here, listed or not."""
        return []

    def key_variable(self) -> str | None:
        """The variable the key is read from: ``api_key_env`` in the config, else ``key_env_var``."""
        return self.options.get("api_key_env") or self.key_env_var

    def key_configured(self) -> bool:
        """Whether the key variable is set (its value is never shown)."""
        variable = self.key_variable()
        return variable is None or bool(os.environ.get(variable))

    def key_variable_for(self, model: str) -> str | None:
        """The key variable of one model (name without prefix), for listings; ``key_variable()`` by default.

        Override when the key depends on the model (litellm: each sub-provider has its own variable).
        """
        return self.key_variable()

    def key_configured_for(self, model: str) -> bool:
        """Whether one model's key is set, for listings; ``key_configured()`` by default."""
        return self.key_configured()

    def require_key(self) -> str | None:
        """The key, read now; raises MissingKeyError naming the variable when it is unset."""
        variable = self.key_variable()
        if variable is None:
            return None
        value = os.environ.get(variable)
        if not value:
            raise MissingKeyError(
                f"{variable} is not set: export it, or set providers.{self.name}.api_key_env "
                "to the variable that holds the key"
            )
        return value

    def warm(self) -> None:
        """Import the heavy SDK ahead of the first call. Runs in a background thread; optional."""

    async def aclose(self) -> None:
        """Release connections held for the running event loop; called when the host stops."""

    def pricing(self, model: str) -> Pricing | None:
        """What one model (name without prefix) costs: the ``pricing`` of its ``ModelInfo`` by default.

        Override to price models you do not list (a price table). ``[models."NAME"] price_in`` / ``price_out``
        in the config win over it.
        """
        info = self._info(model)
        return info.pricing if info else None

    def context_window(self, model: str) -> int | None:
        """How many tokens one model takes in: the ``context_window`` of its ``ModelInfo`` by default."""
        info = self._info(model)
        return info.context_window if info else None

    def _info(self, model: str) -> ModelInfo | None:
        return next((info for info in self.models() if info.name == model or model in info.aliases), None)

    async def refresh_models(self) -> list[ModelInfo]:
        """Ask the upstream which models exist and cache them; optional."""
        return self.models()

    def stream(self, request: GenerationRequest) -> AsyncIterator[Event]:
        """Yield events for one call. Must close the upstream request when closed or cancelled."""
        raise NotImplementedError(f"provider {self.name!r} does not implement stream()")

    def resume(self, model: str, checkpoint: str) -> AsyncIterator[Event]:
        """Yield what a stream yielded after ``checkpoint`` (the ``state`` of a :class:`Checkpoint` it yielded):
        the text not covered by it, then the rest as ``stream`` would, ending the same way. ``model`` is the
        provider's model name. Optional: set ``supports_resume`` when implemented."""
        raise NotImplementedError(f"provider {self.name!r} cannot resume a stream")

    async def cancel_upstream(self, model: str, checkpoint: str) -> None:
        """Stop the upstream work behind ``checkpoint`` for good (the user cancelled the run).

        Closing a stream only drops the connection; for work that goes on without one (a background response),
        the host calls this when a user cancels, never when the host itself stops (that run is resumed later).
        Optional: the default does nothing."""
        return None
