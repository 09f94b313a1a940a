"""The MCP tools: their definitions (built from what the plugins registered) and their handlers."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import mcp_types as types

from .catalog import ModelEntry
from .engine import Engine, GenerateArgs, Generation
from .errors import InvalidArgumentError, StreamhostError
from .relay import GenerationFailed
from .sinks import Sink

log = logging.getLogger("streamhost.tools")
Handler = Callable[[dict[str, Any], Sink], Awaitable[types.CallToolResult]]


@dataclass
class ToolSpec:
    """One tool: what ``tools/list`` shows and the coroutine that runs it."""

    tool: types.Tool
    handler: Handler
    total: Callable[[dict[str, Any]], float | None] = lambda arguments: None


def text_result(text: str, structured: dict[str, Any] | None = None) -> types.CallToolResult:
    """A successful result."""
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], structured_content=structured)


def error_result(message: str, structured: dict[str, Any] | None = None) -> types.CallToolResult:
    """An ``isError`` result with a message the user can act on."""
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=message)], structured_content=structured, is_error=True
    )


def failed_result(failed: GenerationFailed, model: str | None) -> types.CallToolResult:
    """The error result of a call that failed, keeping whatever text was already streamed."""
    partial = failed.result.text
    message = failed.error.message
    raw = getattr(failed.error, "raw_text", None)
    if raw is not None:
        message += f"\n\nRaw model output:\n{raw}"
    elif partial:
        message += f"\n\nPartial output before the error ({len(partial)} characters):\n{partial}"
    return error_result(message, {"error": failed.error.message, "error_type": type(failed.error).__name__,
                                  "partial_text": partial, "model": model})


def check_arguments(tool: str, arguments: dict[str, Any], schema: dict[str, Any]) -> None:
    """Name the missing or unknown argument before anything runs."""
    properties = schema.get("properties", {})
    unknown = sorted(set(arguments) - set(properties))
    if unknown:
        raise InvalidArgumentError(
            f"{tool}: unknown argument {', '.join(map(repr, unknown))}; it takes {', '.join(properties)}"
        )
    missing = [name for name in schema.get("required", []) if arguments.get(name) is None]
    if missing:
        raise InvalidArgumentError(f"{tool}: missing required argument {', '.join(map(repr, missing))}")


def _model_lines(engine: Engine, entries: list[ModelEntry], limit: int = 25) -> str:
    lines = []
    for entry in entries[:limit]:
        notes = [f"alias {', '.join(entry.aliases)}"] if entry.aliases else []
        if entry.default:
            notes.insert(0, "default")
        if not entry.key_configured:
            notes.append(f"{entry.key_variable} not set")
        lines.append(f"- {entry.id}" + (f" ({'; '.join(notes)})" if notes else ""))
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
        "Give output_schema (a JSON Schema) to get validated JSON back in structuredContent.output."
    )
    schema = {
        "type": "object",
        "properties": {
            "prompt": {"type": "string", "description": "The user message to send to the model."},
            "model": {"type": "string", "description": f"PROVIDER/NAME or an alias. Default: {default or 'none'}."},
            "system": {"type": "string", "description": "Optional system instructions."},
            "temperature": {"type": "number", "minimum": 0, "maximum": 2},
            "max_tokens": {"type": "integer", "minimum": 1, "description": "Upper bound on output tokens."},
            "output_schema": {
                "type": "object",
                "description": "JSON Schema the answer must match; the result is validated JSON (no streaming).",
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
    return ToolSpec(tool=tool, handler=handler)


def _generation_result(generation: Generation) -> types.CallToolResult:
    text = generation.text if generation.output is None else json.dumps(generation.output, indent=2)
    return text_result(text, generation.structured())


def list_models_tool(engine: Engine) -> ToolSpec:
    """``list_models``: what ``generate`` can call."""

    async def handler(arguments: dict[str, Any], sink: Sink) -> types.CallToolResult:
        entries = engine.catalog.entries()
        structured = {"default": engine.catalog.default_model(), "models": [e.as_dict() for e in entries],
                      "aliases": dict(engine.config.aliases), "providers": sorted(engine.registry.providers)}
        return text_result(_model_lines(engine, entries, limit=10_000), structured)

    tool = types.Tool(
        name="list_models",
        description="List the models generate can call, with aliases, the default, and whether keys are set.",
        input_schema={"type": "object", "properties": {}, "additionalProperties": False},
        annotations=types.ToolAnnotations(read_only_hint=True),
    )
    return ToolSpec(tool=tool, handler=handler)


def build_tools(engine: Engine) -> dict[str, ToolSpec]:
    """Every tool this engine serves, by name."""
    from .web_tools import web_tools  # it builds on this module's ToolSpec

    specs = [generate_tool(engine), list_models_tool(engine), *web_tools(engine)]
    return {spec.tool.name: spec for spec in specs}


async def call(spec: ToolSpec, arguments: dict[str, Any], sink: Sink) -> types.CallToolResult:
    """Run a tool, turning every expected failure into an ``isError`` result."""
    try:
        check_arguments(spec.tool.name, arguments, spec.tool.input_schema)
        return await spec.handler(arguments, sink)
    except StreamhostError as exc:
        return error_result(exc.message, {"error": exc.message, "error_type": type(exc).__name__})
