"""Checkpoints, for resuming a run after a restart: the queries behind ``Store.save_checkpoint``, ``checkpoint``,
``interrupted_runs``, ``take_over`` and ``leave_interrupted``.

A checkpoint is the provider's state for resuming (opaque text to the store) and how many characters of the
run's text it covers; the journal stores it only once that text is stored.
"""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from streamhost.store import recovery, schema


class Interrupted(NamedTuple):
    """An interrupted run with a checkpoint: what resuming it needs."""

    id: str
    model: str | None
    thread_id: str | None
    prompt: str | None
    checkpoint: str
    checkpoint_chars: int
    error: str | None


async def save(conn: AsyncConnection, run_id: str, state: str, chars: int) -> None:
    """Store the running run's checkpoint, covering its first ``chars`` characters."""
    r = schema.runs
    await conn.execute(update(r).where(r.c.id == run_id, r.c.status == "running")
                       .values(checkpoint=state, checkpoint_chars=chars))


async def get(conn: AsyncConnection, run_id: str) -> tuple[str, int] | None:
    """The run's checkpoint and the characters it covers; None when it has none."""
    r = schema.runs
    row = (await conn.execute(select(r.c.checkpoint, r.c.checkpoint_chars).where(r.c.id == run_id))).first()
    return None if row is None or row.checkpoint is None else (row.checkpoint, row.checkpoint_chars or 0)


async def interrupted(conn: AsyncConnection) -> list[Interrupted]:
    """The interrupted runs that have a checkpoint, oldest first."""
    r = schema.runs
    query = (select(r.c.id, r.c.model, r.c.thread_id, r.c.prompt, r.c.checkpoint, r.c.checkpoint_chars, r.c.error)
             .where(r.c.status == "interrupted", r.c.checkpoint.is_not(None)).order_by(r.c.started_at))
    return [Interrupted(row.id, row.model, row.thread_id, row.prompt, row.checkpoint, row.checkpoint_chars or 0,
                        row.error) for row in await conn.execute(query)]


async def take_over(conn: AsyncConnection, run: Interrupted, now: float) -> bool:
    """Make the interrupted run this process's running run, its text cut back to what its checkpoint covers;
    False when another process took it first."""
    r, t = schema.runs, schema.run_text
    chars = run.checkpoint_chars
    # Conditional: of replicas taking over at once, exactly one finds the run still interrupted.
    taken = await conn.execute(update(r).where(
        r.c.id == run.id, r.c.status == "interrupted", r.c.checkpoint == run.checkpoint).values(
        status="running", process=recovery.this_process(), heartbeat_at=now, ended_at=None, error=None))
    if taken.rowcount != 1:
        return False
    await conn.execute(delete(t).where(t.c.run_id == run.id, t.c.pos >= chars))
    await conn.execute(update(t).where(t.c.run_id == run.id, t.c.pos < chars, t.c.pos + func.length(t.c.text) > chars)
                       .values(text=func.substr(t.c.text, 1, chars - t.c.pos)))
    return True


async def leave(conn: AsyncConnection, run_id: str, error: str) -> None:
    """Record why the interrupted run is not resumed now (it stays interrupted)."""
    r = schema.runs
    await conn.execute(update(r).where(r.c.id == run_id, r.c.status == "interrupted").values(error=error))
