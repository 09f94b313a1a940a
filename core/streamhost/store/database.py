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
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import case, delete, func, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from streamhost.store import migrate, recovery, schema, threads, tokens, usage
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
from streamhost.store.tokens import TokenRecord

if TYPE_CHECKING:
    from streamhost.host.config import StoreSettings

_Chunk = tuple[str, int, str, "asyncio.Future[None]"]


class Interrupted(NamedTuple):
    """An interrupted run with a checkpoint: what resuming it needs."""

    id: str
    model: str | None
    thread_id: str | None
    prompt: str | None
    checkpoint: str
    checkpoint_chars: int
    error: str | None


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
        self.recovered: list[str] = []
        """The runs ``open_store`` marked interrupted (a dead process's), for whoever resumes them."""

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

    async def finish_run(self, run_id: str, end: RunEnd, *, text: Sequence[tuple[int, str]] = (),
                         checkpoint: tuple[str, int] | None = None) -> None:
        """Record how the run ended, after its last text: ``text`` (offset, chunk) pairs are written with the end
        in one transaction (the journal's last batch: a completed run never lacks the end of its answer), and with
        them the run's newest ``checkpoint`` (state, characters covered), which that text covers."""
        r = schema.runs
        values: dict[str, Any] = {
            "status": end.status, "ended_at": time.time(), "ttft_ms": end.ttft_ms, "duration_ms": end.duration_ms,
            "input_tokens": end.input_tokens, "output_tokens": end.output_tokens,
            "usage_estimated": end.usage_estimated, "cost_usd": end.cost_usd, "error": end.error,
            "chars": end.chars if end.chars is not None else _journaled_chars()}
        if end.model:
            values["model"] = end.model
        if checkpoint is not None:
            values["checkpoint"], values["checkpoint_chars"] = checkpoint
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

    async def run_text(self, run_id: str, start: int = 0) -> str:
        """The run's journaled text from offset ``start`` on: chunks in offset order, overlaps counted once."""
        t = schema.run_text
        query = select(t.c.pos, t.c.text).where(t.c.run_id == run_id).order_by(t.c.pos)
        if start:  # a follower polling a long run reads only the chunks past where it got to
            query = query.where(t.c.pos + func.length(t.c.text) > start)
        async with self._reading() as conn:
            rows = await conn.execute(query)
            parts, end = [], start
            for pos, text in rows:
                if pos + len(text) > end:
                    parts.append(text[max(end - pos, 0):])
                    end = pos + len(text)
        return "".join(parts)

    async def follow_step(self, run_id: str, start: int) -> tuple[str | None, str]:
        """A running run's status (None: no such run) and its journaled text from ``start`` on, read in that order
        on one connection: what a follower polls (cheaper than ``run`` and ``run_text``, for many followers)."""
        r, t = schema.runs, schema.run_text
        async with self._reading() as conn:
            status = (await conn.execute(select(r.c.status).where(r.c.id == run_id))).scalar()
            rows = await conn.execute(select(t.c.pos, t.c.text).where(
                t.c.run_id == run_id, t.c.pos + func.length(t.c.text) > start).order_by(t.c.pos))
            parts, end = [], start
            for pos, text in rows:
                if pos + len(text) > end:
                    parts.append(text[max(end - pos, 0):])
                    end = pos + len(text)
        return status, "".join(parts)

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

    async def hand_off(self, run_id: str, given: int) -> bool:
        """Record that callers have been given the running run's first ``given`` characters (a hand-off), so a
        ``wait`` in any process goes on from there; False when the run is not (or not yet) recorded as running.

        While a run runs (or is interrupted, until it is resumed), ``runs.chars`` holds this (its length is only
        written when it ends; until then readers take it from the journal): no schema change, and a later hand-off
        never moves it back.
        """
        r = schema.runs
        async with self._writing() as conn:
            found = await conn.execute(update(r).where(r.c.id == run_id, r.c.status == "running")
                                       .values(chars=case((r.c.chars < given, given), else_=r.c.chars)))
            return found.rowcount > 0

    async def given(self, run_id: str) -> int | None:
        """How many characters of a running (or interrupted) run callers have been given (see :meth:`hand_off`);
        None once it has ended (its record holds its whole text then)."""
        r = schema.runs
        async with self._reading() as conn:
            chars = (await conn.execute(select(r.c.chars).where(r.c.id == run_id,
                                                                r.c.status.in_(("running", "interrupted"))))).first()
        return None if chars is None else chars[0] or 0

    async def recover(self) -> list[str]:
        """Mark ``interrupted`` the running runs whose process is gone, or silent for ``recovery.stale_s()``; their
        ids. Conditional updates: of replicas sweeping at once, each run is reported by exactly one."""
        r = schema.runs
        error = "The host stopped before the run finished; the text up to its last journal entry is kept."
        # ``chars`` is left as it is: the hand-off offset (see hand_off), which a run resumed later goes on from.
        marked = dict(status="interrupted", ended_at=r.c.heartbeat_at, error=error)
        running = r.c.status == "running"
        async with self._writing() as conn:
            # Silent runs, from any host, in one statement that re-checks the heartbeat as it marks.
            stale = update(r).where(running, r.c.heartbeat_at < time.time() - recovery.stale_s())
            ids = list((await conn.execute(stale.values(marked).returning(r.c.id))).scalars())
            # Runs of a process on this host that has ended: only here can that be checked, and cheaply.
            here = r.c.process.like(recovery.on_this_host(), escape="\\")
            mine = await conn.execute(select(r.c.id, r.c.process).where(running, here))
            dead = [row.id for row in mine if recovery.gone(row.process)]
            if dead:
                gone = update(r).where(r.c.id.in_(dead), running).values(marked).returning(r.c.id)
                ids += list((await conn.execute(gone)).scalars())
        return ids

    # -- checkpoints: resuming a run after a restart ----------------------------------------------------------

    async def save_checkpoint(self, run_id: str, state: str, chars: int) -> None:
        """Store where the upstream can resume the running run; it covers the run's first ``chars`` characters,
        which the caller (the journal) has stored already."""
        r = schema.runs
        async with self._writing() as conn:
            await conn.execute(update(r).where(r.c.id == run_id, r.c.status == "running")
                               .values(checkpoint=state, checkpoint_chars=chars))

    async def checkpoint(self, run_id: str) -> tuple[str, int] | None:
        """The run's stored checkpoint and how many characters of its text it covers; None when it has none."""
        r = schema.runs
        async with self._reading() as conn:
            row = (await conn.execute(select(r.c.checkpoint, r.c.checkpoint_chars).where(r.c.id == run_id))).first()
        return None if row is None or row.checkpoint is None else (row.checkpoint, row.checkpoint_chars or 0)

    async def interrupted_runs(self) -> list[Interrupted]:
        """The interrupted runs that have a checkpoint (a resumer's candidates), oldest first."""
        r = schema.runs
        query = (select(r.c.id, r.c.model, r.c.thread_id, r.c.prompt, r.c.checkpoint, r.c.checkpoint_chars,
                        r.c.error)
                 .where(r.c.status == "interrupted", r.c.checkpoint.is_not(None)).order_by(r.c.started_at))
        async with self._reading() as conn:
            return [Interrupted(row.id, row.model, row.thread_id, row.prompt, row.checkpoint,
                                row.checkpoint_chars or 0, row.error) for row in await conn.execute(query)]

    async def take_over(self, run: Interrupted) -> bool:
        """Make an interrupted run this process's running run again, its text cut back to what its checkpoint
        covers (the resumed stream yields the rest); False when another process took it first."""
        r, t = schema.runs, schema.run_text
        now, chars = time.time(), run.checkpoint_chars
        async with self._writing() as conn:
            # Conditional: of replicas taking over at once, exactly one finds the run still interrupted.
            taken = await conn.execute(update(r).where(
                r.c.id == run.id, r.c.status == "interrupted", r.c.checkpoint == run.checkpoint).values(
                status="running", process=recovery.this_process(), heartbeat_at=now, ended_at=None, error=None))
            if taken.rowcount != 1:
                return False
            await conn.execute(delete(t).where(t.c.run_id == run.id, t.c.pos >= chars))
            await conn.execute(update(t).where(t.c.run_id == run.id, t.c.pos < chars,
                                               t.c.pos + func.length(t.c.text) > chars)
                               .values(text=func.substr(t.c.text, 1, chars - t.c.pos)))
        return True

    async def leave_interrupted(self, run_id: str, error: str) -> None:
        """Say why an interrupted run with a checkpoint is not resumed (it stays interrupted, to resume later)."""
        r = schema.runs
        async with self._writing() as conn:
            await conn.execute(update(r).where(r.c.id == run_id, r.c.status == "interrupted").values(error=error))

    # -- threads ---------------------------------------------------------------------------------------------

    async def create_thread(self, thread_id: str, *, owner_token: str | None = None) -> None:
        """Add an empty thread, owned by the token named ``owner_token`` (None: a local caller)."""
        async with self._writing() as conn:
            await threads.create(conn, thread_id, time.time(), owner_token)

    async def owns_thread(self, thread_id: str, owner_token: str | None) -> bool:
        """Whether the thread exists and belongs to ``owner_token`` (None: made by a local caller)."""
        async with self._reading() as conn:
            return await threads.owned(conn, thread_id, owner_token)

    async def thread(self, thread_id: str) -> ThreadSummary | None:
        """The thread's summary (no turn bodies), or None."""
        async with self._reading() as conn:
            return await threads.summary(conn, thread_id)

    async def turns(self, thread_id: str) -> list[Turn]:
        """The thread's turns, oldest first (none for an unknown thread)."""
        async with self._reading() as conn:
            return await threads.turns(conn, thread_id)

    async def history(self, thread_id: str) -> list[tuple[str, str]]:
        """The thread's turns as (role, content), oldest first (none for an unknown thread)."""
        async with self._reading() as conn:
            return await threads.history(conn, thread_id)

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

    async def cost_since(self, since: float, *, owner_token: str | None = None) -> float:
        """USD spent by runs started at or after ``since`` (for a daily budget); only ``owner_token``'s when given."""
        async with self._reading() as conn:
            return await usage.cost_since(conn, since, owner_token)

    # -- tokens ----------------------------------------------------------------------------------------------

    async def add_token(self, record: TokenRecord) -> None:
        """Store a token's digest and limits (replacing a revoked token of that name; an active one is an error)."""
        async with self._writing() as conn:
            await tokens.add(conn, record)

    async def tokens(self) -> list[TokenRecord]:
        """Every token, revoked ones included, oldest first."""
        async with self._reading() as conn:
            return await tokens.listing(conn)

    async def token_by_digest(self, token_digest: str) -> TokenRecord | None:
        """The token whose SHA-256 is ``token_digest``, revoked or not; None when there is none."""
        async with self._reading() as conn:
            return await tokens.by_digest(conn, token_digest)

    async def revoke_token(self, name: str) -> bool:
        """Revoke the token named ``name``; False when there is no active token of that name."""
        async with self._writing() as conn:
            return await tokens.revoke(conn, name, time.time())

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


async def open_store(settings: StoreSettings) -> Store:
    """Open (creating and migrating as needed) the store ``settings`` names, recover dead runs, prune old ones."""
    target = resolve(settings.location())
    if target.path is not None:
        create_file(target.path)
    writer, reader = engines(target)
    store = Store(target, writer, reader, keep_text=settings.keep_text)
    try:
        await migrate.upgrade(writer)
        store.recovered = await store.recover()
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
