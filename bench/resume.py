"""Resume after restart (issue 14 §4): SIGKILL ``streamhost serve`` in the middle of a background run, start it
again, and the finished answer equals the upstream's text byte for byte.

The openai plugin against the test server: ``openai/o3-pro`` runs as a background response (on by default), an
answer of 300 tokens (each with a non-ASCII character) at 50 tokens/s, ~6 s. ``[limits] handoff_s = 1``; each side
gets a fresh home and store.

- baseline: ``generate`` (handed off at 1 s), then ``wait`` calls until the run ends: time from the call to the
  final result.
- crash: the same, but once the store holds a checkpoint past 40 % of the answer the server gets SIGKILL; a new
  server is spawned at once and ``wait`` is called on it until the run ends. Shown: the time from the first call
  to the final result (and its ratio to the baseline of the same pair), the time from the new server's spawn to
  the run being this server's running run again (take-over), and whether the final result, and the store's text,
  equal the upstream's answer byte for byte. Upstream: one ``create`` per run, never a ``cancel``.

Pairs are interleaved (baseline first on odd runs); medians over ``--runs`` pairs (default 5).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import time
from dataclasses import dataclass, field
from typing import Any

import anyio
import common

from streamhost.testing import Script

TOKENS = [f"t{i:03d}é " for i in range(300)]
ANSWER = "".join(TOKENS)
RATE = 50
KILL_AT = 0.4
MAX_WAITS = 60
STATUS, RUN = "streamhost/status", "streamhost/run"


@dataclass
class Figures:
    baseline_s: list[float] = field(default_factory=list)
    crash_s: list[float] = field(default_factory=list)
    ratio: list[float] = field(default_factory=list)
    takeover_s: list[float] = field(default_factory=list)
    killed_at: list[float] = field(default_factory=list)  # fraction of the answer the checkpoint covered
    exact: list[bool] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def text_of(result: Any) -> str:
    return "".join(getattr(block, "text", "") for block in result.content)


def config(home: common.Home) -> str:
    return f'[limits]\nhandoff_s = 1\n\n[store]\npath = "{home.root / "store.db"}"\n'


def row(home: common.Home, run: str) -> tuple[str, str, int] | None:
    """(status, process, checkpoint_chars) of the run, read from the SQLite file."""
    with contextlib.closing(sqlite3.connect(home.root / "store.db", timeout=5)) as db:
        found = db.execute("SELECT status, process, coalesce(checkpoint_chars, 0) FROM runs WHERE id = ?",
                           (run,)).fetchone()
    return None if found is None else (found[0], found[1], found[2])


def stored_text(home: common.Home, run: str) -> str:
    with contextlib.closing(sqlite3.connect(home.root / "store.db", timeout=5)) as db:
        rows = db.execute("SELECT pos, text FROM run_text WHERE run_id = ? ORDER BY pos", (run,)).fetchall()
    text = ""
    for pos, chunk in rows:
        text += chunk[max(len(text) - pos, 0):]
    return text


async def until_ended(client: common.Client, run: str) -> str:
    for _ in range(MAX_WAITS):
        result = await client.call("wait", {"run": run})
        if result.is_error:
            raise RuntimeError(f"wait failed: {text_of(result)[:300]}")
        if (result.meta or {}).get(STATUS) != "running":
            return text_of(result)
    raise RuntimeError(f"run {run} did not end")


async def start(client: common.Client) -> str:
    first = await client.call("generate", {"prompt": "go deep", "model": "openai/o3-pro"})
    if (first.meta or {}).get(STATUS) != "running":
        raise RuntimeError(f"not handed off: {text_of(first)[:300]}")
    return first.meta[RUN]


async def baseline(url: str) -> float:
    home = common.Home()
    try:
        env = home.env(config(home), base_url=url)
        async with common.spawn(common.streamhost_cmd(), env) as client:
            sent = time.monotonic()
            run = await start(client)
            text = await until_ended(client, run)
            took = time.monotonic() - sent
        if text != ANSWER:
            raise RuntimeError("the baseline's answer differs from the upstream's")
        return took
    finally:
        home.cleanup()


async def crash(url: str, llm: Any, figures: Figures) -> float:
    home = common.Home()
    try:
        env = home.env(config(home), base_url=url)
        before = len(llm.requests)
        killed = False
        try:
            async with common.spawn(common.streamhost_cmd(), env) as client:
                sent = time.monotonic()
                run = await start(client)
                while (found := row(home, run)) is None or found[2] < KILL_AT * len(ANSWER):
                    await anyio.sleep(0.02)
                figures.killed_at.append(found[2] / len(ANSWER))
                os.kill(client.pid, signal.SIGKILL)  # the server this bench spawned, by its pid
                killed = True
        except BaseException:
            if not killed:
                raise
        spawned = time.monotonic()
        async with anyio.create_task_group() as group:
            took_over: list[float] = []

            async def watch() -> None:
                while True:
                    found = row(home, run)
                    if found and found[0] == "running" and f":{client.pid}:" not in found[1]:
                        took_over.append(time.monotonic() - spawned)
                        return
                    if found and found[0] == "completed":
                        return
                    await anyio.sleep(0.01)

            group.start_soon(watch)
            async with common.spawn(common.streamhost_cmd(), env) as again:
                text = await until_ended(again, run)
            took = time.monotonic() - sent
        figures.takeover_s += took_over
        exact = text.encode() == ANSWER.encode() and stored_text(home, run).encode() == ANSWER.encode()
        figures.exact.append(exact)
        actions = [r.action for r in llm.requests[before:]]
        if actions.count("create") != 1 or "cancel" in actions:
            figures.problems.append(f"upstream requests: {actions}")
        if not exact:
            figures.problems.append(f"run {run}: the answer differs from the upstream's ({len(text)} chars)")
        return took
    finally:
        home.cleanup()


async def main() -> None:
    args = common.parse_args(__doc__, runs=5)
    figures = Figures()
    with common.llm_server() as llm:
        llm.script("o3-pro", Script(tokens=TOKENS, rate=RATE))
        url = f"{llm.url}"
        for i in range(1, args.runs + 1):
            if common.baseline_first(i):
                base = await baseline(url)
                crashed = await crash(url, llm, figures)
            else:
                crashed = await crash(url, llm, figures)
                base = await baseline(url)
            figures.baseline_s.append(base)
            figures.crash_s.append(crashed)
            figures.ratio.append(crashed / base)
            print(f"run {i}: baseline {base:.2f} s, killed and resumed {crashed:.2f} s", flush=True)
    print(f"\n{common.machine()}; {len(TOKENS)} tokens at {RATE}/s, killed past {KILL_AT:.0%} of the answer\n")
    print(common.table(["median of " + str(args.runs), "value"], [
        ["baseline: call -> final result (s)", f"{common.med(figures.baseline_s):.2f}"],
        ["killed + restarted: call -> final result (s)", f"{common.med(figures.crash_s):.2f}"],
        ["ratio killed / baseline (same pair)", f"{common.med(figures.ratio):.2f}"],
        ["restart spawn -> run taken over (s)", f"{common.med(figures.takeover_s):.2f}"],
        ["checkpoint covered at the kill", f"{common.med(figures.killed_at):.0%}"],
        ["final answer == upstream, byte for byte", f"{sum(figures.exact)}/{len(figures.exact)}"],
    ]))
    for problem in figures.problems:
        print("PROBLEM:", problem)


if __name__ == "__main__":
    anyio.run(main)
