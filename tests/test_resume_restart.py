"""Resume after a real crash: ``streamhost serve`` killed with SIGKILL in the middle of a background run, started
again, finishes the run from its checkpoint; ``wait`` returns the whole answer, byte for byte the upstream's.

The provider is a real installed plugin (an entry point in a site directory on PYTHONPATH) on a loopback
background upstream that lives in this test process, so it outlives the server (tests/resume_upstream.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from streamhost.testing import Script, make_home, serve
from tests.resume_upstream import BackgroundUpstream

pytestmark = pytest.mark.anyio

TOKENS = [f"tok{i:03d}é " for i in range(80)]  # a non-ASCII character in each: counted as characters, not bytes
WHOLE = "".join(TOKENS)
DEADLINE_S = 60


def plugin_site(root: Path) -> Path:
    """A site directory holding the test provider as an installed distribution with a ``streamhost`` entry point."""
    site = root / "site"
    info = site / "streamhost_bg_test-0.1.dist-info"
    info.mkdir(parents=True)
    shutil.copy(Path(__file__).with_name("resume_upstream.py"), site / "streamhost_bg_test.py")
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: streamhost-bg-test\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[streamhost]\nbg = streamhost_bg_test:plugin\n")
    return site


def config_for(root: Path) -> str:
    return f'[limits]\nhandoff_s = 1\n\n[store]\npath = "{root / "store.db"}"\n'


async def open_store_of(root: Path) -> Any:
    from streamhost.host.config import StoreSettings
    from streamhost.store.database import open_store

    return await open_store(StoreSettings(path=str(root / "store.db")))


def owner_pid(root: Path, run: str) -> int:
    """The pid of the process that runs ``run``, as the store records it (``HOST:PID:START``)."""
    with contextlib.closing(sqlite3.connect(root / "store.db")) as db:
        [(process,)] = db.execute("SELECT process FROM runs WHERE id = ?", (run,)).fetchall()
    return int(process.rsplit(":", 2)[1])


async def poll(check: Any, what: str) -> Any:
    end = time.monotonic() + DEADLINE_S
    while time.monotonic() < end:
        if value := await check():
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within {DEADLINE_S} s: {what}")


async def start_and_kill(home: Any, root: Path, model: str) -> str:
    """Serve, start a background run, SIGKILL the server once a checkpoint is stored; the run's id."""
    store = await open_store_of(root)
    killed = False
    try:
        try:
            async with serve(home.env) as served:
                first = await served.call("generate", {"prompt": "go", "model": model})
                assert first.meta["streamhost/status"] == "running", first.text
                run = first.meta["streamhost/run"]

                async def checkpointed() -> bool:
                    stored = await store.checkpoint(run)
                    return stored is not None and stored[1] > len(WHOLE) // 4

                await poll(checkpointed, "a checkpoint a quarter into the answer")
                pid = owner_pid(root, run)
                os.kill(pid, signal.SIGKILL)  # the server this test started: by its own pid
                killed = True
                await poll(lambda: _gone(pid), "the server to die")
        except BaseException:
            if not killed:
                raise
            # else: the client of a killed server cannot close cleanly
        record = await store.run(run)
        assert record.status == "running", (record, "a killed server records nothing more")
        return run
    finally:
        await store.close()


async def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reap it if it is ours
    return False


async def restart_and_wait(home: Any, run: str) -> Any:
    """Serve again and ``wait`` for the run until it ends; the last result."""
    async with serve(home.env) as served:
        for _ in range(DEADLINE_S):  # each wait hands off again after 1 s
            rest = await served.call("wait", {"run": run})
            assert not rest.is_error, rest.text + served.stderr_text()
            if rest.meta.get("streamhost/status") != "running":
                return rest
    raise AssertionError(f"run {run} did not end")


async def assert_completed_in_store(root: Path, run: str) -> None:
    store = await open_store_of(root)
    try:
        record = await store.run(run)
        assert record.status == "completed" and record.chars == len(WHOLE)
        assert await store.run_text(run) == WHOLE
    finally:
        await store.close()


async def test_a_run_killed_with_its_server_is_resumed_and_finished_by_the_next_start(tmp_path):
    with BackgroundUpstream(TOKENS, rate=12) as upstream:  # ~7 s of answer
        home = make_home(tmp_path, env={"PYTHONPATH": str(plugin_site(tmp_path)), "BG_UPSTREAM_URL": upstream.url},
                         config=config_for(tmp_path))
        run = await start_and_kill(home, tmp_path, "bg/deep")
        rest = await restart_and_wait(home, run)
        assert rest.text == WHOLE, "the answer after the restart is the upstream's, byte for byte"
        assert rest.text.encode() == WHOLE.encode()
        assert len(upstream.jobs) == 1 and upstream.cancels == [], "resumed: the job was neither redone nor cancelled"
        assert upstream.reads[-1][1] > 0, "the resumed stream started after the checkpoint"
    await assert_completed_in_store(tmp_path, run)


async def test_an_openai_background_response_killed_with_its_server_is_resumed_by_the_next_start(llm, home, tmp_path):
    home.write_config(config_for(tmp_path))
    llm.script("o3-pro", Script(tokens=TOKENS, rate=12))  # o3-pro runs in the background by default
    run = await start_and_kill(home, tmp_path, "openai/o3-pro")
    rest = await restart_and_wait(home, run)
    assert rest.text == WHOLE, "the answer after the restart is the upstream's, byte for byte"
    actions = [record.action for record in llm.requests if record.model == "o3-pro" or record.action != "create"]
    assert actions.count("create") == 1, f"resumed, never asked again: {actions}"
    assert "cancel" not in actions, "a stopped (killed) host never cancels the response"
    await assert_completed_in_store(tmp_path, run)
