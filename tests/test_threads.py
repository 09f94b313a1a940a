"""Threads over MCP: a follow-up question sends the earlier turns upstream, across models and across a restart
of the server, and every call comes back with its run id."""

from __future__ import annotations

import pytest

from streamhost.testing import Script

pytestmark = pytest.mark.anyio


def _chat_turns(record) -> list[tuple[str, str]]:
    return [(m["role"], m["content"]) for m in record.body["messages"]]


async def test_a_thread_continues_across_models_and_a_restart(llm, home, mcp_serve):
    llm.script("first", Script(tokens=["Paris ", "is the capital."]))
    llm.script("second", Script(tokens=["Agreed: ", "Paris."]))
    llm.script("third", Script(tokens=["About ", "2 million."]))
    async with mcp_serve(home.env) as served:
        one = await served.session.call_tool("generate", {"prompt": "Capital of France?", "model": "openai/first",
                                                          "thread": "new", "system": "Be brief."})
        assert not one.is_error, one.content[0].text
        thread = one.meta["streamhost/thread"]
        assert one.meta["streamhost/run"].startswith("r_")
        two = await served.session.call_tool("generate", {"prompt": "Do you agree?", "model": "openai/second",
                                                          "thread": thread})
        assert not two.is_error, two.content[0].text
        assert two.meta["streamhost/thread"] == thread
        assert two.meta["streamhost/run"] != one.meta["streamhost/run"]
    # A new server process, the same store: the thread is still there.
    async with mcp_serve(home.env) as served:
        three = await served.session.call_tool("generate", {"prompt": "Population?", "model": "openai/third",
                                                            "thread": thread})
        assert not three.is_error, three.content[0].text
    by_model = {record.model: record for record in llm.requests if record.api == "chat"}
    assert _chat_turns(by_model["first"]) == [("system", "Be brief."), ("user", "Capital of France?")]
    assert _chat_turns(by_model["second"]) == [
        ("user", "Capital of France?"), ("assistant", "Paris is the capital."), ("user", "Do you agree?")]
    assert _chat_turns(by_model["third"]) == [
        ("user", "Capital of France?"), ("assistant", "Paris is the capital."),
        ("user", "Do you agree?"), ("assistant", "Agreed: Paris."), ("user", "Population?")]


async def test_an_unknown_thread_is_refused_before_any_request(llm, home, mcp_serve):
    async with mcp_serve(home.env) as served:
        result = await served.session.call_tool("generate", {"prompt": "x", "model": "openai/m",
                                                             "thread": "t_doesnotexist"})
    assert result.is_error
    assert "unknown thread 't_doesnotexist'" in result.content[0].text
    assert not [r for r in llm.requests if r.api == "chat"]


async def test_with_the_store_off_calls_work_and_threads_say_why_not(llm, home, mcp_serve):
    home.write_config("[store]\nenabled = false\n")
    llm.script("m", Script(tokens=["fine"]))
    async with mcp_serve(home.env) as served:
        plain = await served.session.call_tool("generate", {"prompt": "x", "model": "openai/m"})
        threaded = await served.session.call_tool("generate", {"prompt": "x", "model": "openai/m", "thread": "new"})
    assert not plain.is_error and plain.content[0].text == "fine"
    assert "streamhost/run" not in plain.meta
    assert threaded.is_error and "[store] enabled = false" in threaded.content[0].text
    assert not home.store.exists()


async def test_a_failed_call_keeps_its_run_id_and_leaves_the_thread_unchanged(llm, home, mcp_serve):
    llm.script("ok", Script(tokens=["one"]))
    llm.script("cut", Script(tokens=["par", "tial"], end_after=2))
    llm.script("ok2", Script(tokens=["two"]))
    async with mcp_serve(home.env) as served:
        first = await served.session.call_tool("generate", {"prompt": "a", "model": "openai/ok", "thread": "new"})
        thread = first.meta["streamhost/thread"]
        failed = await served.session.call_tool("generate", {"prompt": "b", "model": "openai/cut", "thread": thread})
        again = await served.session.call_tool("generate", {"prompt": "c", "model": "openai/ok2", "thread": thread})
    assert failed.is_error and failed.meta["streamhost/run"].startswith("r_")
    assert "partial" in failed.content[0].text
    assert not again.is_error
    last = [r for r in llm.requests if r.api == "chat"][-1]
    assert _chat_turns(last) == [("user", "a"), ("assistant", "one"), ("user", "c")]
