"""Several replicas on one PostgreSQL: real ``streamhost serve`` processes, each with its own home and the same
``[store] url``, driven by the MCP SDK's client. Any replica serves any request: a thread goes on elsewhere, a run
handed off on one is followed from another (through the journal), a killed replica's runs are marked interrupted
by a survivor, and replicas starting at once on a fresh database all work."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from streamhost.host.config import StoreSettings
from streamhost.mcp.progress import OFFSET_KEY
from streamhost.store import open_store
from streamhost.testing import LLMTestServer, Script, Served, make_home, serve

pytestmark = pytest.mark.anyio

TEST_KEY = "sk-test-9f8e7d6c5b4a"  # conftest.TEST_KEY: the key the test server requires
TOKENS = [f"t{i:03d} " for i in range(60)]
WHOLE = "".join(TOKENS)


def _note_free(text: str) -> str:
    return text.split("\n\n[streamhost:", 1)[0]


def _offsets(call: Any) -> list[tuple[int, str]]:
    return [(n.meta[OFFSET_KEY], n.meta["streamhost/delta"]) for n in call.progress
            if n.meta and OFFSET_KEY in n.meta]


@pytest.fixture
def replicas(tmp_path: Path, llm: LLMTestServer, pg_url: str) -> Callable[..., Any]:
    """``async with replicas(n, config=..., env=...) as [a, b, ...]``: n served replicas on one database."""

    @asynccontextmanager
    async def start(count: int = 2, *, config: str = "",
                    env: dict[str, str] | None = None) -> AsyncIterator[list[Served]]:
        async with AsyncExitStack() as stack:
            served = []
            for i in range(count):
                (tmp_path / f"replica{i}").mkdir()
                home = make_home(tmp_path / f"replica{i}", config=f'[store]\nurl = "{pg_url}"\n{config}',
                                 env={"OPENAI_API_KEY": TEST_KEY, "OPENAI_BASE_URL": llm.url, **(env or {})})
                # One after the other: the client's task groups must be left by the task that entered them. Each
                # opens the store on its first call (or its warm-up), so they still migrate at about the same time.
                served.append(await stack.enter_async_context(serve(home.env)))
            yield served

    return start


async def _warm(served: list[Served], llm: LLMTestServer) -> None:
    """One quick call on each: the SDK is imported and the store opened, so hand-offs find text to give."""
    llm.script("warm", Script(tokens=["ok"]))
    for replica in served:
        warm = await replica.call("generate", {"prompt": "p", "model": "openai/warm"})
        assert not warm.is_error, warm.text


async def test_a_thread_started_on_one_replica_continues_on_the_other(llm, replicas):
    llm.script("first", Script(tokens=["Paris ", "is the capital."]))
    llm.script("second", Script(tokens=["Agreed."]))
    async with replicas(2) as (a, b):
        one = await a.call("generate", {"prompt": "Capital of France?", "model": "openai/first", "thread": "new"})
        assert not one.is_error, one.text
        thread = one.meta["streamhost/thread"]
        two = await b.call("generate", {"prompt": "Sure?", "model": "openai/second", "thread": thread})
        assert not two.is_error, two.text
        assert two.meta["streamhost/thread"] == thread
    (second,) = [r for r in llm.requests if r.model == "second"]
    assert [(m["role"], m["content"]) for m in second.body["messages"]] == [
        ("user", "Capital of France?"), ("assistant", "Paris is the capital."), ("user", "Sure?")]


async def test_a_run_handed_off_on_one_replica_is_waited_on_from_the_other(llm, replicas):
    llm.script("slow", Script(tokens=TOKENS, rate=10))  # 6 s of answer
    async with replicas(2, config="[limits]\nhandoff_s = 1\n") as (a, b):
        await _warm([a, b], llm)
        first = await a.call("generate", {"prompt": "p", "model": "openai/slow"})
        assert not first.is_error, first.text
        assert first.meta["streamhost/status"] == "running"
        run = first.meta["streamhost/run"]
        parts, pieces = [_note_free(first.text)], []
        # Each wait hands off again after 1 s; the waits go to B, A, B, ...: each goes on where the last left off,
        # whichever replica gave it (A follows its live run, B the journal in the database).
        for replica in itertools.islice(itertools.cycle((b, a)), 60):
            step = await replica.call("wait", {"run": run})
            assert not step.is_error, step.text
            pieces += _offsets(step)
            if step.meta.get("streamhost/status") != "running":
                break
            parts.append(_note_free(step.text))
        else:
            pytest.fail("the run never ended")
    assert step.text == WHOLE and step.meta["streamhost/run"] == run
    assert "".join(parts) == WHOLE[:len("".join(parts))], "each hand-off's part starts where the previous ended"
    assert pieces and pieces[0][0] == len(parts[0]), "the first wait (on B) continues where A's result ended"
    for (offset, delta), (following, _) in itertools.pairwise(pieces):
        assert offset + len(delta) == following, "each delta starts where the previous one ended"
    # The last wait may find the run ended (nothing left to stream): its result is the whole answer then.
    streamed = parts[0] + "".join(delta for _, delta in pieces)
    assert WHOLE.startswith(streamed) and len(streamed) > len(parts[0]), "no text lost or repeated"
    assert len([r for r in llm.requests if r.model == "slow"]) == 1, "A kept generating; nobody restarted it"


async def _owner_pid(url: str, run: str) -> int:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        for _ in range(100):  # the journal records the run within its first half second
            process = await conn.fetchval("SELECT process FROM runs WHERE id = $1", run)
            if process:
                return int(process.rsplit(":", 2)[1])
            await asyncio.sleep(0.1)
    finally:
        await conn.close()
    raise AssertionError(f"run {run} was never recorded")


async def test_a_killed_replicas_run_is_marked_interrupted_by_the_survivor(llm, replicas, pg_url):
    llm.script("endless", Script(tokens=[f"w{i} " for i in range(3000)], rate=20))  # 150 s
    # A short stale time: the survivor's sweeps (a quarter of it apart) find the dead replica's run in seconds.
    async with replicas(2, config="[limits]\nhandoff_s = 1\n", env={"STREAMHOST_STALE_S": "4"}) as (a, b):
        await _warm([a, b], llm)
        first = await a.call("generate", {"prompt": "p", "model": "openai/endless"})
        run = first.meta["streamhost/run"]
        assert first.meta["streamhost/status"] == "running"
        # B follows it through the database while A generates: one wait (1 s) sees new text unless A or the
        # database stalled meanwhile, as on a loaded machine; a few more must.
        follows = []
        while len(follows) < 10 and not any(_offsets(each) for each in follows):
            follows.append(followed := await b.call("wait", {"run": run}))
            assert not followed.is_error and followed.meta["streamhost/status"] == "running", followed.text
        assert any(_offsets(each) for each in follows), "B streamed A's new text from the journal"
        os.kill(await _owner_pid(pg_url, run), signal.SIGKILL)
        for _ in range(60):
            ended = await b.call("wait", {"run": run})
            if ended.meta.get("streamhost/status") != "running":
                break
        else:
            pytest.fail("the killed replica's run stayed running")
        assert ended.is_error and "was interrupted" in ended.text, ended.text
        again = await b.call("wait", {"run": run})
    assert again.is_error and "was interrupted" in again.text
    given = _note_free(first.text) + "".join(_note_free(each.text) for each in follows)
    store = await open_store(StoreSettings(url=pg_url))
    try:
        record, kept = await store.run(run), await store.run_text(run)
    finally:
        await store.close()
    assert record is not None and record.status == "interrupted"
    endless = "".join(f"w{i} " for i in range(3000))
    assert kept.startswith(given) and endless.startswith(kept), "the journal keeps the text up to the kill, in order"


async def test_replicas_opening_a_fresh_database_at_once_all_work(llm, replicas):
    llm.script("hello", Script(tokens=["hi ", "there"]))
    async with replicas(3) as served:
        answers = await asyncio.gather(*(s.call("generate", {"prompt": "p", "model": "openai/hello"})
                                         for s in served))
    assert [a.text for a in answers] == ["hi there"] * 3
    assert len({a.meta["streamhost/run"] for a in answers}) == 3
