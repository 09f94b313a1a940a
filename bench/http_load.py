"""One ``streamhost serve --http`` process, N concurrent streaming calls (default 200, each 200 tokens at 50 tok/s).

Checked: every call's answer and its concatenated ``streamhost/delta`` texts equal exactly the tokens its own
upstream sent (no lost or crossed text). Measured: added first-text latency (text at the client minus the
upstream's first token) under load, against the same calls made one at a time in the same run; the
server's event-loop lag, seen as the round trip of ``/healthz`` (a handler that does nothing) from a separate
prober process every 50 ms, minus its idle median. The clients run in ``--clients`` processes of their
own, so their parsing does not land in the server's figures. Goals: p99 added first text <= 20 ms, loop lag
p99 <= 50 ms.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from typing import Any

import anyio
import common
import http_common
import psutil

from streamhost.testing import Script

TOKENS = 200
RATE = 50.0
SOLO_CALLS = 10


def tokens_of(call: int) -> list[str]:
    return [f"c{call}t{i} " for i in range(TOKENS)]


# ------------------------------------------------------------------------------------- client processes


async def client_main(url: str, calls: list[int], start_at: float) -> None:
    """Run ``calls`` at once from this process at ``start_at`` (monotonic); print one JSON line per call."""
    import httpx2

    limits = httpx2.Limits(max_connections=len(calls) * 2, max_keepalive_connections=len(calls) * 2)
    results: list[dict[str, Any]] = []
    async with httpx2.AsyncClient(limits=limits, timeout=httpx2.Timeout(120, read=120)) as http:

        async def one(call: int) -> None:
            async with http_common.session(url, 0, http_client=http) as client:
                await anyio.sleep(max(0.0, start_at - time.monotonic()))
                t0 = time.monotonic()
                result = await client.call("generate", {"prompt": "x", "model": f"openai/load{call}"}, timeout=120)
                texts = client.texts()
                end = time.monotonic()
                results.append({"call": call, "t0": t0, "end": end, "first": texts[0][0] if texts else None,
                                "text": result.content[0].text if result.content else "", "error": result.is_error,
                                "deltas": "".join(p.meta[common.DELTA] for _, p in texts), "notes": len(texts)})

        async with anyio.create_task_group() as tg:
            for call in calls:
                tg.start_soon(one, call)
    for result in results:
        print(json.dumps(result))


def prober_main(url: str, seconds: float) -> None:
    """Time a ``/healthz`` round trip every 50 ms for ``seconds``; print the times (seconds) as one JSON list."""
    import httpx2

    samples = []
    with httpx2.Client(timeout=30) as http:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            t0 = time.monotonic()
            http.get(url + "/healthz")
            samples.append(time.monotonic() - t0)
            time.sleep(0.05)
    print(json.dumps(samples))


# ---------------------------------------------------------------------------------------------- driver


def spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, __file__, *args], stdout=subprocess.PIPE, text=True)


def collect(process: subprocess.Popen[str]) -> list[Any]:
    out, _ = process.communicate(timeout=600)
    if process.returncode:
        raise RuntimeError(f"a bench process failed ({process.returncode})")
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def added(results: list[dict[str, Any]], llm: Any) -> list[float]:
    first_token = {r.model: r.first_token for r in llm.requests if r.api == "chat"}
    return [r["first"] - first_token[f"load{r['call']}"] for r in results if r["first"] is not None]


def to_upstream(results: list[dict[str, Any]], llm: Any) -> list[float]:
    started = {r.model: r.started for r in llm.requests if r.api == "chat"}
    return [started[f"load{r['call']}"] - r["t0"] for r in results if f"load{r['call']}" in started]


def check(results: list[dict[str, Any]], calls: range) -> list[str]:
    problems = []
    if sorted(r["call"] for r in results) != list(calls):
        problems.append(f"{len(calls) - len(results)} call(s) gave no result")
    for r in results:
        want = "".join(tokens_of(r["call"]))
        if r["error"] or r["text"] != want:
            problems.append(f"call {r['call']}: the answer is not its own upstream's text")
        elif r["deltas"] != want:
            problems.append(f"call {r['call']}: the streamed deltas do not rebuild its text (lost or crossed)")
    return problems


async def main() -> None:
    def extra(parser: Any) -> None:
        parser.add_argument("--calls", type=int, default=200, help="concurrent calls (default 200)")
        parser.add_argument("--clients", type=int, default=4, help="client processes (default 4)")

    args = common.parse_args(__doc__, runs=1, extra=extra)
    home = common.Home()
    calls = range(args.calls)
    solo = range(args.calls, args.calls + SOLO_CALLS)
    try:
        with common.llm_server() as llm:
            for call in [*calls, *solo]:
                llm.script(f"load{call}", Script(tokens=tokens_of(call), rate=RATE))
            env = home.env(config=http_common.OPEN, base_url=llm.url)
            async with http_common.serve_http(env) as (url, pid):
                idle = collect(spawn("probe", url, "3"))[0]
                solo_results = []
                for call in solo:  # one at a time: the baseline
                    solo_results += collect(spawn("clients", url, str(time.monotonic()), str(call)))
                solo_added = added(solo_results, llm)
                llm.clear()
                server = psutil.Process(pid)
                cpu_before, own_before = sum(server.cpu_times()[:2]), time.process_time()
                children_before = children_cpu()
                start_at = time.monotonic() + 5  # every client process has its sessions open by then
                shares = [[c for c in calls if c % args.clients == k] for k in range(args.clients)]
                clients = [spawn("clients", url, str(start_at), *map(str, share)) for share in shares if share]
                prober = spawn("probe", url, str(5 + TOKENS / RATE + 2))
                results = [r for process in clients for r in collect(process)]
                loaded = collect(prober)[0]
                cpu_s = sum(server.cpu_times()[:2]) - cpu_before  # the idle wait and the probe cost next to nothing
                own_s, clients_s = time.process_time() - own_before, children_cpu() - children_before
                burst_s = max(r["end"] for r in results) - start_at
                load_added = added(results, llm)
                load_in = to_upstream(results, llm)
    finally:
        home.cleanup()

    problems = check(results, calls)
    base_probe = common.med(idle)
    lag = [max(0.0, s - base_probe) for s in loaded]
    load_ttft = [r["first"] - r["t0"] for r in results if r["first"] is not None]
    solo_ttft = [r["first"] - r["t0"] for r in solo_results if r["first"] is not None]
    print(f"http_load: {common.machine()}; {args.calls} concurrent calls of {TOKENS} tokens at {RATE:g} tok/s, "
          f"{args.clients} client processes")
    print("text: " + ("every call got exactly its own text" if not problems else f"{len(problems)} PROBLEM(S): "
                                                                                   + "; ".join(problems[:5])))
    rows = [
        ["added first text (upstream token -> client)", common.ms(common.med(solo_added)),
         common.ms(common.med(load_added)),
         common.ms(p(load_added, 0.99)), "met" if p(load_added, 0.99) <= 0.020 else "MISSED (goal p99 <= 20)"],
        ["time to first text (call -> client)", common.ms(common.med(solo_ttft)), common.ms(common.med(load_ttft)),
         common.ms(p(load_ttft, 0.99)), f"p99 - solo {(p(load_ttft, 0.99) - common.med(solo_ttft)) * 1000:+.1f}"],
        ["call -> request at the upstream", "-", common.ms(common.med(load_in)), common.ms(p(load_in, 0.99)), ""],
        ["loop lag (/healthz round trip - idle median)", common.ms(base_probe), common.ms(common.med(lag)),
         common.ms(p(lag, 0.99)), "met" if p(lag, 0.99) <= 0.050 else "MISSED (goal p99 <= 50)"],
    ]
    print(common.table(["figure", "solo/idle median ms", "loaded median ms", "loaded p99 ms", "goal"], rows))
    print(f"server CPU for the burst: {cpu_s:.1f} s, calls running {burst_s:.1f} s ({cpu_s / burst_s:.0%} of a core; "
          f"{cpu_s / max(1, args.calls * TOKENS) * 1e6:.0f} µs per token); the test server (this process) "
          f"{own_s:.1f} s; the client processes and the prober {clients_s:.1f} s")
    notes = [r["notes"] for r in results]
    print(f"notifications per call: median {common.med(notes):.0f}, min {min(notes)}, max {max(notes)} "
          f"(fewer under load: the coalescing window widens with loop lag)")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "clients":
        anyio.run(client_main, sys.argv[2], [int(c) for c in sys.argv[4:]], float(sys.argv[3]))
    elif len(sys.argv) > 1 and sys.argv[1] == "probe":
        prober_main(sys.argv[2], float(sys.argv[3]))
    else:
        anyio.run(main)
