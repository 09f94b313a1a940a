"""Two ``streamhost serve --http`` replicas on one PostgreSQL, N concurrent streaming calls spread across both by
the client (default 400, each 200 tokens at 50 tok/s), and under that load: a thread started on replica A
continued on B, and a long run handed off on A waited on from B (B follows A's journal in the database).

Checked: every call completes with exactly its own upstream's text, streamed deltas included (nothing lost or
crossed); the thread's second call on B sends A's turn upstream; the handed-off run's parts, A's first result
then B's waits, join into exactly its upstream's text. Measured (median over --runs, each on a fresh database):
wall time of the load against the ideal (TOKENS / RATE), time to first text (median, p99), and how long the
cross-replica continue and wait took under load; the CPU of each replica, the clients, PostgreSQL and this driver
(which runs the upstream); the database's transactions and connections opened, as PostgreSQL counts them. The
replicas' warnings are listed. The PostgreSQL server is started from the machine's server binaries
(``tests/pg_server.py``). The clients run in ``--clients`` processes of their own and are lean (raw HTTP/1.1,
stateless 2026-07-28 requests, see below): an SDK client session per call took more CPU than the replicas.
``--profile P`` records replica A with py-spy during the load.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import common
import http_common
import psutil
import raw_mcp

from streamhost.testing import Script

sys.path.insert(0, str(common.BENCH.parent))  # tests/pg_server.py: the test suite's PostgreSQL starter
from tests.pg_server import new_database, pg_bin, running_server

TOKENS = 200
RATE = 50.0
SLOW = [f"s{i} " for i in range(300)]  # 15 s at 20 tok/s: handed off on A, followed from B
HANDOFF_S = 6
DELTA = common.DELTA


spawn = functools.partial(common.spawn_script, __file__)  # this script again, in its client or prober role
p = common.percentile


def tokens_of(call: int) -> list[str]:
    return [f"c{call}t{i} " for i in range(TOKENS)]


# ------------------------------------------------------------------------------------- client processes
# A lean client, so that the client processes do not starve the replicas on a small machine: raw asyncio HTTP/1.1,
# one connection per request, a stateless 2026-07-28 ``tools/call`` (no ``initialize``) whose SSE body is parsed
# only for its ``data:`` lines (raw_mcp.py: the request and the body, as http_load.py's client).

async def raw_call(port: int, key: int, tool: str, arguments: dict[str, Any],
                   start_at: float = 0.0) -> tuple[dict[str, Any], list[tuple[float, dict[str, Any]]]]:
    """One tools/call on a connection of its own (opened before ``start_at``): the result (``{}`` if none came)
    and the progress notifications' ``_meta`` with their arrival times."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        await asyncio.sleep(max(0.0, start_at - time.monotonic()))
        writer.write(raw_mcp.request_bytes(port, key, tool, arguments, client="replicas"))
        status = await reader.readline()  # an error shows as a missing result, with this line
        headers = {}
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip().lower()
        notes: list[tuple[float, dict[str, Any]]] = []
        buffer, answer = b"", None
        json_body = headers.get("content-type", "").startswith("application/json")  # no progress: no stream
        async for arrived, data in raw_mcp.body_pieces(reader, headers):
            buffer += data
            if json_body:
                if len(buffer) >= int(headers.get("content-length", -1)):
                    answer = json.loads(buffer)
                    break
                continue
            *events, buffer = buffer.replace(b"\r\n", b"\n").split(b"\n\n")
            for event in events:
                for line in event.split(b"\n"):
                    if line.startswith(b"data:") and line[5:].strip():
                        message = json.loads(line[5:])
                        if message.get("method") == "notifications/progress":
                            notes.append((arrived, message["params"].get("_meta") or {}))
                        elif "id" in message:
                            answer = message
            if answer is not None:
                break
    finally:
        writer.close()
    if answer is None:
        return {"isError": True, "content": [{"text": f"no result ({tool}: {status.decode().strip()} "
                                                     f"{buffer[:200]!r})"}]}, notes
    if "error" in answer:
        return {"isError": True, "content": [{"text": json.dumps(answer["error"])}]}, notes
    return answer["result"], notes


async def client_main(ports: list[int], calls: list[int], start_at: float) -> None:
    """Run ``calls`` at once from this process at ``start_at``, call i on replica i % 2, a handed-off one waited
    on from the other replica; one JSON line per call."""

    async def one(call: int) -> dict[str, Any]:
        try:
            return await attempt(call)
        except Exception as exc:  # reported as this call's problem; the others go on
            return {"call": call, "t0": 0.0, "first": None, "end": 0.0, "error": True, "waits": 0, "offsets": [],
                    "text": f"{type(exc).__name__}: {exc}"[:300], "deltas": ""}

    async def attempt(call: int) -> dict[str, Any]:
        t0 = start_at
        result, notes = await raw_call(ports[call % 2], call, "generate",
                                       {"prompt": "x", "model": f"openai/load{call}"}, start_at)
        waits = 0
        meta = result.get("_meta") or {}
        while meta.get("streamhost/status") == "running" and waits < 100:
            # Handed off (a loaded machine): follow it from the other replica, as a client behind a load balancer
            # would; its deltas go on where the first call's ended.
            waits += 1
            result, more = await raw_call(ports[(call + 1) % 2], 100_000 + call, "wait",
                                          {"run": meta["streamhost/run"]})
            notes += more
            meta = result.get("_meta") or {}
        texts = [(t, m) for t, m in notes if DELTA in m]
        content = result.get("content") or [{}]
        return {"call": call, "t0": t0, "first": texts[0][0] if texts else None, "end": time.monotonic(),
                "text": content[0].get("text", ""), "error": bool(result.get("isError")),
                "deltas": "".join(m[DELTA] for _, m in texts),
                "offsets": [m.get("streamhost/offset") for _, m in texts],
                "waits": waits}

    for result in await asyncio.gather(*(one(call) for call in calls)):
        print(json.dumps(result))








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
    out["first_s"] = time.monotonic() - t0
    for _ in range(100):
        # Handed off (the load held it past the hand-off): its turns are added once it ends, so a client
        # that continues the thread waits for the answer first, here from B.
        if (one.meta or {}).get("streamhost/status") != "running":
            break
        one = await b.call("wait", {"run": one.meta["streamhost/run"]}, timeout=300)
    t1 = time.monotonic()
    two = await b.call("generate", {"prompt": "q2", "model": "openai/second", "thread": one.meta["streamhost/thread"]},
                       timeout=300)
    out["second_s"] = time.monotonic() - t1
    out["continue_s"] = time.monotonic() - t0
    seen = [r for r in llm.requests if r.model == "second"]
    sent = [m["content"] for m in seen[-1].body["messages"]] if seen else []
    if two.is_error or sent != ["q1", "first answer", "q2"]:
        out["problems"].append(f"the thread did not continue on B with A's turns: B sent {sent}, "
                               f"answered {two.content[0].text[:150]!r}")
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


async def one_run(server: str, llm: Any, home: common.Home, run: int, calls: range, clients: int,
                  profile: str | None) -> dict[str, Any]:
    url = new_database(server)
    config = f'[store]\nurl = "{url}"\n[limits]\nhandoff_s = {HANDOFF_S}\n' + http_common.OPEN
    env_a = home.env(config=config, base_url=llm.url, name=f"a{run}")
    env_b = home.env(config=config, base_url=llm.url, name=f"b{run}")
    async with http_common.serve_http(env_a) as (url_a, pid_a), http_common.serve_http(env_b) as (url_b, pid_b), \
            http_common.session(url_a, pid_a) as a, http_common.session(url_b, pid_b) as b:
        for replica in (a, b):  # the SDKs imported, the store opened and migrated
            await replica.call("generate", {"prompt": "x", "model": "openai/warm"})
        llm.clear()
        replicas = [psutil.Process(pid) for pid in (pid_a, pid_b)]
        cpu_before, db_before = [cpu_of(r) for r in replicas], await db_stats(url)
        clients_before = common.children_cpu()
        postgres_before, self_before = postgres_cpu(server), cpu_of(psutil.Process())
        if profile:  # py-spy on replica A through the load (its flame graph: where a replica's CPU goes)
            spy = subprocess.Popen([str(Path(sys.executable).with_name("py-spy")), "record", "-p", str(pid_a),
                                    "-d", "12", "-r", "50", "-o", profile, "--format", "raw"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        start_at = time.monotonic() + 3  # every client process has its connections open by then
        shares = [[c for c in calls if c % clients == k] for k in range(clients)]
        ports = [url.rsplit(":", 1)[1] for url in (url_a, url_b)]
        procs = [spawn("clients", *ports, str(start_at), *map(str, share)) for share in shares if share]
        crossed = await cross_replica(a, b, llm, start_at)
        results = [r for process in procs for r in common.collect(process, timeout=900)]
        cpu = [cpu_of(r) - before for r, before in zip(replicas, cpu_before, strict=True)]
        cpu.append(common.children_cpu() - clients_before)  # before the replicas end: they are children too
        cpu += [postgres_cpu(server) - postgres_before, cpu_of(psutil.Process()) - self_before]
        if profile:
            spy.wait(60)
        db = [after - before for after, before in zip(await db_stats(url), db_before, strict=True)]
    logged = [line for url in (url_a, url_b) for line in
              (home.root / f"serve-{url.rsplit(':', 1)[1]}.stderr").read_text(errors="replace").splitlines()
              if re.match(r"streamhost (WARNING|ERROR|CRITICAL) ", line)]
    problems = check(results, calls) + crossed["problems"]
    ttft = [r["first"] - r["t0"] for r in results if r["first"] is not None]
    return {"problems": problems, "logged": logged, "handed": sum(1 for r in results if r["waits"]),
            "wall": max(r["end"] for r in results) - min(r["t0"] for r in results if r["t0"]),
            "ttft_med": common.med(ttft), "ttft_p99": p(ttft, 0.99), "continue_s": crossed["continue_s"],
            "first_s": crossed["first_s"], "second_s": crossed["second_s"],
            "handed_run_s": crossed["handed_run_s"], "waits": crossed["waits"],
            "cpu_a": cpu[0], "cpu_b": cpu[1], "cpu_clients": cpu[2], "cpu_pg": cpu[3], "cpu_driver": cpu[4],
            "xacts": db[0], "rows": db[1], "sessions": db[2]}


def cpu_of(process: Any) -> float:
    times = process.cpu_times()
    return times.user + times.system


def postgres_cpu(server: str) -> float:
    """The CPU time of the PostgreSQL server at ``server`` (its postmaster and every backend) so far."""
    port = server.rsplit(":", 1)[1]
    for process in psutil.process_iter(["name", "cmdline"]):
        if process.info["name"] == "postgres" and f"-p {port}" in " ".join(process.info["cmdline"] or []):
            return cpu_of(process) + sum(cpu_of(child) for child in process.children(recursive=True))
    return float("nan")




async def db_stats(url: str) -> tuple[float, float, float]:
    """The database's transactions (each autocommit read is one), rows written and connections opened so far, as
    PostgreSQL counts them."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute("SELECT pg_stat_force_next_flush()")
        row = await conn.fetchrow("SELECT xact_commit + xact_rollback AS xacts, tup_inserted + tup_updated AS rows, "
                                  "sessions FROM pg_stat_database WHERE datname = current_database()")
    finally:
        await conn.close()
    return float(row["xacts"]), float(row["rows"]), float(row["sessions"])


async def main() -> None:
    def extra(parser: Any) -> None:
        parser.add_argument("--calls", type=int, default=400, help="concurrent calls (default 400)")
        parser.add_argument("--clients", type=int, default=2, help="client processes (default 2)")
        parser.add_argument("--profile", help="py-spy replica A during the load into PROFILE.<run>.txt (raw)")

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
                runs.append(await one_run(server, llm, home, run, calls, args.clients,
                                          args.profile and f"{args.profile}.{run}.txt"))
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

    logged = collections.Counter(kind_of(line) for run in runs for line in run["logged"])
    print("replica logs: " + ("no warnings" if not logged else "; ".join(f"{n}x {kind}" for kind, n in
                                                                         logged.most_common(8))))

    def med(key: str) -> float:
        return common.med([run[key] for run in runs])

    ideal = TOKENS / RATE
    rows = [["load wall time (first call start -> last call end)", f"{med('wall'):.2f} s",
             f"{med('wall') / ideal:.2f}x the ideal {ideal:g} s"],
            ["time to first text, median", f"{common.ms(med('ttft_med'))} ms", ""],
            ["time to first text, p99", f"{common.ms(med('ttft_p99'))} ms", ""],
            ["thread started on A, continued on B (2 calls)", f"{med('continue_s'):.2f} s",
             f"under load: A's call {med('first_s'):.2f} s, B's {med('second_s'):.2f} s"],
            ["run handed off on A, waited on from B to its end", f"{med('handed_run_s'):.2f} s",
             f"upstream takes {len(SLOW) / 20:g} s; hand-off at {HANDOFF_S} s; {med('waits'):g} waits"],
            ["CPU: replica A, replica B, the client processes", f"{med('cpu_a'):.1f} s",
             f"B {med('cpu_b'):.1f} s, clients {med('cpu_clients'):.1f} s"],
            ["CPU: PostgreSQL, this driver (the upstream server)", f"{med('cpu_pg'):.1f} s",
             f"driver {med('cpu_driver'):.1f} s"],
            ["database transactions (each autocommit read is one)", f"{med('xacts') / med('wall'):.0f}/s",
             f"{med('xacts') / args.calls:.1f} per call; rows written {med('rows') / med('wall'):.0f}/s; "
             f"{med('sessions'):.0f} connections opened"]]
    print(common.table(["figure", "median", "note"], rows))
    print(f"load calls handed off (past {HANDOFF_S} s) and followed from the other replica: "
          f"{', '.join(str(run['handed']) for run in runs)} per run")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "clients":
        asyncio.run(client_main([int(port) for port in sys.argv[2:4]], [int(c) for c in sys.argv[5:]],
                                float(sys.argv[4])))
    else:
        anyio.run(main)
