"""Runs and their journaled text: the queries behind ``Store.create_run``, ``finish_run``, ``run``, ``run_text``,
``runs``, ``prune``, ``hand_off``, ``given`` and ``recover``.

A run's text is kept as chunks keyed by (run, offset); a chunk written again after a failed commit may come back
longer, and readers count overlapping chunks once.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, case, delete, func, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from streamhost.store import recovery, schema
from streamhost.store.records import FileRecord, RunEnd, RunRecord, RunStart

TextRow = dict[str, Any]
"""A journal chunk as the upsert takes it: ``run_id``, ``pos`` (its offset) and ``text``."""


def upsert_text(dialect: str) -> Any:
    """Insert a journal chunk; a chunk retried after a failed commit may come back longer: the longer wins."""
    t = schema.run_text
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    statement = dialect_insert(t)
    return statement.on_conflict_do_update(
        index_elements=[t.c.run_id, t.c.pos], set_={"text": statement.excluded.text},
        where=func.length(statement.excluded.text) > func.length(t.c.text))


Step = tuple[Any, list[dict[str, Any]]]
"""One statement and the rows it runs with, in a transaction of several (``Store._write``). The statements are
built once, here, and take every value as a parameter: SQLite runs their SQL on its writer thread
(``sqlite_writer.py``), PostgreSQL through SQLAlchemy."""

RUNS_INSERT = insert(schema.runs)
FILES_INSERT = insert(schema.run_files)
FINISH = update(schema.runs).where(schema.runs.c.id == bindparam("run_id_"))
"""A run's end: the columns it sets are its parameters' keys; ``run_id_`` names the run."""


def _journaled_chars() -> Any:
    """SQL for the length of a run's journaled text (runs.chars itself when none): where its last chunk ends."""
    t = schema.run_text
    return func.coalesce(select(func.max(t.c.pos + func.length(t.c.text))).where(t.c.run_id == schema.runs.c.id)
                         .scalar_subquery(), schema.runs.c.chars)


FINISH_AT_JOURNAL = FINISH.values(chars=_journaled_chars())
"""A run's end whose length is where its journal got to."""


def start_steps(starts: list[RunStart], now: float, *, keep_text: bool) -> list[Step]:
    """Record runs as running, owned by this process, with their files: one INSERT for the runs, one for the files."""
    process = recovery.this_process()
    rows = [dict(id=start.id, tool=start.tool, model=start.model, status="running", thread_id=start.thread_id,
                 process=process, started_at=now, heartbeat_at=now, chars=0,
                 prompt=start.prompt if keep_text else None, usage_estimated=False, owner_token=start.owner_token)
            for start in starts]
    files = [{"run_id": start.id, "seq": i, "path": f.path, "size": f.size, "sha256": f.sha256}
             for start in starts for i, f in enumerate(start.files)]
    return [(RUNS_INSERT, rows), (FILES_INSERT, files)] if files else [(RUNS_INSERT, rows)]


def finish_step(run_id: str, end: RunEnd, now: float, checkpoint: tuple[str, int] | None) -> Step:
    """Record how the run ended (its length: ``end.chars``, else where its journal got to) and its newest
    checkpoint; the journal's last chunks go before it, in the same transaction."""
    values: dict[str, Any] = {
        "run_id_": run_id, "status": end.status, "ended_at": now, "ttft_ms": end.ttft_ms,
        "duration_ms": end.duration_ms, "input_tokens": end.input_tokens, "output_tokens": end.output_tokens,
        "usage_estimated": end.usage_estimated, "cost_usd": end.cost_usd, "error": end.error}
    if end.model:
        values["model"] = end.model
    if checkpoint is not None:
        values["checkpoint"], values["checkpoint_chars"] = checkpoint
    if end.chars is None:
        return FINISH_AT_JOURNAL, [values]
    values["chars"] = end.chars
    return FINISH, [values]


async def heartbeat(conn: AsyncConnection, run_ids: list[str], now: float) -> None:
    """Mark these running runs as alive at ``now``."""
    r = schema.runs
    await conn.execute(update(r).where(r.c.id.in_(run_ids), r.c.status == "running").values(heartbeat_at=now))


async def by_id(conn: AsyncConnection, run_id: str) -> RunRecord | None:
    """One run, or None when there is none with that id."""
    found = await _records(conn, select(schema.runs).where(schema.runs.c.id == run_id))
    return found[0] if found else None


async def listing(conn: AsyncConnection, since: float | None, limit: int, model: str | None) -> list[RunRecord]:
    """Runs, newest first; only those started at or after ``since``, only ``model``'s, when given."""
    r = schema.runs
    query = select(r).order_by(r.c.started_at.desc(), r.c.id.desc()).limit(limit)
    if since is not None:
        query = query.where(r.c.started_at >= since)
    if model is not None:
        query = query.where(r.c.model == model)
    return await _records(conn, query)


async def text(conn: AsyncConnection, run_id: str, start: int) -> str:
    """The run's journaled text from offset ``start`` on."""
    t = schema.run_text
    query = select(t.c.pos, t.c.text).where(t.c.run_id == run_id).order_by(t.c.pos)
    if start:  # a follower polling a long run reads only the chunks past where it got to
        query = query.where(t.c.pos + func.length(t.c.text) > start)
    return _joined(await conn.execute(query), start)


async def follow_step(conn: AsyncConnection, run_id: str, start: int) -> tuple[str | None, str]:
    """The run's status (None: no such run), then its journaled text from ``start`` on."""
    r, t = schema.runs, schema.run_text
    status = (await conn.execute(select(r.c.status).where(r.c.id == run_id))).scalar()
    rows = await conn.execute(select(t.c.pos, t.c.text).where(
        t.c.run_id == run_id, t.c.pos + func.length(t.c.text) > start).order_by(t.c.pos))
    return status, _joined(rows, start)


def _joined(rows: Any, start: int) -> str:
    """Chunks (offset, text) in offset order joined from ``start`` on, overlaps counted once."""
    parts, end = [], start
    for pos, chunk in rows:
        if pos + len(chunk) > end:
            parts.append(chunk[max(end - pos, 0):])
            end = pos + len(chunk)
    return "".join(parts)


async def prune(conn: AsyncConnection, before: float) -> int:
    """Delete finished runs started before ``before``, with their text and files; how many."""
    r = schema.runs
    old = select(r.c.id).where(r.c.started_at < before, r.c.status != "running")
    for table in (schema.run_text, schema.run_files):
        await conn.execute(delete(table).where(table.c.run_id.in_(old)))
    return (await conn.execute(delete(r).where(r.c.id.in_(old)))).rowcount


async def hand_off(conn: AsyncConnection, run_id: str, given: int) -> bool:
    """Raise the running run's ``chars`` to ``given`` (never lower it); False when it is not running."""
    r = schema.runs
    found = await conn.execute(update(r).where(r.c.id == run_id, r.c.status == "running")
                               .values(chars=case((r.c.chars < given, given), else_=r.c.chars)))
    return found.rowcount > 0


async def hand_off_many(conn: AsyncConnection, offsets: list[tuple[str, int]]) -> list[bool]:
    """:func:`hand_off` for a batch of (run, given) in one statement: for each, whether its run is running."""
    if len(offsets) == 1:
        return [await hand_off(conn, *offsets[0])]
    highest: dict[str, int] = {}
    for run_id, offset in offsets:
        highest[run_id] = max(offset, highest.get(run_id, 0))
    r = schema.runs
    given = case(highest, value=r.c.id)
    found = await conn.execute(update(r).where(r.c.id.in_(list(highest)), r.c.status == "running")
                               .values(chars=case((r.c.chars < given, given), else_=r.c.chars)).returning(r.c.id))
    running = {row[0] for row in found}
    return [run_id in running for run_id, _ in offsets]


async def given(conn: AsyncConnection, run_id: str) -> int | None:
    """A running or interrupted run's hand-off offset; None once it has ended (or when there is no such run)."""
    r = schema.runs
    chars = (await conn.execute(select(r.c.chars).where(r.c.id == run_id,
                                                        r.c.status.in_(("running", "interrupted"))))).first()
    return None if chars is None else chars[0] or 0


async def recover(conn: AsyncConnection, now: float) -> list[str]:
    """Mark ``interrupted`` the running runs that are silent or whose process on this host is gone; their ids."""
    r = schema.runs
    error = "The host stopped before the run finished; the text up to its last journal entry is kept."
    # ``chars`` is left as it is: the hand-off offset (see hand_off), which a run resumed later goes on from.
    marked = dict(status="interrupted", ended_at=r.c.heartbeat_at, error=error)
    running = r.c.status == "running"
    # Silent runs, from any host, in one statement that re-checks the heartbeat as it marks.
    stale = update(r).where(running, r.c.heartbeat_at < now - recovery.stale_s())
    ids = list((await conn.execute(stale.values(marked).returning(r.c.id))).scalars())
    # Runs of a process on this host that has ended: only here can that be checked, and cheaply.
    here = r.c.process.like(recovery.on_this_host(), escape="\\")
    mine = await conn.execute(select(r.c.id, r.c.process).where(running, here))
    dead = [row.id for row in mine if recovery.gone(row.process)]
    if dead:
        gone = update(r).where(r.c.id.in_(dead), running).values(marked).returning(r.c.id)
        ids += list((await conn.execute(gone)).scalars())
    return ids


async def _records(conn: AsyncConnection, query: Any) -> list[RunRecord]:
    rows = list(await conn.execute(query))
    files: dict[str, list[FileRecord]] = {}
    chars: dict[str, int] = {}
    if rows:
        f, t = schema.run_files, schema.run_text
        found = await conn.execute(select(f).where(f.c.run_id.in_([row.id for row in rows])).order_by(f.c.seq))
        for file in found:
            files.setdefault(file.run_id, []).append(FileRecord(file.path, file.size, file.sha256))
        # A running run's length is only written when it ends: until then (or when it was interrupted), where its
        # journal has got to.
        running = [row.id for row in rows if row.status in ("running", "interrupted")]
        if running:
            ends = await conn.execute(select(t.c.run_id, func.max(t.c.pos + func.length(t.c.text)))
                                      .where(t.c.run_id.in_(running)).group_by(t.c.run_id))
            chars = {run_id: end for run_id, end in ends}
    return [_record(row, files.get(row.id, []), chars.get(row.id)) for row in rows]


def _record(row: Row, files: list[FileRecord], chars: int | None) -> RunRecord:
    return RunRecord(
        id=row.id, tool=row.tool, model=row.model, status=row.status, thread_id=row.thread_id,
        started_at=row.started_at, ended_at=row.ended_at, ttft_ms=row.ttft_ms, duration_ms=row.duration_ms,
        input_tokens=row.input_tokens, output_tokens=row.output_tokens, usage_estimated=bool(row.usage_estimated),
        cost_usd=row.cost_usd, error=row.error, chars=row.chars if chars is None else chars, prompt=row.prompt,
        files=files, owner_token=row.owner_token)
