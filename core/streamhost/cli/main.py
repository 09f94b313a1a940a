"""The ``streamhost`` command. Fast to start: mcp and provider SDKs are imported only by the commands that use them."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from .. import __version__
from ..errors import ConfigError, PluginError, StreamhostError

log = logging.getLogger("streamhost")
T = TypeVar("T")


def _setup_logging(level: str) -> None:
    from ..host.scrub import ScrubFilter, watch_environment

    watch_environment()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("streamhost %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(ScrubFilter())  # upstream text in a log line may echo a key
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("httpx2", "httpx", "httpcore", "httpcore2", "openai", "mcp"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def _engine(warn: bool = True) -> Any:
    """Config and plugins, loaded with stdout pointed at stderr so a printing plugin cannot spoil --json.

    With ``warn``, the config's and the plugins' warnings (a mistyped key, a name two plugins register)
    are printed on stderr: every command shows them, not only ``doctor``.
    """
    from ..host.engine import Engine

    with contextlib.redirect_stdout(sys.stderr):
        engine = Engine.from_environment()
    if warn:
        for warning in engine.config.warnings + engine.registry.warnings:
            _console(stderr=True).print(f"[yellow]warning:[/] {_plain(warning)}")
    return engine


def _console(stderr: bool = False) -> Any:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def _plain(text: object) -> str:
    """``text`` escaped for rich markup: messages quote config keys like ``[fetch]``, which rich would eat."""
    from rich.markup import escape

    return escape(str(text))


def _run_live(engine: Any, sink: Any, work: Callable[[], Awaitable[T]]) -> T | None:
    """Run ``work`` with the terminal ``sink`` open, closing the engine's connections after it; None on Ctrl-C."""

    async def run() -> T:
        try:
            return await work()
        finally:
            await engine.aclose()

    try:
        with sink:
            return asyncio.run(run())
    except KeyboardInterrupt:
        _console(stderr=True).print("[yellow]cancelled[/]")
        return None


def cmd_serve(args: argparse.Namespace) -> int:
    from ..mcp.stdio_guard import claim_stdio

    wire_in, wire_out = claim_stdio()
    _setup_logging(args.log_level)
    from ..host.config import Config
    from ..host.engine import Engine
    from ..host.loading import Registry
    from ..mcp.server import serve_stdio

    startup_error = None
    try:
        engine = _engine(warn=False)  # logged below, with the log's prefix
    except PluginError as exc:
        log.error("%s", exc.message)
        return 3
    except ConfigError as exc:
        log.error("%s — every tool call will report this until the file is fixed", exc.message)
        engine, startup_error = Engine(Config(), Registry()), exc.message
    for warning in engine.config.warnings + engine.registry.warnings:
        log.warning("%s", warning)
    log.info("serving %d provider(s): %s; %d fetcher(s): %s", len(engine.registry.providers),
             ", ".join(engine.registry.providers), len(engine.registry.fetchers), ", ".join(engine.registry.fetchers))
    try:
        asyncio.run(serve_stdio(engine, wire_in, wire_out, startup_error=startup_error))
    except KeyboardInterrupt:  # only before the server's own signal handlers are in place
        pass
    # Everything is answered and flushed. Skip the interpreter's teardown: with the SDKs imported it
    # takes a second or more, and a client stopping us (SIGINT, then SIGTERM 100 ms later) wants us gone.
    logging.shutdown()
    sys.stderr.flush()
    os._exit(0)


def cmd_plugins(args: argparse.Namespace) -> int:
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
        registered = ", ".join([f"provider {p}" for p in r.providers] + [f"fetcher {f}" for f in r.fetchers])
        status = (r.error and f"[red]error: {_plain(r.error)}[/]") or r.skipped or "ok"
        if r.notes:
            status += "\n" + "\n".join(_plain(note) for note in r.notes)
        table.add_row(r.name, r.version or "", ", ".join(r.hooks), registered, status)
    console = _console()
    console.print(table if records else "no plugins installed: pip install streamhost-openai")
    if config_error:
        console.print(f"[red]config file broken (plugins listed with default settings):[/] {_plain(config_error)}")
    for warning in config.warnings + registry.warnings:
        console.print(f"[yellow]warning:[/] {_plain(warning)}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    engine = _engine()
    failures = 0
    if args.refresh:
        async def refresh() -> int:
            failed = 0
            for provider in engine.registry.providers.values():
                try:
                    found = await provider.refresh_models()
                    _console(stderr=True).print(f"{provider.name}: {len(found)} models")
                except StreamhostError as exc:
                    failed += 1
                    _console(stderr=True).print(f"[red]{provider.name}: {_plain(exc.message)}[/]")
            await engine.aclose()
            return failed

        failures = asyncio.run(refresh())
    entries = engine.catalog.entries()
    if not entries and engine.registry.providers and not failures:  # a failed refresh said why already
        prefixes = ", ".join(f"{name}/NAME" for name in engine.registry.providers)
        hint = ("the endpoints listed no models" if args.refresh
                else "`streamhost models --refresh` asks each provider's endpoint what it serves")
        _console(stderr=True).print(f"no models listed: {hint}; any {prefixes} works without a listing")
    if args.json:
        print(json.dumps({"default": engine.catalog.default_model(), "models": [e.as_dict() for e in entries]},
                         indent=2))
        return 1 if failures else 0
    from rich.table import Table

    table = Table("model", "aliases", "key")
    for e in entries:
        key = "n/a" if e.key_variable is None else (f"{e.key_variable} set" if e.key_configured
                                                    else f"[red]{e.key_variable} not set[/]")
        table.add_row(e.id + (" [bold](default)[/]" if e.default else ""), ", ".join(e.aliases), key)
    _console().print(table)
    return 1 if failures else 0


def _stdin_text(wait: bool) -> str:
    """Piped input: read when asked for (``-`` or no prompt), else only if some is already waiting."""
    if sys.stdin is None or sys.stdin.isatty():
        return ""
    if not wait:
        import select

        try:
            ready, _, _ = select.select([sys.stdin], [], [], 0.05)
        except (OSError, ValueError):
            return ""
        if not ready:
            return ""
    return sys.stdin.read()


def cmd_chat(args: argparse.Namespace) -> int:
    prompt = " ".join(args.prompt)
    asked = prompt in ("", "-")
    piped = _stdin_text(wait=asked)
    prompt = piped if asked else f"{prompt}\n\n{piped}" if piped else prompt
    from ..host.engine import GenerateArgs
    from ..host.relay import GenerationFailed
    from .terminal import TerminalSink

    engine = _engine()
    err = _console(stderr=True)
    sink = TerminalSink()
    generate = GenerateArgs(prompt=prompt, model=args.model, system=args.system, temperature=args.temperature,
                            max_tokens=args.max_tokens)
    try:
        providers = [engine.catalog.resolve(args.model).provider]
    except StreamhostError:
        if args.model is not None:
            raise
        # No default yet: a provider may find one while it warms (an OpenAI-compatible endpoint's model list).
        providers = list(engine.registry.providers.values())
    loaded_ms = 0.0

    async def chat() -> Any:
        # Set the provider up first (SDK import, endpoint listing), so "first token" is the model's time from
        # the request, not the import's.
        nonlocal loaded_ms
        started = time.monotonic()
        for provider in providers:
            try:
                await asyncio.to_thread(provider.warm)
            except Exception as exc:  # the call itself reports what is wrong
                log.debug("warming %s failed: %r", provider.name, exc)
        loaded_ms = (time.monotonic() - started) * 1000
        return await engine.generate(generate, sink)

    try:
        generation = _run_live(engine, sink, chat)
    except GenerationFailed as failed:
        err.print(f"[red]error:[/] {_plain(failed.error.message)}")
        return 1
    if generation is None:
        return 130
    usage = generation.usage or {}
    ttft = "n/a" if generation.ttft_ms is None else f"{generation.ttft_ms:.0f} ms"
    err.print(f"[dim]{generation.model} · first token {ttft} from the request "
              f"(provider set up in {loaded_ms:.0f} ms) · {generation.duration_ms / 1000:.1f} s · "
              f"tokens in {usage.get('input_tokens', '?')} out {usage.get('output_tokens', '?')}[/]")
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    from ..host.config import config_path, load_config, masked

    path = config_path()
    if args.action == "path":
        print(path)
        return 0
    config = load_config(path)
    exists = path.exists()
    _console(stderr=True).print(f"# {path}" + ("" if exists else " (not found: defaults in use)"))
    print(json.dumps(masked(config.raw), indent=2) if exists else "{}")
    for warning in config.warnings:
        _console(stderr=True).print(f"[yellow]warning:[/] {_plain(warning)}")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from ..host.config import config_path

    console = _console()
    problems = 0
    console.print(f"streamhost {__version__}, Python {sys.version.split()[0]}")
    console.print(f"config: {config_path()}")
    try:
        engine = _engine(warn=False)
    except StreamhostError as exc:
        console.print(f"[red]config or plugins broken:[/] {_plain(exc.message)}")
        return 1
    # A mistyped key silently does nothing, and a name two plugins register may be served by the one the
    # user did not mean: both are problems, not notes.
    for warning in engine.config.warnings + engine.registry.warnings:
        problems += 1
        console.print(f"[yellow]warning:[/] {_plain(warning)}")
    for record in engine.registry.plugins:
        if record.error:
            problems += 1
            console.print(f"[red]plugin {record.name} failed:[/] {_plain(record.error)}")
        else:
            console.print(f"plugin {record.name} {record.version or ''}: {_plain(record.skipped or 'ok')}")
    keys: dict[tuple[str, str], bool] = {}
    for provider in engine.registry.providers.values():
        if provider.key_variable():
            keys[provider.name, provider.key_variable()] = provider.key_configured()
    for entry in engine.catalog.entries():  # a provider like litellm has one key variable per sub-provider
        if entry.key_variable:
            keys[entry.provider, entry.key_variable] = entry.key_configured
    for (name, variable), configured in sorted(keys.items()):
        problems += 0 if configured else 1
        console.print(f"provider {name}: key {variable} " + ("set" if configured else "[red]not set[/]"))
    console.print(f"metrics: {engine.metrics.path if engine.metrics.enabled else 'off'}")
    console.print("[green]all good[/]" if not problems else f"[yellow]{problems} problem(s)[/]")
    return 0 if not problems else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="streamhost", description="An MCP plugin host that streams model output.")
    parser.add_argument("--version", action="version", version=f"streamhost {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = sub.add_parser("serve", help="run the MCP server on stdio (the main job)")
    serve.add_argument("--log-level", default=os.environ.get("STREAMHOST_LOG_LEVEL", "info"))
    serve.set_defaults(func=cmd_serve)
    plugins = sub.add_parser("plugins", help="installed plugins and what they registered")
    plugins.add_argument("--json", action="store_true")
    plugins.set_defaults(func=cmd_plugins)
    models = sub.add_parser("models", help="models, aliases and whether keys are set")
    models.add_argument("--json", action="store_true")
    models.add_argument("--refresh", action="store_true", help="ask each provider's endpoint for its models")
    models.set_defaults(func=cmd_models)
    chat = sub.add_parser("chat", help="stream one answer in the terminal")
    chat.add_argument("prompt", nargs="*", help="the prompt; '-' or nothing reads stdin")
    chat.add_argument("-m", "--model")
    chat.add_argument("-s", "--system")
    chat.add_argument("-t", "--temperature", type=float)
    chat.add_argument("--max-tokens", type=int)
    chat.set_defaults(func=cmd_chat)
    config = sub.add_parser("config", help="where the config file is, and what it holds (secrets masked)")
    config.add_argument("action", choices=["path", "show"])
    config.set_defaults(func=cmd_config)
    doctor = sub.add_parser("doctor", help="check plugins, keys and config")
    doctor.set_defaults(func=cmd_doctor)
    from . import installer, scaffold  # plugin new, install, uninstall: their code lives there

    scaffold.add_commands(sub)
    installer.add_commands(sub)
    from .web import add_commands  # fetch, summarize: their code lives there

    add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``streamhost`` command."""
    args = build_parser().parse_args(argv)
    if args.command != "serve":
        _setup_logging("warning")
    try:
        return int(args.func(args) or 0)
    except StreamhostError as exc:
        print(f"streamhost: {exc.message}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader went away (`streamhost models --json | head`): not an error worth a traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0

