"""The store's connections to PostgreSQL: reads in autocommit on a pool of their own (a follower's poll costs no
BEGIN/ROLLBACK, and never holds up a write), no connections opened beyond the pools at a burst, and a pooled
connection the server dropped while it sat idle replaced before a caller sees it."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from streamhost.host.config import StoreSettings
from streamhost.store import RunStart, connect, new_id, open_store
from streamhost.store.connect import engines, resolve

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def _no_store_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STREAMHOST_STORE", raising=False)


async def test_reads_run_in_autocommit_on_a_pool_apart_from_the_writes(pg_url: str) -> None:
    writer, reader = engines(resolve(pg_url))
    try:
        assert reader is not writer and reader.pool is not writer.pool
        # now() is the transaction's start: in autocommit every statement is a transaction of its own.
        async with reader.connect() as conn:
            first = (await conn.execute(text("SELECT now()"))).scalar()
            await asyncio.sleep(0.05)
            second = (await conn.execute(text("SELECT now()"))).scalar()
        assert second > first, "two reads on one connection ran in one transaction"
        async with writer.begin() as conn:
            first = (await conn.execute(text("SELECT now()"))).scalar()
            await asyncio.sleep(0.05)
            second = (await conn.execute(text("SELECT now()"))).scalar()
        assert second == first, "a write's statements must share one transaction"
    finally:
        await writer.dispose()
        await reader.dispose()


async def test_a_burst_of_writes_and_reads_opens_no_connections_beyond_the_pools(pg_url: str) -> None:
    store = await open_store(StoreSettings(url=pg_url))
    ids = [new_id("run") for _ in range(120)]
    try:
        await asyncio.gather(*(store.create_run(RunStart(id=run_id, tool="generate", model="openai/a"))
                               for run_id in ids))
        await asyncio.gather(*(store.follow_step(run_id, 0) for run_id in ids), *(store.hand_off(run_id, 5)
                                                                                 for run_id in ids))
        assert [await store.given(run_id) for run_id in ids[:3]] == [5, 5, 5]
        writer, reader = store._writer, store._reader  # the pools' own counts: what PostgreSQL was asked for
        assert writer.pool.checkedout() == reader.pool.checkedout() == 0
        assert writer.pool.overflow() <= 0 and reader.pool.overflow() <= 0, "connections opened past the pool"
        async with writer.connect() as conn:
            sessions = (await conn.execute(text("SELECT count(*) FROM pg_stat_activity "
                                                "WHERE datname = current_database()"))).scalar()
        assert sessions <= connect.POSTGRES_WRITERS + connect.POSTGRES_READERS
    finally:
        await store.close()


@pytest.mark.parametrize("checked", [True, False])
async def test_a_connection_the_server_dropped_while_idle_is_replaced_unseen(pg_url: str, checked: bool,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    store = await open_store(StoreSettings(url=pg_url))
    try:
        assert await store.run("r_none") is None  # a reader connection now sits in the pool
        killer, _ = engines(resolve(pg_url))
        try:
            async with killer.connect() as conn:  # as a server restart would: every other connection dropped
                await conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                        "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
        finally:
            await killer.dispose()
        # Checked: idle for longer than the check's threshold (0 s here); not checked: never idle long enough.
        monkeypatch.setattr(connect, "IDLE_CHECK_S", 0.0 if checked else 3600.0)
        if checked:
            assert await store.run("r_none") is None
        else:  # the control: without the check the caller meets the dead connection
            with pytest.raises(Exception):  # noqa: B017 - whatever the driver raises for a closed connection
                await store.run("r_none")
    finally:
        await store.close()
