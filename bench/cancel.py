"""Cancellation: client cancel -> the upstream HTTP request closed.

One warmed ``streamhost serve``. Each run calls ``generate`` on a stream that stalls after 5 tokens,
waits for the first progress notification with text, then cancels the anyio scope around
``call_tool`` (the client sends ``notifications/cancelled``) and measures from just before the cancel
to the test server's ``disconnected_at`` for that request (its socket saw EOF). After the runs, one
more call checks that the host still answers. Goal: median and max <= 50 ms.

``--load N --rate R`` first starts N other ``generate`` calls streaming R tokens/s each (restarted as
they end) on the same server, so the cancel is handled by a busy event loop; the measured call is then
cancelled once the test server has sent its 5 tokens (the client's first-text signal is shared with
the load). The test server and the client run in this process, so their own lag is in the figures.
"""

from __future__ import annotations

import argparse
import time

import anyio
import common

from streamhost.testing import Script

MODEL = "bench-stall"
LOAD_MODEL = "bench-load"


async def one(client: common.Client, llm: object, loaded: bool = False) -> float:
    """Seconds from the cancel to the upstream request's disconnection, for one call."""
    client.reset()
    before = len(llm.requests)  # type: ignore[attr-defined]

    def streamed(records: list) -> bool:
        return any(r.model == MODEL and r.tokens_sent >= 5 for r in records[before:])

    with anyio.fail_after(300 if loaded else 30):
        async with anyio.create_task_group() as group:
            group.start_soon(client.call, "generate", {"prompt": "stall", "model": f"openai/{MODEL}"})
            if loaded:
                await llm.await_for(streamed, timeout=60)  # type: ignore[attr-defined]
            else:
                await client.first_text.wait()
            cancelled_at = time.monotonic()
            group.cancel_scope.cancel()

        def gone(records: list) -> bool:
            return any(r.model == MODEL and r.disconnected_at is not None for r in records[before:])

        if not await llm.await_for(gone, timeout=30):  # type: ignore[attr-defined]
            raise RuntimeError("the upstream request was not closed within 30 s of the cancel")
    record = next(r for r in llm.requests[before:] if r.model == MODEL)  # type: ignore[attr-defined]
    return record.disconnected_at - cancelled_at


async def load(client: common.Client, stop: anyio.Event) -> None:
    """One background stream, called again each time it ends, until ``stop``."""
    while not stop.is_set():
        await client.call("generate", {"prompt": "load", "model": f"openai/{LOAD_MODEL}"}, timeout=600)


async def main() -> None:
    args = common.parse_args(__doc__, runs=20, extra=_load_options)
    home = common.Home()
    delays: list[float] = []
    with common.llm_server() as llm:
        llm.script(MODEL, Script(tokens=common.words(20), stall_after=5))
        llm.script(LOAD_MODEL, Script(tokens=common.words(int(args.rate * 20)), rate=args.rate))
        llm.script("bench-after", Script(tokens=["still ", "here"]))
        try:
            async with common.spawn(common.streamhost_cmd(), home.env(base_url=llm.url)) as client:
                await one(client, llm)  # untimed: warms the SDK import and the connection pool
                stop = anyio.Event()
                async with anyio.create_task_group() as background:
                    for _ in range(args.load):
                        background.start_soon(load, client, stop)
                    if args.load:  # every load stream under way before the first timed run
                        await llm.await_for(lambda rs: sum(r.model == LOAD_MODEL and r.tokens_sent > 0
                                                           for r in rs) >= args.load, timeout=60)
                    for _ in range(args.runs):
                        delays.append(await one(client, llm, loaded=args.load > 0))
                        await anyio.sleep(0.05)
                    stop.set()
                    background.cancel_scope.cancel()
                after = await client.call("generate", {"prompt": "x", "model": "openai/bench-after"})
        finally:
            home.cleanup()

    alive = not after.is_error and after.content[0].text == "still here"
    med, worst = common.med(delays), max(delays)
    loaded = f"; under {args.load} streams of {args.rate:g} tokens/s" if args.load else ""
    print(f"cancel: {common.machine()}; {args.runs} runs{loaded}")
    print(common.table(["measure", "median ms", "min ms", "max ms", "goal <= 50 ms"],
                       [["cancel -> upstream disconnected", common.ms(med), common.ms(min(delays)), common.ms(worst),
                         "met" if worst <= 0.05 else ("median met, max MISSED" if med <= 0.05 else "MISSED")]]))
    p99 = sorted(delays)[min(len(delays) - 1, int(0.99 * len(delays)))]
    print(f"p50 {common.ms(med)} ms, p99 {common.ms(p99)} ms")
    print(f"all runs (ms): {' '.join(f'{d * 1000:.1f}' for d in delays)}")
    print(f"host answers after the cancels: {'OK' if alive else 'FAIL'}")


def _load_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--load", type=int, default=0, help="other streams running during the runs (default 0)")
    parser.add_argument("--rate", type=float, default=100, help="tokens/s of each load stream (default 100)")


if __name__ == "__main__":
    anyio.run(main)
