"""What journaling a run into the store costs: one paced stream with and without ``Journal.wrap``.

One stream of ``--tokens`` (10,000) tokens at ``--rate`` (2,000) tokens/s is sent, update by update, to a sink
that only counts (the cheapest possible face): directly (``baseline``), or through ``Journal.wrap`` on a real
SQLite store in a temp dir. ``journal``: ``Journal(start=...)`` records the run in the background, the text is
journaled every 0.5 s, and ``finish`` writes the rest and marks the run completed; ``journal, create_run
awaited first``: the same with the run recorded before the stream starts. All sides run in this process on
the same schedule (token i due at ``start + i / rate``); their order rotates run by run. Reported, medians of
``--runs`` runs: wall time from the run's start (``create_run`` included) to its end (``finish`` included),
this process's CPU (``time.process_time``: every thread, aiosqlite's included) over the same span, the first
update's send -> arrival at the sink, the awaited ``create_run`` and ``finish`` alone; and each journaled
run's stored text is checked against what was sent.

``--concurrent 50``: 50 journaled streams at once on one store (each ``--tokens`` at ``--rate``, own text);
reported: runs whose stored text differs from what they sent (lost or duplicated), journal write failures
(``database is locked`` would be one), wall time and CPU.

    .venv/bin/python bench/store_journal.py [--runs 5]                      # ~1.5 min
    .venv/bin/python bench/store_journal.py --concurrent 50 --tokens 1000 --rate 100
"""

from __future__ import annotations

import asyncio
import logging
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine, med, parse_args, table

from streamhost.events import Update
from streamhost.host.config import StoreSettings
from streamhost.store import Journal, RunEnd, RunStart, new_id, open_store
from streamhost.store.database import Store


class CountingSink:
    """Counts updates and notes when the first arrived: a face that costs nothing."""

    def __init__(self) -> None:
        self.count = 0
        self.first_at = 0.0

    async def send(self, update: Update) -> None:
        if not self.count:
            self.first_at = time.monotonic()
        self.count += 1


@dataclass
class Sample:
    wall: float
    cpu: float
    first: float
    create: float = 0.0
    finish: float = 0.0
    ok: bool = True


def tokens(n: int, tag: str = "") -> list[str]:
    return [f"{tag}w{i} " for i in range(n)]


async def paced(sink: object, pieces: list[str], rate: float) -> float:
    """Send the pieces on schedule; the monotonic time the first was sent."""
    start = time.monotonic()
    offset, first_sent = 0, 0.0
    for i, piece in enumerate(pieces):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        if i == 0:
            first_sent = time.monotonic()
        await sink.send(Update("text", delta=piece, offset=offset))  # type: ignore[attr-defined]
        offset += len(piece)
    return first_sent


async def baseline(pieces: list[str], rate: float) -> Sample:
    sink = CountingSink()
    cpu0, t0 = time.process_time(), time.monotonic()
    first_sent = await paced(sink, pieces, rate)
    return Sample(time.monotonic() - t0, time.process_time() - cpu0, sink.first_at - first_sent)


async def journaled(store: Store, pieces: list[str], rate: float, *, awaited: bool) -> Sample:
    sink = CountingSink()
    run_id = new_id("run")
    start = RunStart(id=run_id, tool="generate", model="bench/model", prompt="bench")
    cpu0, t0 = time.process_time(), time.monotonic()
    if awaited:  # the run recorded before the stream starts, as a caller that awaits create_run would
        await store.create_run(start)
    created = time.monotonic()
    journal = Journal(store, run_id, start=None if awaited else start)
    first_sent = await paced(journal.wrap(sink), pieces, rate)
    sent = time.monotonic()
    await journal.finish(RunEnd("completed", output_tokens=len(pieces)))
    t1 = time.monotonic()
    sample = Sample(t1 - t0, time.process_time() - cpu0, sink.first_at - first_sent, created - t0, t1 - sent)
    sample.ok = await store.run_text(run_id) == "".join(pieces) and sink.count == len(pieces)
    return sample


async def compare(args: object, store: Store) -> None:
    pieces = tokens(args.tokens)  # type: ignore[attr-defined]
    sides: dict[str, list[Sample]] = {"baseline": [], "journal": [], "journal, create_run awaited first": []}
    names = list(sides)
    for run in range(args.runs):  # type: ignore[attr-defined]
        for side in names[run % 3:] + names[: run % 3]:  # the order rotates run by run
            sample = await (baseline(pieces, args.rate) if side == "baseline"  # type: ignore[attr-defined]
                            else journaled(store, pieces, args.rate, awaited=side != "journal"))  # type: ignore[attr-defined]
            sides[side].append(sample)
    base, jour = sides["baseline"], sides["journal"]
    rows = [[side, f"{med([s.wall for s in samples]):.3f}", f"{med([s.cpu for s in samples]) * 1000:.0f}",
             f"{med([s.first for s in samples]) * 1e6:.0f}", f"{med([s.create for s in samples]) * 1000:.2f}",
             f"{med([s.finish for s in samples]) * 1000:.2f}", "OK" if all(s.ok for s in samples) else "FAIL"]
            for side, samples in sides.items()]
    print(table(["side", "wall s", "cpu ms", "first update µs", "create_run ms", "finish ms", "text"], rows))
    wall = med([j.wall / b.wall for j, b in zip(jour, base, strict=True)])
    cpu = med([j.cpu / b.cpu for j, b in zip(jour, base, strict=True)])
    added = med([(j.cpu - b.cpu) * 1000 for j, b in zip(jour, base, strict=True)])
    print(f"\njournal / baseline, median of per-run ratios: wall {wall:.4f}x, CPU {cpu:.3f}x "
          f"({added:+.0f} ms CPU per {args.tokens}-token run)")  # type: ignore[attr-defined]


class Failures(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


async def concurrent(args: object, store: Store) -> None:
    failures = Failures()
    logging.getLogger("streamhost.store").addHandler(failures)
    n = args.concurrent  # type: ignore[attr-defined]

    async def one(k: int) -> bool:
        pieces = tokens(args.tokens, f"[{k}]")  # type: ignore[attr-defined]
        run_id = new_id("run")
        await store.create_run(RunStart(id=run_id, tool="generate", model="bench/model"))
        journal = Journal(store, run_id)
        await paced(journal.wrap(CountingSink()), pieces, args.rate)  # type: ignore[attr-defined]
        await journal.finish(RunEnd("completed"))
        return await store.run_text(run_id) == "".join(pieces)

    cpu0, t0 = time.process_time(), time.monotonic()
    results = await asyncio.gather(*(one(k) for k in range(n)))
    wall, cpu = time.monotonic() - t0, time.process_time() - cpu0
    print(f"{n} streams x {args.tokens} tokens at {args.rate}/s: wall {wall:.2f} s "  # type: ignore[attr-defined]
          f"(schedule {args.tokens / args.rate:.2f} s), CPU {cpu:.2f} s")  # type: ignore[attr-defined]
    print(f"stored text differs from what was sent: {results.count(False)} of {n} runs; "
          f"journal write failures: {len(failures.messages)} {failures.messages[:3]}")


async def main() -> None:
    def extra(parser: object) -> None:
        parser.add_argument("--tokens", type=int, default=10_000)  # type: ignore[attr-defined]
        parser.add_argument("--rate", type=float, default=2_000)  # type: ignore[attr-defined]
        parser.add_argument("--concurrent", type=int, default=0)  # type: ignore[attr-defined]

    args = parse_args(__doc__, 5, extra)
    print(machine())
    with tempfile.TemporaryDirectory(prefix="streamhost-bench-store-") as tmp:
        store = await open_store(StoreSettings(path=str(Path(tmp) / "streamhost.db")))
        try:
            await (concurrent(args, store) if args.concurrent else compare(args, store))
        finally:
            await store.close()


if __name__ == "__main__":
    asyncio.run(main())
