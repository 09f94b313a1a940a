"""The store: runs with their journaled text, threads, usage; ``open_store`` makes one ready to use.

Writes are serialized in this process (one SQLite writer; PostgreSQL takes them as they come) and journal
chunks from every run are committed together (group commit): 50 runs journaling at once cost one
transaction per round, not 50. Reads use their own connections and never wait for a write.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from streamhost.store import migrate, recovery, schema, threads, usage
from streamhost.store.connect import Target, create_file, engines, resolve
from streamhost.store.records import (
    FileRecord,
    RunEnd,
    RunRecord,
    RunStart,
    StoreError,
    ThreadSummary,
    Turn,
    UsageKey,
    UsageRow,
)

if TYPE_CHECKING:
    from streamhost.host.config import StoreSettings

_Chunk = tuple[str, int, str, "asyncio.Future[None]"]


class Store:
    """Runs, threads and usage in one database. Made by ``open_store``; every method is safe to call at once."""

    def __init__(self, target: Target, writer: AsyncEngine, reader: AsyncEngine, *, keep_text: bool) -> None:
        self._target = target
        self._writer = writer
        self._reader = reader
        self._keep_text = keep_text
        # SQLite has one writer: queue for it here, without the pool's time-out. PostgreSQL needs no queue.
        self._write_lock: asyncio.Lock | contextlib.nullcontext[None] = (
            asyncio.Lock() if target.path is not None else contextlib.nullcontext())
        self._chunk_lock = asyncio.Lock()
        self._chunks: list[_Chunk] = []
        self._upsert_text = _upsert_text(writer.dialect.name)  # built once: the journal runs it twice a second

    @property
    def location(self) -> str:
        """The SQLite file, or the database URL with its password masked: for messages."""
        return self._target.label

    @property
    def keep_text(self) -> bool:
        """Whether prompts and answers are kept (``[store] keep_text``)."""
        return self._keep_text

    @contextlib.asynccontextmanager
    async def _writing(self) -> AsyncIterator[AsyncConnection]:
        async with self._write_lock, self._writer.begin() as conn:
            yield conn

    @contextlib.asynccontextmanager
    async def _reading(self) -> AsyncIterator[AsyncConnection]:
        async with self._reader.connect() as conn:
            yield conn

    # -- runs ------------------------------------------------------------------------------------------------

    async def create_run(self, start: RunStart) -> None:
        """Record a run as running, owned by this process."""
        now = time.time()
        async with self._writing() as conn:
            await conn.execute(insert(schema.runs).values(
                id=start.id, tool=start.tool, model=start.model, status="running", thread_id=start.thread_id,
                process=recovery.this_process(), started_at=now, heartbeat_at=now, chars=0,
                prompt=start.prompt if self._keep_text else None, usage_estimated=False,
                owner_token=start.owner_token))
            if start.files:
                await conn.execute(insert(schema.run_files), [
                    {"run_id": start.id, "seq": i, "path": f.path, "size": f.size, "sha256": f.sha256}
                    for i, f in enumerate(start.files)])

    async def append_text(self, run_id: str, offset: int, text: str) -> None:
        """Journal a chunk of a run's answer that starts at ``offset`` (nothing is written without keep_text)."""
        if not self._keep_text or not text:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._chunks.append((run_id, offset, text, future))
        async with self._chunk_lock:
            if not future.done():  # else a caller ahead in the queue committed this chunk with its own
                batch, self._chunks = self._chunks, []
                try:
                    # One row per (run, offset), the longest: PostgreSQL refuses to upsert a row twice in a statement.
                    longest: dict[tuple[str, int], str] = {}
                    for run_id, offset, text, _ in batch:
                        if len(text) > len(longest.get((run_id, offset), "")):
                            longest[run_id, offset] = text
                    rows = [{"run_id": run_id, "pos": pos, "text": text} for (run_id, pos), text in longest.items()]
                    async with self._writing() as conn:
                        # One row is an execute, not an executemany: SQLAlchemy's many-rows path costs more CPU.
                        await conn.execute(self._upsert_text, rows[0] if len(rows) == 1 else rows)
                except BaseException as exc:
                    # Every caller in the batch waits on its future: each must learn the write failed.
                    reason = "cancelled" if not isinstance(exc, Exception) else _reason(exc)
                    for *_, waiting in batch:
                        if not waiting.done():
                            waiting.set_exception(StoreError(f"Cannot journal to {self.location} ({reason})."))
                    if not isinstance(exc, Exception):
                        future.exception()  # retrieved: this caller raises its cancellation instead
                        raise
                else:
                    for *_, waiting in batch:
                        waiting.set_result(None)
        await future

    async def heartbeat(self, run_ids: list[str]) -> None:
        """Mark these runs as alive now (a run without a heartbeat for 2 minutes is taken for dead)."""
        if run_ids:
            r = schema.runs
            async with self._writing() as conn:
                await conn.execute(update(r).where(r.c.id.in_(run_ids), r.c.status == "running")
                                   .values(heartbeat_at=time.time()))

    async def finish_run(self, run_id: str, end: RunEnd, *, text: Sequence[tuple[int, str]] = ()) -> None:
        """Record how the run ended, after its last text: ``text`` (offset, chunk) pairs are written with the end
        in one transaction (the journal's last batch: a completed run never lacks the end of its answer)."""
        r = schema.runs
        values: dict[str, Any] = {
            "status": end.status, "ended_at": time.time(), "ttft_ms": end.ttft_ms, "duration_ms": end.duration_ms,
            "input_tokens": end.input_tokens, "output_tokens": end.output_tokens,
            "usage_estimated": end.usage_estimated, "cost_usd": end.cost_usd, "error": end.error,
            "chars": end.chars if end.chars is not None else _journaled_chars()}
        if end.model:
            values["model"] = end.model
        rows = [{"run_id": run_id, "pos": offset, "text": chunk} for offset, chunk in text if chunk]
        async with self._writing() as conn:
            if rows and self._keep_text:
                await conn.execute(self._upsert_text, rows[0] if len(rows) == 1 else rows)
            await conn.execute(update(r).where(r.c.id == run_id).values(values))

    async def run(self, run_id: str) -> RunRecord | None:
        """One run, or None when there is none with that id."""
        async with self._reading() as conn:
            found = await _runs(conn, select(schema.runs).where(schema.runs.c.id == run_id))
        return found[0] if found else None

    async def run_text(self, run_id: str) -> str:
        """The run's journaled text: chunks in offset order, overlaps counted once."""
        t = schema.run_text
        async with self._reading() as conn:
            rows = await conn.execute(select(t.c.pos, t.c.text).where(t.c.run_id == run_id).order_by(t.c.pos))
            parts, end = [], 0
            for pos, text in rows:
                if pos + len(text) > end:
                    parts.append(text[max(end - pos, 0):])
                    end = pos + len(text)
        return "".join(parts)

    async def runs(self, *, since: float | None = None, limit: int = 50, model: str | None = None) -> list[RunRecord]:
        """Runs, newest first; only those started at or after ``since``, only ``model``'s, when given."""
        r = schema.runs
        query = select(r).order_by(r.c.started_at.desc(), r.c.id.desc()).limit(limit)
        if since is not None:
            query = query.where(r.c.started_at >= since)
        if model is not None:
            query = query.where(r.c.model == model)
        async with self._reading() as conn:
            return await _runs(conn, query)

    async def prune(self, keep_days: float) -> int:
        """Delete finished runs started more than ``keep_days`` ago, with their text and files; how many.

        ``keep_days`` 0 (or less) keeps everything, as ``[store] keep_days = 0`` means.
        """
        if keep_days <= 0:
            return 0
        r = schema.runs
        old = select(r.c.id).where(r.c.started_at < time.time() - keep_days * 86_400, r.c.status != "running")
        async with self._writing() as conn:
            for table in (schema.run_text, schema.run_files):
                await conn.execute(delete(table).where(table.c.run_id.in_(old)))
            return (await conn.execute(delete(r).where(r.c.id.in_(old)))).rowcount

    async def recover(self) -> int:
        """Mark ``interrupted`` the running runs whose process is gone or silent for 2 minutes; how many."""
        r = schema.runs
        stale = time.time() - recovery.STALE_S
        async with self._reading() as conn:
            rows = (await conn.execute(select(r.c.id, r.c.process, r.c.heartbeat_at).where(r.c.status == "running")))
            dead = [row.id for row in rows if row.heartbeat_at < stale or recovery.gone(row.process)]
        if dead:
            async with self._writing() as conn:
                await conn.execute(update(r).where(r.c.id.in_(dead), r.c.status == "running").values(
                    status="interrupted", ended_at=r.c.heartbeat_at, chars=_journaled_chars(),
                    error="The host stopped before the run finished; the text up to its last journal entry is kept."))
        return len(dead)

    # -- threads ---------------------------------------------------------------------------------------------

    async def create_thread(self, thread_id: str) -> None:
        """Add an empty thread."""
        async with self._writing() as conn:
            await threads.create(conn, thread_id, time.time())

    async def thread(self, thread_id: str) -> ThreadSummary | None:
        """The thread's summary (no turn bodies), or None."""
        async with self._reading() as conn:
            return await threads.summary(conn, thread_id)

    async def turns(self, thread_id: str) -> list[Turn]:
        """The thread's turns, oldest first (none for an unknown thread)."""
        async with self._reading() as conn:
            return await threads.turns(conn, thread_id)

    async def append_turns(self, thread_id: str, turns: list[Turn]) -> None:
        """Add turns to the thread (made if new). Threads hold text: refused when keep_text is off."""
        if not self._keep_text:
            raise StoreError("Threads keep the conversation's text, and [store] keep_text is false: set it to true "
                             "to use threads.")
        async with self._writing() as conn:
            await threads.append(conn, thread_id, turns, time.time())

    async def threads(self, *, limit: int = 50) -> list[ThreadSummary]:
        """Threads, most recently updated first, without reading their turns."""
        async with self._reading() as conn:
            return await threads.listing(conn, limit)

    async def delete_thread(self, thread_id: str) -> bool:
        """Delete the thread and its turns; False when there was none."""
        async with self._writing() as conn:
            return await threads.remove(conn, thread_id)

    # -- usage -----------------------------------------------------------------------------------------------

    async def usage(self, *, since: float | None, by: UsageKey) -> list[UsageRow]:
        """Runs, tokens and cost per model, day (local, newest first), thread or token."""
        async with self._reading() as conn:
            return await usage.usage(conn, since, by)

    async def cost_since(self, since: float) -> float:
        """USD spent by runs started at or after ``since`` (for a daily budget)."""
        async with self._reading() as conn:
            return await usage.cost_since(conn, since)

    async def close(self) -> None:
        """Close every connection (waiting for writes under way)."""
        async with self._write_lock:
            await self._writer.dispose()
        if self._reader is not self._writer:
            await self._reader.dispose()


def _upsert_text(dialect: str) -> Any:
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


def _journaled_chars() -> Any:
    """SQL for the length of a run's journaled text (runs.chars itself when none): where its last chunk ends."""
    t = schema.run_text
    return func.coalesce(select(func.max(t.c.pos + func.length(t.c.text))).where(t.c.run_id == schema.runs.c.id)
                         .scalar_subquery(), schema.runs.c.chars)


async def _runs(conn: AsyncConnection, query: Any) -> list[RunRecord]:
    rows = list(await conn.execute(query))
    files: dict[str, list[FileRecord]] = {}
    chars: dict[str, int] = {}
    if rows:
        f, t = schema.run_files, schema.run_text
        found = await conn.execute(select(f).where(f.c.run_id.in_([row.id for row in rows])).order_by(f.c.seq))
        for file in found:
            files.setdefault(file.run_id, []).append(FileRecord(file.path, file.size, file.sha256))
        # A running run's length is only written when it ends: until then, where its journal has got to.
        running = [row.id for row in rows if row.status == "running"]
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


async def open_store(settings: StoreSettings) -> Store:
    """Open (creating and migrating as needed) the store ``settings`` names, recover dead runs, prune old ones."""
    target = resolve(settings.location())
    if target.path is not None:
        create_file(target.path)
    writer, reader = engines(target)
    store = Store(target, writer, reader, keep_text=settings.keep_text)
    try:
        await migrate.upgrade(writer)
        await store.recover()
        if settings.keep_days:
            await store.prune(settings.keep_days)
    except BaseException as exc:
        await store.close()
        if isinstance(exc, (SQLAlchemyError, OSError)):  # OSError: a database server that cannot be reached
            raise StoreError(f"Cannot open the store {target.label} ({_reason(exc)}): check [store] path/url or "
                             "STREAMHOST_STORE, or set [store] enabled = false.") from None
        raise
    return store


def _reason(exc: BaseException) -> str:
    original = getattr(exc, "orig", None)
    return str(original or exc).splitlines()[0]
