"""The MCP tools: their definitions (built from what the plugins registered) and their handlers."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import mcp_types as types

from ..errors import InvalidArgumentError, StreamhostError
from ..host.catalog import MAX_NAME_CHARS, ModelEntry
from ..host.engine import Engine, GenerateArgs, Generation
from ..host.output_schema import MAX_SCHEMA_DEPTH, MAX_SCHEMA_NODES
from ..host.relay import GenerationFailed
from ..host.sinks import Sink

log = logging.getLogger("streamhost.tools")
MAX_MODEL_CHARS = MAX_NAME_CHARS
MAX_PROMPT_CHARS = 2_000_000
"""For prompt and system: far beyond any model's context window, yet a bound on what one call holds."""
MODEL_TOO_LONG = "Give a model name like openai/gpt-4.1-mini or an alias (list_models shows them)."
Handler = Callable[[dict[str, Any], Sink], Awaitable[types.CallToolResult]]


@dataclass
class ToolSpec:
    """One tool: what ``tools/list`` shows and the coroutine that runs it."""

    tool: types.Tool
    handler: Handler
    total: Callable[[dict[str, Any]], float | None] = lambda arguments: None
    too_long: dict[str, str] = field(default_factory=dict)
    """What to do about an argument over the ``maxLength`` its schema publishes, by argument name."""


def meta_of(fields: dict[str, Any] | None = None, **more: Any) -> dict[str, Any]:
    """A result's ``_meta``: each field under its ``streamhost/`` key."""
    return {f"streamhost/{name}": value for name, value in {**(fields or {}), **more}.items()}


def text_result(text: str, meta: dict[str, Any] | None = None,
                structured: dict[str, Any] | None = None) -> types.CallToolResult:
    """A successful result: ``text`` is what the calling model reads; ``meta`` is for the client.

    ``structured`` only where it is the answer itself (an ``output_schema`` call): a client that finds
    structuredContent hands it to the model instead of the text.
    """
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], structured_content=structured,
                                _meta=meta)


def error_result(message: str, meta: dict[str, Any] | None = None) -> types.CallToolResult:
    """An ``isError`` result with a message the user can act on."""
    return types.CallToolResult(content=[types.TextContent(type="text", text=message)], _meta=meta, is_error=True)


def failed_result(failed: GenerationFailed, model: str | None) -> types.CallToolResult:
    """The error result of a call that failed, keeping whatever text was already streamed."""
    partial = failed.result.text
    message = failed.error.message
    raw = getattr(failed.error, "raw_text", None)
    if raw is not None:
        message += f"\n\nRaw model output:\n{raw}"
    elif partial:
        message += f"\n\nPartial output before the error ({len(partial)} characters):\n{partial}"
    return error_result(message, meta_of(error=failed.error.message, error_type=type(failed.error).__name__,
                                         partial_text=partial, model=model))


def check_arguments(spec: ToolSpec, arguments: dict[str, Any]) -> None:
    """Name the missing, unknown or oversized argument before anything runs."""
    tool, schema = spec.tool.name, spec.tool.input_schema
    properties = schema.get("properties", {})
    unknown = sorted(set(arguments) - set(properties))
    if unknown:
        raise InvalidArgumentError(
            f"{tool}: unknown argument {', '.join(map(repr, unknown))}; it takes {', '.join(properties)}"
        )
    missing = [name for name in schema.get("required", []) if arguments.get(name) is None]
    if missing:
        raise InvalidArgumentError(f"{tool}: missing required argument {', '.join(map(repr, missing))}")
    for name, value in arguments.items():
        _check_length(spec, name, value, properties[name])


def _check_length(spec: ToolSpec, name: str, value: Any, prop: dict[str, Any]) -> None:
    """Refuse a string (or a string in a list) over the ``maxLength`` its schema publishes, so that nothing
    further on has to cope with a 5 MB model name (a close-match search over it alone takes a second)."""
    labelled = [(name, value)]
    items = prop.get("items", {})
    if isinstance(value, list) and "maxLength" in items and len(value) <= prop.get("maxItems", len(value)):
        labelled, prop = [(f"{name}[{i}]", item) for i, item in enumerate(value)], items
    limit = prop.get("maxLength")
    for label, item in labelled:
        if limit is not None and isinstance(item, str) and len(item) > limit:
            hint = spec.too_long.get(name, "Shorten it.")
            raise InvalidArgumentError(
                f"{spec.tool.name}: {label} is {len(item):,} characters long; the limit is {limit:,}. {hint}")


def _model_lines(engine: Engine, entries: list[ModelEntry], limit: int = 25, describe: bool = False) -> str:
    lines = []
    for entry in entries[:limit]:
        notes = [f"alias {', '.join(entry.aliases)}"] if entry.aliases else []
        if entry.default:
            notes.insert(0, "default")
        if not entry.key_configured:
            notes.append(f"{entry.key_variable} not set")
        described = f": {entry.description}" if describe and entry.description else ""
        lines.append(f"- {entry.id}" + (f" ({'; '.join(notes)})" if notes else "") + described)
    if len(entries) > limit:
        lines.append(f"- … {len(entries) - limit} more: call list_models")
    if lines:
        return "\n".join(lines)
    if engine.registry.providers:
        prefixes = ", ".join(f"{name}/NAME" for name in engine.registry.providers)
        return f"- none listed: any {prefixes} still works"
    return "- none: no provider plugin is loaded (pip install streamhost-openai)"


def generate_tool(engine: Engine) -> ToolSpec:
    """``generate``: stream one answer from any registered model."""
    default = engine.catalog.default_model()
    prefixes = ", ".join(f"{name}/" for name in engine.registry.providers) or "none"
    description = (
        "Ask another model (not yourself) and get its answer. The answer streams to the user while it is "
        "written. Use for second opinions, other vendors' models, or delegating a sub-task.\n"
        f"Models (PROVIDER/NAME; any name under a known prefix works, prefixes: {prefixes}):\n"
        f"{_model_lines(engine, engine.catalog.entries())}\n"
        "Give output_schema (a JSON Schema) to get JSON that matches it back."
    )
    schema = {
        "type": "object",
        "properties": {
            "prompt": {"type": "string", "maxLength": MAX_PROMPT_CHARS,
                       "description": "The user message to send to the model."},
            "model": {"type": "string", "maxLength": MAX_MODEL_CHARS,
                      "description": f"PROVIDER/NAME or an alias. Default: {default or 'none'}."},
            "system": {"type": "string", "maxLength": MAX_PROMPT_CHARS, "description": "Optional system instructions."},
            "temperature": {"type": "number", "minimum": 0, "maximum": 2},
            "max_tokens": {"type": "integer", "minimum": 1, "description": "Upper bound on output tokens."},
            "output_schema": {
                "type": "object",
                "description": (
                    "JSON Schema the answer must match; the result is validated JSON (no streaming). At most "
                    f"{MAX_SCHEMA_NODES:,} objects and arrays, nested at most {MAX_SCHEMA_DEPTH} deep."
                ),
            },
        },
        "required": ["prompt"],
        "additionalProperties": False,
    }

    async def handler(arguments: dict[str, Any], sink: Sink) -> types.CallToolResult:
        args = GenerateArgs(**arguments)
        try:
            generation = await engine.generate(args, sink)
        except GenerationFailed as failed:
            return failed_result(failed, arguments.get("model"))
        return _generation_result(generation)

    tool = types.Tool(name="generate", description=description, input_schema=schema,
                      annotations=types.ToolAnnotations(read_only_hint=True, open_world_hint=True))
    too_long = {
        "model": MODEL_TOO_LONG,
        "prompt": "Send less text: split the task over several calls, or summarize the material first.",
        "system": "Send shorter instructions; material belongs in the prompt, in parts over several calls.",
    }
    return ToolSpec(tool=tool, handler=handler, too_long=too_long)


def _generation_result(generation: Generation) -> types.CallToolResult:
    """The answer as text; with output_schema, the validated JSON, also as structuredContent if it is an object
    (structuredContent must be one)."""
    if generation.output is None:
        return text_result(generation.text, meta_of(generation.metadata()))
    output = generation.output
    text = json.dumps(output, indent=2, ensure_ascii=False)
    return text_result(text, meta_of(generation.metadata()), output if isinstance(output, dict) else None)


def list_models_tool(engine: Engine) -> ToolSpec:
    """``list_models``: what ``generate`` can call."""

    async def handler(arguments: dict[str, Any], sink: Sink) -> types.CallToolResult:
        entries = engine.catalog.entries()
        default, aliases = engine.catalog.default_model(), dict(engine.config.aliases)
        lines = [f"Default model: {default or 'none (give model on every generate call)'}",
                 _model_lines(engine, entries, limit=10_000, describe=True)]
        if aliases:
            lines.append("Aliases: " + ", ".join(f"{alias} = {target}" for alias, target in aliases.items()))
        if entries:  # without any, the lines above say it already
            lines.append("Any name under a provider prefix works, listed or not: "
                         + ", ".join(f"{name}/NAME" for name in sorted(engine.registry.providers)))
        return text_result("\n".join(lines), meta_of(default=default, models=[e.as_dict() for e in entries],
                                                     aliases=aliases, providers=sorted(engine.registry.providers)))

    tool = types.Tool(
        name="list_models",
        description="List the models generate can call, with aliases, the default, and whether keys are set.",
        input_schema={"type": "object", "properties": {}, "additionalProperties": False},
        annotations=types.ToolAnnotations(read_only_hint=True),
    )
    return ToolSpec(tool=tool, handler=handler)


def build_tools(engine: Engine) -> dict[str, ToolSpec]:
    """Every tool this engine serves, by name."""
    from .page_tools import web_tools  # it builds on this module's ToolSpec

    specs = [generate_tool(engine), list_models_tool(engine), *web_tools(engine)]
    return {spec.tool.name: spec for spec in specs}


async def call(spec: ToolSpec, arguments: dict[str, Any], sink: Sink) -> types.CallToolResult:
    """Run a tool, turning every expected failure into an ``isError`` result."""
    try:
        check_arguments(spec, arguments)
        return await spec.handler(arguments, sink)
    except StreamhostError as exc:
        return error_result(exc.message, meta_of(error_type=type(exc).__name__))
