"""``generate`` (stream one answer from any registered model) and ``list_models`` (what it can call)."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from streamhost import (
    MAX_MODEL_CHARS,
    MAX_SCHEMA_DEPTH,
    MAX_SCHEMA_NODES,
    CallFailed,
    Generation,
    ModelEntry,
    Services,
    Sink,
    Tool,
    ToolAnnotations,
    ToolResult,
)

MAX_PROMPT_CHARS = 2_000_000
"""For prompt and system: far beyond any model's context window, yet a bound on what one call holds."""
MAX_THREAD_CHARS = 64
MAX_PATH_CHARS = 4_096
MAX_FILE_PATTERNS = 100
MODEL_TOO_LONG = "Give a model name like openai/gpt-4.1-mini or an alias (list_models shows them)."


def model_lines(services: Services, entries: list[ModelEntry], limit: int = 25, describe: bool = False) -> str:
    """The models as a markdown list (at most ``limit``), each with its notes: default, aliases, key missing."""
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
    if services.providers():
        prefixes = ", ".join(f"{name}/NAME" for name in services.providers())
        return f"- none listed: any {prefixes} still works"
    return "- none: no provider plugin is loaded (pip install streamhost-openai)"


def _generate_schema(default: str | None) -> dict[str, Any]:
    return {
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
            "thread": {"type": "string", "maxLength": MAX_THREAD_CHARS,
                       "description": '"new" to start a conversation, or the streamhost/thread id of an earlier '
                                      "result to follow up (any model can continue it)."},
            "files": {"type": "array", "items": {"type": "string", "maxLength": MAX_PATH_CHARS},
                      "maxItems": MAX_FILE_PATTERNS,
                      "description": "Paths or globs of local text files to send with the prompt (read here: "
                                     "pass paths, not contents)."},
        },
        "required": ["prompt"],
        "additionalProperties": False,
    }


class Generate(Tool):
    """``generate``: stream one answer from any registered model."""

    name = "generate"
    input_schema = _generate_schema(None)
    annotations = ToolAnnotations(read_only=True, open_world=True)
    too_long: ClassVar[dict[str, str]] = {
        "model": MODEL_TOO_LONG,
        "prompt": "Send less text: split the task over several calls, or summarize the material first.",
        "system": "Send shorter instructions; material belongs in the prompt, in parts over several calls.",
        "thread": 'Give "new", or the streamhost/thread id an earlier result returned.',
    }

    def description_for(self, services: Services) -> str:
        prefixes = ", ".join(f"{name}/" for name in services.providers()) or "none"
        return (
            "Ask another model (not yourself) and get its answer. The answer streams to the user while it is "
            "written. Use for second opinions, other vendors' models, or delegating a sub-task.\n"
            f"Models (PROVIDER/NAME; any name under a known prefix works, prefixes: {prefixes}):\n"
            f"{model_lines(services, services.models())}\n"
            "Give output_schema (a JSON Schema) to get JSON that matches it back."
        )

    def input_schema_for(self, services: Services) -> dict[str, Any]:
        return _generate_schema(services.default_model())

    async def run(self, arguments: dict[str, Any], services: Services, sink: Sink) -> ToolResult:
        try:
            generation = await services.generate(
                arguments.get("prompt"), sink, model=arguments.get("model"), system=arguments.get("system"),
                temperature=arguments.get("temperature"), max_tokens=arguments.get("max_tokens"),
                output_schema=arguments.get("output_schema"), thread=arguments.get("thread"),
                files=arguments.get("files"))
        except CallFailed as failed:
            return ToolResult.failure(failed, model=arguments.get("model"))
        return generation_result(generation)


def generation_result(generation: Generation) -> ToolResult:
    """The result of a generate (or wait) call: the answer, or the text so far of a call that goes on."""
    if generation.status == "running" and generation.run:
        return ToolResult(generation.text + handoff_note(generation.run), generation.metadata())
    if generation.status == "cancelled":
        return ToolResult(f"{generation.text}\n\n[streamhost: run {generation.run} was cancelled; the text it wrote "
                          "is above]", generation.metadata())
    if generation.output is None:
        return ToolResult(generation.text, generation.metadata())
    # With output_schema: the validated JSON, also as structured content if it is an object (it must be one).
    output = generation.output
    return ToolResult(json.dumps(output, indent=2, ensure_ascii=False), generation.metadata(),
                      structured=output if isinstance(output, dict) else None)


def handoff_note(run: str) -> str:
    """What the calling model reads after the text of a call handed off to the background."""
    return (f"\n\n[streamhost: the answer is still being written. To get the rest, call the wait tool with "
            f'run="{run}": it continues from exactly here.]')


class ListModels(Tool):
    """``list_models``: what ``generate`` can call."""

    name = "list_models"
    description = "List the models generate can call, with aliases, the default, and whether keys are set."
    annotations = ToolAnnotations(read_only=True)

    async def run(self, arguments: dict[str, Any], services: Services, sink: Sink) -> ToolResult:
        entries, default, aliases = services.models(), services.default_model(), services.aliases()
        providers = sorted(services.providers())
        lines = [f"Default model: {default or 'none (give model on every generate call)'}",
                 model_lines(services, entries, limit=10_000, describe=True)]
        if aliases:
            lines.append("Aliases: " + ", ".join(f"{alias} = {target}" for alias, target in aliases.items()))
        if entries:  # without any, the lines above say it already
            lines.append("Any name under a provider prefix works, listed or not: "
                         + ", ".join(f"{name}/NAME" for name in providers))
        return ToolResult("\n".join(lines), {"default": default, "models": [e.as_dict() for e in entries],
                                             "aliases": aliases, "providers": providers})
