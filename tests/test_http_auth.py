"""The bearer-token middleware in a real ASGI server (uvicorn on loopback): a missing, wrong or revoked token gets
the same bare 401 with ``WWW-Authenticate: Bearer``; a valid one reaches the app with its caller in the scope;
loopback goes without a token only when allowed, and never through a proxy."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import httpx2
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from streamhost.host.config import Config, HttpSettings, StoreSettings
from streamhost.host.memory import Memory
from streamhost.mcp.http_auth import CALLER_KEY, BearerAuth
from streamhost.store.tokens import TokenRecord, digest, new_token
from tests.asgi_served import served

pytestmark = pytest.mark.anyio
DEADLINE_S = 30


async def whoami(request: Request) -> JSONResponse:
    caller = request.scope[CALLER_KEY]
    return JSONResponse({"caller": None if caller is None else caller.name,
                         "models": None if caller is None else caller.models})


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


@contextlib.asynccontextmanager
async def serving(memory: Memory, **options) -> AsyncIterator[str]:
    """uvicorn on a free loopback port, in this event loop, serving a small app behind the middleware."""
    app = BearerAuth(Starlette(routes=[Route("/whoami", whoami), Route("/healthz", healthz)]), memory, **options)
    async with served(app) as url:
        yield url


@pytest.fixture
async def memory(tmp_path) -> AsyncIterator[Memory]:
    made = Memory(Config(store=StoreSettings(path=str(tmp_path / "store.db"))))
    yield made
    await made.aclose()


async def _token(memory: Memory, name: str, **limits) -> str:
    token = new_token()
    store = await memory.store()
    await store.add_token(TokenRecord(name=name, digest=digest(token), created_at=time.time(), revoked_at=None,
                                      models=limits.get("models"), daily_usd=None, per_minute=None))
    return token


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _refused(response: httpx2.Response) -> tuple[int, str | None, bytes]:
    return response.status_code, response.headers.get("www-authenticate"), response.content


async def test_missing_wrong_and_revoked_tokens_get_the_same_bare_401(memory):
    token = await _token(memory, "alice", models=("openai/*",))
    async with serving(memory, cache_s=0.2) as url, httpx2.AsyncClient(base_url=url) as client:
        ok = await client.get("/whoami", headers=_bearer(token))
        assert ok.status_code == 200
        assert ok.json() == {"caller": "alice", "models": ["openai/*"]}
        missing = await client.get("/whoami")
        wrong = await client.get("/whoami", headers=_bearer(token[:-1] + ("A" if token[-1] != "A" else "B")))
        other_scheme = await client.get("/whoami", headers={"Authorization": f"Basic {token}"})
        assert _refused(missing)[0] == 401
        assert _refused(missing)[1].startswith("Bearer")
        assert _refused(missing) == _refused(wrong) == _refused(other_scheme)
        assert b"alice" not in missing.content and token.encode() not in missing.content

        store = await memory.store()
        assert await store.revoke_token("alice")
        deadline = time.monotonic() + DEADLINE_S
        while (revoked := await client.get("/whoami", headers=_bearer(token))).status_code == 200:
            assert time.monotonic() < deadline, "a revoked token still worked after the cache time"
            await asyncio.sleep(0.05)
        assert _refused(revoked) == _refused(missing), "revoked reads exactly like wrong: nothing is revealed"
        assert (await client.get("/healthz")).status_code == 200, "probes need no token"


async def test_loopback_goes_without_a_token_only_when_allowed_and_not_through_a_proxy(memory):
    token = await _token(memory, "bob")
    async with serving(memory) as url, httpx2.AsyncClient(base_url=url) as client:
        assert (await client.get("/whoami")).status_code == 401, "off by default"
    async with serving(memory, loopback_without_token=True) as url, httpx2.AsyncClient(base_url=url) as client:
        local = await client.get("/whoami")
        assert local.status_code == 200 and local.json()["caller"] is None, "a local caller: the local user"
        assert (await client.get("/whoami", headers=_bearer(token))).json()["caller"] == "bob"
        assert (await client.get("/whoami", headers=_bearer("sht_wrong"))).status_code == 401
        assert (await client.get("/whoami", headers={"Authorization": "Basic Ym9iOng="})).status_code == 401
        proxied = await client.get("/whoami", headers={"X-Forwarded-For": "203.0.113.9"})
        assert proxied.status_code == 401, "a proxy on this machine forwards strangers from loopback"


async def test_the_setting_is_read_from_the_config(tmp_path):
    config = Config(store=StoreSettings(path=str(tmp_path / "s.db")), http=HttpSettings(loopback_without_token=True))
    memory = Memory(config)
    try:
        async with serving(memory) as url, httpx2.AsyncClient(base_url=url) as client:
            assert (await client.get("/whoami")).status_code == 200
    finally:
        await memory.aclose()


async def test_tokens_that_cannot_be_checked_are_refused(tmp_path, caplog):
    off = Memory(Config(store=StoreSettings(enabled=False)))
    async with serving(off) as url, httpx2.AsyncClient(base_url=url) as client:
        assert (await client.get("/whoami", headers=_bearer("sht_any"))).status_code == 401
    assert "[store] enabled = false" in caplog.text
    (tmp_path / "blocked").write_text("a file where the store's directory should be")
    broken = Memory(Config(store=StoreSettings(path=str(tmp_path / "blocked" / "store.db"))))
    async with serving(broken) as url, httpx2.AsyncClient(base_url=url) as client:
        unavailable = await client.get("/whoami", headers=_bearer("sht_any"))
    assert unavailable.status_code == 503 and b"blocked" not in unavailable.content, "the reason goes to the log"
