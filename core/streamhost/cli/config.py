"""``streamhost config path|show`` and ``streamhost doctor``: where the settings are and whether all is well."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .. import __version__
from ..errors import StreamhostError
from .common import console, load_engine, plain, print_warnings


def cmd_config(args: argparse.Namespace) -> int:
    """Print the config file's path, or what it holds (secrets masked), its warnings, and the options the loaded
    plugins declare with the values in effect (on stderr; all of it as one JSON document with ``--json``)."""
    from ..host import plugin_options
    from ..host.config import config_path, masked

    path = config_path()
    if args.action == "path":
        print(path)
        return 0
    engine = load_engine(warn=False)
    config, registry = engine.config, engine.registry
    exists = path.exists()
    options = plugin_options.listing(registry.providers, registry.fetchers, config)
    failed = {record.name: record.error for record in registry.plugins if record.error}
    if args.json:
        print(json.dumps({"path": str(path), "exists": exists, "config": masked(config.raw), "options": options,
                          "warnings": config.warnings + registry.warnings, "plugin_errors": failed}, indent=2))
        return 0
    err = console(stderr=True)
    err.print(f"# {path}" + ("" if exists else " (not found: defaults in use)"))
    print(json.dumps(masked(config.raw), indent=2) if exists else "{}")
    print_warnings(err, config.warnings + registry.warnings)
    for name, error in failed.items():
        err.print(f"[red]plugin {name} failed:[/] {plain(error)}")
    if options:
        err.print("\n# the options the loaded plugins declare, with the values in effect")
        for line in plugin_options.describe(options):
            err.print(plain(line), soft_wrap=True)
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    """Check config, plugins and keys; exit 1 when anything needs the user's attention."""
    from ..host.config import config_path

    out = console()
    out.print(f"streamhost {__version__}, Python {sys.version.split()[0]}")
    out.print(f"config: {config_path()}")
    try:
        engine = load_engine(warn=False)
    except StreamhostError as exc:
        out.print(f"[red]config or plugins broken:[/] {plain(exc.message)}")
        return 1
    # A mistyped key silently does nothing, and a name two plugins register may be served by the one the
    # user did not mean: both are problems, not notes.
    problems = print_warnings(out, engine.config.warnings + engine.registry.warnings)
    for record in engine.registry.plugins:
        if record.error:
            problems += 1
            out.print(f"[red]plugin {record.name} failed:[/] {plain(record.error)}")
        else:
            out.print(f"plugin {record.name} {record.version or ''}: {plain(record.skipped or 'ok')}")
    keys: dict[tuple[str, str], bool] = {}
    for provider in engine.registry.providers.values():
        if provider.key_variable():
            keys[provider.name, provider.key_variable()] = provider.key_configured()
    for entry in engine.catalog.entries():  # a provider like litellm has one key variable per sub-provider
        if entry.key_variable:
            keys[entry.provider, entry.key_variable] = entry.key_configured
    for (name, variable), configured in sorted(keys.items()):
        problems += 0 if configured else 1
        out.print(f"provider {name}: key {variable} " + ("set" if configured else "[red]not set[/]"))
    out.print(f"metrics: {engine.metrics.path if engine.metrics.enabled else 'off'}")
    out.print("[green]all good[/]" if not problems else f"[yellow]{problems} problem(s)[/]")
    return 0 if not problems else 1


def add_commands(sub: Any) -> None:
    """Add ``config`` and ``doctor`` to the ``streamhost`` parser's subcommands."""
    config = sub.add_parser("config", help="where the config file is, and what it holds (secrets masked)")
    config.add_argument("action", choices=["path", "show"])
    config.add_argument("--json", action="store_true", help="show: the file, the plugins' options and the warnings "
                        "as one JSON document")
    config.set_defaults(func=cmd_config)
    doctor = sub.add_parser("doctor", help="check plugins, keys and config")
    doctor.set_defaults(func=cmd_doctor)
