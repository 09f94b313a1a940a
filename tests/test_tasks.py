"""MCP tasks over stdio, both protocol eras: a call answered with a task whose run is already in the store,
polled until it completes (its result the call's own), cancelled (recorded cancelled); clients that ask for no
task get a plain result."""

from __future__ import annotations

import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from streamhost.testing import Script
from tests.raw_client import MODERN_META, STREAMHOST, Raw, raw_servers
from tests.test_fetch_url import pages_env  # noqa: F401  (a fixture)

EXTENSION = "io.modelcontextprotocol/tasks"
DECLARES = {"io.modelcontextprotocol/clientCapabilities": {"extensions": {EXTENSION: {}}}}
TOKENS = [f"w{i:03d} " for i in range(40)]
WHOLE = "".join(TOKENS)
DEADLINE_S = 60.0


@pytest.fixture
def raw(home: Any) -> Any:
    with raw_servers(home.env) as start:
        yield start


def _slow(llm: Any, rate: float = 5) -> None:
    llm.script("slow", Script(tokens=TOKENS, rate=rate))  # 8 s of answer at 5 tokens/s


def _run_shown(home: Any, run_id: str) -> str:
    done = subprocess.run([STREAMHOST, "runs", "show", run_id], env=home.env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _stored_status(home: Any, run_id: str) -> str | None:
    """The run's status as the store file has it, read at once (the CLI takes seconds to start)."""
    with sqlite3.connect(home.store) as db:
        row = db.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
    return row[0] if row else None


def _poll(server: Raw, task_id: str, *, modern: bool = False, until: Any = None) -> list[dict[str, Any]]:
    """``tasks/get`` answers until the task has ended (or ``until`` holds for one); all of them, in order."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        answer = server.request("tasks/get", {"taskId": task_id, **({"_meta": DECLARES} if modern else {})})
        assert "result" in answer, answer
        seen.append(answer["result"])
        if (until or (lambda got: got["status"] != "working"))(answer["result"]):
            return seen
        time.sleep(0.2)
    pytest.fail(f"task {task_id} still working after {DEADLINE_S} s: {seen[-1]}")


def _text(result: dict[str, Any]) -> str:
    return "".join(block["text"] for block in result["content"] if block["type"] == "text")


# 2025-11-25: experimental tasks


def test_handshake_era_advertises_tasks_and_task_support_on_the_tools_that_record_runs(raw):
    server = raw()
    opened = server.seen[0][1]["result"]
    assert opened["capabilities"]["tasks"] == {"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}}
    tools = {tool["name"]: tool for tool in server.request("tools/list")["result"]["tools"]}
    assert tools["generate"]["execution"] == {"taskSupport": "optional"}
    assert tools["summarize_urls"]["execution"] == {"taskSupport": "optional"}
    assert "execution" not in tools["list_models"] and "execution" not in tools["wait"]


def test_a_task_is_in_the_store_when_returned_is_polled_and_gives_the_calls_result(llm, home, raw):
    _slow(llm)
    server = raw()
    created = server.request("tools/call", {"name": "generate", "arguments": {"prompt": "p", "model": "openai/slow"},
                                            "task": {"ttl": 60_000}})
    task = created["result"]["task"]
    assert task["status"] == "working" and task["ttl"] == 60_000 and task["pollInterval"] > 0
    assert task["createdAt"].endswith("+00:00") and task["lastUpdatedAt"]
    assert _stored_status(home, task["taskId"]) == "running", "the task's run is in the store already"
    polls = _poll(server, task["taskId"])
    assert polls[-1]["status"] == "completed"
    tails = [got["statusMessage"] for got in polls if got["status"] == "working"]
    assert any(tail.strip() and WHOLE.replace("  ", " ").find(tail.strip()[-8:]) >= 0 for tail in tails), \
        f"a working task shows the tail of its text: {tails}"
    result = server.request("tasks/result", {"taskId": task["taskId"]})["result"]
    assert _text(result) == WHOLE and not result.get("isError")
    assert result["_meta"]["io.modelcontextprotocol/related-task"] == {"taskId": task["taskId"]}
    assert result["_meta"]["streamhost/run"] == task["taskId"]
    listed = server.request("tasks/list")["result"]["tasks"]
    assert [t["taskId"] for t in listed] == [task["taskId"]] and listed[0]["status"] == "completed"
    assert not any(m.get("method") == "notifications/progress" for _, m in server.seen), "no progress in a task"
    assert len([r for r in llm.requests if r.model == "slow"]) == 1


def test_a_summary_can_be_a_task_too(llm, home, raw, pages_env):  # noqa: F811
    llm.script("sum", Script(tokens=TOKENS[:10], rate=5))
    server = raw(env=pages_env)
    created = server.request("tools/call", {"name": "summarize_urls", "task": {},
                                            "arguments": {"urls": ["page://one?title=One"], "model": "openai/sum"}})
    task_id = created["result"]["task"]["taskId"]
    assert _stored_status(home, task_id) == "running"
    result = server.request("tasks/result", {"taskId": task_id})["result"]
    assert _text(result) == "## [1/1] One\n\n" + "".join(TOKENS[:10]), result
    assert server.request("tasks/get", {"taskId": task_id})["result"]["status"] == "completed"


def test_tasks_result_waits_for_the_end(llm, raw):
    _slow(llm)
    server = raw()
    created = server.request("tools/call", {"name": "generate", "arguments": {"prompt": "p", "model": "openai/slow"},
                                            "task": {}})
    task_id = created["result"]["task"]["taskId"]
    result = server.request("tasks/result", {"taskId": task_id})["result"]
    assert _text(result) == WHOLE
    assert server.request("tasks/get", {"taskId": task_id})["result"]["status"] == "completed"


def test_cancelling_a_task_stops_its_call_and_records_the_run_cancelled(llm, home, raw):
    _slow(llm)
    server = raw()
    created = server.request("tools/call", {"name": "generate", "arguments": {"prompt": "p", "model": "openai/slow"},
                                            "task": {"ttl": 60_000}})
    task_id = created["result"]["task"]["taskId"]
    _poll(server, task_id, until=lambda got: got["statusMessage"].strip() not in ("", "working"))
    cancelled = server.request("tasks/cancel", {"taskId": task_id})["result"]
    assert cancelled["status"] == "cancelled" and cancelled["taskId"] == task_id
    assert server.request("tasks/get", {"taskId": task_id})["result"]["status"] == "cancelled"
    assert "cancelled" in _run_shown(home, task_id)
    again = server.request("tasks/cancel", {"taskId": task_id})
    assert again["error"]["code"] == -32602 and "already ended" in again["error"]["message"]
    result = server.request("tasks/result", {"taskId": task_id})["result"]
    assert "was cancelled" in _text(result) and WHOLE.startswith(_text(result).split("\n\n[streamhost:")[0])


def test_a_refused_call_asked_as_a_task_ends_at_once_with_its_error(raw):
    server = raw()
    created = server.request("tools/call", {"name": "generate", "arguments": {"prompt": ""}, "task": {}})
    task = created["result"]["task"]
    assert task["status"] == "failed"
    result = server.request("tasks/result", {"taskId": task["taskId"]})["result"]
    assert result["isError"] and "prompt" in _text(result)


def test_unknown_tasks_are_invalid_params(raw):
    server = raw()
    for method in ("tasks/get", "tasks/result", "tasks/cancel"):
        answer = server.request(method, {"taskId": "r_nosuchrun0000000"})
        assert answer["error"]["code"] == -32602 and "unknown task" in answer["error"]["message"], answer


def test_a_call_without_a_task_is_answered_as_before(llm, raw):
    llm.script("quick", Script(tokens=["fine"]))
    server = raw()
    answer = server.request("tools/call", {"name": "generate", "arguments": {"prompt": "p", "model": "openai/quick"}})
    assert _text(answer["result"]) == "fine" and "task" not in answer["result"]


def test_with_the_store_off_no_tool_takes_tasks(llm, home, raw):
    home.write_config("[store]\nenabled = false\n")
    llm.script("quick", Script(tokens=["fine"]))
    server = raw()
    assert "tasks" not in server.seen[0][1]["result"]["capabilities"]
    tools = server.request("tools/list")["result"]["tools"]
    assert not any("execution" in tool for tool in tools)
    answer = server.request("tools/call", {"name": "generate", "arguments": {"prompt": "p", "model": "openai/quick"},
                                           "task": {}})
    assert _text(answer["result"]) == "fine", "a task asked of a tool without task support: the plain result"


# 2026-07-28: the tasks extension


def test_discover_advertises_the_extension(raw):
    server = raw("modern")
    discovered = server.seen[0][1]["result"]
    assert discovered["capabilities"]["extensions"] == {EXTENSION: {}}
    assert "tasks" not in discovered["capabilities"]


def test_a_long_call_from_a_declaring_client_becomes_a_task_polled_to_its_inline_result(llm, home, raw):
    _slow(llm)
    server = raw("modern")
    created = server.request("tools/call", {"name": "generate", "arguments": {"prompt": "p", "model": "openai/slow"},
                                            "_meta": DECLARES})["result"]
    assert created["resultType"] == "task" and created["status"] == "working"
    assert created["ttlMs"] > 0 and created["pollIntervalMs"] > 0
    assert "io.modelcontextprotocol/serverInfo" in created["_meta"]
    assert _stored_status(home, created["taskId"]) == "running", "the task's run is in the store already"
    polls = _poll(server, created["taskId"], modern=True)
    done = polls[-1]
    assert done["resultType"] == "complete" and done["status"] == "completed"
    assert _text(done["result"]) == WHOLE and done["result"]["_meta"]["streamhost/run"] == created["taskId"]
    assert any(got["statusMessage"] not in ("working", "") for got in polls[:-1]), f"no tail while working: {polls}"
    assert not any(m.get("method") == "notifications/progress" for _, m in server.seen), "no progress in a task"


def test_a_quick_call_from_a_declaring_client_gets_its_plain_result(llm, raw):
    llm.script("quick", Script(tokens=["fine"]))
    server = raw("modern")
    # A first call imports the SDK (a second or more here), so the second one is quick.
    server.request("tools/call", {"name": "generate", "arguments": {"prompt": "p", "model": "openai/quick"}})
    answer = server.request("tools/call", {"name": "generate", "arguments": {"prompt": "p", "model": "openai/quick"},
                                           "_meta": DECLARES})["result"]
    assert answer["resultType"] == "complete" and _text(answer) == "fine"


def test_a_client_that_does_not_declare_the_extension_gets_no_task_and_no_task_methods(llm, raw):
    llm.script("quick", Script(tokens=["fine"]))
    server = raw("modern")
    answer = server.request("tools/call", {"name": "generate", "arguments": {"prompt": "p", "model": "openai/quick"}})
    assert answer["result"]["resultType"] == "complete" and _text(answer["result"]) == "fine"
    refused = server.request("tasks/get", {"taskId": "r_nosuchrun0000000"})
    assert refused["error"]["code"] == -32021
    assert refused["error"]["data"] == {"requiredCapabilities": {"extensions": {EXTENSION: {}}}}


def test_cancel_is_acknowledged_and_the_task_ends_cancelled(llm, home, raw):
    _slow(llm)
    server = raw("modern")
    created = server.request("tools/call", {"name": "generate", "arguments": {"prompt": "p", "model": "openai/slow"},
                                            "_meta": DECLARES})["result"]
    task_id = created["taskId"]
    ack = server.request("tasks/cancel", {"taskId": task_id, "_meta": DECLARES})["result"]
    assert {key: value for key, value in ack.items() if key != "_meta"} == {"resultType": "complete"}
    got = _poll(server, task_id, modern=True)[-1]
    assert got["status"] == "cancelled" and "result" not in got
    assert "cancelled" in _run_shown(home, task_id)
    update = server.request("tasks/update", {"taskId": task_id, "inputResponses": {}, "_meta": DECLARES})
    assert update["result"]["resultType"] == "complete"
    unknown = server.request("tasks/cancel", {"taskId": "r_nosuchrun0000000", "_meta": DECLARES})
    assert unknown["error"]["code"] == -32602


def test_a_task_is_found_in_the_store_by_a_later_server(llm, home, raw):
    _slow(llm, rate=20)
    first = raw("modern")
    created = first.request("tools/call", {"name": "generate", "arguments": {"prompt": "p", "model": "openai/slow"},
                                           "_meta": DECLARES})["result"]
    _poll(first, created["taskId"], modern=True)
    first.close()
    later = raw("modern")
    got = later.request("tasks/get", {"taskId": created["taskId"], "_meta": DECLARES})["result"]
    assert got["status"] == "completed" and _text(got["result"]) == WHOLE
    legacy = raw()
    assert legacy.request("tasks/get", {"taskId": created["taskId"]})["result"]["status"] == "completed"


def test_a_listening_client_is_told_when_its_task_ends(llm, raw):
    _slow(llm, rate=10)
    server = raw("modern")
    created = server.request("tools/call", {"name": "generate", "arguments": {"prompt": "p", "model": "openai/slow"},
                                            "_meta": DECLARES})["result"]
    meta = {**MODERN_META, **DECLARES}
    server.send({"jsonrpc": "2.0", "id": "listen-1", "method": "subscriptions/listen",
                 "params": {"notifications": {"taskIds": [created["taskId"]]}, "_meta": meta}})
    ack = server.wait_for("the ack", lambda m: m.get("method") == "notifications/subscriptions/acknowledged")
    assert ack["params"]["notifications"] == {"taskIds": [created["taskId"]]}
    assert ack["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"] == "listen-1"
    told = server.wait_for("the task's end", lambda m: m.get("method") == "notifications/tasks"
                           and m["params"]["status"] != "working")
    assert told["params"]["taskId"] == created["taskId"] and told["params"]["status"] == "completed"
    assert _text(told["params"]["result"]) == WHOLE
    assert told["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"] == "listen-1"
    server.send({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": "listen-1"}})
    server.still_serves()


def test_listening_for_tasks_needs_the_extension_declared(raw):
    server = raw("modern")
    answer = server.request("subscriptions/listen", {"notifications": {"taskIds": ["r_x"]}})
    assert answer["error"]["code"] == -32021


def test_tasks_list_and_result_are_not_methods_of_the_2026_era(raw):
    server = raw("modern")
    for method in ("tasks/list", "tasks/result"):
        answer = server.request(method, {"taskId": "r_x", "_meta": DECLARES})
        assert answer["error"]["code"] == -32601, answer


def test_the_test_module_uses_the_streamhost_of_this_environment():
    assert Path(STREAMHOST).exists()
