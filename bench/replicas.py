"""Two ``streamhost serve --http`` replicas on one PostgreSQL, N concurrent streaming calls spread across both by
the client (default 400, each 200 tokens at 50 tok/s), and under that load: a thread started on replica A
continued on B, and a long run handed off on A waited on from B (B follows A's journal in the database).

Checked: every call completes with exactly its own upstream's text, streamed deltas included (nothing lost or
crossed); the thread's second call on B sends A's turn upstream; the handed-off run's parts, A's first result
then B's waits, join into exactly its upstream's text. Measured (median over --runs, each on a fresh database):
wall time of the load against the ideal (TOKENS / RATE), time to first text (median, p99), and how long the
cross-replica continue and wait took under load. The PostgreSQL server is started from the machine's server
binaries (``tests/pg_server.py``); the clients run in processes of their own, as in http_load.py.
"""

from __future__ import annotations

import collections
import json
import re
import subprocess
import sys
import time
from typing import Any

import anyio
import common
import http_common

from streamhost.testing import Script

sys.path.insert(0, str(common.BENCH.parent))  # tests/pg_server.py: the test suite's PostgreSQL starter
from tests.pg_server import new_database, pg_bin, running_server

TOKENS = 200
RATE = 50.0
SLOW = [f"s{i} " for i in range(300)]  # 15 s at 20 tok/s: handed off on A, followed from B
HANDOFF_S = 6


def tokens_of(call: int) -> list[str]:
    return [f"c{call}t{i} " for i in range(TOKENS)]


# ------------------------------------------------------------------------------------- client processes


async def client_main(urls: list[str], calls: list[int], start_at: float) -> None:
    """Run ``calls`` at once from this process at ``start_at``, call i on replica i % 2; one JSON line per call."""
    import httpx2

    limits = httpx2.Limits(max_connections=len(calls) * 2, max_keepalive_connections=len(calls) * 2)
    results: list[dict[str, Any]] = []
    async with httpx2.AsyncClient(limits=limits, timeout=httpx2.Timeout(300, read=300)) as http:

        async def one(call: int) -> None:
            try:
                await attempt(call)
            except Exception as exc:  # reported as this call's problem; the others go on
                while len(getattr(exc, "exceptions", ())) == 1:
                    exc = exc.exceptions[0]  # type: ignore[attr-defined]  # the SDK's task groups wrap the cause
                results.append({"call": call, "t0": 0.0, "first": None, "end": 0.0, "error": True, "waits": 0,
                                "offsets": [],
                                "text": f"{type(exc).__name__}: {exc}"[:300], "deltas": ""})

        async def attempt(call: int) -> None:
            async with http_common.session(urls[call % 2], 0, http_client=http) as client:
                await anyio.sleep(max(0.0, start_at - time.monotonic()))
                t0 = time.monotonic()
                result = await client.call("generate", {"prompt": "x", "model": f"openai/load{call}"}, timeout=300)
                texts, waits = client.texts(), 0
                if (result.meta or {}).get("streamhost/status") == "running":
                    # Handed off (a loaded machine): follow it from the other replica, as a client behind a load
                    # balancer would; its deltas go on where the first call's ended.
                    async with http_common.session(urls[(call + 1) % 2], 0, http_client=http) as other:
                        while (result.meta or {}).get("streamhost/status") == "running" and waits < 100:
                            result = await other.call("wait", {"run": result.meta["streamhost/run"]}, timeout=300)
                            waits += 1
                        texts += other.texts()
                results.append({"call": call, "t0": t0, "first": texts[0][0] if texts else None,
                                "end": time.monotonic(), "text": result.content[0].text if result.content else "",
                                "error": result.is_error, "deltas": "".join(p.meta[common.DELTA] for _, p in texts),
                                "offsets": [p.meta["streamhost/offset"] for _, p in texts],
                                "waits": waits})

        async with anyio.create_task_group() as tg:
            for call in calls:
                tg.start_soon(one, call)
    for result in results:
        print(json.dumps(result))


def spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, __file__, *args], stdout=subprocess.PIPE, text=True)


def collect(process: subprocess.Popen[str]) -> list[Any]:
    out, _ = process.communicate(timeout=900)
    if process.returncode:
        raise RuntimeError(f"a bench process failed ({process.returncode})")
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def check(results: list[dict[str, Any]], calls: range) -> list[str]:
    problems = []
    if sorted(r["call"] for r in results) != list(calls):
        problems.append(f"{len(calls) - len(results)} call(s) gave no result")
    for r in results:
        want = "".join(tokens_of(r["call"]))
        if r["error"] or r["text"] != want:
            problems.append(f"call {r['call']}: " + (r["text"][:200] if r["error"] else "not its upstream's text"))
        elif not want.startswith(r["deltas"]) or (not r["waits"] and r["deltas"] != want):
            # After a hand-off the last wait may find the run ended: its result is whole, its deltas a prefix.
            problems.append(f"call {r['call']}: the streamed deltas do not rebuild its text (lost or crossed) "
                            f"offsets {r['offsets'][:3]}...{r['offsets'][-3:]}")
    return problems


# ---------------------------------------------------------------------------------------------- driver


def note_free(text: str) -> str:
    return text.split("\n\n[streamhost:", 1)[0]


async def cross_replica(a: Any, b: Any, llm: Any, start_at: float) -> dict[str, Any]:
    """Under the load: a thread continued on B, and a run handed off on A followed from B to its end."""
    await anyio.sleep(max(0.0, start_at - time.monotonic()) + 0.5)
    out: dict[str, Any] = {"problems": []}
    t0 = time.monotonic()
    one = await a.call("generate", {"prompt": "q1", "model": "openai/first", "thread": "new"}, timeout=300)
    two = await b.call("generate", {"prompt": "q2", "model": "openai/second", "thread": one.meta["streamhost/thread"]},
                       timeout=300)
    out["continue_s"] = time.monotonic() - t0
    seen = [r for r in llm.requests if r.model == "second"]
    if two.is_error or not seen or [m["content"] for m in seen[-1].body["messages"]] != ["q1", "first answer", "q2"]:
        out["problems"].append("the thread did not continue on B with A's turns")
    t0 = time.monotonic()
    first = await a.call("generate", {"prompt": "p", "model": "openai/slow"}, timeout=300)
    parts = [note_free(first.content[0].text)]
    if first.meta.get("streamhost/status") != "running":
        out["problems"].append("the slow run was not handed off on A")
    else:
        for _ in range(100):
            step = await b.call("wait", {"run": first.meta["streamhost/run"]}, timeout=300)
            if step.is_error:
                out["problems"].append(f"wait on B failed: {step.content[0].text[:200]}")
                break
            if step.meta.get("streamhost/status") != "running":
                if step.content[0].text != "".join(SLOW):
                    out["problems"].append("the waited-on run's answer is not its upstream's text")
                break
            parts.append(note_free(step.content[0].text))
        whole = "".join(SLOW)
        if not whole.startswith("".join(parts)):
            out["problems"].append("the hand-off parts (A, then B's waits) do not join up")
    out["handed_run_s"] = time.monotonic() - t0
    out["waits"] = len(parts) - 1
    return out


async def one_run(server: str, llm: Any, home: common.Home, run: int, calls: range, clients: int) -> dict[str, Any]:
    url = new_database(server)
    config = f'[store]\nurl = "{url}"\n[limits]\nhandoff_s = {HANDOFF_S}\n' + http_common.OPEN
    env_a = home.env(config=config, base_url=llm.url, name=f"a{run}")
    env_b = home.env(config=config, base_url=llm.url, name=f"b{run}")
    async with http_common.serve_http(env_a) as (url_a, pid_a), http_common.serve_http(env_b) as (url_b, pid_b), \
            http_common.session(url_a, pid_a) as a, http_common.session(url_b, pid_b) as b:
        for replica in (a, b):  # the SDKs imported, the store opened and migrated
            await replica.call("generate", {"prompt": "x", "model": "openai/warm"})
        llm.clear()
        start_at = time.monotonic() + 8  # every client process has its sessions open by then
        shares = [[c for c in calls if c % clients == k] for k in range(clients)]
        procs = [spawn("clients", url_a, url_b, str(start_at), *map(str, share)) for share in shares if share]
        crossed = await cross_replica(a, b, llm, start_at)
        results = [r for process in procs for r in collect(process)]
    problems = check(results, calls) + crossed["problems"]
    ttft = [r["first"] - r["t0"] for r in results if r["first"] is not None]
    return {"problems": problems, "handed": sum(1 for r in results if r["waits"]),
            "wall": max(r["end"] for r in results) - min(r["t0"] for r in results if r["t0"]),
            "ttft_med": common.med(ttft), "ttft_p99": p(ttft, 0.99), "continue_s": crossed["continue_s"],
            "handed_run_s": crossed["handed_run_s"], "waits": crossed["waits"]}


async def main() -> None:
    def extra(parser: Any) -> None:
        parser.add_argument("--calls", type=int, default=400, help="concurrent calls (default 400)")
        parser.add_argument("--clients", type=int, default=4, help="client processes (default 4)")

    args = common.parse_args(__doc__, runs=3, extra=extra)
    binaries = pg_bin()
    if binaries is None:
        sys.exit("replicas: no PostgreSQL server binaries (/usr/lib/postgresql/*/bin or $STREAMHOST_PG_BIN)")
    home = common.Home()
    calls = range(args.calls)
    runs = []
    try:
        with running_server(binaries) as server, common.llm_server() as llm:
            for call in calls:
                llm.script(f"load{call}", Script(tokens=tokens_of(call), rate=RATE))
            llm.script("warm", Script(tokens=["ok"]))
            llm.script("first", Script(tokens=["first ", "answer"]))
            llm.script("second", Script(tokens=["second"]))
            llm.script("slow", Script(tokens=SLOW, rate=20))
            for run in range(args.runs):
                runs.append(await one_run(server, llm, home, run, calls, args.clients))
    finally:
        home.cleanup()

    problems = [problem for run in runs for problem in run["problems"]]
    print(f"replicas: {common.machine()}; 2 replicas (serve --http) on one PostgreSQL, {args.calls} concurrent calls "
          f"of {TOKENS} tokens at {RATE:g} tok/s spread across both; median of {args.runs} runs")
    def kind_of(problem: str) -> str:
        return re.sub(r"r_\w+|\d+", "N", problem.split(": ", 1)[-1])[:120]

    kinds = collections.Counter(kind_of(problem) for problem in problems)
    print("check: " + ("all calls complete with exactly their own text; thread continued on B; handed-off run "
                       "followed from B, parts join exactly" if not problems
                       else f"{len(problems)} PROBLEM(S): "
                       + "; ".join(f"{n}x {kind}" for kind, n in kinds.most_common(6))))

    for kind in kinds:  # one example of each kind
        print("  e.g. " + next(p for p in problems if kind_of(p) == kind)[:300])

    def med(key: str) -> float:
        return common.med([run[key] for run in runs])

    ideal = TOKENS / RATE
    rows = [["load wall time (first call start -> last call end)", f"{med('wall'):.2f} s",
             f"{med('wall') / ideal:.2f}x the ideal {ideal:g} s"],
            ["time to first text, median", f"{common.ms(med('ttft_med'))} ms", ""],
            ["time to first text, p99", f"{common.ms(med('ttft_p99'))} ms", ""],
            ["thread started on A, continued on B (2 calls)", f"{med('continue_s'):.2f} s", "under load"],
            ["run handed off on A, waited on from B to its end", f"{med('handed_run_s'):.2f} s",
             f"upstream takes {len(SLOW) / 20:g} s; hand-off at {HANDOFF_S} s; {med('waits'):g} waits"]]
    print(common.table(["figure", "median", "note"], rows))
    print(f"load calls handed off (past {HANDOFF_S} s) and followed from the other replica: "
          f"{', '.join(str(run['handed']) for run in runs)} per run")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "clients":
        anyio.run(client_main, sys.argv[2:4], [int(c) for c in sys.argv[5:]], float(sys.argv[4]))
    else:
        anyio.run(main)
