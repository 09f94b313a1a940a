"""The stdio wire of ``streamhost serve``, spoken to line by line: hostile input, surrogates, cancels,
signals, a client that goes away, and the warm-up order.

A real MCP client cannot send a malformed message nor show what was written after a cancel, so these
tests write raw JSON lines to the server's stdin and read raw lines from its stdout.
"""

from __future__ import annotations

import json
import os
import signal
import time
from typing import Any

import pytest

from streamhost.testing import Script
from tests.raw_client import DEADLINE_S, raw_servers


@pytest.fixture
def raw(home: Any) -> Any:
    with raw_servers(home.env) as start:
        yield start


def _stalls_closed(records: list[Any]) -> bool:
    return any(r.model == "stalls" and r.disconnected for r in records)


def _deep(levels: int) -> str:
    return "[" * levels + "]" * levels


HOSTILE = [  # (what, the line, the id of the answer, its error code, words its message must contain)
    ("params a string", b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":"generate"}',
     1, -32602, "params must be an object"),
    ("params a list", b'{"jsonrpc":"2.0","id":2,"method":"tools/call","params":["generate"]}',
     2, -32602, "params must be an object"),
    ("arguments 300 levels deep", ('{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"generate",'
                                   f'"arguments":{{"prompt":"x","system":{_deep(300)}}}}}}}').encode(),
     3, -32602, "nested 303 levels deep"),
    ("output_schema 250 levels deep", ('{"jsonrpc":"2.0","id":"four","method":"tools/call","params":{"name":'
                                       '"generate","arguments":{"prompt":"x","output_schema":{"a":'
                                       + '{"a":' * 250 + "1" + "}" * 250 + '}}}}').encode(),
     "four", -32602, "nested"),
    ("params deeper than json.loads goes, id last", ('{"jsonrpc":"2.0","method":"tools/call","params":{"a":'
                                                     f'{_deep(50_000)}}},"id":5}}').encode(),
     5, -32602, "nested too deeply"),
    ("method not a string", b'{"jsonrpc":"2.0","id":7,"method":5}', 7, -32600, "method must be a string"),
    ("wrong jsonrpc version", b'{"jsonrpc":"1.0","id":8,"method":"tools/list"}', 8, -32600, "jsonrpc"),
    ("not JSON", b'{"jsonrpc":"2.0","id":9,"method":"tools/list"', None, -32700, "not valid JSON"),
    ("a batch", b'[{"jsonrpc":"2.0","id":10,"method":"tools/list"}]', None, -32600, "batch"),
    ("a boolean id", b'{"jsonrpc":"2.0","id":true,"method":"tools/list"}', None, -32600, "id must be"),
]


@pytest.mark.parametrize("era", ["handshake", "modern"])
def test_every_request_whose_id_can_be_read_gets_an_error_naming_the_problem(raw, era):
    server = raw(era)
    for what, line, request_id, code, words in HOSTILE:
        since = len(server.seen)
        server.send(line)
        error = server.wait_for(what, lambda m, i=request_id: "error" in m and m.get("id") == i, since)["error"]
        assert error["code"] == code, f"{what}: {error}"
        assert words in error["message"], f"{what}: {error['message']}"
        server.still_serves()
    invalid = server.request("tools/call", {"name": 5})  # the SDK's own check: it must say what was wrong
    assert invalid["error"]["code"] == -32602 and "name" in invalid["error"]["message"], invalid


@pytest.mark.parametrize("era", ["handshake", "modern"])
def test_lone_surrogates_in_a_request_are_repaired_where_they_enter(llm, raw, era):
    llm.script("echoes", Script(tokens=None))
    server = raw(era)
    generated = server.request("tools/call", {"name": "generate", "arguments": {
        "prompt": "half \ud800 a pair \ud83d\ude00", "model": "openai/echoes"}, "_meta": {"progressToken": "s"}})
    unknown_tool = server.request("tools/call", {"name": "gen\udfffrate", "arguments": {}})
    unknown_model = server.request("tools/call", {"name": "generate", "arguments": {
        "prompt": "x", "model": "open\ud800ai/x"}})
    server.still_serves()
    assert generated["result"]["content"][0]["text"] == "echo: half \ufffd a pair 😀"
    assert unknown_tool["result"]["isError"] and "gen\ufffdrate" in unknown_tool["result"]["content"][0]["text"]
    assert unknown_model["result"]["isError"] and "open\ufffdai" in unknown_model["result"]["content"][0]["text"]


def test_no_progress_is_written_for_a_request_after_its_cancel_is_read(llm, home, raw):
    # A long coalescing window: the text after the first token sits in the relay when the cancel arrives.
    home.write_config("[streaming]\ncoalesce_ms = 10000\n")
    llm.script("stalls", Script(tokens=["one ", "two ", "three "], stall_after=3))
    server = raw()
    server.send({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": "generate", "arguments": {"prompt": "x", "model": "openai/stalls"}, "_meta": {"progressToken": "c"}}})
    server.wait_for("first text", lambda m: m.get("method") == "notifications/progress")
    assert llm.wait_for(lambda records: any(r.tokens_sent == 3 for r in records), timeout=DEADLINE_S)
    server.send({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1}})
    cancelled = len(server.seen)
    assert llm.wait_for(_stalls_closed, timeout=DEADLINE_S), (
        "the cancel must close the upstream request")
    server.still_serves()
    after = [m for _, m in server.seen[cancelled:] if m.get("method") == "notifications/progress"
             or m.get("id") == 1]
    assert after == [], "nothing may be written for a cancelled request once its cancel is read"


def test_a_call_cancelled_before_its_handler_started_never_reaches_the_upstream(llm, raw):
    llm.script("never", Script(tokens=["must ", "not ", "run"]))
    llm.script("after", Script(tokens=["still ", "here"]))
    server = raw()
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": "generate", "arguments": {"prompt": "x", "model": "openai/never"}, "_meta": {"progressToken": "n"}}}
    cancel = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1}}
    read = len(server.seen)
    server.send(json.dumps(call).encode() + b"\n" + json.dumps(cancel).encode())  # one write: read together
    answer = server.request("tools/call", {"name": "generate", "arguments": {"prompt": "x", "model": "openai/after"}})
    assert answer["result"]["content"][0]["text"] == "still here"
    assert "never" not in [r.model for r in llm.requests], "the cancel was read before the call could start"
    assert [m for _, m in server.seen[read:] if m.get("id") == 1 or m.get("method") == "notifications/progress"] == []


def test_a_lone_surrogate_from_the_upstream_reaches_the_client_repaired(llm, home, raw):
    # A provider that hands the host a lone surrogate (here: the upstream's own JSON escape) must not kill
    # the writer; wherever it gets repaired, the client reads U+FFFD and the host still answers.
    llm.script("odd", Script(tokens=["fine ", "half \ud800 ", "end"]))
    server = raw()
    answer = server.request("tools/call", {"name": "generate", "arguments": {"prompt": "x", "model": "openai/odd"},
                                           "_meta": {"progressToken": "w"}})
    server.still_serves()
    text = answer["result"]["content"][0]["text"]
    assert text.startswith("fine half ") and text.endswith(" end") and "\ufffd" in text, text


def test_a_stop_signal_while_idle_on_a_pipe_ends_the_server(raw):
    for signum in (signal.SIGINT, signal.SIGTERM):
        server = raw()
        server.proc.send_signal(signum)
        assert server.exited_within(10) == 0
        assert "stopping: received " + signum.name in server.stderr_text()


def test_sigint_during_a_call_closes_the_upstream_and_flushes_what_was_answered(llm, raw):
    llm.script("stalls", Script(tokens=["one ", "two "], stall_after=2))
    server = raw()
    server.send({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": "generate", "arguments": {"prompt": "x", "model": "openai/stalls"}, "_meta": {"progressToken": "p"}}})
    server.wait_for("first text", lambda m: m.get("method") == "notifications/progress")
    server.proc.send_signal(signal.SIGINT)
    assert server.exited_within(10) == 0
    assert llm.wait_for(_stalls_closed, timeout=DEADLINE_S)
    answer = server.answer(1)  # the in-flight call is answered before the server goes
    assert answer["error"]["message"] == "Connection closed"


def test_a_client_that_closes_our_stdout_stops_the_server_and_its_calls(llm, raw):
    llm.script("stalls", Script(tokens=["one "], stall_after=1))
    server = raw()
    server.send({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": "generate", "arguments": {"prompt": "x", "model": "openai/stalls"}}})
    assert llm.wait_for(lambda records: any(r.tokens_sent for r in records), timeout=DEADLINE_S)
    server.close_stdout()  # stdin stays open: only the wire back to the client is gone
    assert server.exited_within(10) == 0
    assert llm.wait_for(_stalls_closed, timeout=DEADLINE_S)
    assert "the client closed stdout" in server.stderr_text()


def _import_lines(stderr: str) -> list[str]:
    return [line.rsplit("|", 1)[1].strip() for line in stderr.splitlines()
            if line.startswith("import time:") and line.count("|") == 2]


def test_warm_up_starts_after_the_first_answer_with_the_default_models_provider(llm, home, raw):
    # litellm set up (so it warms too) and listed before openai: the default model's provider goes first.
    home.write_config('default_model = "openai/gpt-4.1-mini"\n[providers.litellm]\napi_base = "http://127.0.0.1:9"\n')
    server = raw(env={**home.env, "PYTHONPROFILEIMPORTTIME": "1"})  # initialize answered, no tools/list sent
    deadline = time.monotonic() + DEADLINE_S * 2
    while time.monotonic() < deadline:
        imported = _import_lines(server.stderr_text())
        if "openai._client" in imported and any(name.startswith("litellm.") for name in imported):
            break
        time.sleep(0.1)
    imported = _import_lines(server.stderr_text())
    assert "openai._client" in imported, "warm-up must start without waiting for tools/list"
    first_litellm = next(i for i, name in enumerate(imported) if name.startswith("litellm."))
    assert imported.index("openai._client") < first_litellm, "the default model's provider warms first"


@pytest.mark.anyio
async def test_the_writer_repairs_a_message_it_cannot_encode_and_goes_on():
    import anyio
    from mcp.shared.message import SessionMessage
    from mcp_types import JSONRPCNotification, JSONRPCResponse

    from streamhost.mcp.calls import Calls
    from streamhost.mcp.wire import StdioWire

    wire_in, client_out = os.pipe()
    client_in, wire_out = os.pipe()
    wire = StdioWire(wire_in, wire_out, Calls())
    async with wire.streams() as (_, write):
        await write.send(SessionMessage(JSONRPCNotification(jsonrpc="2.0", method="notifications/progress", params={
            "progressToken": "t", "progress": 1, "message": "a\ud800b", "_meta": {"streamhost/delta": "\udfff"}})))
        await write.send(SessionMessage(JSONRPCResponse(jsonrpc="2.0", id=1, result={"text": "fine"})))
        with open(client_in, "rb", closefd=False) as reader:
            lines = [await anyio.to_thread.run_sync(reader.readline) for _ in range(2)]
        os.close(client_out)
        await write.aclose()
    progress, answer = (json.loads(line) for line in lines)
    assert progress["params"]["message"] == "a\ufffdb" and progress["params"]["_meta"]["streamhost/delta"] == "\ufffd"
    assert answer == {"jsonrpc": "2.0", "id": 1, "result": {"text": "fine"}}


@pytest.mark.anyio
async def test_the_writer_drops_what_relates_to_a_request_once_its_cancel_is_read():
    import anyio
    from mcp.shared.message import ServerMessageMetadata, SessionMessage
    from mcp_types import JSONRPCNotification, JSONRPCResponse

    from streamhost.mcp.calls import Calls
    from streamhost.mcp.wire import StdioWire

    wire_in, client_out = os.pipe()
    client_in, wire_out = os.pipe()
    wire = StdioWire(wire_in, wire_out, Calls())
    progress = JSONRPCNotification(jsonrpc="2.0", method="notifications/progress",
                                   params={"progressToken": "t", "progress": 2, "message": "late"})
    async with wire.streams() as (read, write):
        os.write(client_out, b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"generate"}}\n'
                             b'{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}}\n')
        # The cancel overtakes the call it cancels (tool calls wait behind everything else).
        got = {(await read.receive()).message.method, (await read.receive()).message.method}
        assert got == {"tools/call", "notifications/cancelled"}
        # What a handler still had in hand when the cancel was read: its progress, and even its answer.
        await write.send(SessionMessage(progress, metadata=ServerMessageMetadata(related_request_id=1)))
        await write.send(SessionMessage(JSONRPCResponse(jsonrpc="2.0", id=1, result={"late": True})))
        await write.send(SessionMessage(JSONRPCResponse(jsonrpc="2.0", id=2, result={"other": True})))
        with open(client_in, "rb", closefd=False) as reader:
            first = json.loads(await anyio.to_thread.run_sync(reader.readline))
        os.close(client_out)
        await write.aclose()
    assert first == {"jsonrpc": "2.0", "id": 2, "result": {"other": True}}


def test_other_plugins_warm_only_once_no_call_is_running(llm, home, raw):
    llm.script("stalls", Script(tokens=["one "], stall_after=1))
    server = raw(env={**home.env, "PYTHONPROFILEIMPORTTIME": "1"})
    server.send({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": "generate", "arguments": {"prompt": "x", "model": "openai/stalls"}, "_meta": {"progressToken": "p"}}})
    server.wait_for("first text", lambda m: m.get("method") == "notifications/progress")
    # A window in which an ungated warm-up imports the fetch plugin's trafilatura (about 1 s here).
    time.sleep(3)
    server.send(b'{"jsonrpc":"2.0","id":"marker","method":5}')  # logs a line: the end of the window
    server.wait_for("the marker's refusal", lambda m: m.get("id") == "marker")
    server.send({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1}})
    deadline = time.monotonic() + DEADLINE_S
    while not any(name.startswith("trafilatura.") for name in _import_lines(server.stderr_text())):
        assert time.monotonic() < deadline, "the fetch plugin must be warmed once the call is over"
        time.sleep(0.1)
    lines = server.stderr_text().splitlines()
    marker = next(i for i, line in enumerate(lines) if "refused request 'marker'" in line)
    first_trafilatura = next(i for i, line in enumerate(lines) if line.startswith("import time:")
                             and line.rsplit("|", 1)[1].strip().startswith("trafilatura."))
    assert first_trafilatura > marker, "nothing but the default model's provider may warm while a call runs"
