"""What a tool plugin implements: an action an MCP client (or the CLI) can call, streaming into a sink.

A tool is MCP-free: the host lists it with its name, description, input schema and annotations,
checks the arguments against that schema (unknown, missing, too long, out of range) before ``run``,
and turns the :class:`ToolResult` (or the error) into what its face shows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .errors import CallFailed
from .events import Sink
from .services import Services


@dataclass(frozen=True)
class ToolAnnotations:
    """Hints about how a tool behaves, for the client (MCP's tool annotations); None: not said."""

    title: str | None = None
    read_only: bool | None = None
    """It changes nothing where it runs (MCP ``readOnlyHint``)."""
    destructive: bool | None = None
    """It may delete or overwrite something (MCP ``destructiveHint``)."""
    idempotent: bool | None = None
    """Calling it again with the same arguments changes nothing more (MCP ``idempotentHint``)."""
    open_world: bool | None = None
    """It reaches outside the host: the web, another model (MCP ``openWorldHint``)."""


@dataclass
class ToolResult:
    """What a tool call gives back."""

    text: str
    """What the calling model reads: the answer itself, no envelope."""
    metadata: dict[str, Any] = field(default_factory=dict)
    """For the client, not the model: over MCP each key is published as ``streamhost/KEY`` in the result's ``_meta``."""
    structured: dict[str, Any] | None = None
    """Only where it is the answer itself (an ``output_schema`` call): some clients hand it to the model
    instead of the text."""
    is_error: bool = False

    @classmethod
    def failure(cls, failed: CallFailed, **metadata: Any) -> ToolResult:
        """The error result of a call that failed on the way, keeping the text it streamed.

        Its text is the error's message followed by the partial text (or a model's raw output when its
        JSON did not match the schema); its metadata has ``error``, ``error_type`` and ``partial_text``,
        plus what the host added (``failed.metadata``: the run id) and ``metadata``.
        """
        partial, message = failed.text, failed.error.message
        raw = getattr(failed.error, "raw_text", None)
        if raw is not None:
            message += f"\n\nRaw model output:\n{raw}"
        elif partial:
            message += f"\n\nPartial output before the error ({len(partial)} characters):\n{partial}"
        return cls(message, {"error": failed.error.message, "error_type": type(failed.error).__name__,
                             "partial_text": partial, **failed.metadata, **metadata}, is_error=True)


class Tool:
    """Base class of a tool. Subclass it, set ``name``, ``description`` and ``input_schema``, implement ``run``.

    Register an instance with the ``register_tools`` hook. Listing must be cheap (no network, no heavy
    import): ``available``, ``description_for`` and ``input_schema_for`` run when the server starts.
    """

    name: ClassVar[str] = ""
    """The tool's name as clients call it: letters, digits, ``_`` and ``-``, at most 64 characters."""
    description: ClassVar[str] = ""
    """What the calling model reads to decide when to use the tool."""
    input_schema: ClassVar[dict[str, Any]] = {"type": "object", "properties": {}, "additionalProperties": False}
    """A JSON Schema object of the arguments. The host refuses unknown and missing arguments, strings over
    a ``maxLength`` (also in a list's ``items``) and numbers outside ``minimum``/``maximum`` before ``run``."""
    annotations: ClassVar[ToolAnnotations] = ToolAnnotations()
    too_long: ClassVar[Mapping[str, str]] = {}
    """What to do about an argument over its ``maxLength``, by argument name (default: "Shorten it.")."""

    def available(self, services: Services) -> bool:
        """Whether to list the tool with what loaded (e.g. only when a fetcher plugin is installed)."""
        return True

    def description_for(self, services: Services) -> str:
        """The description to list, which may name what loaded (the models, the URL schemes)."""
        return self.description

    def input_schema_for(self, services: Services) -> dict[str, Any]:
        """The input schema to list, which may name what loaded (the default model)."""
        return self.input_schema

    def total(self, arguments: dict[str, Any]) -> float | None:
        """How much work a call is, when it is known up front (the number of pages): progress counts up to it."""
        return None

    async def run(self, arguments: dict[str, Any], services: Services, sink: Sink) -> ToolResult:
        """Do the work, streaming into ``sink``; return the result.

        Raise a :class:`StreamhostError` (:class:`InvalidArgumentError`, …) with a message saying what to
        do: it becomes an error result. A :class:`CallFailed` from the services may propagate: the error
        result keeps the text streamed before it. Never swallow ``CancelledError``: a cancelled call stops.
        """
        raise NotImplementedError(f"tool {self.name!r} does not implement run()")
