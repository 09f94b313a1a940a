"""``streamhost plugin new``: render the plugin template that ships inside the streamhost package.

The template (``plugin_template/`` in the repository, ``streamhost/plugin_template`` when
installed) has a ``common/`` tree and one tree per kind laid over it. Its files carry tokens such
as ``__PACKAGE__`` that are valid Python names, so the template itself stays lintable; rendering
replaces them in file contents and in paths.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import InvalidArgumentError, StreamhostError

KINDS = ("provider", "fetcher")
NAME_RE = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")
SKIP = {"__pycache__", ".pytest_cache", ".ruff_cache"}
EXAMPLE_SOURCE = "streamhost @ git+https://github.com/OWNER/streamhost@v0.1.0"
"""What the generated project shows as a pip requirement for streamhost when this host's own is not usable in CI."""


@dataclass(frozen=True)
class PluginNames:
    """The names one plugin goes by, derived from the short name the user gave."""

    name: str
    """Model prefix / fetcher name / URL scheme: ``acme``."""
    dist: str
    """Distribution: ``streamhost-acme``."""
    package: str
    """Import package: ``streamhost_acme``."""
    cls: str
    """Class name stem: ``Acme``."""
    env: str
    """Environment variable stem: ``ACME``."""

    @classmethod
    def parse(cls, raw: str) -> PluginNames:
        """Check ``raw`` (``acme`` or ``streamhost-acme``); raise InvalidArgumentError saying what is allowed."""
        name = raw.strip()
        name = name[len("streamhost-"):] if name.startswith("streamhost-") else name
        if not NAME_RE.fullmatch(name):
            raise InvalidArgumentError(
                f"plugin name {raw!r} is not valid: use lowercase letters, digits and single hyphens, starting "
                "with a letter (e.g. my-llm); it becomes the model prefix or URL scheme, the distribution "
                "streamhost-NAME and the package streamhost_NAME"
            )
        return cls(name=name, dist=f"streamhost-{name}", package="streamhost_" + name.replace("-", "_"),
                   cls="".join(part.capitalize() for part in name.split("-")),
                   env=name.replace("-", "_").upper())


def template_root() -> Path:
    """Where the template is: inside the installed package, or the repository root in an editable install."""
    spec = importlib.util.find_spec("streamhost.plugin_template")
    for location in (spec.submodule_search_locations or []) if spec else []:
        if (Path(location) / "common").is_dir():
            return Path(location)
    # An editable install maps only the top-level package, so the template is found beside core/.
    beside = Path(__file__).resolve().parents[3] / "plugin_template"
    if (beside / "common").is_dir():
        return beside
    raise StreamhostError("the plugin template is missing from this streamhost install: reinstall streamhost")


def host_source() -> str | None:
    """A pip argument that installs this very streamhost again, or None when it came from a package index.

    Read from the record pip keeps of a direct install (PEP 610 ``direct_url.json``): the source checkout
    or wheel file it was installed from (when it still exists), or ``streamhost @ URL`` for a git or
    archive URL. streamhost is not published on an index, so a plugin's own environment needs this.
    """
    import urllib.parse
    import urllib.request  # not at module top: it brings ssl and http.client into every command's start-up
    from importlib import metadata

    try:
        record = metadata.distribution("streamhost").read_text("direct_url.json")
        info = json.loads(record) if record else {}
        url = info.get("url") if isinstance(info, dict) else None
    except (metadata.PackageNotFoundError, ValueError):
        return None
    if not isinstance(url, str) or not url:
        return None
    vcs = info.get("vcs_info")
    if isinstance(vcs, dict):
        ref = vcs.get("commit_id") or vcs.get("requested_revision")
        sub = info.get("subdirectory")
        return (f"streamhost @ {vcs.get('vcs', 'git')}+{url}" + (f"@{ref}" if ref else "")
                + (f"#subdirectory={sub}" if sub else ""))
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme == "file":
        path = Path(urllib.request.url2pathname(parsed.path))
        return str(path) if path.exists() else None
    return f"streamhost @ {url}"


def ci_source(source: str | None) -> str:
    """The pip requirement the generated CI workflow may use by default: only a URL works on a CI machine."""
    # It lands inside a double-quoted shell word in the workflow: anything that could end or expand it is out.
    if source and source.startswith("streamhost @ ") and not set(source) & set('"$`\\\'\n'):
        return source
    return ""


def _author() -> str:
    try:
        found = subprocess.run(["git", "config", "user.name"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return "Your Name"
    return found.stdout.strip() or "Your Name"


def _files(root: Path, kind: str) -> Iterator[tuple[Path, Path]]:
    """(source, path relative to the plugin) for the common tree, then the kind's tree over it."""
    for layer in (root / "common", root / kind):
        for source in sorted(layer.rglob("*")):
            relative = source.relative_to(layer)
            if source.is_file() and not SKIP.intersection(relative.parts) and source.suffix != ".pyc":
                yield source, relative


def render(names: PluginNames, kind: str, target: Path, author: str, source: str = "") -> list[Path]:
    """Write the plugin for ``kind`` into the new directory ``target``; returns the files written.

    ``source`` is the pip requirement for streamhost that CI uses unless ``STREAMHOST_SOURCE`` is set
    (see :func:`ci_source`); empty, CI fails at its first step until that variable is set.
    Raises InvalidArgumentError when ``target`` exists (nothing is overwritten) or the kind is unknown.
    """
    if kind not in KINDS:
        raise InvalidArgumentError(f"unknown plugin kind {kind!r}: use one of {', '.join(KINDS)}")
    if target.exists():
        raise InvalidArgumentError(f"{target} already exists: choose another --dir or remove it first")
    tokens = {
        "__PACKAGE__": names.package,
        "__AUTHOR__": re.sub(r"[\\\x00-\x1f]", "", author).replace('"', "'"),  # it goes into a TOML string
        "__CLASS__": names.cls,
        "__DIST__": names.dist,
        "__NAME__": names.name,
        "__ENV__": names.env,
        "__HOST_SOURCE__": ci_source(source),
    }
    planned = {relative: source for source, relative in _files(template_root(), kind)}
    written = []
    try:
        for relative, source in planned.items():
            path = target / _substitute(str(relative), tokens)
            path.parent.mkdir(parents=True, exist_ok=True)
            data = source.read_bytes()
            path.write_bytes(_substitute(data.decode("utf-8"), tokens).encode("utf-8") if data else data)
            written.append(path)
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)  # no half-written plugin left behind
        raise
    return written


def _substitute(text: str, tokens: dict[str, str]) -> str:
    for token, value in tokens.items():
        text = text.replace(token, value)
    return text


def next_steps(names: PluginNames, kind: str, target: Path, source: str | None = None) -> str:
    """What to do after rendering: install it, run its tests, see it in the host; then the same in an
    environment of the plugin's own, installing streamhost from ``source`` (see :func:`host_source`)."""
    try_it = (f'streamhost chat -m {names.name}/MODEL "hello"   # after setting {names.env}_BASE_URL and '
              f"{names.env}_API_KEY" if kind == "provider" else f"streamhost fetch {names.name}://notes/hello")
    # The host's own interpreter, not "python": streamhost may run from a venv, pipx or uv tool that is
    # not the python on PATH, and the plugin and its tests must run where the host and its fixtures are.
    return "\n".join([
        f"Created {names.dist} ({kind}) in {target}",
        "",
        "Next steps:",
        f"  cd {target}",
        '  streamhost install -e ".[test]"   # editable, into the host\'s environment, with pytest and ruff',
        f"  {sys.executable} -m pytest   # the plugin's tests, with streamhost's fixtures",
        "  streamhost plugins                # it is listed, with what it registered",
        f"  {try_it}",
        "",
        *own_environment(source),
        f"Then edit {names.package}/{kind}.py; README.md explains each part.",
    ])


def own_environment(source: str | None) -> list[str]:
    """The commands that set the plugin up in a virtual environment of its own, and what CI needs."""
    python = ".venv/bin/python"
    lines = ["Or in a virtual environment of the plugin's own (README.md, Test):",
             f"  {shlex.quote(sys.executable)} -m venv .venv",
             f"  {python} -m pip install --upgrade pip"]
    # streamhost is not on the package index: pip must get it from where this one came from.
    where = (f"{shlex.quote(source)}   # streamhost, from where this one was installed" if source else
             "/path/to/streamhost   # a checkout or wheel of streamhost: it is not on the package index")
    lines += [f"  {python} -m pip install {where}", f'  {python} -m pip install -e ".[test]"',
              f"  {python} -m pytest", ""]
    if ci := ci_source(source):
        lines.append(f"CI (.github/workflows/test.yml) installs streamhost from {ci!r}; the repository "
                     "variable STREAMHOST_SOURCE overrides it.")
    else:
        lines.append("CI (.github/workflows/test.yml) fails at its first step until you set the repository variable "
                     f"STREAMHOST_SOURCE\nto a pip requirement for streamhost, e.g. {EXAMPLE_SOURCE!r}.")
    return [*lines, ""]


def already_installed(names: PluginNames) -> str | None:
    """A warning when a distribution of that name is installed here: installing the new one replaces it."""
    from importlib import metadata

    try:
        version = metadata.version(names.dist)
    except metadata.PackageNotFoundError:
        return None
    return (f"warning: {names.dist} {version} is already installed in this environment; installing the new "
            "project replaces it. Choose another name unless you mean to rewrite that plugin.")


def cmd_plugin_new(args: argparse.Namespace) -> int:
    """``streamhost plugin new NAME [--kind provider|fetcher] [--dir DIR] [--author NAME]``."""
    names = PluginNames.parse(args.name)
    target = Path(args.dir) if args.dir else Path.cwd() / names.dist
    source = host_source()
    render(names, args.kind, target, args.author or _author(), source or "")
    print(next_steps(names, args.kind, target, source))
    if warning := already_installed(names):
        print(warning, file=sys.stderr)
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``plugin new`` to the ``streamhost`` parser."""
    plugin = sub.add_parser("plugin", help="write your own plugin: plugin new NAME")
    actions = plugin.add_subparsers(dest="plugin_command", required=True, metavar="ACTION")
    new = actions.add_parser("new", help="create a plugin project from the template")
    new.add_argument("name", help="short name: the model prefix or URL scheme, e.g. my-llm")
    new.add_argument("--kind", choices=KINDS, default="provider", help="what it plugs in (default: provider)")
    new.add_argument("--dir", help="where to create it (default: ./streamhost-NAME); must not exist")
    new.add_argument("--author", help="author name for pyproject.toml (default: git config user.name)")
    new.set_defaults(func=cmd_plugin_new)
