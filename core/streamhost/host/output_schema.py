"""Structured output: checking the schema a caller gives and the JSON a model returns.

Checking a schema against its meta-schema is pure Python and slow (1 to 2 ms per field here: 2 s for
1,000 fields), and one call must not freeze the others: a schema is bounded first (a cheap walk that
stops at the first limit passed), then checked in a worker thread (:func:`checked_schema`), where it
holds up the event loop for tens of milliseconds at a time instead of seconds.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from ..errors import InvalidArgumentError, OutputValidationError
from ..services import MAX_SCHEMA_DEPTH, MAX_SCHEMA_NODES

# The depth and node limits are the contract's (tools publish them); the size limit is the host's own.
MAX_SCHEMA_CHARS = 200_000
"""output_schema as compact JSON, at most about this many characters (descriptions and enums included)."""

_FENCE = re.compile(r"^\s*```(?:json)?\s*\n(.*)\n\s*```\s*$", re.DOTALL)
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_SHRINK = "describe fewer fields or shorter ones, or split the task over several calls"


def bound_schema(schema: Any) -> dict[str, Any]:
    """Raise InvalidArgumentError unless ``schema`` is an object within the limits; stops at the first limit passed."""
    if not isinstance(schema, dict):
        raise InvalidArgumentError(f"output_schema must be a JSON Schema object, got {type(schema).__name__}")
    nodes = chars = 0
    stack: list[tuple[Any, int]] = [(schema, 1)]
    while stack:  # iterative: a deep schema must not hit the recursion limit here
        value, depth = stack.pop()
        if isinstance(value, (dict, list)):
            if depth > MAX_SCHEMA_DEPTH:
                raise InvalidArgumentError(
                    f"output_schema is nested more than {MAX_SCHEMA_DEPTH} objects/arrays deep: flatten it")
            nodes += 1
            if nodes > MAX_SCHEMA_NODES:
                raise InvalidArgumentError(
                    f"output_schema has more than {MAX_SCHEMA_NODES:,} objects and arrays (the limit): {_SHRINK}")
            chars += 2 + len(value)  # brackets and separators, counted before a huge container is walked
            if chars <= MAX_SCHEMA_CHARS:
                if isinstance(value, dict):
                    chars += sum(len(str(key)) + 2 for key in value)
                    stack.extend((child, depth + 1) for child in value.values())
                else:
                    stack.extend((child, depth + 1) for child in value)
        else:
            chars += len(value) + 2 if isinstance(value, str) else 4  # a number, true, false or null: roughly
        if chars > MAX_SCHEMA_CHARS:
            raise InvalidArgumentError(
                f"output_schema is over {MAX_SCHEMA_CHARS:,} characters as JSON (the limit): {_SHRINK}")
    return schema


async def checked_schema(schema: Any) -> dict[str, Any] | None:
    """``schema`` if it is a valid JSON Schema object within the limits (None stays None).

    Raises InvalidArgumentError naming what is wrong. The meta-schema check runs in a worker thread.
    """
    if schema is None:
        return None
    bound_schema(schema)  # first, so an oversized schema is refused at once and never reaches the thread
    await asyncio.to_thread(_check_against_meta_schema, schema)
    return schema


def _check_against_meta_schema(schema: dict[str, Any]) -> None:
    import jsonschema

    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise InvalidArgumentError(f"output_schema is not a valid JSON Schema: {exc.message}") from None


def schema_instruction(schema: dict[str, Any]) -> str:
    """Words asking for JSON that matches ``schema``, for models that cannot be asked natively."""
    return ("Answer with a single JSON value that matches this JSON Schema, and nothing else "
            f"(no prose, no code fence):\n{json.dumps(schema, separators=(',', ':'))}")


def parse_output(text: str, schema: dict[str, Any]) -> Any:
    """The model's JSON, validated against ``schema``; OutputValidationError shows why and the raw text.

    A lone surrogate escape in the JSON (``"\\ud800"``: valid JSON, but no character) becomes U+FFFD,
    so the value can be encoded as UTF-8 on its way to the client.
    """
    match = _FENCE.match(text)
    body = match.group(1) if match else text
    try:
        value = _repaired(json.loads(body))
    except json.JSONDecodeError as exc:
        raise OutputValidationError(f"the model's output is not valid JSON: {exc}", text) from None
    except RecursionError:
        raise OutputValidationError("the model's output is nested too deeply to read", text) from None
    import jsonschema
    from referencing.exceptions import Unresolvable

    validator = jsonschema.validators.validator_for(schema)(schema)
    try:
        error = jsonschema.exceptions.best_match(validator.iter_errors(value))
    except RecursionError:  # {"$ref": "#"} and its kin refer to themselves without end
        raise OutputValidationError(
            "output_schema refers to itself without end ($ref cycle), so no output can be checked against it", text
        ) from None
    except Unresolvable as exc:
        raise OutputValidationError(
            f"output_schema has a $ref that cannot be resolved ({exc}): only references inside the schema "
            "(#/$defs/NAME) work; fix or inline it", text) from None
    if error is not None:
        where = "/".join(str(part) for part in error.absolute_path) or "(root)"
        raise OutputValidationError(
            f"the model's output does not match output_schema at {where}: {error.message}", text
        )
    return value


def _repaired(value: Any) -> Any:
    """``value`` with every lone surrogate in its strings and keys replaced by U+FFFD."""
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_repaired(item) for item in value]
    if isinstance(value, dict):
        return {_repaired(key): _repaired(item) for key, item in value.items()}
    return value
