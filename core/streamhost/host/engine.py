"""The engine: one path from a generation request to a result, shared by the MCP server and the CLI."""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import anyio

from ..errors import CallFailed, InvalidArgumentError, OutputValidationError, StreamhostError
from ..events import Sink, Update
from ..fetchers import Fetcher
from ..providers import GenerationRequest, Message, Provider
from ..services import Generation
from .arguments import number_problem
from .catalog import Catalog, Resolved
from .checkpoints import Resumable, current
from .config import Config, load_config
from .garbage import WARMUP_THREAD
from .history import fit_history, fold_history
from .loading import Registry, load_plugins
from .memory import Memory
from .metrics import Metrics, default_metrics_path
from .output_schema import checked_schema, parse_output, schema_instruction
from .pricing import context_window_of
from .relay import Relay, RelayResult, RelaySettings
from .scrub import watch

log = logging.getLogger("streamhost.engine")
WARM_IDLE_POLL_S = 0.2
CANCEL_UPSTREAM_S = 10
"""How long cancelling a run's upstream work (``Provider.cancel_upstream``) may take before it is given up."""
_calls = itertools.count(1)


@dataclass(frozen=True)
class GenerateArgs:
    """A generate call as the user gave it: checked by ``Engine.generate``."""

    prompt: Any
    model: Any = None
    system: Any = None
    temperature: Any = None
    max_tokens: Any = None
    output_schema: Any = None
    history: tuple[Message, ...] = ()
    """Earlier turns of a thread, oldest first (the host's own: already checked)."""


@dataclass
class Prepared:
    """A checked call, ready to run: the model it goes to and the request it sends."""

    resolved: Resolved
    request: GenerationRequest
    notes: list[str] = field(default_factory=list)
    """Status lines to show before the call (earlier turns left out to fit the context window)."""


class Engine:
    """Holds the config and the loaded plugins; runs calls."""

    def __init__(self, config: Config, registry: Registry) -> None:
        self.config = config
        self.registry = registry
        self.catalog = Catalog(registry, config)
        path = Path(config.metrics_path).expanduser() if config.metrics_path else default_metrics_path()
        self.metrics = Metrics(path, enabled=config.metrics_enabled)
        self.memory = Memory(config)
        self.stopping: Callable[[], bool] = lambda: False
        """Whether the host is stopping (a face sets it): a call cancelled then is left for a later start to
        resume (``Provider.resume``), not cancelled upstream as a user's cancel is."""
        self._resumed: asyncio.Future[None] | None = None  # the first resumption pass, once started
        self.memory.resume = self.resume_interrupted  # a ``wait`` right after a restart finds the run going again

    @classmethod
    def from_environment(cls, extra_plugins: list[tuple[str, object]] | None = None) -> Engine:
        """Load the config file and the installed plugins."""
        config = load_config()
        return cls(config, load_plugins(config, extra=extra_plugins or []))

    def warm_in_background(self, idle: Callable[[], bool] | None = None,
                           loop: asyncio.AbstractEventLoop | None = None) -> threading.Thread:
        """Import the plugins' heavy SDKs in a daemon thread so the first call does not pay for it.

        With ``loop`` (the serving face's), the store is then opened on it (its connections belong to the loop that
        serves the calls) and the runs a stopped host left are resumed (:meth:`resume_interrupted`); a ``wait``
        that comes first starts that itself.

        The default model's provider goes first: the first call most likely needs it. With ``idle``,
        each of the others waits until ``idle()`` is true (no call running): an import holds the GIL
        for long stretches and would slow a running call by as much.
        """

        def warm() -> None:
            try:
                first: Provider | None = self.catalog.resolve(None).provider
            except StreamhostError:  # no default model (yet): the registry's order
                first = None
            providers = sorted(self.registry.providers.values(), key=lambda provider: provider is not first)
            plugins: list[Provider | Fetcher] = [*providers, *self.registry.fetchers.values()]
            for index, plugin in enumerate(plugins):
                while index and idle is not None and not idle():
                    time.sleep(WARM_IDLE_POLL_S)
                try:
                    plugin.warm()
                except Exception as exc:
                    log.warning("warming %s failed (the first call will retry): %r", plugin.name, exc)
            if self.memory.enabled:
                while idle is not None and not idle():
                    time.sleep(WARM_IDLE_POLL_S)
                try:
                    self.memory.warm()
                except Exception as exc:
                    log.warning("importing the store's libraries failed: %r", exc)
                else:
                    if loop is not None and not loop.is_closed():
                        asyncio.run_coroutine_threadsafe(self.resume_interrupted(), loop)

        thread = threading.Thread(target=warm, name=WARMUP_THREAD, daemon=True)
        thread.start()
        return thread

    async def resume_interrupted(self) -> None:
        """Open the store and take over the runs a stopped host left with a checkpoint; they go on in the background.

        Once per engine (later calls wait for the first). The serving face's warm-up starts it, and so does the first
        ``wait``; a command that only reads the store resumes nothing. Failures are logged: the runs stay interrupted.
        """
        if self._resumed is None:
            self._resumed = asyncio.ensure_future(self._resume())
        await asyncio.shield(self._resumed)

    async def _resume(self) -> None:
        try:
            store = await self.memory.store()
            if store is not None and not self.stopping():
                from .resuming import Resuming

                await Resuming(self, store).start()
        except Exception as exc:
            log.error("resuming the interrupted runs failed: %s: %s", type(exc).__name__, exc)

    async def aclose(self) -> None:
        """Close the providers' connections and the store for the running event loop."""
        self.stopping = lambda: True  # what still runs is cut short by the host, not by a user: left to resume
        try:
            await self.memory.aclose()
        except Exception as exc:
            log.debug("closing the store failed: %r", exc)
        for provider in self.registry.providers.values():
            try:
                await provider.aclose()
            except Exception as exc:
                log.debug("closing provider %s failed: %r", provider.name, exc)
        self.metrics.close()

    def _request(self, args: GenerateArgs, schema: dict[str, Any] | None) -> Prepared:
        if not isinstance(args.prompt, str) or not args.prompt.strip():
            raise InvalidArgumentError("prompt must be a non-empty string")
        if args.model is not None and not isinstance(args.model, str):
            raise InvalidArgumentError(f"model must be a string like openai/gpt-4.1-mini, got {args.model!r}")
        if args.system is not None and not isinstance(args.system, str):
            raise InvalidArgumentError("system must be a string")
        temperature, max_tokens = args.temperature, args.max_tokens
        for name, value, problem in (
            ("temperature", temperature, number_problem(temperature, whole=False, minimum=0, maximum=2)),
            ("max_tokens", max_tokens, number_problem(max_tokens, whole=True, minimum=1)),
        ):
            if value is not None and problem:
                raise InvalidArgumentError(f"{name} {problem}")
        resolved = self.catalog.resolve(args.model)
        system = args.system
        if schema is not None and (resolved.info is None or not resolved.info.supports_schema):
            # Not known to enforce JSON Schema natively: say it in words too, so any model can comply.
            system = "\n\n".join(filter(None, [system, schema_instruction(schema)]))
        request = GenerationRequest(
            model=resolved.name,
            prompt=args.prompt,
            system=system,
            temperature=None if temperature is None else float(temperature),
            max_tokens=max_tokens,
            output_schema=schema,
            options=self.config.model_options(resolved.id),
        )
        notes: list[str] = []
        if args.history:
            window = context_window_of(self.config, resolved.provider, resolved.id, resolved.name)
            history, note = fit_history(args.history, request, window)
            notes += [note] if note else []
            if resolved.provider.supports_history:
                request = replace(request, history=history)
            else:  # a prompt-only provider still sees the thread: written into the prompt
                request = replace(request, prompt=fold_history(history, request.prompt))
        return Prepared(resolved, request, notes)

    def relay_settings(self, label: str, *, streaming: bool) -> RelaySettings:
        """The relay settings for a call to ``label`` from the config."""
        s, limits = self.config.streaming, self.config.limits
        return RelaySettings(
            label=label, streaming=streaming, coalesce_ms=s.coalesce_ms, chunk_delay_ms=s.chunk_delay_ms,
            heartbeat_s=s.heartbeat_s, deadline_s=limits.deadline_s, max_retries=limits.max_retries,
            retry_max_wait_s=limits.retry_max_wait_s,
        )

    async def prepare(self, args: GenerateArgs) -> Prepared:
        """Check a call and resolve its model; raises StreamhostError naming what is wrong."""
        return self._request(args, await checked_schema(args.output_schema))

    async def generate(self, args: GenerateArgs, sink: Sink) -> Generation:
        """Run one call, streaming into ``sink``. Raises StreamhostError on bad input, CallFailed later."""
        return await self.run(await self.prepare(args), sink)

    async def run(self, prepared: Prepared, sink: Sink) -> Generation:
        """Run a prepared call, streaming into ``sink``; raises CallFailed when it fails on the way."""
        resolved, request = prepared.resolved, prepared.request
        for note in prepared.notes:
            await sink.send(Update(kind="status", status=note))
        # The relay and the log filter mask these variables' values wherever upstream text shows up.
        watch(*(p.key_variable() for p in self.registry.providers.values()),
              resolved.provider.key_variable_for(resolved.name))
        streaming = self.config.streaming_for(resolved.id) and request.output_schema is None
        fields = {"call": next(_calls), "model": resolved.id, "provider": resolved.provider.name}
        resumable = current() or Resumable()
        relay = Relay(
            self.relay_settings(resolved.id, streaming=streaming),
            on_first_token=lambda ttft_ms: self.metrics.record("first_token", **fields, ttft_ms=_ms(ttft_ms)),
            on_checkpoint=resumable if resolved.provider.supports_resume else None,
        )
        self.metrics.record("start", **fields, streaming=streaming, structured=request.output_schema is not None)
        try:
            result = await relay.run(lambda: resolved.provider.stream(request), sink)
            output = None
            if request.output_schema is not None:
                try:
                    # Off the event loop: validating against a large schema takes a while.
                    output = await asyncio.to_thread(parse_output, result.text, request.output_schema)
                except OutputValidationError as exc:
                    raise CallFailed(exc, result) from exc
        except asyncio.CancelledError:
            self.metrics.record("cancelled", **fields)
            await self.cancelled(resolved.provider, resolved.name, resumable)
            raise
        except CallFailed as failed:
            self._record_error(fields, failed.error, failed.result)
            raise
        self.metrics.record(
            "complete", **fields, chars=len(result.text), chunks=result.chunks, attempts=result.attempts,
            ttft_ms=_ms(result.ttft_ms), duration_ms=_ms(result.duration_ms),
            tokens=result.usage.output_tokens if result.usage else None,
        )
        return Generation(
            text=result.text, model=resolved.id, usage=result.usage.as_dict() if result.usage else None,
            ttft_ms=result.ttft_ms, duration_ms=result.duration_ms, output=output,
        )

    async def cancelled(self, provider: Provider, model: str, resumable: Resumable) -> None:
        """A call was cancelled (its stream is closed). The host stopping marks it ``stopped`` (recorded interrupted;
        with a checkpoint, resumed by a later start); a user's cancel of a call with a checkpoint stops its upstream
        work too (``Provider.cancel_upstream``)."""
        if self.stopping():
            resumable.stopped = True
            return
        if resumable.state is None:
            return
        with anyio.CancelScope(shield=True), anyio.move_on_after(CANCEL_UPSTREAM_S):
            try:
                await provider.cancel_upstream(model, resumable.state)
            except Exception as exc:  # the cancel itself stands: the user asked for it
                log.warning("%s/%s: cancelling the upstream work failed: %s: %s", provider.name, model,
                            type(exc).__name__, exc)

    def _record_error(self, fields: dict[str, Any], error: Exception, result: RelayResult) -> None:
        self.metrics.record(
            "error", **fields, error=type(error).__name__, status=getattr(error, "status", None),
            chars=len(result.text), attempts=result.attempts, duration_ms=_ms(result.duration_ms),
        )


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
