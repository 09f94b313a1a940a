"""CPU per token of an OpenAI background stream (checkpoints, cursor) against the same stream read plainly.

The openai plugin's ``stream()`` alone (no host) reads ``--tokens`` (10,000) tokens at ``--rate`` (4,000)
tokens/s from the loopback test server, once as a plain Responses stream (``openai/o3``) and once as a
background response (``openai/o3`` with ``background = true``: every event's ``sequence_number`` kept, a
``Checkpoint`` at most every 0.25 s). CPU is the reading thread's (``time.thread_time``: the test server runs in
a thread of its own in this process). Both sides check their text against the tokens sent. Medians of
``--runs`` runs, sides alternating; the ratio is background / plain in the same run.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time

import common

from streamhost import Checkpoint, GenerationRequest, TextDelta
from streamhost.testing import LLMTestServer, Script


async def one(provider, request: GenerationRequest, expected: str) -> tuple[float, int]:
    text, marks = [], 0
    start = time.thread_time()
    async for event in provider.stream(request):
        if type(event) is TextDelta:
            text.append(event.text)
        elif type(event) is Checkpoint:
            marks += 1
    spent = time.thread_time() - start
    assert "".join(text) == expected, "the text differs from the tokens sent"
    return spent, marks


async def main() -> None:
    args = common.parse_args(__doc__, 5, lambda parser: (
        parser.add_argument("--tokens", type=int, default=10_000),
        parser.add_argument("--rate", type=float, default=4_000.0)))
    from streamhost_openai import OpenAIProvider

    tokens = [f"t{i} " for i in range(args.tokens)]
    expected = "".join(tokens)
    os.environ["OPENAI_API_KEY"] = common.KEY
    with LLMTestServer() as server:
        server.script("o3", Script(tokens=tokens, rate=args.rate))
        provider = OpenAIProvider()
        provider.configure({"base_url": server.url})
        sides = {"plain responses": {}, "background responses": {"background": True}}
        spent: dict[str, list[float]] = {side: [] for side in sides}
        marks: dict[str, list[int]] = {side: [] for side in sides}
        await one(provider, GenerationRequest(model="o3", prompt="warm"), expected)  # imports, connection
        for run in range(args.runs):
            order = list(sides) if run % 2 == 0 else list(reversed(sides))
            for side in order:
                cpu, count = await one(provider, GenerationRequest(model="o3", prompt="go", options=sides[side]),
                                       expected)
                spent[side].append(cpu)
                marks[side].append(count)
        await provider.aclose()
    print(f"{args.tokens} tokens at {args.rate:.0f}/s, median of {args.runs} runs (reading thread's CPU)")
    plain = statistics.median(spent["plain responses"])
    for side in sides:
        cpu = statistics.median(spent[side])
        print(f"  {side:22} {cpu * 1e6 / args.tokens:6.1f} µs/token  x{cpu / plain:.2f}  "
              f"checkpoints {statistics.median(marks[side]):.0f}")


if __name__ == "__main__":
    asyncio.run(main())
