"""Cancellation: client cancel -> the upstream HTTP request closed.

One warmed ``streamhost serve``. Each run calls ``generate`` on a stream that stalls after 5 tokens,
waits for the first progress notification with text, then cancels the anyio scope around
``call_tool`` (the client sends ``notifications/cancelled``) and measures from just before the cancel
to the test server's ``disconnected_at`` for that request (its socket saw EOF). After the runs, one
more call checks that the host still answers. Goal: median and max <= 50 ms.
"""

from __future__ import annotations

import time

import anyio
import common

from streamhost.testing import Script

MODEL = "bench-stall"


async def one(client: common.Client, llm: object) -> float:
    """Seconds from the cancel to the upstream request's disconnection, for one call."""
    client.reset()
    before = len(llm.requests)  # type: ignore[attr-defined]
    with anyio.fail_after(30):
        async with anyio.create_task_group() as group:
            group.start_soon(client.call, "generate", {"prompt": "stall", "model": f"openai/{MODEL}"})
            await client.first_text.wait()
            cancelled_at = time.monotonic()
            group.cancel_scope.cancel()

        def gone(records: list) -> bool:
            return len(records) > before and records[before].disconnected_at is not None

        if not await llm.await_for(gone, timeout=10):  # type: ignore[attr-defined]
            raise RuntimeError("the upstream request was not closed within 10 s of the cancel")
    record = llm.requests[before]  # type: ignore[attr-defined]
    assert record.model == MODEL, record
    return record.disconnected_at - cancelled_at


async def main() -> None:
    args = common.parse_args(__doc__, runs=20)
    home = common.Home()
    delays: list[float] = []
    with common.llm_server() as llm:
        llm.script(MODEL, Script(tokens=common.words(20), stall_after=5))
        llm.script("bench-after", Script(tokens=["still ", "here"]))
        try:
            async with common.spawn(common.streamhost_cmd(), home.env(base_url=llm.url)) as client:
                await one(client, llm)  # untimed: warms the SDK import and the connection pool
                for _ in range(args.runs):
                    delays.append(await one(client, llm))
                    await anyio.sleep(0.05)
                after = await client.call("generate", {"prompt": "x", "model": "openai/bench-after"})
        finally:
            home.cleanup()

    alive = not after.is_error and after.content[0].text == "still here"
    med, worst = common.med(delays), max(delays)
    print(f"cancel: {common.machine()}; {args.runs} runs")
    print(common.table(["measure", "median ms", "min ms", "max ms", "goal <= 50 ms"],
                       [["cancel -> upstream disconnected", common.ms(med), common.ms(min(delays)), common.ms(worst),
                         "met" if worst <= 0.05 else ("median met, max MISSED" if med <= 0.05 else "MISSED")]]))
    print(f"all runs (ms): {' '.join(f'{d * 1000:.1f}' for d in delays)}")
    print(f"host answers after the cancels: {'OK' if alive else 'FAIL'}")


if __name__ == "__main__":
    anyio.run(main)
