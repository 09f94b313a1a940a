"""Hand-off and wait (issue 14 §1): punctuality, ``wait``'s time to first text, exact joins, 100 runs at once.

One ``streamhost serve`` child with ``[limits] handoff_s = 2`` and the test server streaming a 10 s answer
(500 tokens at 50 tokens/s). Each chain: ``generate`` (handed off at 2 s), then ``wait`` calls until the run
ends (each hands off again at 2 s). Before each ``wait``: a direct ``generate`` of a short stream on the same
warm server (its time to first text, as in ttft.py: the baseline), then a 0.3 s pause so the run has text
waiting, which the ``wait`` sends at once as its catch-up delta.
1. punctuality: result received - call sent - handoff_s, for ``generate`` and for the ``wait`` calls that
   hand off again. Goal: within 100 ms.
2. ``wait`` sent -> its first text notification, vs. the direct ``generate``'s time to first text.
   Goal: + <= 5 ms (median).
3. exact joins: the first result's text (its hand-off note cut) + every ``wait``'s deltas == the upstream's
   answer, each delta starting at the offset where the previous one ended; the last ``wait``'s result == it.
   A ``wait`` that comes after the run ended reads it from the store: its result is the whole answer and it
   streams nothing, so the deltas before it must join into a prefix of the answer (counted apart).
4. a second server (``handoff_s = 1``): N concurrent ``generate`` calls (300 tokens at 50 tokens/s each, a
   distinct answer per call) all handed off, then N concurrent ``wait`` loops until each run ends. Nothing
   lost (each final result and each join == its answer), one upstream request per run, every run
   ``completed`` in the store, and no store error or traceback in the server's stderr. The hand-off lateness
   and the time from each call to its upstream request are shown too: informative, not a goal.
``--runs N`` chains (default 5); ``--quick``: 3 chains, 20 concurrent runs; ``--only chains|crowd``.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import common
import ttft

from streamhost.testing import Script

STATUS, RUN, OFFSET = "streamhost/status", "streamhost/run", "streamhost/offset"
HANDOFF_S = 2.0
LONG_TOKENS = [f"t{i:04d} " for i in range(500)]
LONG = Script(tokens=LONG_TOKENS, rate=50)  # 10 s
ANSWER = "".join(LONG_TOKENS)
CATCH_UP_S = 0.3  # > coalesce_ms (50 ms) and many tokens: the run has text waiting when the wait comes
CONCURRENT_HANDOFF_S = 1.0
CONCURRENT_TOKENS, CONCURRENT_RATE = 300, 50  # 6 s each
MAX_WAITS = 60  # a bound on every follow loop: far more hand-offs than a 10 s run can make
WARM_CALLS = 5
# What the server must never log under the concurrent load.
STORE_TROUBLE = re.compile(r"database is locked|StoreError|Traceback|Cannot journal", re.IGNORECASE)


def note_free(text: str) -> str:
    """A handed-off result's text without the hand-off note the host appends for the calling model."""
    return text.split("\n\n[streamhost:", 1)[0]


def text_of(result: Any) -> str:
    return "".join(getattr(block, "text", "") for block in result.content)


def serve_cmd(stderr: Path) -> list[str]:
    # exec keeps the pid (py-spy and common.newest_child see the server itself); the file keeps the whole log,
    # which common.spawn would only show on a failure.
    return ["/bin/sh", "-c", 'exec "$0" serve 2>"$1"', common.STREAMHOST, str(stderr)]


@dataclass
class Join:
    """The text of one run as its caller pieced it together: the first result, then each wait's deltas.

    A wait that comes after the run ended reads it back from the store: its result is the whole answer and it
    streams nothing (``stored``); the deltas before it must then join into a prefix of the answer.
    """

    pieces: list[str]
    breaks: list[str] = field(default_factory=list)  # what went wrong, for the report
    stored: bool = False  # the last wait found the run ended

    @property
    def end(self) -> int:
        return sum(len(p) for p in self.pieces)

    def add_wait(self, notifications: list[Any], where: str) -> None:
        """One wait's notifications: its deltas must each start where the text so far ends."""
        self.stored = not any((p.message or "").startswith("following run") for p in notifications)
        for params in notifications:
            if params.meta and common.DELTA in params.meta:
                offset, delta = params.meta[OFFSET], params.meta[common.DELTA]
                if offset != self.end:
                    self.breaks.append(f"{where}: a delta at offset {offset} after {self.end} chars ({delta[:24]!r})")
                self.pieces.append(delta)

    def exact(self, answer: str, final: str | None) -> bool:
        joined = "".join(self.pieces)
        if joined != answer and not (self.stored and answer.startswith(joined)):
            at = next((i for i, (a, b) in enumerate(zip(joined, answer, strict=False)) if a != b),
                      min(len(joined), len(answer)))
            self.breaks.append(f"joined text ({len(joined)} chars) != answer ({len(answer)}) from char {at}: "
                               f"{joined[at:at + 24]!r} vs {answer[at:at + 24]!r}")
        if final != answer:
            self.breaks.append(f"final result ({len(final or '')} chars) != answer")
        return not self.breaks


@dataclass
class Figures:
    handoff_late: list[float] = field(default_factory=list)  # generate: received - sent - handoff_s
    wait_late: list[float] = field(default_factory=list)  # wait calls that handed off again
    wait_first: list[float] = field(default_factory=list)  # wait sent -> first text notification
    direct_first: list[float] = field(default_factory=list)  # the direct generate before that wait
    joins: list[bool] = field(default_factory=list)
    stored: int = 0  # chains whose last wait found the run ended (the whole answer from the store, no deltas)
    breaks: list[str] = field(default_factory=list)
    stderr_trouble: list[str] = field(default_factory=list)


async def warm(client: common.Client) -> None:
    """Untimed calls: the first imports the SDK and opens the store, which can outlast a 1 s hand-off time on a
    loaded machine, so a handed-off warm-up call is followed to its end."""
    for _ in range(WARM_CALLS):
        result = await client.call("generate", {"prompt": "warm up", "model": "openai/bench-chat"})
        for _ in range(MAX_WAITS):
            if result.is_error or (result.meta or {}).get(STATUS) != "running":
                break
            result = await client.call("wait", {"run": result.meta[RUN]})
        if result.is_error:
            raise RuntimeError(f"warm-up call failed: {text_of(result)[:300]}")


async def chain(client: common.Client, llm: Any, figures: Figures) -> None:
    """One long run: handed off by generate, followed by waits to its end."""
    client.reset()
    t0 = time.monotonic()
    first = await client.call("generate", {"prompt": "write at length", "model": "openai/long"})
    figures.handoff_late.append(time.monotonic() - t0 - HANDOFF_S)
    meta = first.meta or {}
    if first.is_error or meta.get(STATUS) != "running":
        raise RuntimeError(f"generate was not handed off: {meta} {text_of(first)[:300]}")
    run, given = meta[RUN], note_free(text_of(first))
    join = Join([given])
    streamed = "".join(p.meta[common.DELTA] for _, p in client.texts())
    if streamed != given:
        join.breaks.append(f"generate streamed {len(streamed)} chars but its result holds {len(given)}")
    final = None
    for k in range(MAX_WAITS):
        figures.direct_first.append((await ttft.via_streamhost(client, llm, "chat", "bench-chat"))[0])
        await anyio.sleep(CATCH_UP_S)
        client.reset()
        t0 = time.monotonic()
        rest = await client.call("wait", {"run": run})
        received = time.monotonic()
        if rest.is_error:
            raise RuntimeError(f"wait failed: {text_of(rest)[:300]}")
        texts = client.texts()
        if texts:
            figures.wait_first.append(texts[0][0] - t0)
        else:
            figures.direct_first.pop()  # keep the two lists paired
        join.add_wait([params for _, params in client.progress], f"wait {k}")
        if (rest.meta or {}).get(STATUS) != "running":
            final = text_of(rest)
            break
        figures.wait_late.append(received - t0 - HANDOFF_S)
    figures.joins.append(join.exact(ANSWER, final))
    figures.stored += join.stored
    figures.breaks += [f"chain {len(figures.joins)}: {b}" for b in join.breaks]


@dataclass
class Crowd:
    """What the concurrent part saw."""

    n: int
    handed_off: int = 0
    late: list[float] = field(default_factory=list)
    waits: int = 0
    finals_ok: int = 0
    joins_ok: int = 0
    errors: list[str] = field(default_factory=list)  # error results and broken joins, for the report
    error_results: int = 0
    wait_counts: dict[int, int] = field(default_factory=dict)  # wait calls per run
    stored: int = 0  # runs whose last wait found them ended (the whole answer from the store, no deltas)
    reach: list[float] = field(default_factory=list)  # call sent -> its upstream request at the test server
    single_request: int = 0
    store: dict[str, int] = field(default_factory=dict)
    stderr_trouble: list[str] = field(default_factory=list)
    seconds: float = 0.0


def crowd_tokens(i: int) -> list[str]:
    """Run i's answer: its own tokens, so a piece of one run in another's text cannot go unnoticed."""
    return [f"r{i:03d}w{j:03d} " for j in range(CONCURRENT_TOKENS)]


async def call_with_token(client: common.Client, name: str, arguments: dict[str, Any], token: str) -> Any:
    """A call whose progress notifications carry ``token``, so they can be told apart from the others'."""
    with anyio.fail_after(300):
        return await client.session.call_tool(name, arguments, meta={"progress_token": token})


async def crowd(n: int, llm: Any, home: common.Home, stderr: Path) -> Crowd:
    """N handed-off runs at once, then N waits, on a server of its own (handoff_s = 1)."""
    for i in range(n):
        llm.script(f"crowd-{i:03d}", Script(tokens=crowd_tokens(i), rate=CONCURRENT_RATE))
    seen = Crowd(n)
    env = home.env(f"[limits]\nhandoff_s = {CONCURRENT_HANDOFF_S}\n", base_url=llm.url, name="crowd")
    firsts: dict[int, Any] = {}
    finals: dict[int, Any] = {}
    sent: dict[int, float] = {}
    async with common.spawn(serve_cmd(stderr), env) as client:
        await warm(client)
        started = time.monotonic()

        async def first(i: int) -> None:
            t0 = sent[i] = time.monotonic()
            firsts[i] = await call_with_token(client, "generate", {"prompt": "write", "model": f"openai/crowd-{i:03d}"},
                                              f"g{i}")
            seen.late.append(time.monotonic() - t0 - CONCURRENT_HANDOFF_S)

        async def follow(i: int) -> None:
            run = (firsts[i].meta or {}).get(RUN)
            for k in range(MAX_WAITS):
                rest = await call_with_token(client, "wait", {"run": run}, f"w{i}.{k}")
                seen.waits += 1
                seen.wait_counts[i] = k + 1
                if rest.is_error or (rest.meta or {}).get(STATUS) != "running":
                    finals[i] = rest
                    return

        async with anyio.create_task_group() as group:
            for i in range(n):
                group.start_soon(first, i)
        async with anyio.create_task_group() as group:
            for i in range(n):
                if (firsts[i].meta or {}).get(STATUS) == "running":
                    group.start_soon(follow, i)
        seen.seconds = time.monotonic() - started
        by_token: dict[str, list[Any]] = {}
        for _, params in client.progress:
            by_token.setdefault(str(params.progress_token), []).append(params)
    for i in range(n):
        answer, result = "".join(crowd_tokens(i)), firsts[i]
        if result.is_error:
            seen.error_results += 1
            seen.errors.append(f"run {i}: generate failed: {text_of(result)[:200]}")
            continue
        if (result.meta or {}).get(STATUS) != "running":
            seen.finals_ok += text_of(result) == answer  # ended before the hand-off: nothing to join
            continue
        seen.handed_off += 1
        final = finals.get(i)
        if final is None or final.is_error:
            seen.error_results += 1
            seen.errors.append(f"run {i}: wait failed: {text_of(final)[:200]}" if final is not None
                               else f"run {i}: no final result")
            continue
        join = Join([note_free(text_of(result))])
        streamed = "".join(p.meta[common.DELTA] for p in by_token.get(f"g{i}", [])
                           if p.meta and common.DELTA in p.meta)
        if streamed != join.pieces[0]:
            join.breaks.append(f"generate streamed {len(streamed)} chars but its result holds {join.end}")
        for k in range(seen.wait_counts.get(i, 0)):
            join.add_wait(by_token.get(f"w{i}.{k}", []), f"wait {k}")
        seen.finals_ok += text_of(final) == answer
        seen.joins_ok += join.exact(answer, text_of(final))
        seen.stored += join.stored
        seen.errors += [f"run {i}: {b}" for b in join.breaks]
    counts: dict[str, int] = {}
    for record in llm.requests:
        if record.model and record.model.startswith("crowd-"):
            counts[record.model] = counts.get(record.model, 0) + 1
            seen.reach.append(record.started - sent[int(record.model.removeprefix("crowd-"))])
    seen.single_request = sum(1 for c in counts.values() if c == 1)
    listing = subprocess.run([common.STREAMHOST, "runs", "list", "--json", "--limit", str(n + 50)], env=env,
                             capture_output=True, text=True, timeout=120, check=True)
    for record in json.loads(listing.stdout)["runs"]:
        if "crowd-" in (record["model"] or ""):
            seen.store[record["status"]] = seen.store.get(record["status"], 0) + 1
    seen.stderr_trouble = trouble_in(stderr)
    return seen


def trouble_in(stderr: Path) -> list[str]:
    return [line for line in stderr.read_text(errors="replace").splitlines() if STORE_TROUBLE.search(line)]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def extra(parser: Any) -> None:
    parser.add_argument("--quick", action="store_true", help="3 chains and 20 concurrent runs")
    parser.add_argument("--concurrent", type=int, default=100, help="runs handed off at once (default 100)")
    parser.add_argument("--only", choices=("chains", "crowd"), help="run one part only")


async def main() -> None:
    args = common.parse_args(__doc__, runs=5, extra=extra)
    runs, n = (3, min(args.concurrent, 20)) if args.quick else (args.runs, args.concurrent)
    figures, seen = Figures(), None
    home = common.Home()
    stderr = home.root / "serve-chains.log"
    with common.llm_server() as llm:
        llm.script("long", LONG)
        llm.script("bench-chat", ttft.SCRIPT)
        try:
            if args.only != "crowd":
                env = home.env(f"[limits]\nhandoff_s = {HANDOFF_S}\n", base_url=llm.url)
                async with common.spawn(serve_cmd(stderr), env) as client:
                    await warm(client)
                    for _ in range(runs):
                        await chain(client, llm, figures)
                figures.stderr_trouble = trouble_in(stderr)
            if args.only != "chains":
                seen = await crowd(n, llm, home, home.root / "serve-crowd.log")
        finally:
            home.cleanup()
    report(figures, seen, runs)


def report(figures: Figures, seen: Crowd | None, runs: int) -> None:
    print(f"handoff: {common.machine()}")
    if figures.joins:
        print(f"\n1-3. {runs} chains: handoff_s = {HANDOFF_S:g}, a 10 s stream (500 tokens at 50/s); "
              f"a {CATCH_UP_S:g} s pause before each wait")
        rows = []
        for name, late in (("generate (hand-off)", figures.handoff_late),
                           ("wait (hands off again)", figures.wait_late)):
            rows.append([name, len(late), common.ms(common.med(late)), common.ms(pct(late, 0.99)),
                         common.ms(max(late)), "met" if late and pct(late, 0.99) <= 0.1 else "MISSED"])
        print(common.table(["1. received - sent - handoff_s", "n", "p50 ms", "p99 ms", "max ms",
                            "goal p99 <= 100 ms"], rows))
        diff = common.med(figures.wait_first) - common.med(figures.direct_first)
        paired = common.med([w - d for w, d in zip(figures.wait_first, figures.direct_first, strict=True)])
        rows = [["direct generate: sent -> first text", len(figures.direct_first),
                 common.ms(common.med(figures.direct_first)), common.ms(pct(figures.direct_first, 0.99)), "", ""],
                ["wait: sent -> first text (catch-up)", len(figures.wait_first),
                 common.ms(common.med(figures.wait_first)), common.ms(pct(figures.wait_first, 0.99)),
                 f"{diff * 1000:+.1f} (paired {paired * 1000:+.1f})", "met" if diff <= 0.005 else "MISSED"]]
        print(common.table(["2. time to first text", "n", "median ms", "p99 ms", "wait - direct ms",
                            "goal + <= 5 ms"], rows))
        ok = sum(figures.joins)
        print(f"3. exact joins (first result + wait deltas == answer, offsets contiguous, last wait == answer): "
              f"{ok}/{len(figures.joins)} {'OK' if ok == len(figures.joins) else 'FAIL'}; the last wait found the "
              f"run ended (whole answer from the store, no deltas) in {figures.stored}; "
              f"store errors / tracebacks in stderr: {len(figures.stderr_trouble)}")
        for line in (figures.breaks + figures.stderr_trouble)[:10]:
            print(f"  {line}")
    if seen is not None:
        trouble = len(seen.stderr_trouble)
        print(f"\n4. {seen.n} concurrent runs (handoff_s = {CONCURRENT_HANDOFF_S:g}; {CONCURRENT_TOKENS} tokens at "
              f"{CONCURRENT_RATE}/s each), then a wait loop per run; {seen.seconds:.1f} s in all")
        rows = [["handed off", f"{seen.handed_off}/{seen.n}"],
                ["hand-off lateness under load, p50 / p99 ms",
                 f"{common.ms(common.med(seen.late))} / {common.ms(pct(seen.late, 0.99))}"],
                ["call sent -> its upstream request (test server's stamp), p50 / p99 ms",
                 f"{common.ms(common.med(seen.reach))} / {common.ms(pct(seen.reach, 0.99))}"],
                ["wait calls", str(seen.waits)],
                ["runs ended before their last wait (whole answer from the store)", str(seen.stored)],
                ["final result == answer", f"{seen.finals_ok}/{seen.n}"],
                ["first result + deltas == answer, offsets contiguous", f"{seen.joins_ok}/{seen.handed_off}"],
                ["error results", str(seen.error_results)],
                ["one upstream request per run", f"{seen.single_request}/{seen.n}"],
                ["runs in the store", ", ".join(f"{k} {v}" for k, v in sorted(seen.store.items())) or "none"],
                ["store errors / tracebacks in stderr", str(trouble)]]
        print(common.table(["4. concurrent hand-off + wait", "value"], rows))
        good = (seen.finals_ok == seen.n and seen.joins_ok == seen.handed_off and not seen.error_results
                and not trouble
                and seen.single_request == seen.n and seen.store == {"completed": seen.n})
        print(f"nothing lost, no store errors: {'OK' if good else 'FAIL'}")
        for line in (seen.errors + seen.stderr_trouble)[:10]:
            print(f"  {line}")


if __name__ == "__main__":
    anyio.run(main)
