"""Checking a call's arguments against the input schema its tool publishes, before the tool runs.

Done here once, for every tool, so that no tool (and nothing further on) has to cope with an unknown
argument, a missing one, a 5 MB model name (a close-match search over it alone takes a second) or a
number out of range. Numbers are checked by ``number_problem`` (streamhost/options.py), the one
whole-number and range check: declared plugin options, the config and the engine use it too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import InvalidArgumentError
from ..options import number_problem


def check_arguments(tool: str, schema: Mapping[str, Any], arguments: Mapping[str, Any],
                    too_long: Mapping[str, str]) -> None:
    """Name the unknown, missing, oversized or out-of-range argument before anything runs.

    :param too_long: what to do about an argument over its ``maxLength``, by argument name.
    :raises InvalidArgumentError: naming the argument, the limit and what to do.
    """
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
        prop = properties[name]
        _check_length(tool, name, value, prop, too_long.get(name, "Shorten it."))
        if value is not None and prop.get("type") in ("integer", "number"):
            problem = number_problem(value, whole=prop["type"] == "integer", minimum=prop.get("minimum"),
                                     maximum=prop.get("maximum"))
            if problem:
                raise InvalidArgumentError(f"{name} {problem}")


def _check_length(tool: str, name: str, value: Any, prop: Mapping[str, Any], hint: str) -> None:
    """Refuse a string (or a string in a list) over the ``maxLength`` its schema publishes."""
    labelled = [(name, value)]
    items = prop.get("items", {})
    if isinstance(value, list) and "maxLength" in items and len(value) <= prop.get("maxItems", len(value)):
        labelled, prop = [(f"{name}[{i}]", item) for i, item in enumerate(value)], items
    limit = prop.get("maxLength")
    for label, item in labelled:
        if limit is not None and isinstance(item, str) and len(item) > limit:
            raise InvalidArgumentError(
                f"{tool}: {label} is {len(item):,} characters long; the limit is {limit:,}. {hint}")
