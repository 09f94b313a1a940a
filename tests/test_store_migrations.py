"""Schema migrations on real SQLite files: an older store upgrades with its rows intact, the newest revision
gives exactly the tables the queries use, racing openers migrate once, a newer store is refused clearly."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from streamhost.host.config import StoreSettings
from streamhost.store import FileRecord, RunEnd, RunStart, StoreError, Turn, migrate, open_store, schema
from streamhost.store.connect import engines, resolve

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def _no_store_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STREAMHOST_STORE", raising=False)


async def _at_revision(path: Path, revision: str) -> None:
    target = resolve(str(path))
    writer, reader = engines(target)
    try:
        await migrate.upgrade(writer, revision)
    finally:
        await writer.dispose()
        await reader.dispose()


def test_head_names_the_newest_shipped_revision() -> None:
    scripts = ScriptDirectory(str(migrate.SCRIPTS))
    assert scripts.get_current_head() == migrate.HEAD
    assert [script.revision for script in scripts.walk_revisions()][::-1] == ["0001", "0002", "0003", "0004"]


async def test_an_old_store_upgrades_with_its_rows_intact(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    await _at_revision(path, "0001")
    with sqlite3.connect(path) as conn:  # what a streamhost of revision 0001 wrote
        conn.execute("INSERT INTO runs (id, tool, model, status, thread_id, process, started_at, heartbeat_at, "
                     "ended_at, ttft_ms, duration_ms, error, chars, prompt) VALUES "
                     "('r_old', 'generate', 'openai/a', 'completed', 't_old', 'h:1:1', 100.0, 101.0, 102.0, "
                     "12.5, 2000.0, NULL, 11, 'old prompt')")
        conn.execute("INSERT INTO run_text (run_id, pos, text) VALUES ('r_old', 0, 'old '), ('r_old', 4, 'answer!')")
        conn.execute("INSERT INTO threads (id, created_at, updated_at, turns, last_model, title) VALUES "
                     "('t_old', 100.0, 102.0, 2, 'openai/a', 'old prompt')")
        conn.execute("INSERT INTO turns (thread_id, seq, role, content, model, run_id, at) VALUES "
                     "('t_old', 0, 'user', 'old prompt', NULL, NULL, 100.0), "
                     "('t_old', 1, 'assistant', 'old answer!', 'openai/a', 'r_old', 102.0)")
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone() == ("0001",)

    store = await open_store(StoreSettings(path=str(path), keep_days=0))
    try:
        run = await store.run("r_old")
        assert run is not None
        assert (run.status, run.model, run.thread_id, run.prompt, run.chars, run.ttft_ms) == (
            "completed", "openai/a", "t_old", "old prompt", 11, 12.5)
        assert (run.input_tokens, run.cost_usd, run.usage_estimated, run.files, run.owner_token) == (
            None, None, False, [], None)
        assert await store.run_text("r_old") == "old answer!"
        assert [turn.content for turn in await store.turns("t_old")] == ["old prompt", "old answer!"]
        await store.append_turns("t_old", [Turn("user", "and now?")])
        assert [turn.content for turn in await store.turns("t_old")][-1] == "and now?"
        # What the new revision added works on the upgraded file.
        await store.create_run(RunStart(id="r_new", tool="generate", model="openai/a",
                                        files=[FileRecord("a.txt", 3, "f" * 64)], owner_token="alice"))
        await store.finish_run("r_new", RunEnd("completed", input_tokens=5, output_tokens=2, cost_usd=0.01))
        (row,) = await store.usage(since=None, by="model")
        assert (row.runs, row.input_tokens, row.cost_usd, row.unpriced) == (2, 5, 0.01, 1)
    finally:
        await store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone() == (migrate.HEAD,)


async def test_the_newest_revision_is_the_schema_the_queries_use(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    await _at_revision(path, "head")
    writer, reader = engines(resolve(str(path)))
    try:
        async with reader.connect() as conn:
            found = await conn.run_sync(lambda sync: {
                table: ({c["name"] for c in inspect(sync).get_columns(table)},
                        {i["name"] for i in inspect(sync).get_indexes(table)})
                for table in inspect(sync).get_table_names() if table != "alembic_version"})
    finally:
        await writer.dispose()
        await reader.dispose()
    expected = {table.name: ({c.name for c in table.columns}, {i.name for i in table.indexes})
                for table in schema.metadata.sorted_tables}
    assert found == expected


async def test_downgrade_and_upgrade_again(tmp_path: Path) -> None:
    path = tmp_path / "round.db"
    await _at_revision(path, "head")
    target = resolve(str(path))
    writer, reader = engines(target)
    try:
        async with writer.begin() as conn:
            await conn.run_sync(_alembic, "downgrade", "0001")
            assert await conn.run_sync(migrate.current) == "0001"
        await migrate.upgrade(writer)
        async with reader.connect() as conn:
            assert await conn.run_sync(migrate.current) == migrate.HEAD
    finally:
        await writer.dispose()
        await reader.dispose()


def _alembic(connection: object, command_name: str, revision: str) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migrate.SCRIPTS))
    config.attributes["connection"] = connection
    getattr(command, command_name)(config, revision)


async def test_a_store_from_a_newer_streamhost_is_refused_clearly(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    await _at_revision(path, "head")
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0099'")
    with pytest.raises(StoreError, match=r"revision 0099.*newer streamhost"):
        await open_store(StoreSettings(path=str(path)))


OPENER = ("import asyncio, sys\n"
          "from streamhost.host.config import StoreSettings\n"
          "from streamhost.store import open_store\n"
          "async def main():\n"
          "    store = await open_store(StoreSettings(path=sys.argv[1]))\n"
          "    await store.close()\n"
          "asyncio.run(main())\n")


async def test_processes_opening_a_new_store_at_once_migrate_it_once(tmp_path: Path) -> None:
    path = tmp_path / "raced.db"

    def opener() -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", OPENER, str(path)], capture_output=True, text=True, timeout=120)

    results = await asyncio.gather(*(asyncio.to_thread(opener) for _ in range(4)))
    assert [r.returncode for r in results] == [0] * 4, [r.stderr[-2000:] for r in results]
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [(migrate.HEAD,)]
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
