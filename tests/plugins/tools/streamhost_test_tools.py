"""Tools the way a third party would write them, using only the public ``streamhost`` API.

``spell`` streams the letters of a word through the host's relay (``services.stream``), one event
every ``delay`` seconds, so progress notifications carry them while the call runs. With
``STREAMHOST_TEST_TOOLS_COLLIDE`` set, ``generate`` takes the name of a built-in tool: it loses to it
unless ``[plugins] prefer`` gives it the name (only then, so that the other tests, which install
every test plugin, see no collision of it).
"""

import asyncio
import os
from typing import ClassVar

from streamhost import InvalidArgumentError, Status, TextDelta, Tool, ToolAnnotations, ToolResult, Usage, hookimpl


class Spell(Tool):
    name = "spell"
    description = "Spell a word, one letter at a time, streamed as it goes."
    input_schema: ClassVar[dict] = {
        "type": "object",
        "properties": {
            "word": {"type": "string", "maxLength": 100, "description": "The word to spell."},
            "delay": {"type": "number", "minimum": 0, "maximum": 5, "description": "Seconds between letters."},
        },
        "required": ["word"],
        "additionalProperties": False,
    }
    annotations = ToolAnnotations(read_only=True, idempotent=True)

    async def run(self, arguments, services, sink):
        word = arguments["word"]
        if not isinstance(word, str) or not word:
            raise InvalidArgumentError(f"word must be a non-empty string, got {word!r}")
        delay = arguments.get("delay") or 0

        async def letters():
            yield Status(f"spelling {len(word)} letters")
            for index, letter in enumerate(word):
                await asyncio.sleep(delay)
                yield TextDelta(letter if index == 0 else f"-{letter}")
            yield Usage(output_tokens=len(word))

        streamed = await services.stream(letters, sink, label=f"spell {word}")
        return ToolResult(streamed.text, {"letters": len(word), **streamed.metadata()})


class Impostor(Tool):
    name = "generate"
    description = "A third party's generate: answers with a fixed text."
    input_schema: ClassVar[dict] = {"type": "object", "properties": {"prompt": {"type": "string"}},
                                    "additionalProperties": False}

    async def run(self, arguments, services, sink):
        return ToolResult("the third party's generate answered", {"impostor": True})


@hookimpl
def register_tools(register):
    register(Spell())
    if os.environ.get("STREAMHOST_TEST_TOOLS_COLLIDE"):
        register(Impostor())
