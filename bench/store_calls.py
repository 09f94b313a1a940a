"""What the store costs real calls: ``streamhost serve`` with the store on against the same server with it off.

Two servers run side by side on one test LLM server, each driven by a real MCP client: one with the store on
(a SQLite file named by ``STREAMHOST_STORE``), one with ``[store] enabled = false``. Calls alternate between
them run by run (the side that goes first alternates); every figure is a median.

1. ``generate`` of ``--tokens`` (10,000) tokens at 2,000 tokens/s: ``call_tool`` start -> result, and the
   server's CPU per call (psutil, user + system). Goals: wall ratio on/off <= 1.02, CPU ratio <= 1.05.
2. Time to first text on warm servers (call start -> first ``streamhost/delta`` progress notification), with
   its "in" part (call start -> the request at the upstream). Goal: on - off <= +1 ms (median).
   The first call of a fresh server, once it is idle (>= 3 s after ``tools/list``: the warm-up done): with the
   store on it opens the store, a new file (created and migrated) or one an earlier server left, against a
   store-off server.
3. Continuing a thread of 200 turns (100 calls with short answers; each measured call adds 2 more): call
   start -> the request at the upstream, against a call with no thread on the same server (and on the
   store-off server); every upstream request is checked to carry the whole history. Goal: + <= 5 ms (median).
   Beside it, to split the figure: the openai SDK alone sending the same messages (its CPU in ``create()``),
   and the store's own reads for the thread (``thread()`` + ``turns()``), timed after the servers exit.
4. ``--concurrent`` (50) streams at once, ``--burst-tokens`` (500) tokens each at 100 tokens/s, each with its
   own text, on each server. Then ``streamhost runs show ID --json`` for every run (the burst's and part 1's):
   status completed and journaled text == the answer exactly; ``runs list --json`` counts the runs by status;
   the store-on server's log is searched for "database is locked" and journal failures.

    .venv/bin/python bench/store_calls.py [--runs 5]    # ~8 min on a loaded 2-core machine
    .venv/bin/python bench/store_calls.py --quick       # a smoke run, ~2 min (figures not meaningful)
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import common
import psutil

from streamhost.testing import Script

LONG, TTFT, SHORT = "bench-long", "bench-ttft", "bench-short"
STORE_OFF = "[store]\nenabled = false\n"
SIDES = ("off", "on")
UPSTREAM = ("no thread, store off", "no thread", "thread", "SDK, 1 message", "SDK, the thread's messages")
LOG_PROBLEMS = ("database is locked", "cannot journal", "cannot record", "could not be opened")


# ----------------------------------------------------------------------------------------------- servers


class Side:
    """One server's isolated home: its environment, store file and log (the server's stderr)."""

    def __init__(self, name: str, base_url: str, home: common.Home | None = None) -> None:
        self.name = name
        self.home = home or common.Home()
        self.store = self.home.root / "store.sqlite3"
        self.log = self.home.root / f"{name}.log"
        self.env = self.home.env(STORE_OFF if name == "off" else "", base_url=base_url, name=name)
        if name == "on":
            self.env["STREAMHOST_STORE"] = str(self.store)

    def problems(self) -> list[str]:
        text = self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""
        return [line for line in text.splitlines() if any(p in line.lower() for p in LOG_PROBLEMS)]


@asynccontextmanager
async def serve(side: Side) -> AsyncIterator[common.Client]:
    """``streamhost serve`` for ``side``; its stderr goes to ``side.log`` (``exec`` keeps the pid psutil reads)."""
    command = ["/bin/sh", "-c", 'exec "$0" serve 2>>"$1"', common.STREAMHOST, str(side.log)]
    try:
        async with common.spawn(command, side.env) as client:
            yield client
    except BaseException:
        if side.log.exists():
            print(side.log.read_text(encoding="utf-8", errors="replace")[-4000:])
        raise


async def settle(client: common.Client, least: float) -> None:
    """Wait ``least`` seconds, then until the server is idle (under 20 ms of CPU in a second; at most 60 s): the
    warm-up's imports are done, so a first call measures the store's opening, not the imports left over."""
    await anyio.sleep(least)
    deadline = time.monotonic() + 60
    before = cpu_of(client.pid)
    while time.monotonic() < deadline:
        await anyio.sleep(1)
        now = cpu_of(client.pid)
        if now - before < 0.02:
            return
        before = now


def cpu_of(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def text_of(result: Any) -> str:
    return result.content[0].text if result.content else ""


async def generate(client: common.Client, arguments: dict[str, Any], timeout: float = 120) -> Any:
    client.reset()
    result = await client.call("generate", {"prompt": "go", **arguments}, timeout=timeout)
    if result.is_error:
        raise RuntimeError(f"generate failed: {text_of(result)}")
    return result


def request_after(llm: Any, before: int) -> Any:
    """The first streaming request the upstream saw since ``before`` (a GET /v1/models may come in between)."""
    return next(r for r in llm.requests[before:] if r.api in ("chat", "responses"))


# ----------------------------------------------------------------------------------------------- parts


async def long_call(client: common.Client, expected: str) -> dict[str, Any]:
    cpu0, t0 = cpu_of(client.pid), time.monotonic()
    result = await generate(client, {"model": f"openai/{LONG}"}, timeout=300)
    wall, cpu = time.monotonic() - t0, cpu_of(client.pid) - cpu0
    deltas = "".join(p.meta[common.DELTA] for _, p in client.texts())
    return {"wall": wall, "cpu": cpu, "ok": deltas == text_of(result) == expected,
            "run": (result.meta or {}).get("streamhost/run")}


async def first_text(client: common.Client, llm: Any, arguments: dict[str, Any]) -> tuple[float, float]:
    """(call start -> first text, call start -> request at the upstream)."""
    before = len(llm.requests)
    t0 = time.monotonic()
    await generate(client, arguments)
    if not client.texts():
        raise RuntimeError("no text arrived")
    return client.texts()[0][0] - t0, request_after(llm, before).started - t0


async def to_upstream(client: common.Client, llm: Any, arguments: dict[str, Any]) -> tuple[float, list[Any]]:
    """(call start -> request at the upstream, the messages that request carried)."""
    before = len(llm.requests)
    t0 = time.monotonic()
    await generate(client, {"model": f"openai/{SHORT}", **arguments})
    record = request_after(llm, before)
    return record.started - t0, (record.body or {}).get("messages", [])


async def sdk_to_upstream(sdk: Any, llm: Any, messages: list[Any]) -> tuple[float, float]:
    """The openai SDK alone (this process): (``create()`` -> the request at the upstream, this thread's CPU in
    ``create()``: building and sending the request, without the test server's thread); stream read to its end."""
    before = len(llm.requests)
    t0, cpu0 = time.monotonic(), time.thread_time()
    stream = await sdk.chat.completions.create(model=SHORT, messages=messages, stream=True)
    cpu = time.thread_time() - cpu0
    async with stream:
        async for _ in stream:
            pass
    return request_after(llm, before).started - t0, cpu


async def thread_reads(side: Side, thread_id: str, runs: int) -> list[float]:
    """What continuing the thread reads from the store (``Recorder.thread``: its row, then its turns), timed in
    this process on the store-on server's file after the servers exited."""
    from streamhost.host.config import StoreSettings
    from streamhost.store import open_store

    store = await open_store(StoreSettings(path=str(side.store)))
    times = []
    try:
        for _ in range(runs + 1):
            t0 = time.monotonic()
            await store.thread(thread_id)
            await store.turns(thread_id)
            times.append(time.monotonic() - t0)
    finally:
        await store.close()
    return times[1:]  # the first one opens the reader's connection


async def fresh_first_calls(args: argparse.Namespace, llm: Any) -> dict[str, list[float]]:
    """The first call's time to text on fresh servers: store off, on with a new file, on with an existing file."""
    out: dict[str, list[float]] = {"off": [], "on, new file": [], "on, existing file": []}
    for run in range(args.first_runs):
        kept = Side("on", llm.url)
        try:
            order = ["off", "on, new file", "on, existing file"]
            for kind in order if common.baseline_first(run) else order[1:] + order[:1]:
                side = Side("off", llm.url) if kind == "off" else Side("on", llm.url, kept.home)
                async with serve(side) as client:
                    await settle(client, args.settle)
                    out[kind].append((await first_text(client, llm, {"model": f"openai/{TTFT}"}))[0])
                if kind == "off":
                    side.home.cleanup()
                elif kind == "on, new file" and not side.store.exists():
                    raise RuntimeError("the store-on server wrote no store file")
        finally:
            kept.home.cleanup()
    return out


async def burst(client: common.Client, n: int, texts: dict[int, list[str]]) -> dict[str, Any]:
    """``n`` streams at once; each call's result text checked against its own tokens."""
    results: dict[int, Any] = {}

    async def one(i: int) -> None:
        results[i] = await client.call("generate", {"prompt": "go", "model": f"openai/bench-c{i}"}, timeout=600)

    client.reset()
    cpu0, t0 = cpu_of(client.pid), time.monotonic()
    async with anyio.create_task_group() as group:
        for i in range(n):
            group.start_soon(one, i)
    wall, cpu = time.monotonic() - t0, cpu_of(client.pid) - cpu0
    wrong = [i for i in range(n) if results[i].is_error or text_of(results[i]) != "".join(texts[i])]
    runs = [((results[i].meta or {}).get("streamhost/run"), "".join(texts[i])) for i in range(n)]
    return {"wall": wall, "cpu": cpu, "wrong": wrong, "runs": runs}


async def check_store(side: Side, expected: list[tuple[str | None, str]]) -> dict[str, Any]:
    """Every run through the CLI: completed, its journaled text exactly the answer; nothing left running."""
    bad: list[str] = []
    limit = anyio.Semaphore(2)

    async def show(run_id: str | None, answer: str) -> None:
        if run_id is None:
            bad.append("a call came back without a run id")
            return
        async with limit:
            done = await anyio.run_process([common.STREAMHOST, "runs", "show", run_id, "--json"], env=side.env,
                                           check=False)
        if done.returncode:
            bad.append(f"{run_id}: runs show failed: {done.stderr.decode()[-300:]}")
            return
        record = json.loads(done.stdout)
        if record["status"] != "completed":
            bad.append(f"{run_id}: {record['status']}")
        elif record["text"] != answer:
            stored = record["text"] or ""
            bad.append(f"{run_id}: journaled text differs ({len(stored)} chars stored, {len(answer)} answered)")

    async with anyio.create_task_group() as group:
        for run_id, answer in expected:
            group.start_soon(show, run_id, answer)
    done = await anyio.run_process([common.STREAMHOST, "runs", "list", "--json", "--limit", "10000"],
                                   env=side.env)
    statuses: dict[str, int] = {}
    for record in json.loads(done.stdout)["runs"]:
        statuses[record["status"]] = statuses.get(record["status"], 0) + 1
    return {"checked": len(expected), "bad": bad, "statuses": statuses}


# ----------------------------------------------------------------------------------------------- main


@dataclass
class Results:
    """Everything measured, for the report."""

    first: dict[str, list[float]]  # kind -> first call's time to text
    long: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: {side: [] for side in SIDES})
    ttft: dict[str, list[tuple[float, float]]] = field(default_factory=lambda: {side: [] for side in SIDES})
    upstream: dict[str, list[float]] = field(default_factory=lambda: {kind: [] for kind in UPSTREAM})
    sdk_cpu: dict[str, list[float]] = field(default_factory=lambda: {kind: [] for kind in UPSTREAM[3:]})
    history: list[int] = field(default_factory=list)  # messages each thread continuation sent
    reads: list[float] = field(default_factory=list)
    bursts: dict[str, dict[str, Any]] = field(default_factory=dict)
    store: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


async def continuations(args: argparse.Namespace, llm: Any, clients: dict[str, common.Client], sdk: Any,
                        out: Results) -> str:
    """Build a thread of ``args.turns`` turns on the store-on server, then time continuing it; its id."""
    on = clients["on"]
    thread = (await generate(on, {"model": f"openai/{SHORT}", "thread": "new"})).meta["streamhost/thread"]
    for _ in range(args.turns // 2 - 1):
        await generate(on, {"model": f"openai/{SHORT}", "thread": thread})
    sent: list[Any] = []
    servers, alone = UPSTREAM[:3], UPSTREAM[3:]
    for run in range(args.continuations):
        # The SDK calls come after the server's: they send the messages of this run's continuation.
        for kind in servers + alone if common.baseline_first(run) else servers[::-1] + alone[::-1]:
            if kind in alone:
                took, cpu = await sdk_to_upstream(sdk, llm, sent if kind.endswith("messages") else
                                                  [{"role": "user", "content": "go"}])
                out.sdk_cpu[kind].append(cpu)
            else:
                took, messages = await to_upstream(clients["off"] if kind.endswith("off") else on, llm,
                                                   {"thread": thread} if kind == "thread" else {})
                if kind == "thread":
                    if len(messages) != args.turns + 2 * len(out.history) + 1:
                        raise RuntimeError(f"a continuation sent {len(messages)} messages, not the "
                                           f"{args.turns + 2 * len(out.history)} earlier turns + the prompt")
                    out.history.append(len(messages))
                    sent = messages
            out.upstream[kind].append(took)
    return thread


async def main() -> None:
    args = common.parse_args(__doc__, runs=5, extra=_options)
    if args.quick:
        args.runs, args.tokens, args.ttft_runs, args.first_runs = 2, 2000, 10, 1
        args.continuations, args.concurrent, args.burst_tokens = 4, 10, 100
    long_tokens = common.words(args.tokens)
    texts = {i: [f"c{i}w{j} " for j in range(args.burst_tokens)] for i in range(args.concurrent)}
    sides: dict[str, Side] = {}
    try:
        with common.llm_server() as llm:
            llm.script(LONG, Script(tokens=long_tokens, rate=2000))
            llm.script(TTFT, Script(tokens=common.words(20), rate=2000))
            llm.script(SHORT, Script(tokens=["ok ", "fine"]))
            for i in range(args.concurrent):
                llm.script(f"bench-c{i}", Script(tokens=texts[i], rate=100))
            out = Results(first=await fresh_first_calls(args, llm))
            sides.update((name, Side(name, llm.url)) for name in SIDES)
            async with AsyncExitStack() as stack:
                clients = {name: await stack.enter_async_context(serve(side)) for name, side in sides.items()}
                for client in clients.values():  # the warm-up's imports, off the measured calls
                    await settle(client, args.settle)
                for client in clients.values():  # untimed: the store opens, connections, first-use costs
                    for _ in range(3):
                        await generate(client, {"model": f"openai/{TTFT}"})
                    await generate(client, {"model": f"openai/{SHORT}"})
                for run in range(args.runs):
                    for name in SIDES if common.baseline_first(run) else SIDES[::-1]:
                        out.long[name].append(await long_call(clients[name], "".join(long_tokens)))
                for run in range(args.ttft_runs):
                    for name in SIDES if common.baseline_first(run) else SIDES[::-1]:
                        out.ttft[name].append(await first_text(clients[name], llm, {"model": f"openai/{TTFT}"}))
                sdk = common.sdk_client(llm.url)
                stack.push_async_callback(sdk.close)
                thread = await continuations(args, llm, clients, sdk, out)
                for name in SIDES:
                    out.bursts[name] = await burst(clients[name], args.concurrent, texts)
        # The servers have exited (their logs are whole) and so has the test server, whose thread in this
        # process would slow the reads timed here about threefold (GIL hand-offs with aiosqlite's thread).
        out.problems = sides["on"].problems()
        expected = out.bursts["on"]["runs"] + [(r["run"], "".join(long_tokens)) for r in out.long["on"]]
        out.store = await check_store(sides["on"], expected)
        out.reads = await thread_reads(sides["on"], thread, args.continuations * 2)
    finally:
        for side in sides.values():
            side.home.cleanup()
    report(args, out)


def ratio_row(label: str, off: float, on: float, goal: float) -> list[str]:
    verdict = "met" if on / off <= goal else "MISSED"
    return [label, f"{off:.3f}", f"{on:.3f}", f"{on / off:.3f}×", f"<= {goal}×", verdict]


def report(args: argparse.Namespace, out: Results) -> None:
    m = common.med
    print(f"store_calls: {common.machine()}; medians, store off vs on interleaved")
    wall = {s: m([r["wall"] for r in out.long[s]]) for s in SIDES}
    cpu = {s: m([r["cpu"] for r in out.long[s]]) for s in SIDES}
    text_ok = all(r["ok"] for s in SIDES for r in out.long[s])
    print(f"\n1. {args.tokens:,} tokens at 2,000 tokens/s through generate, {args.runs} runs per side "
          f"(deltas == result == tokens: {'OK' if text_ok else 'FAIL'})")
    print(common.table(["measure", "store off", "store on", "on/off", "goal", ""], [
        ratio_row("call start -> result, s", wall["off"], wall["on"], 1.02),
        ratio_row("server CPU per call, s", cpu["off"], cpu["on"], 1.05),
    ]))

    ttft, first = out.ttft, out.first
    paired = [a[0] - b[0] for a, b in zip(ttft["on"], ttft["off"], strict=True)]
    diff = m([t for t, _ in ttft["on"]]) - m([t for t, _ in ttft["off"]])
    print(f"\n2. time to first text, ms ({args.ttft_runs} runs per side on warm servers; first call: "
          f"{args.first_runs} fresh servers per kind, once idle >= {args.settle:g} s after tools/list)")
    rows = [["warm: call start -> first text", common.ms(m([t for t, _ in ttft["off"]])),
             common.ms(m([t for t, _ in ttft["on"]])), f"{diff * 1000:+.2f} (paired {m(paired) * 1000:+.2f})",
             "<= +1 ms: " + ("met" if diff <= 0.001 else "MISSED")],
            ["warm: call start -> request at upstream", common.ms(m([u for _, u in ttft["off"]])),
             common.ms(m([u for _, u in ttft["on"]])),
             f"{(m([u for _, u in ttft['on']]) - m([u for _, u in ttft['off']])) * 1000:+.2f}", "–"]]
    for kind in ("on, new file", "on, existing file"):
        rows.append([f"first call, {kind}", common.ms(m(first["off"])), common.ms(m(first[kind])),
                     f"{(m(first[kind]) - m(first['off'])) * 1000:+.1f}", "reported"])
    print(common.table(["measure", "store off", "store on", "on - off ms", "goal"], rows))

    upstream, history = out.upstream, out.history
    extra = m(upstream["thread"]) - m(upstream["no thread"])
    sdk_extra = m(out.sdk_cpu[UPSTREAM[4]]) - m(out.sdk_cpu[UPSTREAM[3]])
    print(f"\n3. call start -> request at upstream, ms ({args.continuations} runs each; the thread held "
          f"{min(history) - 1}-{max(history) - 1} earlier turns: messages sent {min(history)}-{max(history)}, "
          "every one checked)")
    labels = dict(zip(UPSTREAM, ["no thread, store off", "no thread, store on", f"{args.turns}-turn thread, store on",
                                 "openai SDK alone, 1 message", "openai SDK alone, the thread's messages"],
                      strict=True))
    print(common.table(["call", "median", "max", "CPU in create()"], [
        [labels[kind], common.ms(m(upstream[kind])), common.ms(max(upstream[kind])),
         common.ms(m(out.sdk_cpu[kind])) if kind in out.sdk_cpu else "–"] for kind in UPSTREAM]))
    print(f"thread - no thread: {extra * 1000:+.1f} ms, goal <= +5 ms: {'met' if extra <= 0.005 else 'MISSED'}")
    print(f"  the openai SDK's own CPU for the longer message list (in create(), this process): "
          f"{sdk_extra * 1000:+.1f} ms")
    print(f"  the store's reads for the thread (its row + {min(history) - 1}+ turns, this process, "
          f"{len(out.reads)} runs): {common.ms(m(out.reads))} ms median, {common.ms(max(out.reads))} max")

    print(f"\n4. {args.concurrent} concurrent streams of {args.burst_tokens} tokens at 100 tokens/s on each server")
    print(common.table(["server", "wall s", "server CPU s", "answers whole"], [
        [name, f"{b['wall']:.2f}", f"{b['cpu']:.2f}", f"{args.concurrent - len(b['wrong'])}/{args.concurrent}"]
        for name, b in out.bursts.items()]))
    store = out.store
    print(f"store: {store['checked'] - len(store['bad'])}/{store['checked']} runs completed with their journaled "
          f"text == the answer (burst + part 1); runs by status: {store['statuses']}")
    for line in store["bad"][:10]:
        print(f"  BAD {line}")
    print("store-on server log: " + ("no locked database, no journal failure" if not out.problems else ""))
    for line in out.problems[:10]:
        print(f"  {line}")


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tokens", type=int, default=10_000, help="tokens of the long stream (default 10,000)")
    parser.add_argument("--ttft-runs", type=int, default=30, help="warm time-to-text runs per side (default 30)")
    parser.add_argument("--first-runs", type=int, default=5, help="fresh servers per kind for the first call "
                        "(default 5)")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds at least between tools/list and the first "
                        "call, and then until the server is idle (the warm-up done; default 3)")
    parser.add_argument("--turns", type=int, default=200, help="turns in the thread (default 200)")
    parser.add_argument("--continuations", type=int, default=10, help="thread continuations timed (default 10)")
    parser.add_argument("--concurrent", type=int, default=50, help="streams at once (default 50)")
    parser.add_argument("--burst-tokens", type=int, default=500, help="tokens per concurrent stream (default 500)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: few and short calls")


if __name__ == "__main__":
    anyio.run(main)
