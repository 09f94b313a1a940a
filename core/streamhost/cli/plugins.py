"""``streamhost plugins [--json]``: the installed plugins, what each registered, and why one failed."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from typing import Any

from ..errors import ConfigError
from .common import console, plain, print_warnings


def cmd_plugins(args: argparse.Namespace) -> int:
    """List the plugins as the host loads them; a broken config file is reported, not fatal."""
    from ..host.config import Config, config_path, load_config
    from ..host.loading import load_plugins

    # A broken config file must not hide the plugins: list them as loaded with the defaults, and say so.
    config_error = None
    try:
        config = load_config()
    except ConfigError as exc:
        config, config_error = Config(path=config_path()), exc.message
    with contextlib.redirect_stdout(sys.stderr):
        registry = load_plugins(config)
    records = [r.as_dict() for r in registry.plugins]
    if args.json:
        print(json.dumps({"plugins": records, "collisions": [c.as_dict() for c in registry.collisions],
                          "warnings": registry.warnings,
                          "config": {"path": str(config.path or ""), "error": config_error,
                                     "warnings": config.warnings}}, indent=2))
        return 0
    from rich.table import Table

    table = Table("plugin", "version", "hooks", "registered", "status")
    for r in registry.plugins:
        registered = ", ".join(r.registrations())
        status = (r.error and f"[red]error: {plain(r.error)}[/]") or r.skipped or "ok"
        if r.notes:
            status += "\n" + "\n".join(plain(note) for note in r.notes)
        table.add_row(r.name, r.version or "", ", ".join(r.hooks), registered, status)
    out = console()
    out.print(table if records else "no plugins installed: pip install streamhost-openai")
    if config_error:
        out.print(f"[red]config file broken (plugins listed with default settings):[/] {plain(config_error)}")
    print_warnings(out, config.warnings + registry.warnings)
    return 0


def add_commands(sub: Any) -> None:
    """Add ``plugins`` to the ``streamhost`` parser's subcommands."""
    plugins = sub.add_parser("plugins", help="installed plugins and what they registered")
    plugins.add_argument("--json", action="store_true")
    plugins.set_defaults(func=cmd_plugins)
