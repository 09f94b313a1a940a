"""Resume after restart: runs a stopped host left with a checkpoint are taken over and finished by this one.

A run whose provider can resume (``Provider.supports_resume``: e.g. an OpenAI background response) keeps its
newest checkpoint in the store, next to the text it covers (``store/journal.py``). When such a run is
``interrupted`` (its process died and recovery marked it, or the host stopped and recorded it so), a serving
process takes it over once its store is open: one conditional UPDATE makes it this process's running run again
(of replicas trying at once, exactly one wins) and cuts its stored text back to what the checkpoint covers.
``Provider.resume`` then yields the rest, which goes through the relay into the journal as a call's text does:
the stored text and the resumed text join with nothing repeated or lost. The run completes into the store
(status, usage, cost, its thread's new turns) and is a :class:`~streamhost.host.handoff.LiveRun` while it goes,
so ``wait`` follows it live; ``wait`` after it ended reads it whole from the store.

A run whose provider is not loaded here, or cannot resume, stays interrupted with the reason as its error (a
later start with the plugin installed resumes it). Nothing here runs at start-up: the serving face starts it
after its warm-up has opened the store (``Engine.resume_interrupted``); it imports no database library itself.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import TYPE_CHECKING

import anyio

from ..errors import CallFailed
from ..events import Sink, Update
from ..providers import Provider
from ..services import Generation
from ..store.records import RunEnd
from .checkpoints import Resumable
from .handoff import LiveRun
from .pricing import price_of, usage_figures
from .recording import FINISH_TIMEOUT_S, STOPPED, Recorder, Thread
from .relay import Relay

if TYPE_CHECKING:
    from ..store.checkpoints import Interrupted
    from ..store.database import Store
    from .engine import Engine

log = logging.getLogger("streamhost.resume")


class Resuming:
    """Takes over and finishes the interrupted runs of one store that have a checkpoint."""

    def __init__(self, engine: Engine, store: Store) -> None:
        self.engine = engine
        self.store = store
        self._lock = asyncio.Lock()  # one look at the candidates at a time: each is taken over once here
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> list[str]:
        """Resume what is interrupted now (the ids taken over), then what the recovery sweeps mark later (another
        replica's runs)."""
        taken = await self.resume_all()
        self.engine.memory.sweeper.listen(self._swept)
        return taken

    async def resume_all(self) -> list[str]:
        """Take over every interrupted run with a checkpoint that this process can resume; their ids."""
        taken = []
        async with self._lock:
            for run in await self.store.interrupted_runs():
                if self.engine.stopping():
                    break
                provider, why = self._provider(run)
                if provider is None:
                    if run.error != why:
                        await self.store.leave_interrupted(run.id, why)
                    continue
                if await self.store.take_over(run):
                    # The text the store holds now (cut back to the checkpoint): a follower is sent it all.
                    before = await self.store.run_text(run.id) if self.store.keep_text else ""
                    self._begin(run, provider, before)
                    taken.append(run.id)
        if taken:
            log.info("resuming %d interrupted run(s) from their checkpoints: %s", len(taken), ", ".join(taken))
        return taken

    async def _swept(self, store: Store, run_ids: list[str]) -> None:
        await self.resume_all()

    def _provider(self, run: Interrupted) -> tuple[Provider | None, str]:
        """The provider that resumes ``run``, or None and why it stays interrupted."""
        prefix, _, name = (run.model or "").partition("/")
        provider = self.engine.registry.providers.get(prefix)
        if provider is None or not name:
            return None, (f"The host stopped before the run finished; it can be resumed, but no provider plugin "
                          f"serves {run.model!r} here: install or enable it and start the server again.")
        if not provider.supports_resume:
            return None, (f"The host stopped before the run finished; provider {provider.name!r} cannot resume "
                          "runs (it no longer sets supports_resume).")
        return provider, ""

    def _begin(self, run: Interrupted, provider: Provider, before: str) -> None:
        live = LiveRun(None, before)
        live.id = run.id
        live.placeholder = Generation(text="", usage=None, ttft_ms=None, duration_ms=0.0, model=run.model or "",
                                      run=run.id, thread=run.thread_id)
        live.task = self._spawn(self._finish_run(run, provider, live, before))
        self.engine.memory.live.add(live)

    def _spawn(self, work: object) -> asyncio.Task[object]:
        task = asyncio.ensure_future(work)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[object]) -> None:
        self._tasks.discard(task)
        error = None if task.cancelled() else task.exception()
        if isinstance(error, CallFailed):  # recorded with the run; a follower reports it
            log.warning("resumed run %s failed: %s", error.metadata.get("run"), error.error.message)
        elif error is not None:
            log.error("resuming failed: %s: %s", type(error).__name__, error)

    async def _finish_run(self, run: Interrupted, provider: Provider, live: LiveRun, before: str) -> Generation:
        """Resume ``run`` through the relay into its journal and ``live``; record how it ended."""
        from ..store.journal import Journal

        engine, store, base = self.engine, self.store, run.checkpoint_chars
        name = run.model.partition("/")[2] if run.model else ""
        journal = Journal(store, run.id, stored=base)
        resumable = Resumable(journal.checkpoint, state=run.checkpoint, chars=base)
        relay = Relay(engine.relay_settings(run.model or provider.name, streaming=True),
                      on_checkpoint=lambda state, chars: resumable(state, base + chars))
        sink = _Shifted(journal.wrap(live), base)
        try:
            result = await relay.run(lambda: provider.resume(name, run.checkpoint), sink)
        except asyncio.CancelledError:
            await engine.cancelled(provider, name, resumable)
            stopped = resumable.stopped
            await _end(journal, RunEnd(status="interrupted" if stopped else "cancelled",
                                       error=STOPPED if stopped else None))
            raise
        except CallFailed as failed:
            await _end(journal, RunEnd(status="failed", error=failed.error.message, ttft_ms=failed.result.ttft_ms,
                                       duration_ms=failed.result.duration_ms))
            whole = CallFailed(failed.error, dataclasses.replace(failed.result, text=before + failed.result.text))
            whole.metadata["run"] = run.id
            raise whole from failed
        text = before + result.text
        usage = result.usage.as_dict() if result.usage else None
        pricing = price_of(engine.config, provider, run.model or "", name)
        figures = usage_figures(usage, len(run.prompt or ""), text, pricing)
        await _end(journal, RunEnd(
            status="completed", ttft_ms=result.ttft_ms, duration_ms=result.duration_ms,
            input_tokens=figures.input_tokens, output_tokens=figures.output_tokens,
            usage_estimated=figures.estimated, cost_usd=figures.cost_usd, chars=base + len(result.text)))
        generation = Generation(text=text, usage=usage, ttft_ms=result.ttft_ms, duration_ms=result.duration_ms,
                                model=run.model or "", run=run.id, thread=run.thread_id)
        if run.thread_id and run.prompt is not None:
            try:
                known = await store.thread(run.thread_id) is not None
                await Recorder(engine.memory).add_turns(Thread(run.thread_id, created=known), run.prompt,
                                                        generation, run.id)
            except Exception as exc:
                log.error("run %s: cannot add its answer to thread %s (%s)", run.id, run.thread_id, exc)
        log.info("run %s resumed and completed (%d characters)", run.id, len(text))
        return generation


class _Shifted:
    """Moves a resumed stream's text updates to where they stand in the whole answer (after the stored text)."""

    def __init__(self, sink: Sink, base: int) -> None:
        self._sink = sink
        self._base = base

    async def send(self, update: Update) -> None:
        if update.kind == "text" and self._base:
            update = dataclasses.replace(update, offset=update.offset + self._base)
        await self._sink.send(update)


async def _end(journal: object, end: RunEnd) -> None:
    """Record the end, shielded and bounded as a call's is (``recording.py``)."""
    with anyio.CancelScope(shield=True), anyio.move_on_after(FINISH_TIMEOUT_S):
        try:
            await journal.finish(end)  # type: ignore[attr-defined]
        except Exception as exc:
            log.error("run: recording the end of a resumed run failed: %s: %s", type(exc).__name__, exc)
