"""The store's tokens, thread owners and per-token spending, on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from streamhost.errors import InvalidArgumentError
from streamhost.host.config import StoreSettings
from streamhost.store import open_store
from streamhost.store.database import Store
from streamhost.store.records import RunEnd, RunStart
from streamhost.store.tokens import TokenRecord, digest, new_token

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request, tmp_path) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        settings = StoreSettings(path=str(tmp_path / "store.db"))
    else:
        settings = StoreSettings(url=request.getfixturevalue("pg_url"))
    opened = await open_store(settings)
    yield opened
    await opened.close()


def _record(name: str, token: str, **limits) -> TokenRecord:
    return TokenRecord(name=name, digest=digest(token), created_at=time.time(), revoked_at=None,
                       models=limits.get("models"), daily_usd=limits.get("daily_usd"),
                       per_minute=limits.get("per_minute"))


async def test_tokens_are_found_by_digest_revoked_and_replaced(store):
    first, other = new_token(), new_token()
    await store.add_token(_record("alice", first, models=("openai/*", "litellm/ollama/*"), daily_usd=1.5,
                                  per_minute=10))
    await store.add_token(_record("bob", other))
    found = await store.token_by_digest(digest(first))
    assert (found.name, found.models, found.daily_usd, found.per_minute, found.revoked) == (
        "alice", ("openai/*", "litellm/ollama/*"), 1.5, 10, False)
    assert (await store.token_by_digest(digest(other))).models is None
    assert await store.token_by_digest(digest(new_token())) is None
    with pytest.raises(InvalidArgumentError, match="a token named 'alice' exists"):
        await store.add_token(_record("alice", new_token()))

    assert await store.revoke_token("alice") and not await store.revoke_token("alice")
    assert not await store.revoke_token("nobody")
    assert (await store.token_by_digest(digest(first))).revoked
    second = new_token()
    await store.add_token(_record("alice", second))
    assert await store.token_by_digest(digest(first)) is None, "the old token is gone with its replacement"
    renewed = await store.token_by_digest(digest(second))
    assert renewed.name == "alice" and not renewed.revoked and renewed.models is None
    assert [t.name for t in await store.tokens()] == ["bob", "alice"]


async def test_threads_belong_to_their_token_and_spending_is_summed_per_token(store):
    await store.create_thread("t_alice", owner_token="alice")
    await store.create_thread("t_local")
    assert await store.owns_thread("t_alice", "alice")
    assert not await store.owns_thread("t_alice", "bob") and not await store.owns_thread("t_alice", None)
    assert await store.owns_thread("t_local", None) and not await store.owns_thread("t_local", "alice")
    assert not await store.owns_thread("t_missing", "alice")
    for run_id, owner, cost in (("r_1", "alice", 1.25), ("r_2", "alice", 0.5), ("r_3", "bob", 2.0),
                                ("r_4", None, 4.0)):
        await store.create_run(RunStart(id=run_id, tool="generate", model="openai/m", owner_token=owner))
        await store.finish_run(run_id, RunEnd(status="completed", cost_usd=cost))
    since = time.time() - 3600
    assert await store.cost_since(since, owner_token="alice") == pytest.approx(1.75)
    assert await store.cost_since(since, owner_token="bob") == pytest.approx(2.0)
    assert await store.cost_since(since) == pytest.approx(7.75)
    by_token = {row.key: row.cost_usd for row in await store.usage(since=since, by="token")}
    assert by_token == pytest.approx({"alice": 1.75, "bob": 2.0, "-": 4.0})


async def test_a_tokens_limits_change_in_place_and_the_token_stays(store):
    token = new_token()
    await store.add_token(_record("carol", token, models=("openai/*",), daily_usd=1.0, per_minute=5))
    changed = await store.set_token_limits("carol", {"models": ("openai/big", "litellm/*"), "per_minute": None})
    assert (changed.models, changed.daily_usd, changed.per_minute) == (("openai/big", "litellm/*"), 1.0, None)
    assert await store.token_by_digest(digest(token)) == changed, "the same token opens the changed limits"
    lifted = await store.set_token_limits("carol", {"models": None, "daily_usd": 0.0})
    assert (lifted.models, lifted.daily_usd, lifted.per_minute, lifted.digest) == (None, 0.0, None, digest(token))
    assert await store.set_token_limits("carol", {}) == lifted
    assert await store.set_token_limits("nobody", {"per_minute": 3}) is None
    await store.revoke_token("carol")
    assert await store.set_token_limits("carol", {"per_minute": 3}) is None, "a revoked token is not changed"
    assert (await store.token_by_digest(digest(token))).per_minute is None
    with pytest.raises(ValueError, match="not a token limit: digest"):
        await store.set_token_limits("carol", {"digest": "0" * 64})
