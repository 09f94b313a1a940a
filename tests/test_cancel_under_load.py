"""A cancel closes the upstream connection from the thread that reads it, whatever the event loop is doing.

A real ``streamhost serve`` with a real MCP client on its stdio and the real loopback test server. Under 40
streams the cancelled call's upstream closes before its stream would have ended, and the next call on the
same provider works (the shut-down connection is not reused). With the server's event loop frozen by a
third-party tool that blocks it, the upstream closes while the loop is still frozen: only the reader
thread can have closed it (``streamhost.upstream_socket``). No clock is asserted: the order of events is.
"""

from __future__ import annotations

import json
import os
import socket
import textwrap
import threading
from pathlib import Path

import anyio
import pytest

from streamhost.testing import Script, cancel_call, expect_disconnect
from streamhost.upstreams import UpstreamSockets, collect_upstream_sockets, upstream_socket
from tests.conftest import TEST_KEY

pytestmark = pytest.mark.anyio

STREAMS = 40
LOAD_TOKENS = 3000  # at 50 tokens/s: 60 s, longer than the test
LONG_TOKENS = 200  # at 10 tokens/s: 20 s
BLOCK_S = 8.0

BLOCKING_PLUGIN = '''
"""A third-party tool that freezes the event loop (time.sleep on it), to show what works without the loop."""

import json
import os
import time
from typing import ClassVar

from streamhost import Tool, ToolResult, hookimpl


class Freeze(Tool):
    name = "freeze"
    description = "Block the event loop for a while."
    input_schema: ClassVar[dict] = {"type": "object", "properties": {"seconds": {"type": "number"}}}

    async def run(self, arguments, services, sink):
        started = time.monotonic()
        with open(os.environ["STREAMHOST_TEST_FROZEN"], "w") as marker:
            marker.write(str(started))
        time.sleep(arguments["seconds"])  # on purpose: nothing else runs on the loop meanwhile
        return ToolResult(json.dumps({"started": started, "ended": time.monotonic()}))


@hookimpl
def register_tools(register):
    register(Freeze())
'''


def _words(n: int) -> list[str]:
    return [f"w{i} " for i in range(n)]


def _load_running(records: list) -> int:
    return sum(r.model == "load" and r.tokens_sent > 0 and r.ended is None for r in records)


def _blocking_plugin(root: Path) -> Path:
    """A plugin found through its entry point, as pip would install it: a module and its dist-info on a path."""
    site = root / "site"
    (site / "streamhost_test_freeze-1.0.dist-info").mkdir(parents=True)
    (site / "streamhost_test_freeze.py").write_text(textwrap.dedent(BLOCKING_PLUGIN))
    (site / "streamhost_test_freeze-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: streamhost-test-freeze\nVersion: 1.0\n")
    (site / "streamhost_test_freeze-1.0.dist-info" / "entry_points.txt").write_text(
        "[streamhost]\nfreeze = streamhost_test_freeze\n")
    return site


async def test_under_40_streams_a_cancel_closes_the_upstream_and_the_next_call_works(llm, home, mcp_serve):
    llm.script("load", Script(tokens=_words(LOAD_TOKENS), rate=50))
    llm.script("long", Script(tokens=_words(LONG_TOKENS), rate=10))
    llm.script("next", Script(tokens=["still ", "here"]))
    async with mcp_serve(home.env) as served, anyio.create_task_group() as load:
        for _ in range(STREAMS):
            load.start_soon(served.call, "generate", {"prompt": "x", "model": "openai/load"})
        assert await llm.await_for(lambda records: _load_running(records) == STREAMS, timeout=120), (
            "the load streams did not all start")

        cancelled = await cancel_call(served, "generate", {"prompt": "x", "model": "openai/long"}, timeout=120)
        record = await expect_disconnect(llm, "long", timeout=60)
        assert record.disconnected_at is not None and record.disconnected_at >= cancelled.at
        assert record.tokens_sent < LONG_TOKENS, "the upstream ran to its end after the cancel"

        # The same provider, its connection pool and all: a dead connection reused would fail this call.
        after = await served.call("generate", {"prompt": "x", "model": "openai/next"})
        assert not after.is_error, after.text
        assert after.text == "still here"
        assert [r.model for r in llm.requests].count("long") == 1, "a cancelled call was retried"
        assert _load_running(llm.requests) == STREAMS, "the load must still be running for this test to hold"
        load.cancel_scope.cancel()


async def test_a_cancel_closes_the_upstream_while_the_event_loop_is_frozen(llm, home, mcp_serve, tmp_path):
    llm.script("long", Script(tokens=_words(LONG_TOKENS), rate=10))
    llm.script("next", Script(tokens=["still ", "here"]))
    marker = tmp_path / "frozen"
    site = _blocking_plugin(tmp_path)
    env = {**home.env, "STREAMHOST_TEST_FROZEN": str(marker),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(site), home.env.get("PYTHONPATH")]))}
    frozen: list = []

    async def freeze_once_long_streams() -> None:
        assert await llm.await_for(lambda records: any(r.model == "long" and r.tokens_sent >= 2 for r in records),
                                   timeout=60), "the long stream did not start"
        frozen.append(await served.call("freeze", {"seconds": BLOCK_S}))

    async with mcp_serve(env) as served:
        assert "freeze" in {tool.name for tool in await served.tools()}
        async with anyio.create_task_group() as group:
            group.start_soon(freeze_once_long_streams)
            # Sent once the tool has frozen the loop: the server reads it while the loop can do nothing.
            await cancel_call(served, "generate", {"prompt": "x", "model": "openai/long"}, timeout=120,
                              when=lambda progress: marker.exists())
        record = await expect_disconnect(llm, "long", timeout=60)
        times = json.loads(frozen[0].text)
        assert record.disconnected_at is not None
        assert times["started"] < record.disconnected_at < times["ended"], (
            "the upstream was not closed while the event loop was frozen: the cancel waited for the loop")
        after = await served.call("generate", {"prompt": "x", "model": "openai/next"})
        assert after.text == "still here"
        assert [r.model for r in llm.requests].count("long") == 1, "a cancelled call was retried"


def test_a_socket_named_after_the_cancel_is_shut_down_at_once_and_nothing_is_held_after_the_call():
    left, right = socket.socketpair()
    with left, right:
        with collect_upstream_sockets() as sockets:
            assert sockets.shutdown() == 0  # nothing named yet: the cancel came while the request was being sent
            with upstream_socket(left):
                assert right.recv(1) == b""  # the peer sees the connection closed
        assert left.fileno() != -1, "the socket is its owner's to close"
    outside = UpstreamSockets()
    outside.retire()
    a, b = socket.socketpair()
    with a, b:
        assert outside.add(a) is None, "a call that ended holds nothing"
        with upstream_socket(a):  # outside any call: nothing happens
            a.sendall(b"x")
        assert b.recv(1) == b"x"


def test_a_shutdown_from_another_thread_ends_a_blocked_read():
    left, right = socket.socketpair()
    with left, right, collect_upstream_sockets() as sockets, upstream_socket(left):
        got: list[bytes] = []
        reader = threading.Thread(target=lambda: got.append(left.recv(10)))
        reader.start()
        threading.Thread(target=sockets.shutdown).start()
        reader.join(30)
        assert got == [b""], "the read did not end when the connection was shut down"
        assert right.recv(1) == b""


async def _shut_after_two_events(llm, stream, sockets: UpstreamSockets) -> list[str]:
    """Read ``stream``; after its second event shut its sockets down as a cancel would; the errors it ended with."""
    seen, ended = 0, []
    try:
        async for _ in stream:
            seen += 1
            if seen == 2:
                assert sockets.shutdown() == 1, "the response's socket was not named"
                assert await llm.await_for(lambda records: records[-1].disconnected, timeout=30), (
                    "the upstream did not see the connection closed")
    except Exception as exc:  # the read fails on the dead connection (the host cancels the task meanwhile)
        ended.append(type(exc).__name__)
    return ended


@pytest.mark.parametrize("transport", ["aiohttp", "httpx2"])
async def test_the_openai_plugin_names_its_socket_and_never_reuses_it(llm, transport):
    import openai

    from streamhost_openai.chat_events import ChatEvents
    from streamhost_openai.streaming import stream_events
    from streamhost_openai.transport import http_client, transport_name

    llm.script("long", Script(tokens=_words(LONG_TOKENS), rate=20))
    llm.script("next", Script(tokens=["still ", "here"]))
    http = http_client(openai, 30) if transport == "aiohttp" else openai.DefaultAsyncHttpxClient(timeout=30)
    client = openai.AsyncOpenAI(base_url=llm.url, api_key=TEST_KEY, http_client=http, max_retries=0)
    assert transport_name(client) == transport

    def ask(model: str):
        return stream_events(client.chat.completions.with_streaming_response.create(
            model=model, messages=[{"role": "user", "content": "x"}], stream=True), ChatEvents(model), model)

    try:
        with collect_upstream_sockets() as sockets:
            assert await _shut_after_two_events(llm, ask("long"), sockets) == ["APIConnectionError"]
        assert llm.requests[-1].tokens_sent < LONG_TOKENS
        assert [event.text async for event in ask("next")] == ["still ", "here"], "a dead connection was reused"
    finally:
        await client.close()


async def test_the_litellm_plugin_names_its_socket_when_it_reads_the_body_itself(llm):
    from streamhost_litellm import sdk
    from streamhost_litellm.chat_stream import direct_body, read_body
    from streamhost_litellm.errors import CallContext

    litellm = await sdk.load_async()
    llm.script("long", Script(tokens=_words(LONG_TOKENS), rate=20))
    llm.script("next", Script(tokens=["still ", "here"]))
    call = CallContext(label="litellm/openai/long", api_base=llm.url, key_variable=None, key=TEST_KEY)

    async def ask(model: str):
        arguments = {"model": f"openai/{model}", "messages": [{"role": "user", "content": "x"}], "stream": True,
                     "api_base": llm.url, "api_key": TEST_KEY, "max_retries": 0}
        response = await litellm.acompletion(**arguments)
        body = direct_body(response, litellm, arguments)
        assert body is not None, "litellm's wrapper would read this body, not the plugin"
        return response, read_body(body, call, 100)

    with collect_upstream_sockets() as sockets:
        response, events = await ask("long")
        try:
            assert await _shut_after_two_events(llm, events, sockets) == ["StreamError"]
        finally:
            await response.aclose()
    assert llm.requests[-1].tokens_sent < LONG_TOKENS
    response, events = await ask("next")
    try:
        assert [event.text async for event in events] == ["still ", "here"], "a dead connection was reused"
    finally:
        await response.aclose()
