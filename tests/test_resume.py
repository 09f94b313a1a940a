"""Checkpoints and resume after restart, in-process: a real provider plugin on a loopback background upstream
(tests/resume_upstream.py), the host's real relay, journal and store (SQLite)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from streamhost import Checkpoint, TextDelta, Update
from streamhost.errors import ProviderError
from streamhost.host.relay import Relay, RelaySettings
from streamhost.testing import run_host
from tests.resume_upstream import BackgroundProvider, BackgroundUpstream

pytestmark = pytest.mark.anyio

TOKENS = [f"w{i:03d} " for i in range(50)]
WHOLE = "".join(TOKENS)
DEADLINE_S = 30
HELD_AFTER = len(TOKENS) // 2
"""Where a test that stops the host, or cancels the call, holds the job (``BackgroundUpstream.hold``): the run is
still going then, however slow the machine."""


@pytest.fixture
def upstream() -> Iterator[BackgroundUpstream]:
    with BackgroundUpstream(TOKENS, rate=12) as server:  # ~4 s per answer
        yield server


def _config(tmp_path: Path, handoff_s: float = 1, url: str | None = None) -> dict[str, Any]:
    where = {"url": url} if url else {"path": str(tmp_path / "store.db")}
    return {"store": {"enabled": True, **where}, "limits": {"handoff_s": handoff_s}}


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest) -> str | None:
    """None (a SQLite file) or a new PostgreSQL database."""
    return request.getfixturevalue("pg_url") if request.param == "postgresql" else None


async def _poll(check: Any, what: str) -> Any:
    """``await check()`` until it is truthy; fail after DEADLINE_S."""
    end = time.monotonic() + DEADLINE_S
    while time.monotonic() < end:
        if value := await check():
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within {DEADLINE_S} s: {what}")


async def _handed_off(host: Any, **arguments: Any) -> str:
    first = await host.call("generate", {"prompt": "go deep", "model": "bg/deep", **arguments})
    assert not first.is_error, first.text
    assert first.meta["streamhost/status"] == "running", "the call outlived its hand-off time"
    return first.meta["streamhost/run"]


async def _wait_to_end(host: Any, run: str) -> Any:
    for _ in range(DEADLINE_S):  # each wait hands off again after 1 s
        rest = await host.call("wait", {"run": run})
        if rest.meta.get("streamhost/status") != "running":
            return rest
    raise AssertionError(f"run {run} did not end")


async def test_a_checkpoint_is_stored_only_with_the_text_it_covers(tmp_path, upstream):
    async with run_host(BackgroundProvider(upstream.url), config=_config(tmp_path)) as host:
        run = await _handed_off(host)
        store = await host.engine.memory.store()
        seen = []
        while (record := await store.run(run)).status == "running":
            stored = await store.checkpoint(run)
            text = await store.run_text(run)  # read after the checkpoint: it can only have grown
            if stored is not None:
                state, chars = stored
                covered = "".join(TOKENS[:int(state.rpartition(":")[2])])
                assert chars == len(covered), "a checkpoint counts exactly the text before it"
                assert text[:chars] == covered, "the stored text reaches the checkpoint: never ahead of it"
                seen.append(chars)
            await asyncio.sleep(0.05)
        assert record.status == "completed"
        assert await store.run_text(run) == WHOLE
    assert len(set(seen)) >= 3, f"checkpoints advanced with the journal while it ran: {seen}"
    assert seen == sorted(seen)


async def test_a_host_that_stops_leaves_the_run_to_resume_and_the_next_start_finishes_it(tmp_path, upstream,
                                                                                         store_url):
    config = _config(tmp_path, url=store_url)
    upstream.hold(after=HELD_AFTER)
    async with run_host(BackgroundProvider(upstream.url), config=config) as host:
        run = await _handed_off(host, thread="new")
        store = await host.engine.memory.store()
        await _poll(lambda: _covers(store, run, 10), "a checkpoint past the tenth character")
    # The host stopped (engine.aclose): the run is interrupted, not cancelled, and its upstream job goes on.
    assert upstream.cancels == []
    async with run_host(BackgroundProvider(upstream.url), config=config) as host:
        store = await host.engine.memory.store()
        record = await store.run(run)
        assert record.status == "interrupted" and "resumed" in record.error
        upstream.release()
        await host.engine.resume_interrupted()
        assert host.engine.memory.live.get(run) is not None, "a resumed run is followed live, as a handed-off one"
        rest = await _wait_to_end(host, run)
        assert not rest.is_error, rest.text
        assert rest.text == WHOLE, "the whole answer: the stored text and the resumed text, nothing repeated"
        record = await store.run(run)
        assert record.status == "completed" and record.chars == len(WHOLE)
        assert record.output_tokens == len(TOKENS) and not record.usage_estimated, "the usage the upstream sent"
        turns = await store.turns(record.thread_id)
        assert [(t.role, t.content) for t in turns] == [("user", "go deep"), ("assistant", WHOLE)]
        again = await host.call("wait", {"run": run})
        assert again.text == WHOLE, "wait on the finished run reads it whole from the store"
    assert len(upstream.jobs) == 1, "resumed, never asked again"
    assert upstream.reads[0][1] == 0 and upstream.reads[-1][1] > 0
    assert upstream.cancels == []


async def _covers(store: Any, run: str, chars: int) -> bool:
    stored = await store.checkpoint(run)
    return stored is not None and stored[1] >= chars


async def test_a_user_cancel_cancels_the_upstream_work(tmp_path, upstream):
    upstream.hold(after=HELD_AFTER)
    async with run_host(BackgroundProvider(upstream.url), config=_config(tmp_path)) as host:
        run = await _handed_off(host)
        store = await host.engine.memory.store()
        await _poll(lambda: _covers(store, run, 1), "a checkpoint")
        cancelled = await host.call("wait", {"run": run, "cancel": True})
        assert cancelled.meta["streamhost/status"] == "cancelled"
        assert upstream.cancels == ["job1"], "wait with cancel=true stops the background job too"
        assert (await store.run(run)).status == "cancelled"


async def test_a_cancelled_call_cancels_the_upstream_unless_the_host_is_stopping(tmp_path, upstream):
    from streamhost.host.checkpoints import tracking
    from streamhost.host.engine import GenerateArgs
    from streamhost.testing import CollectingSink

    upstream.hold(after=HELD_AFTER)
    async with run_host(BackgroundProvider(upstream.url), config=_config(tmp_path, handoff_s=0)) as host:
        for stopping, job in ((False, "job1"), (True, "job2")):
            host.engine.stopping = lambda stopping=stopping: stopping
            with tracking() as resumable:  # the task below copies this context: its checkpoints land here
                call = asyncio.ensure_future(host.engine.generate(GenerateArgs(prompt="p", model="bg/deep"),
                                                                  CollectingSink()))

            async def checkpointed(resumable=resumable) -> bool:
                return resumable.state is not None

            await _poll(checkpointed, "a checkpoint relayed")
            call.cancel()
            with pytest.raises(asyncio.CancelledError):
                await call
            assert (job in upstream.cancels) is not stopping, "a user's cancel cancels upstream; a stop does not"
            assert resumable.stopped is stopping, "a stopped call is marked to resume"
        host.engine.stopping = lambda: False


async def test_a_run_whose_provider_is_not_loaded_stays_interrupted_and_says_why(tmp_path, upstream):
    config = _config(tmp_path)
    upstream.hold(after=HELD_AFTER)
    async with run_host(BackgroundProvider(upstream.url), config=config) as host:
        run = await _handed_off(host)
        store = await host.engine.memory.store()
        await _poll(lambda: _covers(store, run, 1), "a checkpoint")
    async with run_host(config=config) as host:
        await host.engine.resume_interrupted()
        store = await host.engine.memory.store()
        record = await store.run(run)
        assert record.status == "interrupted"
        assert "no provider plugin serves 'bg/deep'" in record.error
        failed = await host.call("wait", {"run": run})
        assert failed.is_error and "interrupted" in failed.text


async def test_only_one_of_two_processes_takes_an_interrupted_run_over(tmp_path, upstream, store_url):
    config = _config(tmp_path, url=store_url)
    upstream.hold(after=HELD_AFTER)
    async with run_host(BackgroundProvider(upstream.url), config=config) as host:
        run = await _handed_off(host)
        store = await host.engine.memory.store()
        await _poll(lambda: _covers(store, run, 1), "a checkpoint")
    async with run_host(config=config) as host:
        store = await host.engine.memory.store()
        [interrupted] = [r for r in await store.interrupted_runs() if r.id == run]
        taken = await asyncio.gather(store.take_over(interrupted), store.take_over(interrupted))
        assert sorted(taken) == [False, True]
        assert (await store.run(run)).status == "running"
        assert await store.run_text(run) == WHOLE[:interrupted.checkpoint_chars], "text cut back to the checkpoint"


# -- the relay --------------------------------------------------------------------------------------------------


class _Updates:
    def __init__(self) -> None:
        self.updates: list[Update] = []

    async def send(self, update: Update) -> None:
        self.updates.append(update)


async def test_the_relay_passes_checkpoints_with_the_text_they_cover_and_shows_them_to_no_sink():
    async def stream() -> AsyncIterator[Any]:
        for i, token in enumerate(TOKENS[:20], 1):
            yield TextDelta(token)
            if i % 3 == 0:
                yield Checkpoint(f"at:{i}")
            if i % 5 == 0:
                await asyncio.sleep(0.03)  # some deltas coalesce, some do not

    taken: list[tuple[str, int]] = []
    sink = _Updates()
    result = await Relay(RelaySettings(coalesce_ms=20), on_checkpoint=lambda s, c: taken.append((s, c))).run(
        stream, sink)
    assert result.text == "".join(TOKENS[:20])
    assert taken and all(c == len("".join(TOKENS[:int(s[3:])])) for s, c in taken), taken
    assert taken[-1] == ("at:18", len("".join(TOKENS[:18])))
    assert all(u.kind in ("text", "status") and "at:" not in u.status for u in sink.updates)


async def test_a_checkpoint_that_is_not_a_string_is_the_plugins_bug():
    async def stream() -> AsyncIterator[Any]:
        yield TextDelta("a")
        yield Checkpoint(42)  # type: ignore[arg-type]

    with pytest.raises(Exception) as raised:
        await Relay(RelaySettings(), on_checkpoint=lambda s, c: None).run(stream, _Updates())
    error = raised.value.error
    assert isinstance(error, ProviderError) and "Checkpoint whose state is int" in error.message
