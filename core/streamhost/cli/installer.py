"""``streamhost install`` / ``uninstall``: pip in the host's own interpreter, keeping the host's version.

Like ``llm install``: plugins land in the environment streamhost runs from, whatever ``pip`` is on
``PATH``. A constraints file pins ``streamhost==<this version>``, so a plugin that needs another
host version is refused instead of silently up- or downgrading the host; the host is also named as
a requirement, so pip resolves its dependencies too and a plugin cannot move one of them out of
the range the host needs. Afterwards the command shows which plugins appeared or disappeared, as
``streamhost plugins`` sees them.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InvalidArgumentError, StreamhostError

HOST = "streamhost"
Records = dict[str, dict[str, Any]]
"""``streamhost plugins --json`` records by normalized distribution name."""
_DEPENDS = re.compile(
    r"^\s*(?P<dist>\S+) (?P<version>\S+) depends on (?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)"
    r"(?P<spec>(?:\[[^\]]*\])?(?:[<>=!~][^\s;]*)?)(?=[\s;]|$)", re.MULTILINE
)


class InstallError(StreamhostError):
    """pip failed; the message says why in the user's terms."""


def _requirement_name(requirement: str) -> str:
    """The project name at the start of a requirement (``Foo[x]>=1`` -> ``foo``); empty for paths and URLs."""
    # The loader's own spelling of a distribution name; imported here, not at module top, as it brings pluggy
    # and the config reader into every command's start-up.
    from ..host.loading import normalize

    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    if not match or "/" in requirement or requirement.startswith(".") or "://" in requirement:
        return ""
    return normalize(match.group())


def host_version() -> str:
    """The installed streamhost version (what the constraint pins)."""
    from importlib import metadata  # not at module top: every command builds the parser that imports this

    return metadata.version(HOST)


def host_dependencies() -> set[str]:
    """The distributions the installed host needs to run, directly or through others (normalized names)."""
    from importlib import metadata

    needed, queue = set(), [HOST]
    while queue:
        try:
            requires = metadata.requires(queue.pop()) or []
        except metadata.PackageNotFoundError:
            continue
        for requirement in requires:
            name = _requirement_name(requirement)
            if name and name not in needed and "extra ==" not in requirement.partition(";")[2]:
                needed.add(name)
                queue.append(name)
    return needed


@dataclass(frozen=True)
class Installed:
    """What ``streamhost plugins --json`` of an interpreter says: the plugins, and the names several register."""

    plugins: Records
    collisions: list[dict[str, Any]]


def installed_plugins(python: str = sys.executable) -> Installed | None:
    """``streamhost plugins --json`` of that interpreter, None if it failed.

    Run in a fresh process, so it sees what pip just changed.
    """
    from ..host.loading import normalize

    try:
        found = subprocess.run([python, "-m", "streamhost.cli", "plugins", "--json"],
                               capture_output=True, text=True, timeout=120)
        data = json.loads(found.stdout)
        return Installed({normalize(r["name"]): r for r in data["plugins"]}, list(data.get("collisions") or []))
    except (OSError, subprocess.SubprocessError, ValueError, KeyError, TypeError):
        return None


def _run_pip(args: Sequence[str]) -> tuple[int, str]:
    """Run pip, showing its output live on stderr and keeping it for the error message."""
    command = [sys.executable, "-m", "pip", *args, "--disable-pip-version-check"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert process.stdout is not None
    output = []
    for line in process.stdout:
        output.append(line)
        sys.stderr.write(line)
    return process.wait(), "".join(output)


def explain_failure(output: str, version: str) -> str:
    """pip's output turned into one clear sentence when it is a conflict with the host, else its last lines."""
    from ..host.loading import normalize

    host_side = {HOST} | host_dependencies()  # a clash may be with a dependency of the host, e.g. mcp on pydantic
    depends = [m for m in _DEPENDS.finditer(output) if normalize(m["dist"]) not in host_side]
    conflicts = [m for m in depends if normalize(m["name"]) == HOST]
    host_needs = {normalize(m["name"]): f"{m['dist']} {m['version']} needs {m['name']}{m['spec']}"
                  for m in _DEPENDS.finditer(output) if normalize(m["dist"]) in host_side}
    clashes = [m for m in depends if normalize(m["name"]) in host_needs]
    if "No module named pip" in output:
        return (f"pip is not installed in streamhost's environment ({sys.executable}): run "
                f"{sys.executable} -m ensurepip, or install plugins with your tool's own command "
                "(e.g. uv pip install --python that-interpreter PKG)")
    if conflicts:
        lines = [f"{m['dist']} {m['version']} needs streamhost{m['spec']}, this host is {version}" for m in conflicts]
        return ("; ".join(lines) + ": install a version of the plugin made for streamhost " + version
                + ", or upgrade the host first (pip install -U streamhost, then streamhost install again)")
    if clashes:
        lines = [f"{m['dist']} {m['version']} needs {m['name']}{m['spec']}, {host_needs[normalize(m['name'])]}"
                 for m in clashes]
        return ("; ".join(lines) + f": the plugin cannot share the environment of streamhost {version}; nothing "
                "was changed. Use a version of the plugin that accepts what streamhost needs")
    tail = [line for line in output.strip().splitlines() if line.strip()][-5:]
    return "pip failed:\n" + "\n".join(tail)


def _report(before_all: Installed | None, after_all: Installed | None) -> None:
    """Print the plugins that appeared, disappeared or changed version, and the names two plugins register."""
    if before_all is None or after_all is None:
        print("pip finished, but `streamhost plugins` failed: run it to see what is installed")
        return
    before, after = before_all.plugins, after_all.plugins
    for name in sorted(set(after) - set(before)):
        record = after[name]
        registered = [f"{kind[:-1]} {name}" for kind in ("providers", "fetchers", "tools")
                      for name in record.get(kind) or []]
        state = f"error: {record['error']}" if record.get("error") else ", ".join(registered) or "registers nothing"
        print(f"+ plugin {record['name']} {record.get('version') or ''}: {state}")
    for name in sorted(set(before) - set(after)):
        print(f"- plugin {before[name]['name']} removed")
    changed = [n for n in set(before) & set(after) if before[n].get("version") != after[n].get("version")]
    for name in sorted(changed):
        print(f"~ plugin {after[name]['name']} {before[name].get('version')} -> {after[name].get('version')}")
    if after == before:
        print("plugins unchanged")
    for collision in after_all.collisions:
        print(f"! {collision['message']}")


def install(packages: Sequence[str], editable: Sequence[str] = (), upgrade: bool = False) -> int:
    """pip-install plugins next to the host; raise InstallError with a clear message when pip fails."""
    if not packages and not editable:
        raise InvalidArgumentError("name at least one plugin: streamhost install PKG... or -e PATH")
    if any(_requirement_name(p) == HOST for p in packages):
        raise InvalidArgumentError("streamhost install is for plugins; upgrade the host itself with "
                                   "pip install -U streamhost in its environment")
    version = host_version()
    before = installed_plugins()
    with tempfile.TemporaryDirectory(prefix="streamhost-install-") as tmp:
        constraints = Path(tmp) / "constraints.txt"
        # Pinned by version, not by path: an editable host of the same version satisfies it and stays as it is.
        constraints.write_text(f"{HOST}=={version}\n", encoding="utf-8")
        args = ["install", "-c", str(constraints), *(["--upgrade"] if upgrade else [])]
        # The host as a requirement too: without it pip would not weigh the host's own dependencies
        # and could downgrade one of them for a plugin (it only warns afterwards).
        args += [f"{HOST}=={version}", *packages, *[arg for path in editable for arg in ("-e", path)]]
        code, output = _run_pip(args)
    if code != 0:
        raise InstallError(explain_failure(output, version))
    _report(before, installed_plugins())
    return 0


def uninstall(packages: Sequence[str]) -> int:
    """pip-uninstall plugins (never streamhost itself)."""
    if not packages:
        raise InvalidArgumentError("name at least one plugin: streamhost uninstall PKG...")
    if any(_requirement_name(p) == HOST for p in packages):
        raise InvalidArgumentError("streamhost uninstall removes plugins, not the host: use "
                                   "pip uninstall streamhost to remove streamhost itself")
    needed = sorted({p for p in packages if _requirement_name(p) in host_dependencies()})
    if needed:
        raise InvalidArgumentError(f"streamhost needs {', '.join(needed)} to run: streamhost uninstall removes "
                                   "plugins only (see streamhost plugins for their names)")
    before = installed_plugins()
    code, output = _run_pip(["uninstall", "--yes", *packages])
    if code != 0:
        raise InstallError(explain_failure(output, host_version()))
    _report(before, installed_plugins())
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``install`` and ``uninstall`` to the ``streamhost`` parser."""
    inst = sub.add_parser("install", help="pip-install plugins into streamhost's own environment")
    inst.add_argument("packages", nargs="*", metavar="PKG", help="requirement specifiers, paths or URLs")
    inst.add_argument("-e", "--editable", action="append", default=[], metavar="PATH",
                      help="install a local plugin project in editable mode (repeatable)")
    inst.add_argument("-U", "--upgrade", action="store_true", help="upgrade the named plugins")
    inst.set_defaults(func=lambda a: install(a.packages, a.editable, a.upgrade))
    uninst = sub.add_parser("uninstall", help="pip-uninstall plugins from streamhost's environment")
    uninst.add_argument("packages", nargs="+", metavar="PKG")
    uninst.set_defaults(func=lambda a: uninstall(a.packages))
