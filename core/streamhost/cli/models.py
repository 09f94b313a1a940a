"""``streamhost models [--json] [--refresh]`` and ``streamhost chat -m MODEL PROMPT``: models, one answer live."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from ..errors import CallFailed, StreamhostError
from .common import console, load_engine, log, plain, run_live
from .terminal import TerminalSink


def cmd_models(args: argparse.Namespace) -> int:
    """List the models with their aliases and whether their key is set; ``--refresh`` asks the endpoints first."""
    import asyncio

    engine = load_engine()
    failures = 0
    if args.refresh:
        async def refresh() -> int:
            failed = 0
            for provider in engine.registry.providers.values():
                try:
                    found = await provider.refresh_models()
                    console(stderr=True).print(f"{provider.name}: {len(found)} models")
                except StreamhostError as exc:
                    failed += 1
                    console(stderr=True).print(f"[red]{provider.name}: {plain(exc.message)}[/]")
            await engine.aclose()
            return failed

        failures = asyncio.run(refresh())
    entries = engine.catalog.entries()
    if not entries and engine.registry.providers and not failures:  # a failed refresh said why already
        prefixes = ", ".join(f"{name}/NAME" for name in engine.registry.providers)
        hint = ("the endpoints listed no models" if args.refresh
                else "`streamhost models --refresh` asks each provider's endpoint what it serves")
        console(stderr=True).print(f"no models listed: {hint}; any {prefixes} works without a listing")
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
    console().print(table)
    return 1 if failures else 0


def stdin_text(wait: bool) -> str:
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
    """Stream one answer into the terminal, then a line with the model, first-token time and tokens."""
    import asyncio

    prompt = " ".join(args.prompt)
    asked = prompt in ("", "-")
    piped = stdin_text(wait=asked)
    prompt = piped if asked else f"{prompt}\n\n{piped}" if piped else prompt
    from ..host.asking import Asking
    from ..host.engine import GenerateArgs

    engine = load_engine()
    err = console(stderr=True)
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
        return await Asking(engine).generate(sink, generate, thread=args.thread, files=args.file or None)

    try:
        generation = run_live(engine, sink, chat)
    except CallFailed as failed:
        err.print(f"[red]error:[/] {plain(failed.error.message)}")
        return 1
    if generation is None:
        return 130
    usage = generation.usage or {}
    ttft = "n/a" if generation.ttft_ms is None else f"{generation.ttft_ms:.0f} ms"
    err.print(f"[dim]{generation.model} · first token {ttft} from the request "
              f"(provider set up in {loaded_ms:.0f} ms) · {generation.duration_ms / 1000:.1f} s · "
              f"tokens in {usage.get('input_tokens', '?')} out {usage.get('output_tokens', '?')}"
              + (f" · run {generation.run}" if generation.run else "")
              + (f" · thread {generation.thread}" if generation.thread else "") + "[/]")
    return 0


def add_commands(sub: Any) -> None:
    """Add ``models`` and ``chat`` to the ``streamhost`` parser's subcommands."""
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
    chat.add_argument("--thread", help='"new" to start a conversation, or a thread id to follow one up')
    chat.add_argument("-f", "--file", action="append", metavar="PATH",
                      help="a local text file (or glob) to send with the prompt; repeat for more")
    chat.set_defaults(func=cmd_chat)
