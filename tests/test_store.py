"""The store on a real SQLite file: runs and their text, threads, usage, pruning, privacy, ids, locations."""

from __future__ import annotations

import asyncio
import os
import stat
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from streamhost.events import Update
from streamhost.host.config import StoreSettings
from streamhost.host.sinks import CollectingSink
from streamhost.store import (
    FileRecord,
    Journal,
    RunEnd,
    RunStart,
    StoreError,
    Turn,
    new_id,
    open_store,
)
from streamhost.store.database import Store

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def _no_store_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STREAMHOST_STORE", raising=False)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await open_store(StoreSettings(path=str(tmp_path / "data" / "streamhost.db")))
    yield opened
    await opened.close()


def start(tool: str = "generate", model: str | None = "openai/gpt-x", **fields: object) -> RunStart:
    return RunStart(id=new_id("run"), tool=tool, model=model, **fields)  # type: ignore[arg-type]


async def test_a_run_from_start_to_end(store: Store) -> None:
    files = [FileRecord("src/a.py", 120, "ab" * 32), FileRecord("README.md", 9, "cd" * 32)]
    run = start(prompt="Explain WAL", thread_id="t_1", files=files, owner_token="alice")
    await store.create_run(run)
    running = await store.run(run.id)
    assert running is not None and running.status == "running" and running.ended_at is None
    assert running.prompt == "Explain WAL" and running.files == files and running.owner_token == "alice"

    await store.append_text(run.id, 0, "Write-ahead ")
    await store.append_text(run.id, 12, "logging.")
    await store.finish_run(run.id, RunEnd("completed", ttft_ms=120.5, duration_ms=900, input_tokens=11,
                                          output_tokens=3, cost_usd=0.002, model="openai/gpt-x-2026"))
    done = await store.run(run.id)
    assert done is not None
    assert (done.status, done.model, done.chars, done.input_tokens, done.output_tokens) == (
        "completed", "openai/gpt-x-2026", 20, 11, 3)
    assert done.ended_at is not None and done.ended_at >= done.started_at and done.cost_usd == 0.002
    assert await store.run_text(run.id) == "Write-ahead logging."
    assert await store.run("r_nonexistent") is None and await store.run_text("r_nonexistent") == ""


async def test_text_chunks_join_in_offset_order_without_duplicates(store: Store) -> None:
    run = start()
    await store.create_run(run)
    await store.append_text(run.id, 6, "world")
    await store.append_text(run.id, 0, "hello ")
    await store.append_text(run.id, 0, "hello ")  # the same chunk again (a retried write)
    await store.append_text(run.id, 6, "world, again")  # a retried chunk that grew meanwhile
    await store.append_text(run.id, 9, "ld, again!")  # overlapping its predecessor
    assert await store.run_text(run.id) == "hello world, again!"
    record = await store.run(run.id)
    assert record is not None and record.chars == len("hello world, again!")


async def test_runs_are_listed_newest_first_and_filtered(store: Store) -> None:
    made = []
    for model in ("openai/a", "openai/b", "openai/a"):
        made.append(start(model=model))
        await store.create_run(made[-1])
    newest_first = [run.id for run in reversed(made)]
    assert [run.id for run in await store.runs()] == newest_first
    assert [run.id for run in await store.runs(limit=2)] == newest_first[:2]
    assert [run.id for run in await store.runs(model="openai/a")] == [made[2].id, made[0].id]
    assert await store.runs(since=time.time() + 60) == []


async def test_prune_deletes_old_finished_runs_with_their_text(store: Store) -> None:
    old, running, fresh = start(files=[FileRecord("a", 1, "0" * 64)]), start(), start()
    for run in (old, running, fresh):
        await store.create_run(run)
        await store.append_text(run.id, 0, "text")
    await store.finish_run(old.id, RunEnd("completed"))
    await store.finish_run(fresh.id, RunEnd("completed"))
    time.sleep(0.05)
    keep_days = 0.01 / 86_400  # 10 ms: what started before then is old
    assert await store.prune(0) == 0  # 0 days: kept for ever, as in the config
    assert await store.prune(keep_days) == 2  # the running one stays, whatever its age
    assert await store.run(old.id) is None and await store.run_text(old.id) == ""
    assert (await store.run(running.id)) is not None
    assert await store.prune(keep_days) == 0


async def test_threads_keep_turns_in_order_and_list_cheaply(store: Store) -> None:
    await store.create_thread("t_a")
    assert (await store.thread("t_a")) is not None
    long_question = "Why is the sky blue?\n" + "Explain " * 30
    await store.append_turns("t_a", [Turn("user", long_question), Turn("assistant", "Rayleigh.", model="openai/a")])
    await store.append_turns("t_a", [Turn("user", "And sunsets?", at=5.0),
                                     Turn("assistant", "Longer path.", model="litellm/b", run_id="r_2")])
    await store.append_turns("t_b", [Turn("user", "second thread")])  # made on first append

    turns = await store.turns("t_a")
    assert [turn.content for turn in turns] == [long_question, "Rayleigh.", "And sunsets?", "Longer path."]
    assert turns[2].at == 5.0 and turns[0].at > 0 and turns[3].run_id == "r_2"
    summary = await store.thread("t_a")
    assert summary is not None
    assert (summary.turns, summary.last_model) == (4, "litellm/b")
    assert len(summary.title) <= 80 and summary.title.startswith("Why is the sky blue? Explain")
    assert [thread.id for thread in await store.threads()] == ["t_b", "t_a"]
    assert [thread.id for thread in await store.threads(limit=1)] == ["t_b"]

    assert await store.delete_thread("t_a") is True
    assert await store.delete_thread("t_a") is False
    assert await store.thread("t_a") is None and await store.turns("t_a") == []


async def test_usage_adds_up_by_every_key(store: Store) -> None:
    plan = [("openai/a", "t_1", "alice", 100, 10, 0.5, False), ("openai/a", None, "bob", 50, 5, None, True),
            ("litellm/b", "t_1", None, 7, 3, 0.25, False)]
    for model, thread, token, tokens_in, tokens_out, cost, estimated in plan:
        run = start(model=model, thread_id=thread, owner_token=token)
        await store.create_run(run)
        await store.finish_run(run.id, RunEnd("completed", input_tokens=tokens_in, output_tokens=tokens_out,
                                              cost_usd=cost, usage_estimated=estimated))
    by_model = {row.key: row for row in await store.usage(since=None, by="model")}
    assert set(by_model) == {"openai/a", "litellm/b"}
    a = by_model["openai/a"]
    assert (a.runs, a.input_tokens, a.output_tokens, a.cost_usd, a.estimated, a.unpriced) == (2, 150, 15, 0.5, True, 1)
    assert not by_model["litellm/b"].estimated and by_model["litellm/b"].unpriced == 0
    assert {row.key: row.runs for row in await store.usage(since=None, by="thread")} == {"t_1": 2, "-": 1}
    assert {row.key: row.cost_usd for row in await store.usage(since=None, by="token")} == {
        "alice": 0.5, "bob": 0.0, "-": 0.25}
    (day,) = await store.usage(since=None, by="day")
    assert day.key == time.strftime("%Y-%m-%d") and (day.runs, day.input_tokens, day.unpriced) == (3, 157, 1)
    assert await store.cost_since(0) == pytest.approx(0.75)
    assert await store.cost_since(time.time() + 60) == 0
    assert await store.usage(since=time.time() + 60, by="model") == []


async def test_without_keep_text_nothing_said_is_kept(tmp_path: Path) -> None:
    store = await open_store(StoreSettings(path=str(tmp_path / "s.db"), keep_text=False))
    try:
        assert store.keep_text is False
        run = start(prompt="a secret plan")
        await store.create_run(run)
        journal = Journal(store, run.id, interval_s=0.01)
        sink = journal.wrap(CollectingSink())
        await sink.send(Update("text", delta="the secret ", offset=0))
        await asyncio.sleep(0.05)
        await sink.send(Update("text", delta="answer", offset=11))
        await store.append_text(run.id, 0, "the secret answer")  # written directly: dropped all the same
        await journal.finish(RunEnd("completed"))
        record = await store.run(run.id)
        assert record is not None and record.prompt is None and record.chars == len("the secret answer")
        assert await store.run_text(run.id) == ""
        with pytest.raises(StoreError, match="keep_text"):
            await store.append_turns("t_x", [Turn("user", "hi")])
    finally:
        await store.close()
    assert b"secret" not in b"".join(p.read_bytes() for p in tmp_path.iterdir())


async def test_the_file_is_user_only_in_a_private_directory(tmp_path: Path) -> None:
    path = tmp_path / "new" / "deeper" / "streamhost.db"
    store = await open_store(StoreSettings(path=str(path)))
    await store.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert store.location == str(path)


async def test_the_env_variable_wins_and_urls_are_masked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMHOST_STORE", f"sqlite:///{tmp_path}/from-env.db")
    store = await open_store(StoreSettings(path=str(tmp_path / "from-config.db")))
    await store.close()
    assert (tmp_path / "from-env.db").exists() and not (tmp_path / "from-config.db").exists()

    from streamhost.store.connect import resolve

    assert resolve("postgresql://me:hunter2@db.internal/streamhost").label == "postgresql://me:***@db.internal/streamhost"
    with pytest.raises(StoreError, match="does not support"):
        resolve("mysql://me@host/db")
    with pytest.raises(StoreError, match="in-memory"):
        resolve("sqlite://")


async def test_an_unwritable_place_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(StoreError, match=r"Cannot create the store .*enabled = false"):
        await open_store(StoreSettings(path=str(blocker / "streamhost.db")))


async def test_an_unreachable_database_server_is_a_clear_error() -> None:
    pytest.importorskip("asyncpg", reason="asyncpg (streamhost[postgres]) is not installed")
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql://me:hunter2@127.0.0.1:{port}/streamhost"
    with pytest.raises(StoreError, match=r"Cannot open the store postgresql://me:\*\*\*@127.0.0.1") as caught:
        await open_store(StoreSettings(url=url))
    assert "hunter2" not in caught.value.message


def test_ids_are_short_url_safe_unique_and_time_ordered() -> None:
    ids = [new_id("run") for _ in range(5000)]
    assert len(set(ids)) == len(ids) and ids == sorted(ids)
    assert all(i.startswith("r_") and len(i) == 16 and i[2:].isalnum() and i == i.lower() for i in ids)
    assert new_id("thread").startswith("t_")
    earlier = new_id("run")
    time.sleep(0.002)
    assert new_id("run") > earlier


def test_the_store_never_imports_a_database_library_at_import() -> None:
    import subprocess
    import sys

    code = ("import sys, streamhost.store, streamhost.store.journal, streamhost.store.records, streamhost.cli.main\n"
            "heavy = lambda: [m for m in ('sqlalchemy', 'aiosqlite', 'alembic', 'asyncpg') if m in sys.modules]\n"
            "print(heavy())\n"
            "streamhost.store.preload()\n"
            "print(heavy())")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    # preload brings what every open needs; Alembic only comes when a schema must change.
    assert done.stdout.split("\n")[:2] == ["[]", "['sqlalchemy', 'aiosqlite']"]
