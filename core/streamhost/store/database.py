"""The store: runs with their journaled text, threads, usage; ``open_store`` makes one ready to use.

``Store`` owns the connections and when to write; the queries live with their tables (``runs``,
``checkpoints``, ``threads``, ``usage``, ``tokens``), each taking the connection it runs on.
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

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from streamhost.store import cancels, checkpoints, migrate, runs, threads, tokens, usage
from streamhost.store.batching import GroupCommit
from streamhost.store.checkpoints import Interrupted
from streamhost.store.connect import Target, create_file, engines, resolve
from streamhost.store.records import (
    RunEnd,
    RunRecord,
    RunStart,
    StoreError,
    ThreadSummary,
    Turn,
    UsageKey,
    UsageRow,
)
from streamhost.store.sqlite_writer import SQLiteWriter
from streamhost.store.tokens import TokenRecord

if TYPE_CHECKING:
    from streamhost.host.config import StoreSettings

_Chunk = tuple[str, int, str, "asyncio.Future[None]"]
_Finish = tuple[str, RunEnd, float, list[dict[str, Any]], "tuple[str, int] | None"]  # finish_run's arguments


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
        self._run_starts: GroupCommit[RunStart] = GroupCommit(self._create_runs)
        self._hand_offs: GroupCommit[tuple[str, int]] = GroupCommit(self._hand_off_many)
        self._finishes: GroupCommit[_Finish] = GroupCommit(self._finish_many)
        self._upsert_text = runs.upsert_text(writer.dialect.name)  # built once: the journal runs it twice a second
        # A call's own writes (its run, journal and end) on SQLite: one trip to a thread per transaction.
        self._sqlite = SQLiteWriter(target.path, target.label) if target.path is not None else None
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

    async def _write(self, steps: list[runs.Step]) -> None:
        """Run the statements with their rows in one transaction: on SQLite in one trip to its writer thread."""
        if self._sqlite is not None:
            async with self._write_lock:
                await self._sqlite.write(steps)
            return
        async with self._writing() as conn:
            for statement, rows in steps:
                # One row is an execute, not an executemany: SQLAlchemy's many-rows path costs more CPU.
                await conn.execute(statement, rows[0] if len(rows) == 1 else rows)

    @contextlib.asynccontextmanager
    async def _reading(self) -> AsyncIterator[AsyncConnection]:
        async with self._reader.connect() as conn:
            yield conn

    # -- runs ------------------------------------------------------------------------------------------------

    async def create_run(self, start: RunStart) -> None:
        """Record a run as running, owned by this process (with the runs recorded at the same moment: one
        transaction for a burst of calls)."""
        await self._run_starts.submit(start)

    async def _create_runs(self, starts: list[RunStart]) -> None:
        await self._write(runs.start_steps(starts, time.time(), keep_text=self._keep_text))

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
                    await self._write([(self._upsert_text, rows)])
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
            async with self._writing() as conn:
                await runs.heartbeat(conn, run_ids, time.time())

    async def finish_run(self, run_id: str, end: RunEnd, *, text: Sequence[tuple[int, str]] = (),
                         checkpoint: tuple[str, int] | None = None) -> None:
        """Record how the run ended, after its last text: ``text`` (offset, chunk) pairs are written with the end
        in one transaction (the journal's last batch: a completed run never lacks the end of its answer), and with
        them the run's newest ``checkpoint`` (state, characters covered), which that text covers."""
        now = time.time()  # when it ended, not when the write got its turn
        rows = [{"run_id": run_id, "pos": offset, "text": chunk} for offset, chunk in text if chunk]
        await self._finishes.submit((run_id, end, now, rows, checkpoint))  # with the runs ending at the same moment

    async def _finish_many(self, finishes: list[_Finish]) -> None:
        # One row per (run, offset): PostgreSQL refuses to upsert a row twice in a statement.
        longest = {(row["run_id"], row["pos"]): row for *_, rows, _ in finishes for row in rows}
        steps = [(self._upsert_text, list(longest.values()))] if longest and self._keep_text else []
        steps += [runs.finish_step(run_id, end, now, checkpoint) for run_id, end, now, _, checkpoint in finishes]
        await self._write(steps)

    async def run(self, run_id: str) -> RunRecord | None:
        """One run, or None when there is none with that id."""
        async with self._reading() as conn:
            return await runs.by_id(conn, run_id)

    async def run_text(self, run_id: str, start: int = 0) -> str:
        """The run's journaled text from offset ``start`` on: chunks in offset order, overlaps counted once."""
        async with self._reading() as conn:
            return await runs.text(conn, run_id, start)

    async def follow_step(self, run_id: str, start: int) -> tuple[str | None, str]:
        """A running run's status (None: no such run) and its journaled text from ``start`` on, read in that order
        on one connection: what a follower polls (cheaper than ``run`` and ``run_text``, for many followers)."""
        async with self._reading() as conn:
            return await runs.follow_step(conn, run_id, start)

    async def runs(self, *, since: float | None = None, limit: int = 50, model: str | None = None) -> list[RunRecord]:
        """Runs, newest first; only those started at or after ``since``, only ``model``'s, when given."""
        async with self._reading() as conn:
            return await runs.listing(conn, since, limit, model)

    async def prune(self, keep_days: float) -> int:
        """Delete finished runs started more than ``keep_days`` ago, with their text and files; how many.

        ``keep_days`` 0 (or less) keeps everything, as ``[store] keep_days = 0`` means.
        """
        if keep_days <= 0:
            return 0
        before = time.time() - keep_days * 86_400
        async with self._writing() as conn:
            return await runs.prune(conn, before)

    async def hand_off(self, run_id: str, given: int) -> bool:
        """Record that callers have been given the running run's first ``given`` characters (a hand-off), so a
        ``wait`` in any process goes on from there; False when the run is not (or not yet) recorded as running.

        While a run runs (or is interrupted, until it is resumed), ``runs.chars`` holds this (its length is only
        written when it ends; until then readers take it from the journal): no schema change, and a later hand-off
        never moves it back.
        """
        return bool(await self._hand_offs.submit((run_id, given)))  # with the hand-offs of the same moment

    async def _hand_off_many(self, offsets: list[tuple[str, int]]) -> list[bool]:
        async with self._writing() as conn:
            return await runs.hand_off_many(conn, offsets)

    async def given(self, run_id: str) -> int | None:
        """How many characters of a running (or interrupted) run callers have been given (see :meth:`hand_off`);
        None once it has ended (its record holds its whole text then)."""
        async with self._reading() as conn:
            return await runs.given(conn, run_id)

    async def recover(self) -> list[str]:
        """Mark ``interrupted`` the running runs whose process is gone, or silent for ``recovery.stale_s()``; their
        ids. Conditional updates: of replicas sweeping at once, each run is reported by exactly one."""
        async with self._writing() as conn:
            return await runs.recover(conn, time.time())

    # -- cancel requests: stopping a run that another process runs --------------------------------------------

    async def request_cancel(self, run_id: str) -> bool:
        """Ask the process running ``run_id`` to cancel it (it polls for requests); False when the run is not
        running (it ended meanwhile)."""
        now = time.time()
        async with self._writing() as conn:
            return await cancels.request(conn, run_id, now)

    async def cancel_requests(self, run_ids: list[str]) -> list[str]:
        """Which of these running runs another process has asked to cancel (one query, whatever their number)."""
        if not run_ids:
            return []
        async with self._reading() as conn:
            return await cancels.requested(conn, run_ids)

    # -- checkpoints: resuming a run after a restart ----------------------------------------------------------

    async def save_checkpoint(self, run_id: str, state: str, chars: int) -> None:
        """Store where the upstream can resume the running run; it covers the run's first ``chars`` characters,
        which the caller (the journal) has stored already."""
        async with self._writing() as conn:
            await checkpoints.save(conn, run_id, state, chars)

    async def checkpoint(self, run_id: str) -> tuple[str, int] | None:
        """The run's stored checkpoint and how many characters of its text it covers; None when it has none."""
        async with self._reading() as conn:
            return await checkpoints.get(conn, run_id)

    async def interrupted_runs(self) -> list[Interrupted]:
        """The interrupted runs that have a checkpoint (a resumer's candidates), oldest first."""
        async with self._reading() as conn:
            return await checkpoints.interrupted(conn)

    async def take_over(self, run: Interrupted) -> bool:
        """Make an interrupted run this process's running run again, its text cut back to what its checkpoint
        covers (the resumed stream yields the rest); False when another process took it first."""
        now = time.time()
        async with self._writing() as conn:
            return await checkpoints.take_over(conn, run, now)

    async def leave_interrupted(self, run_id: str, error: str) -> None:
        """Say why an interrupted run with a checkpoint is not resumed (it stays interrupted, to resume later)."""
        async with self._writing() as conn:
            await checkpoints.leave(conn, run_id, error)

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

    async def set_token_limits(self, name: str, limits: dict[str, Any]) -> TokenRecord | None:
        """Change the active token ``name``'s limits named in ``limits`` (``models``, ``daily_usd``,
        ``per_minute``; None lifts one), keeping the token; the token as it now is, None when there is none."""
        async with self._writing() as conn:
            return await tokens.set_limits(conn, name, limits)

    async def close(self) -> None:
        """Close every connection (waiting for writes under way)."""
        async with self._write_lock:
            if self._sqlite is not None:
                await self._sqlite.close()
            await self._writer.dispose()
        if self._reader is not self._writer:
            await self._reader.dispose()


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
