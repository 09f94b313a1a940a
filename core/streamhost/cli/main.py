"""The ``streamhost`` command: its parser, built from the command groups, and the entry point.

Fast to start: every group module is light at import; mcp, rich and the provider SDKs are imported
only by the commands that use them.
"""

from __future__ import annotations

import argparse
import os
import sys

from .. import __version__
from ..errors import StreamhostError
from . import config, installer, models, plugins, runs, scaffold, serve, threads, tokens, usage, web
from .common import setup_logging

GROUPS = (serve, plugins, models, config, scaffold, installer, web, runs, threads, usage, tokens)
"""The command groups, in the order ``--help`` lists their commands; each has ``add_commands(sub)``."""


def build_parser() -> argparse.ArgumentParser:
    """The ``streamhost`` parser with every group's commands."""
    parser = argparse.ArgumentParser(prog="streamhost", description="An MCP plugin host that streams model output.")
    parser.add_argument("--version", action="version", version=f"streamhost {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in GROUPS:
        group.add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``streamhost`` command."""
    args = build_parser().parse_args(argv)
    if args.command != "serve":
        setup_logging("warning")
    try:
        return int(args.func(args) or 0)
    except StreamhostError as exc:
        print(f"streamhost: {exc.message}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader went away (`streamhost models --json | head`): not an error worth a traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
