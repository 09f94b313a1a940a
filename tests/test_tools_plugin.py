"""Tools contributed by plugins: a third party's tool, really pip-installed, called over MCP from a real client
with its text streamed; a tool named like a built-in one loses to it unless ``[plugins] prefer`` chooses it;
the built-in tools use only the public API."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path
from typing import ClassVar

import pytest

import streamhost
from streamhost import StreamError, TextDelta, Tool, hookimpl
from streamhost.testing import run_host

pytestmark = pytest.mark.anyio
STREAMHOST = str(Path(sys.executable).with_name("streamhost"))
TOOLS = "streamhost-test-tools"
BUILTIN_TOOLS = Path(streamhost.__file__).parent / "builtin_tools"


@pytest.fixture
def tools_env(home, test_plugins):
    """The isolated user's environment with the openai plugin and the test tools plugin."""
    return {**home.env, "PYTHONPATH": str(test_plugins), "STREAMHOST_LOAD_PLUGINS": f"streamhost-openai,{TOOLS}"}


@pytest.fixture
def colliding_env(tools_env):
    """As ``tools_env``, with the test tools plugin also registering a tool named ``generate``."""
    return {**tools_env, "STREAMHOST_TEST_TOOLS_COLLIDE": "1"}


async def test_a_third_party_tool_is_listed_and_streams_over_mcp(tools_env, mcp_serve, want_progress):
    async with mcp_serve(tools_env) as served:
        tools = {tool.name: tool for tool in (await served.session.list_tools()).tools}
        result = await served.session.call_tool("spell", {"word": "streaming", "delay": 0.2},
                                                progress_callback=want_progress)
    assert list(tools) == ["generate", "list_models", "wait", "spell"], "the built-in tools first, then the plugins'"
    spell = tools["spell"]
    assert spell.description == "Spell a word, one letter at a time, streamed as it goes."
    assert spell.input_schema["properties"]["word"]["maxLength"] == 100 and spell.input_schema["required"] == ["word"]
    assert spell.annotations.read_only_hint and spell.annotations.idempotent_hint
    assert spell.annotations.open_world_hint is None, "a hint the tool did not give is not invented"
    assert not result.is_error, result.content[0].text
    assert result.content[0].text == "s-t-r-e-a-m-i-n-g" and result.structured_content is None
    assert result.meta["streamhost/letters"] == 9 and result.meta["streamhost/usage"] == {"output_tokens": 9}
    texts = served.text_progress()
    assert "".join(p.meta["streamhost/delta"] for p in texts) == result.content[0].text
    assert [p.meta["streamhost/offset"] for p in texts] == [
        sum(len(p.meta["streamhost/delta"]) for p in texts[:i]) for i in range(len(texts))]
    # At least one notification per 0.5 s (the widest a window grows when the loop lags, as a loaded machine's does).
    assert len(texts) >= 3, "the letters arrive in many notifications, not at the end"
    # The letters are written over 1.6 s (8 gaps of 0.2 s): arriving as written, they span well over half of it.
    spread = served.arrivals[served.progress.index(texts[-1])] - served.arrivals[served.progress.index(texts[0])]
    assert spread > 0.8
    assert "spelling 9 letters" in served.statuses()
    progress = [p.progress for p in served.progress]
    assert progress == sorted(progress) and len(set(progress)) == len(progress)


async def test_the_host_checks_a_third_party_tools_arguments_before_it_runs(tools_env, mcp_serve):
    async with mcp_serve(tools_env) as served:
        long = await served.session.call_tool("spell", {"word": "x" * 101})
        slow = await served.session.call_tool("spell", {"word": "x", "delay": 9})
        odd = await served.session.call_tool("spell", {"word": "x", "colour": "red"})
        empty = await served.session.call_tool("spell", {"word": ""})
        fine = await served.session.call_tool("spell", {"word": "ok"})
    assert long.is_error and long.content[0].text == "spell: word is 101 characters long; the limit is 100. Shorten it."
    assert slow.is_error and slow.content[0].text == "delay must be a number from 0 to 5, got 9"
    assert odd.is_error and odd.content[0].text == "spell: unknown argument 'colour'; it takes word, delay"
    assert empty.is_error and empty.content[0].text == "word must be a non-empty string, got ''", "its own check"
    assert all(r.meta == {"streamhost/error_type": "InvalidArgumentError"} for r in (long, slow, odd, empty))
    assert not fine.is_error and fine.content[0].text == "o-k"


def run_cli(env, *args):
    return subprocess.run([STREAMHOST, *args], env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=60)


def test_streamhost_plugins_shows_the_tools_and_the_collision_with_a_built_in(colliding_env):
    result = run_cli(colliding_env, "plugins", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    records = {record["name"]: record for record in data["plugins"]}
    assert records["streamhost"]["tools"] == ["generate", "list_models", "fetch_url", "summarize_urls", "wait"]
    assert records["streamhost"]["hooks"] == ["register_tools"] and records["streamhost"]["error"] is None
    assert records[TOOLS]["tools"] == ["spell"] and records[TOOLS]["error"] is None
    assert records[TOOLS]["notes"] == [
        "tool 'generate' not registered: streamhost serves it (bundled plugins win over third-party ones)"]
    (collision,) = [c for c in data["collisions"] if c["name"] == "generate"]
    assert (collision["kind"], collision["serves"], collision["refused"], collision["preferred"]) == (
        "tool", "streamhost", [TOOLS], False)
    assert collision["message"] in data["warnings"]
    assert f'prefer = {{ generate = "{TOOLS}" }}' in collision["message"]
    table = run_cli(colliding_env, "plugins")
    assert table.returncode == 0 and "tool spell" in table.stdout and "tool generate" in table.stdout


async def test_plugins_prefer_gives_a_built_in_tools_name_to_a_third_party(home, colliding_env, mcp_serve):
    async with mcp_serve(colliding_env) as served:
        builtin = await served.session.call_tool("generate", {"prompt": "x", "model": "nope/x"})
    home.write_config(f'[plugins]\nprefer = {{ generate = "{TOOLS}" }}\n')
    async with mcp_serve(colliding_env) as served:
        chosen = await served.session.call_tool("generate", {"prompt": "x"})
        names = [tool.name for tool in (await served.session.list_tools()).tools]
    assert builtin.is_error and "unknown provider prefix 'nope'" in builtin.content[0].text
    assert not chosen.is_error and chosen.content[0].text == "the third party's generate answered"
    assert chosen.meta == {"streamhost/impostor": True}
    assert names == ["generate", "list_models", "wait", "spell"], "listed where the built-in tool was"
    stderr = served.stderr_text()
    assert "registered by" not in stderr, "a name given by [plugins] prefer is not a warning"


def test_the_built_in_tools_use_only_the_public_api():
    public = set(streamhost.__all__)
    modules = sorted(BUILTIN_TOOLS.glob("*.py"))
    assert {path.name for path in modules} >= {"__init__.py", "models.py", "pages.py"}
    for path in modules:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                outside = [a.name for a in node.names if a.name.split(".")[0] == "streamhost"]
                assert not outside, f"{path.name} imports {outside}: use `from streamhost import NAME`"
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module.split(".")[0] == "streamhost":
                assert node.module == "streamhost", f"{path.name} imports from {node.module}, not the public API"
                names = {alias.name for alias in node.names}
                assert names <= public, f"{path.name} imports {sorted(names - public)}, not in streamhost.__all__"
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                assert node.module.split(".")[0] in sys.stdlib_module_names, f"{path.name} imports {node.module}"


class Faulty(Tool):
    """Fails in the way its ``how`` argument names: the host turns each into an error result and goes on."""

    name = "faulty"
    input_schema: ClassVar[dict] = {"type": "object", "properties": {"how": {"type": "string"}}, "required": ["how"]}

    async def run(self, arguments, services, sink):
        how = arguments["how"]

        async def broken():
            yield TextDelta("half ")
            yield TextDelta("a text")
            if how == "stream":
                raise StreamError("the source broke mid-stream")
            raise KeyError("oops")

        if how in ("stream", "stream-bug"):
            await services.stream(broken, sink, label="faulty source")
        if how == "bug":
            raise ZeroDivisionError("division by zero")
        return "not a result"


class Unlistable(Tool):
    name = "unlistable"

    def description_for(self, services):
        raise RuntimeError("cannot describe myself")


class FaultyPlugin:
    @hookimpl
    def register_tools(self, register):
        register(Faulty())
        register(Unlistable())


async def test_a_tools_failures_are_error_results_and_the_host_goes_on():
    async with run_host(FaultyPlugin(), config={"streaming": {"coalesce_ms": 0}}) as host:
        names = [tool.name for tool in await host.tools()]
        stream = await host.call("faulty", {"how": "stream"})
        bug_in_stream = await host.call("faulty", {"how": "stream-bug"})
        bug = await host.call("faulty", {"how": "bug"})
        wrong = await host.call("faulty", {"how": "nothing"})
        unknown = await host.call("unlistable", {})
        after = await host.call("list_models", {})
    assert names == ["generate", "list_models", "wait", "faulty"], "a tool that cannot be listed is left out, alone"
    assert stream.is_error and stream.text == ("the source broke mid-stream\n\n"
                                               "Partial output before the error (11 characters):\nhalf a text")
    assert stream.streamed_text == "half a text" == stream.meta["streamhost/partial_text"]
    assert stream.meta["streamhost/error_type"] == "StreamError"
    assert bug_in_stream.is_error and bug_in_stream.text.startswith(
        "faulty source failed: KeyError: 'oops' (a bug in the tool's plugin?)")
    assert bug.is_error and bug.text == "faulty failed unexpectedly: ZeroDivisionError: division by zero"
    assert wrong.is_error and wrong.text == "faulty returned str, not a ToolResult (a bug in its plugin)"
    assert unknown.is_error and unknown.text.startswith("unknown tool 'unlistable'; tools: generate, list_models")
    assert not after.is_error
