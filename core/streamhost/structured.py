"""Structured output: checking the schema a caller gives and the JSON a model returns."""

from __future__ import annotations

import json
import re
from typing import Any

from .errors import InvalidArgumentError, OutputValidationError

_FENCE = re.compile(r"^\s*```(?:json)?\s*\n(.*)\n\s*```\s*$", re.DOTALL)


def check_schema(schema: Any) -> dict[str, Any]:
    """Raise InvalidArgumentError unless ``schema`` is a valid JSON Schema object."""
    if not isinstance(schema, dict):
        raise InvalidArgumentError(f"output_schema must be a JSON Schema object, got {type(schema).__name__}")
    import jsonschema

    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise InvalidArgumentError(f"output_schema is not a valid JSON Schema: {exc.message}") from None
    return schema


def schema_instruction(schema: dict[str, Any]) -> str:
    """Words asking for JSON that matches ``schema``, for models that cannot be asked natively."""
    return ("Answer with a single JSON value that matches this JSON Schema, and nothing else "
            f"(no prose, no code fence):\n{json.dumps(schema, separators=(',', ':'))}")


def parse_output(text: str, schema: dict[str, Any]) -> Any:
    """The model's JSON, validated against ``schema``; OutputValidationError shows why and the raw text."""
    match = _FENCE.match(text)
    body = match.group(1) if match else text
    try:
        value = json.loads(body)
    except json.JSONDecodeError as exc:
        raise OutputValidationError(f"the model's output is not valid JSON: {exc}", text) from None
    import jsonschema

    validator = jsonschema.validators.validator_for(schema)(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(value))
    if error is not None:
        where = "/".join(str(part) for part in error.absolute_path) or "(root)"
        raise OutputValidationError(
            f"the model's output does not match output_schema at {where}: {error.message}", text
        )
    return value
