"""What a plugin declares about its config table: each option's name, type, default, limits and meaning.

A provider lists its ``[providers.NAME]`` options in ``Provider.declared_options`` and its
``[models."NAME/MODEL"]`` options in ``Provider.declared_model_options``; a fetcher lists its ``[fetch]``
options in ``Fetcher.declared_options``. The host checks the config file against them when it loads
the plugin (every problem at once, each with file, line and the close known key), the plugin's
``configure`` gets them with the defaults filled in, ``streamhost config show`` lists them with the
values in effect, and the docs are generated from them.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, get_args, get_origin

from .errors import ConfigError

OTHER_KEYS = "*"
"""The name of an option that stands for every key not declared: such keys are checked against it and passed on."""

_TYPE_NAMES = {bool: "boolean", int: "whole number", float: "number", str: "string", dict: "table", object: "any"}


@dataclass(frozen=True)
class Option:
    """One key of a plugin's config table, declared once.

    ``Option("timeout_s", float, 600, "Seconds one call may take", above=0)``. The host rejects a value
    that breaks the declaration with a message naming the key, the file and the line; a key nothing
    declares is an error in ``[providers.NAME]`` and a warning in the tables plugins share. An option
    named ``"*"`` accepts every undeclared key, checked against it (e.g. arguments
    passed on to an SDK).
    """

    name: str
    type: Any
    """``bool``, ``int`` (a whole number), ``float`` (any number; the plugin gets a float), ``str``,
    ``list[X]`` with X one of those, ``dict`` (a table), or ``object`` (anything)."""
    default: Any = None
    """What the plugin gets, as declared, when the config leaves the key out; None means unset (the plugin decides)."""
    description: str = ""
    """What the option does, in a sentence: shown by ``streamhost config show`` and in the docs."""
    choices: tuple[Any, ...] = ()
    """When not empty, the only values allowed."""
    minimum: float | None = None
    """A number (or each number of a list) must be at least this."""
    above: float | None = None
    """A number (or each number of a list) must be greater than this: ``above=0`` for a time-out."""
    non_empty: bool = False
    """A string (or each string of a list) must hold more than white space."""
    check: Callable[[Any], Any] | None = None
    """A further check of a well-typed value: returns the value to use, or raises ValueError saying what
    is wrong (``"must start with http:// or https://, got 'x'"``), which follows the key in the message."""
    each: tuple[Option, ...] | None = None
    """For a table of tables (``[providers.NAME.params."MODEL"]``): the options of each inner table."""
    secret: bool = False
    """Masked in listings. Keys named like a secret (``api_key``, ``token``, ``password``) are masked anyway."""
    refused: str = ""
    """Why this key may not be set: when given, setting it is an error that says so."""

    @property
    def type_name(self) -> str:
        """The type in words: ``number``, ``list of strings``, ``table of tables``."""
        if self.each is not None:
            return "table of tables"
        if get_origin(self.type) is list:
            (item,) = get_args(self.type) or (object,)
            return f"list of {_TYPE_NAMES.get(item, getattr(item, '__name__', str(item)))}s"
        return _TYPE_NAMES.get(self.type, getattr(self.type, "__name__", str(self.type)))

    @property
    def allowed(self) -> str:
        """The limits in words (``> 0``, ``one of auto, chat, responses``, ``non-empty``), or an empty string."""
        if self.refused:
            return f"cannot be set: {self.refused}"
        parts = []
        if self.choices:
            parts.append("one of " + ", ".join(str(choice) for choice in self.choices))
        if self.minimum is not None:
            parts.append(f"≥ {self.minimum:g}")
        if self.above is not None:
            parts.append(f"> {self.above:g}")
        if self.non_empty:
            parts.append("non-empty")
        return ", ".join(parts)

    def parse(self, value: Any) -> Any:
        """The value to use for ``value`` as written in the config; raises ValueError saying what is wrong."""
        if self.refused:
            raise ValueError(f"cannot be set: {self.refused}")
        if get_origin(self.type) is list:
            (item_type,) = get_args(self.type) or (object,)
            item = Option(self.name, item_type, minimum=self.minimum, above=self.above, non_empty=self.non_empty)
            if not isinstance(value, list):
                raise ValueError(f"must be a {self._expected()}, got {self._shown(value)}")
            try:
                value = [item.parse(element) for element in value]
            except ValueError:
                raise ValueError(f"must be a {self._expected()}, got {self._shown(value)}") from None
        else:
            value = self._typed(value)
        if self.choices and value not in self.choices:
            raise ValueError(f"must be one of {', '.join(str(c) for c in self.choices)}, got {self._shown(value)}")
        return self.check(value) if self.check is not None else value

    def _typed(self, value: Any) -> Any:
        kind = dict if self.each is not None else self.type
        if kind is object:
            return value
        if kind in (int, float):
            problem = number_problem(value, whole=kind is int, minimum=self.minimum, above=self.above)
            if problem:
                raise ValueError(problem)
            return float(value) if kind is float else value
        if not isinstance(value, kind) or (kind is str and self.non_empty and not value.strip()):
            raise ValueError(f"must be {'' if kind is bool else 'a '}{self._expected()}, got {self._shown(value)}")
        return dict(value) if kind is dict else value

    def _shown(self, value: Any) -> str:
        """The wrong value for a message; a secret one only by its type."""
        return f"a value of type {type(value).__name__}" if self.secret else repr(value)

    def _expected(self) -> str:
        """``number > 0``, ``list of non-empty strings``: the type with its limits, for messages."""
        if self.type is bool:
            return "true or false"
        limits = "".join(f" {sign} {bound:g}" for sign, bound in (("≥", self.minimum), (">", self.above))
                         if bound is not None)
        name = self.type_name
        if self.non_empty and "string" in name:
            name = name.replace("string", "non-empty string")
        return f"{name}{limits}"


def number_problem(value: Any, *, whole: bool, minimum: float | None = None, maximum: float | None = None,
                   above: float | None = None) -> str | None:
    """What is wrong with ``value`` as a number (``whole``: a whole number) within the bounds, else None.

    The one number check of streamhost (options, config, tool arguments). The text reads after the value's
    name: ``must be a whole number from 1 to 20, got 0``. A boolean is never a number (TOML's true is an int
    to Python), nor is NaN or infinity.
    """
    kind = "a whole number" if whole else "a number"
    if minimum is not None and maximum is not None:
        bounds = [f"from {_bound(minimum)} to {_bound(maximum)}"]
    else:
        bounds = [f"{sign} {_bound(bound)}" for sign, bound in (("≥", minimum), ("≤", maximum)) if bound is not None]
    bounds += [f"> {_bound(above)}"] if above is not None else []
    if (isinstance(value, bool) or not isinstance(value, int if whole else (int, float))
            or (isinstance(value, float) and not math.isfinite(value))
            or (minimum is not None and value < minimum) or (maximum is not None and value > maximum)
            or (above is not None and value <= above)):
        return f"must be {' '.join([kind, *bounds])}, got {value!r}"
    return None


def _bound(bound: float) -> str:
    return str(bound) if isinstance(bound, int) else f"{bound:g}"


@dataclass
class CheckedOptions:
    """What ``check_options`` made of one config table."""

    values: dict[str, Any] = field(default_factory=dict)
    """Every declared key (the config's value, else the default), plus the undeclared keys a ``"*"`` option took."""
    errors: list[tuple[str, str]] = field(default_factory=list)
    """``(dotted key, what is wrong)`` for each value that breaks its declaration."""
    unknown: list[tuple[str, str, tuple[str, ...]]] = field(default_factory=list)
    """``(dotted table, key, the keys that table declares)`` for each key nothing declares."""

    def raise_errors(self, *, unknown: bool = True) -> None:
        """Raise one ConfigError listing every error (and, with ``unknown``, every unknown key), one per line."""
        lines = [f"{key} {problem}" for key, problem in self.errors]
        if unknown:
            lines += [f"unknown key {section}.{key}; known: {', '.join(known) or 'none'}"
                      for section, key, known in self.unknown]
        if lines:
            raise ConfigError("\n".join(lines))


def check_options(declared: Sequence[Option], table: Mapping[str, Any], section: str) -> CheckedOptions:
    """Check a config ``table`` (``section`` names it, e.g. ``providers.openai``) against its ``declared`` options.

    Nothing is raised: the result holds the values with defaults filled, the errors and the unknown keys.
    A value of None counts as not set (TOML has no null), so checked values can be checked again.
    """
    by_name = {option.name: option for option in declared}
    others = by_name.pop(OTHER_KEYS, None)
    checked = CheckedOptions()
    for name, option in by_name.items():
        if not option.refused:
            checked.values[name] = copy.deepcopy(option.default)
    for key, value in table.items():
        dotted = f"{section}.{_quoted(key)}"
        option = by_name.get(key, others)
        if option is None:
            checked.unknown.append((section, key, tuple(sorted(by_name))))
            continue
        if value is None:
            continue
        try:
            parsed = option.parse(value)
        except ValueError as exc:
            checked.errors.append((dotted, str(exc)))
            continue
        if option.each is not None:
            parsed = {entry: _inner(option.each, inner, f"{dotted}.{_quoted(entry, always=True)}", checked)
                      for entry, inner in parsed.items()}
        checked.values[key] = parsed
    return checked


def _inner(declared: tuple[Option, ...], inner: Any, dotted: str, checked: CheckedOptions) -> dict[str, Any]:
    """One inner table of a table of tables, its problems added to ``checked``."""
    if not isinstance(inner, dict):
        checked.errors.append((dotted, f"must be a table ([{dotted}]), got {inner!r}"))
        return {}
    found = check_options(declared, inner, dotted)
    checked.errors += found.errors
    checked.unknown += found.unknown
    return found.values


def _quoted(key: str, *, always: bool = False) -> str:
    """A key as TOML writes it in a dotted name: bare when it can be, else in double quotes."""
    bare = key.replace("_", "").replace("-", "").isalnum()
    return key if bare and not always else f'"{key}"'
