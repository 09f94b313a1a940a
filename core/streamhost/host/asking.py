"""``Services.generate`` as the host serves it: local files read into the prompt, a thread's earlier turns,
the daily budget, and the call recorded as a run — around the engine's one path from request to result."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from ..errors import InvalidArgumentError, StreamhostError
from ..events import Sink, Update
from ..services import Generation, Summaries
from ..store.records import FileRecord, RunEnd
from .callers import CALLER, admit
from .context_files import context_block, gather_files
from .engine import Engine, GenerateArgs, Prepared
from .handoff import LiveRun
from .pricing import check_budget, estimate_tokens_of, price_of, usage_figures
from .recording import OPENING, Recorder
from .waiting import Waiting

Roots = Callable[[], Awaitable[list[Path]]]


class Asking:
    """Runs ``generate`` calls for the services of one engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.recorder = Recorder(engine.memory)
        self.waiting = Waiting(engine.memory)

    async def generate(self, sink: Sink, args: GenerateArgs, *, thread: Any = None, files: Any = None,
                       roots: Roots | None = None, handoff_s: float = 0) -> Generation:
        """Check, assemble and run one call; raises StreamhostError before it starts, CallFailed after.

        With ``handoff_s`` (and the store on), a call still running after that many seconds returns what it has
        (``status="running"``) and goes on in the background, for ``wait`` to follow.
        """
        if not isinstance(args.prompt, str) or not args.prompt.strip():
            raise InvalidArgumentError("prompt must be a non-empty string")
        prompt, records = args.prompt, []
        if files is not None:
            gathered = await gather_files(files, await self._roots(roots), self.engine.config.context)
            prompt = context_block(gathered.files) + prompt
            records = [FileRecord(path=f.path, size=f.size, sha256=f.sha256) for f in gathered.files]
            for note in gathered.notes:
                await sink.send(Update(kind="status", status=note))
        thread = await self.recorder.thread(thread)
        args = GenerateArgs(prompt=prompt, model=args.model, system=args.system, temperature=args.temperature,
                            max_tokens=args.max_tokens, output_schema=args.output_schema,
                            history=thread.history if thread else ())
        prepared = await self.engine.prepare(args)
        limit = self.engine.config.limits.daily_usd
        if limit is not None:
            await check_budget(limit, self.recorder.spent_since, where=self.engine.config.locate("limits.daily_usd"))
        await admit(prepared.resolved.id, self.recorder.spent_by)

        async def complete(into: Sink, live: LiveRun | None = None) -> Generation:
            async with self.recorder.run("generate", prepared.resolved.id, into, prompt=prompt, thread=thread,
                                         files=records) as run:
                if live is not None:
                    live.id = run.id
                run.estimate = lambda chars: self.cut_short(prepared, chars)
                generation = await self.engine.run(prepared, run.sink)
                run.end = self.end_of(prepared, generation)
                if thread is not None:
                    # Before the run's end is written: whoever sees the run ended (a wait in another replica) can
                    # continue its thread at once and finds this turn there.
                    await self.recorder.add_turns(thread, prompt, generation, run.id)
            generation.run, generation.thread = run.id, thread.id if thread else None
            return generation

        if handoff_s <= 0 or not self.engine.memory.enabled or OPENING.get() is not None:
            return await complete(sink)  # a task (OPENING) is followed to its end by its own runtime
        live = LiveRun(sink)
        live.placeholder = Generation(text="", usage=None, ttft_ms=None, duration_ms=0.0, model=prepared.resolved.id,
                                      thread=thread.id if thread else None)
        live.task = asyncio.ensure_future(complete(live, live))
        return await self.waiting.follow(live, live.placeholder, handoff_s, owned=True)

    async def admit(self, model: str | None) -> None:
        """Hold an HTTP caller to its token's models, budget and rate before a call of ``model`` (host/callers.py)."""
        if CALLER.get() is not None:
            await admit(self.engine.catalog.resolve(model).id, self.recorder.spent_by)

    def end_of(self, prepared: Prepared, generation: Generation) -> RunEnd:
        """A completed run's record: timings, tokens (estimated when the provider reported none) and cost."""
        figures = self._figures(prepared, generation.usage, generation.text)
        return RunEnd(status="completed", ttft_ms=generation.ttft_ms, duration_ms=generation.duration_ms,
                      input_tokens=figures.input_tokens, output_tokens=figures.output_tokens,
                      usage_estimated=figures.estimated, cost_usd=figures.cost_usd, error=None,
                      model=generation.model)

    def cut_short(self, prepared: Prepared, chars: int) -> RunEnd:
        """The tokens and cost of a run that failed or was cancelled after ``chars`` characters of answer: estimated
        (the input as sent, the output from its length), since a stream cut short reports no usage."""
        figures = self._figures(prepared, {"output_tokens": estimate_tokens_of(chars)}, "")
        return RunEnd(status="failed", ttft_ms=None, duration_ms=None, input_tokens=figures.input_tokens,
                      output_tokens=figures.output_tokens, usage_estimated=True, cost_usd=figures.cost_usd,
                      error=None, model=prepared.resolved.id)

    def _figures(self, prepared: Prepared, usage: Any, text: str) -> Any:
        resolved, request = prepared.resolved, prepared.request
        sent = sum(len(part) for part in (request.prompt, request.system or "",
                                          *(turn.content for turn in request.history)))
        pricing = price_of(self.engine.config, resolved.provider, resolved.id, resolved.name)
        return usage_figures(usage, sent, text, pricing)

    def summary_end(self, summaries: Summaries) -> RunEnd:
        """A summarize run's record: failed when it stopped early, its usage summed over its model calls."""
        try:
            resolved = self.engine.catalog.resolve(summaries.model)
            pricing = price_of(self.engine.config, resolved.provider, resolved.id, resolved.name)
        except StreamhostError:
            pricing = None
        # The pages sent are not known here: without reported usage only the output is estimated.
        figures = usage_figures(summaries.usage, 0, summaries.text, pricing)
        return RunEnd(status="failed" if summaries.error else "completed", ttft_ms=summaries.ttft_ms,
                      duration_ms=summaries.duration_ms, input_tokens=figures.input_tokens,
                      output_tokens=figures.output_tokens, usage_estimated=figures.estimated,
                      cost_usd=figures.cost_usd, error=summaries.error, model=summaries.model)

    @staticmethod
    async def _roots(roots: Roots | None) -> list[Path]:
        # The client's roots when it offers them; else the directory the server was started in.
        found = await roots() if roots is not None else []
        return found or [Path.cwd()]
