"""``wait``: the rest of a call that was handed off to the background."""

from __future__ import annotations

from typing import Any, ClassVar

from streamhost import CallFailed, Services, Sink, Tool, ToolAnnotations, ToolResult

from .models import generation_result


class Wait(Tool):
    """``wait``: follow a handed-off run from where its last result left off."""

    name = "wait"
    description = (
        "Get the rest of a generate call whose result said it is still being written: the new text streams to "
        "the user, and the result is the whole answer once it is done (or the next part, if it runs long again: "
        "then call wait again). cancel=true stops the run instead."
    )
    input_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "run": {"type": "string", "maxLength": 64, "description": "The run id the earlier result gave."},
            "cancel": {"type": "boolean", "description": "Stop the run and return what it wrote."},
        },
        "required": ["run"],
        "additionalProperties": False,
    }
    annotations = ToolAnnotations(read_only=True, open_world=True)
    too_long: ClassVar[dict[str, str]] = {"run": "Give the run id as the earlier result's streamhost/run has it."}

    async def run(self, arguments: dict[str, Any], services: Services, sink: Sink) -> ToolResult:
        try:
            generation = await services.wait(arguments.get("run"), sink, cancel=arguments.get("cancel", False))
        except CallFailed as failed:
            return ToolResult.failure(failed)
        return generation_result(generation)
