"""Tokens and the rules their holders are held to: ``streamhost tokens add|list|revoke`` (the token printed once,
only its digest stored), allowed models, a daily budget and a rate per token, usage per token, and threads and
runs that only the token that made them can read, continue or wait on.

The rules are checked on a real engine (the openai plugin in front of the test LLM server, a SQLite store), with
``CALLER`` set as the HTTP face sets it for a call.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import re
import sqlite3

import pytest

from streamhost.cli.main import main
from streamhost.errors import BudgetExceededError, CallFailed, InvalidArgumentError, StreamhostError
from streamhost.host.callers import CALLER, Caller, RateLimits, may_see
from streamhost.host.config import Config, Limits, StoreSettings
from streamhost.host.engine import Engine
from streamhost.host.loading import load_plugins
from streamhost.host.sinks import CollectingSink
from streamhost.pages.host_services import HostServices
from streamhost.testing import Script

pytestmark = pytest.mark.anyio


def _cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# -- the command ---------------------------------------------------------------------------------------------------


def test_add_prints_the_token_once_and_stores_only_its_digest(home, capsys, caplog, monkeypatch):
    caplog.set_level(logging.DEBUG)
    code, out, err = _cli(capsys, "tokens", "add", "alice", "--models", "openai/gpt-4.1*", "openai/o3",
                          "--daily-usd", "2.5", "--per-minute", "30")
    assert code == 0, err
    token = out.splitlines()[-1]
    assert out == token + "\n", "stdout is the token alone: TOKEN=$(streamhost tokens add NAME) keeps just it"
    assert token.startswith("sht_") and len(token) > 40
    assert "alice" in err and token not in err
    with contextlib.closing(sqlite3.connect(home.store)) as db:
        rows = db.execute("select name, digest, models, daily_usd, per_minute, revoked_at from tokens").fetchall()
    assert rows == [("alice", hashlib.sha256(token.encode()).hexdigest(), json.dumps(["openai/gpt-4.1*", "openai/o3"]),
                     2.5, 30, None)]
    assert token.encode() not in home.store.read_bytes(), "the token itself is never stored"

    code, listed, _ = _cli(capsys, "tokens", "list", "--json")
    assert code == 0
    shown = json.loads(listed)["tokens"]
    assert [(t["name"], t["models"], t["daily_usd"], t["per_minute"]) for t in shown] == [
        ("alice", ["openai/gpt-4.1*", "openai/o3"], 2.5, 30)]
    code, table, _ = _cli(capsys, "tokens", "list")
    for text in (listed, table):
        assert token not in text and rows[0][1] not in text, "list shows neither the token nor its digest"
    assert token not in caplog.text


def test_a_name_holds_one_active_token_and_a_revoked_one_can_be_replaced(home, capsys):
    code, out, _ = _cli(capsys, "tokens", "add", "bob")
    first = out.splitlines()[-1]
    assert code == 0
    code, out, err = _cli(capsys, "tokens", "add", "bob")
    assert code == 2 and out == ""
    assert "a token named 'bob' exists" in err and "streamhost tokens revoke bob" in err
    assert _cli(capsys, "tokens", "revoke", "bob")[0] == 0
    code, _, err = _cli(capsys, "tokens", "revoke", "bob")
    assert code == 2 and "no active token named 'bob'" in err
    code, out, _ = _cli(capsys, "tokens", "add", "bob")
    second = out.splitlines()[-1]
    assert code == 0 and second != first
    code, listed, _ = _cli(capsys, "tokens", "list", "--json")
    assert [(t["name"], t["revoked_at"]) for t in json.loads(listed)["tokens"]] == [("bob", None)]


@pytest.mark.parametrize("argv, complaint", [
    (["tokens", "add", "two words"], "token name 'two words'"),
    (["tokens", "add", "x" * 65], "1 to 64"),
])
def test_bad_names_are_refused_with_what_to_use(home, capsys, argv, complaint):
    code, out, err = _cli(capsys, *argv)
    assert code == 2 and out == "" and complaint in err


@pytest.mark.parametrize("flag, value", [("--daily-usd", "-1"), ("--daily-usd", "nan"), ("--per-minute", "0")])
def test_bad_limits_are_refused(home, capsys, flag, value):
    with pytest.raises(SystemExit):
        main(["tokens", "add", "carol", flag, value])
    assert value in capsys.readouterr().err


def test_set_changes_only_the_limits_it_names_and_keeps_the_token(home, capsys):
    code, out, _ = _cli(capsys, "tokens", "add", "dora", "--models", "openai/*", "--daily-usd", "3")
    token = out.splitlines()[-1]
    code, out, err = _cli(capsys, "tokens", "set", "dora", "--per-minute", "20", "--no-daily-usd")
    assert code == 0, err
    assert "token dora: openai/*; no daily budget; 20 calls a minute" in out and token not in out
    code, out, err = _cli(capsys, "tokens", "set", "dora", "--any-model", "--json")
    shown = json.loads(out)
    assert code == 0 and (shown["models"], shown["daily_usd"], shown["per_minute"]) == (None, None, 20)
    assert "digest" not in shown
    with contextlib.closing(sqlite3.connect(home.store)) as db:
        rows = db.execute("select name, digest, models, daily_usd, per_minute from tokens").fetchall()
    assert rows == [("dora", hashlib.sha256(token.encode()).hexdigest(), None, None, 20)], "the token is unchanged"


@pytest.mark.parametrize("argv, complaint", [
    (["tokens", "set", "dora"], "nothing to change: give --models, --daily-usd or --per-minute"),
    (["tokens", "set", "nobody", "--per-minute", "3"], "no active token named 'nobody'"),
])
def test_set_says_what_is_missing(home, capsys, argv, complaint):
    assert _cli(capsys, "tokens", "add", "dora")[0] == 0
    code, out, err = _cli(capsys, *argv)
    assert code == 2 and out == "" and complaint in err


@pytest.mark.parametrize("argv", [["--models", "openai/*", "--any-model"], ["--daily-usd", "1", "--no-daily-usd"],
                                  ["--per-minute", "0"]])
def test_set_refuses_a_limit_set_and_lifted_at_once_or_a_bad_one(home, capsys, argv):
    with pytest.raises(SystemExit):
        main(["tokens", "set", "dora", *argv])
    assert "argument" in capsys.readouterr().err


# -- the rules in the host -----------------------------------------------------------------------------------------

PRICED = {"openai/priced": {"price_in": 0, "price_out": 1_000_000}}  # $1 an output token


@pytest.fixture
async def services(home, monkeypatch):
    """A real engine's services, with the store in the home and a model that costs $1 a token."""
    monkeypatch.setenv("STREAMHOST_LOAD_PLUGINS", "streamhost-openai")
    config = Config(metrics_enabled=False, warmup=False, models=dict(PRICED), store=StoreSettings(path=str(home.store)),
                    limits=Limits(handoff_s=0))
    engine = Engine(config, load_plugins(config))
    try:
        yield HostServices(engine)
    finally:
        await engine.aclose()


@contextlib.contextmanager
def calling_as(caller: Caller | None):
    reset = CALLER.set(caller)
    try:
        yield
    finally:
        CALLER.reset(reset)


ALICE = Caller("alice")
BOB = Caller("bob")


async def test_a_model_outside_the_tokens_patterns_is_refused_before_any_request(services, llm):
    llm.script("gpt-4.1-mini", Script(tokens=["ok"]))
    limited = Caller("dana", models=("openai/gpt-4.1*",))
    with calling_as(limited):
        done = await services.generate("hi", CollectingSink(), model="openai/gpt-4.1-mini")
        with pytest.raises(InvalidArgumentError) as refused:
            await services.generate("hi", CollectingSink(), model="openai/o3")
        with pytest.raises(InvalidArgumentError):
            await services.summarize(["https://example.com/"], CollectingSink(), model="openai/o3")
    assert done.text == "ok"
    assert "model openai/o3 is not allowed for token dana (allowed: openai/gpt-4.1*)" in refused.value.message
    assert [r.model for r in llm.requests if r.api == "chat"] == ["gpt-4.1-mini"]


async def test_runs_and_threads_are_recorded_under_the_token(services, llm, home, capsys):
    llm.script("m", Script(tokens=["one"]))
    with calling_as(ALICE):
        made = await services.generate("hi", CollectingSink(), model="openai/m", thread="new")
    local = await services.generate("hi", CollectingSink(), model="openai/m")
    store = await services.engine.memory.store()
    assert (await store.run(made.run)).owner_token == "alice"
    assert (await store.run(local.run)).owner_token is None
    assert await store.owns_thread(made.thread, "alice") and not await store.owns_thread(made.thread, "bob")
    rows = {row.key: row.runs for row in await store.usage(since=None, by="token")}
    assert rows == {"alice": 1, "-": 1}
    code = await asyncio.to_thread(main, ["usage", "--by", "token", "--json"])
    shown = json.loads(capsys.readouterr().out)
    assert code == 0 and {row["key"]: row["runs"] for row in shown["rows"]} == {"alice": 1, "-": 1}


async def test_a_tokens_daily_budget_refuses_its_calls_and_no_one_elses(services, llm):
    llm.script("priced", Script(tokens=["a", "b", "c"]))  # $3 a call
    frugal = Caller("erin", daily_usd=2.0)
    with calling_as(frugal):
        await services.generate("hi", CollectingSink(), model="openai/priced")
        with pytest.raises(BudgetExceededError) as refused:
            await services.generate("hi", CollectingSink(), model="openai/priced")
    assert "token erin has used its daily budget of $2.00: $3.00 spent in the last 24 hours" in refused.value.message
    with calling_as(Caller("frank", daily_usd=2.0)):
        await services.generate("hi", CollectingSink(), model="openai/priced")  # its own budget is untouched
    await services.generate("hi", CollectingSink(), model="openai/priced")  # the local user has none
    assert len([r for r in llm.requests if r.api == "chat"]) == 3


async def test_a_tokens_rate_limit_refuses_calls_past_it_and_says_when_to_retry(services, llm):
    llm.script("m", Script(tokens=["ok"]))
    hasty = Caller("gus-rate-test", per_minute=2)
    with calling_as(hasty):
        for _ in range(2):
            await services.generate("hi", CollectingSink(), model="openai/m")
        with pytest.raises(StreamhostError) as refused:
            await services.generate("hi", CollectingSink(), model="openai/m")
    assert "token gus-rate-test is limited to 2 model calls a minute" in refused.value.message
    assert re.search(r"retry in (2[0-9]|30) s", refused.value.message), refused.value.message
    with calling_as(Caller("hal-rate-test", per_minute=2)):
        await services.generate("hi", CollectingSink(), model="openai/m")  # another token has its own bucket


def test_a_bucket_refills_evenly_over_the_minute():
    limits = RateLimits()
    assert [limits.take("t", 6, now=100.0) for _ in range(6)] == [0.0] * 6
    assert limits.take("t", 6, now=100.0) == pytest.approx(10.0)  # one call every 10 s
    assert limits.take("t", 6, now=105.0) == pytest.approx(5.0)
    assert limits.take("t", 6, now=110.0) == 0.0
    assert limits.take("t", 6, now=1000.0) == 0.0  # a long pause refills the bucket, never past its size
    assert [limits.take("t", 6, now=1000.0) for _ in range(6)].count(0.0) == 5


async def test_another_tokens_thread_is_as_if_it_did_not_exist(services, llm):
    llm.script("m", Script(tokens=["answer"]))
    with calling_as(ALICE):
        first = await services.generate("question", CollectingSink(), model="openai/m", thread="new")
    with calling_as(BOB), pytest.raises(InvalidArgumentError) as refused:
        await services.generate("more", CollectingSink(), model="openai/m", thread=first.thread)
    assert f"unknown thread {first.thread!r}" in refused.value.message
    with calling_as(BOB), pytest.raises(InvalidArgumentError) as unknown:
        await services.generate("more", CollectingSink(), model="openai/m", thread="t_doesnotexist000")
    assert refused.value.message == unknown.value.message.replace("t_doesnotexist000", first.thread)
    with calling_as(ALICE):
        again = await services.generate("more", CollectingSink(), model="openai/m", thread=first.thread)
    assert again.thread == first.thread
    local = await services.generate("and more", CollectingSink(), model="openai/m", thread=first.thread)
    assert local.thread == first.thread, "the local user (stdio, CLI) keeps today's behaviour"
    chats = [r for r in llm.requests if r.api == "chat"]
    assert len(chats) == 3, "bob's call never reached the upstream"


async def test_another_tokens_run_cannot_be_waited_on_live_or_stored(services, llm):
    llm.script("slow", Script(tokens=[f"t{i} " for i in range(40)], rate=20))  # 2 s of answer
    services.engine.config.limits = Limits(handoff_s=0.5)
    with calling_as(ALICE):
        started = await services.generate("p", CollectingSink(), model="openai/slow")
    assert started.status == "running", "handed off: the run goes on in the background"
    for caller in (BOB, Caller("alice-not", models=None)):
        with calling_as(caller), pytest.raises(InvalidArgumentError) as refused:
            await services.wait(started.run, CollectingSink(), cancel=True)
        assert f"unknown run {started.run!r}" in refused.value.message
    with calling_as(ALICE):
        rest = started
        for _ in range(60):
            rest = await services.wait(started.run, CollectingSink())
            if rest.status != "running":
                break
    assert rest.status == "completed" and rest.text == "".join(f"t{i} " for i in range(40))
    with calling_as(BOB), pytest.raises(InvalidArgumentError):
        await services.wait(started.run, CollectingSink())  # ended: read from the store, still not bob's
    with calling_as(ALICE):
        assert (await services.wait(started.run, CollectingSink())).text == rest.text


def test_a_token_sees_only_its_own_the_local_user_everything():
    assert may_see(None) and may_see("alice")
    with calling_as(ALICE):
        assert may_see("alice") and not may_see("bob") and not may_see(None)


async def test_a_failed_call_under_a_token_is_recorded_as_its_own(services, llm):
    llm.script("cut", Script(tokens=["par", "tial"], end_after=1))
    with calling_as(ALICE), pytest.raises(CallFailed) as failed:
        await services.generate("p", CollectingSink(), model="openai/cut")
    store = await services.engine.memory.store()
    assert (await store.run(failed.value.metadata["run"])).owner_token == "alice"
