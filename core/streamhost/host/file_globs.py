"""Globs for ``files``: ``*``, ``?``, ``[..]`` within a name and ``**`` across directories, expanded with a bound.

Shell rules, as ``glob`` keeps them: a wildcard does not match a name that starts with ``.`` unless the
pattern's own name does (``.env*``), and ``**`` does not descend into hidden directories nor follow
symlinked ones (no cycles, no ``.git``). Unlike ``glob``, the walk counts every directory entry it looks
at and stops with an error past a limit, so ``/**/*`` costs a bounded time and says how to narrow it.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache

MAGIC = re.compile(r"[*?\[]")


class WalkLimitError(Exception):
    """The walk looked at more directory entries than allowed."""


def has_magic(text: str) -> bool:
    """Whether ``text`` holds a wildcard (``*``, ``?`` or ``[``)."""
    return MAGIC.search(text) is not None


@lru_cache(maxsize=256)
def _name_body(name: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(name):
        char = name[i]
        i += 1
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            start = i + 1 if name[i:i + 1] == "!" else i
            end = name.find("]", start + 1 if name[start:start + 1] == "]" else start)
            if end < 0:
                out.append(re.escape(char))
                continue
            negate = start > i
            body = name[start:end].replace("\\", "\\\\")
            i = end + 1
            if negate:
                out.append("[^/" + body + "]")
            else:
                out.append("[" + ("\\" + body if body.startswith("^") else body) + "]")
        else:
            out.append(re.escape(char))
    return "".join(out)


def _name_regex_text(name: str, hidden: bool) -> str:
    guard = "" if hidden or name.startswith(".") or not has_magic(name[:1]) else r"(?!\.)"
    return guard + _name_body(name)


@lru_cache(maxsize=256)
def name_regex(name: str, hidden: bool = False) -> re.Pattern[str]:
    """The regex of one path component (no ``/``); ``hidden`` lets a leading wildcard match a leading dot."""
    return re.compile(_name_regex_text(name, hidden))


@lru_cache(maxsize=256)
def glob_regex(pattern: str, hidden: bool = False) -> re.Pattern[str]:
    """The regex of a whole path glob, ``**`` spanning any number of directories (``fullmatch`` it)."""
    parts = pattern.split("/")
    out: list[str] = []
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        if part == "**":
            dot = "" if hidden else r"(?!\.)"
            out.append(f"(?:{dot}[^/]*(?:/{dot}[^/]*)*)?" if last else f"(?:{dot}[^/]+/)*")
        else:
            out.append(_name_regex_text(part, hidden) + ("" if last else "/"))
    return re.compile("".join(out))


def split_glob(path: str) -> tuple[str, list[str]]:
    """An absolute glob as its literal leading directory and the components from the first wildcard on."""
    parts = path.split("/")
    for index, part in enumerate(parts):
        if has_magic(part):
            return "/".join(parts[:index]) or "/", parts[index:]
    return path, []


def expand(base: str, segments: list[str], limit: int) -> list[str]:
    """Paths under ``base`` that match ``segments`` (files and directories), sorted and without repeats.

    :raises WalkLimitError: more than ``limit`` directory entries were looked at.
    """
    if segments and segments[-1] == "**":
        segments = [*segments, "*"]  # "src/**" means every file below src, as it does for rsync and git
    seen = 0

    def scan(directory: str) -> list[os.DirEntry[str]]:
        nonlocal seen
        try:
            with os.scandir(directory) as entries:
                listed = list(entries)
        except OSError:  # gone, not a directory, or not readable: nothing matches there
            return []
        seen += len(listed)
        if seen > limit:
            raise WalkLimitError(f"looked at more than {limit} entries")
        return listed

    found: set[str] = set()
    stack: list[tuple[str, tuple[str, ...]]] = [(base, tuple(segments))]
    while stack:
        directory, segs = stack.pop()
        segment, rest = segs[0], segs[1:]
        if segment == "**":
            stack.append((directory, rest))
            for entry in scan(directory):
                if not entry.name.startswith(".") and entry.is_dir(follow_symlinks=False):
                    stack.append((entry.path, segs))
        elif not has_magic(segment):
            path = os.path.join(directory, segment)
            if not rest:
                if os.path.lexists(path):
                    found.add(path)
            elif os.path.isdir(path):
                stack.append((path, rest))
        else:
            regex = name_regex(segment)
            for entry in scan(directory):
                if not regex.fullmatch(entry.name):
                    continue
                if not rest:
                    found.add(entry.path)
                elif entry.is_dir():  # one level through a symlinked directory: bounded, unlike **
                    stack.append((entry.path, rest))
    return sorted(found)
