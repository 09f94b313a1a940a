"""Threads and their turns: the queries behind ``Store.create_thread``, ``turns``, ``append_turns``, ...

A thread row carries its turn count, last model and title, so listing threads never reads a turn body.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from streamhost.store import schema
from streamhost.store.records import ThreadSummary, Turn

TITLE_CHARS = 80


def _title(turns: Sequence[Turn]) -> str:
    first = next((turn.content for turn in turns if turn.role == "user"), "")
    folded = " ".join(first.split())
    return folded if len(folded) <= TITLE_CHARS else folded[: TITLE_CHARS - 1] + "…"


def _summary(row: Row) -> ThreadSummary:
    return ThreadSummary(id=row.id, created_at=row.created_at, updated_at=row.updated_at, turns=row.turns,
                         last_model=row.last_model, title=row.title)


async def create(conn: AsyncConnection, thread_id: str, now: float, owner_token: str | None = None) -> None:
    """Add an empty thread, owned by the token named ``owner_token`` (None: a local caller)."""
    await conn.execute(insert(schema.threads).values(id=thread_id, created_at=now, updated_at=now, turns=0,
                                                     last_model=None, title="", owner_token=owner_token))


async def owned(conn: AsyncConnection, thread_id: str, owner_token: str | None) -> bool:
    """Whether the thread exists and belongs to ``owner_token``."""
    t = schema.threads
    owner = t.c.owner_token.is_(None) if owner_token is None else t.c.owner_token == owner_token
    return (await conn.execute(select(t.c.id).where(t.c.id == thread_id, owner))).first() is not None


async def summary(conn: AsyncConnection, thread_id: str) -> ThreadSummary | None:
    """The thread's summary, or None when there is no such thread."""
    row = (await conn.execute(select(schema.threads).where(schema.threads.c.id == thread_id))).first()
    return None if row is None else _summary(row)


async def listing(conn: AsyncConnection, limit: int) -> list[ThreadSummary]:
    """The most recently updated threads first."""
    query = select(schema.threads).order_by(schema.threads.c.updated_at.desc(), schema.threads.c.id.desc())
    return [_summary(row) for row in await conn.execute(query.limit(limit))]


async def turns(conn: AsyncConnection, thread_id: str) -> list[Turn]:
    """The thread's turns, oldest first."""
    t = schema.turns
    rows = await conn.execute(select(t).where(t.c.thread_id == thread_id).order_by(t.c.seq))
    return [Turn(role=row.role, content=row.content, model=row.model, run_id=row.run_id, at=row.at) for row in rows]


async def history(conn: AsyncConnection, thread_id: str) -> list[tuple[str, str]]:
    """The thread's turns as (role, content), oldest first: what a continued thread sends, and no more (a call
    reads 200 turns before its request goes out, so only the two columns it needs)."""
    t = schema.turns
    rows = await conn.execute(select(t.c.role, t.c.content).where(t.c.thread_id == thread_id).order_by(t.c.seq))
    return [tuple(row) for row in rows]  # type: ignore[misc]


async def append(conn: AsyncConnection, thread_id: str, new: Sequence[Turn], now: float) -> None:
    """Add turns after the last one (creating the thread if it is new) and update its summary columns."""
    if not new:
        return
    t = schema.threads
    models = [turn.model for turn in new if turn.model]
    changes = {"turns": t.c.turns + len(new), "updated_at": now}
    if models:
        changes["last_model"] = models[-1]
    # The UPDATE comes first so it takes the row's write lock (PostgreSQL) before the count is read back:
    # two replicas appending to one thread at once then number their turns one after the other.
    if (await conn.execute(update(t).where(t.c.id == thread_id).values(changes))).rowcount == 0:
        await create(conn, thread_id, now)
        await conn.execute(update(t).where(t.c.id == thread_id).values(changes))
    count, title = (await conn.execute(select(t.c.turns, t.c.title).where(t.c.id == thread_id))).one()
    if not title and (title := _title(new)):
        await conn.execute(update(t).where(t.c.id == thread_id).values(title=title))
    first = count - len(new)
    await conn.execute(insert(schema.turns), [
        {"thread_id": thread_id, "seq": first + i, "role": turn.role, "content": turn.content, "model": turn.model,
         "run_id": turn.run_id, "at": turn.at or now}
        for i, turn in enumerate(new)])


async def remove(conn: AsyncConnection, thread_id: str) -> bool:
    """Delete the thread and its turns; False when there was no such thread."""
    await conn.execute(delete(schema.turns).where(schema.turns.c.thread_id == thread_id))
    return (await conn.execute(delete(schema.threads).where(schema.threads.c.id == thread_id))).rowcount > 0
