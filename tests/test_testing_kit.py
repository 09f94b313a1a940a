"""The plugin author's testing kit: the in-process host, the collecting helpers and the pytest plugin."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from importlib import metadata
from pathlib import Path

import pytest

import streamhost
from streamhost import (
    AuthenticationError,
    CallFailed,
    Document,
    Fetcher,
    FetchRequest,
    GenerationRequest,
    ModelInfo,
    Provider,
    RateLimitError,
    Status,
    StreamError,
    TextDelta,
    Usage,
    hookimpl,
)
from streamhost.testing import (
    LLMTestProvider,
    LLMTestServer,
    Script,
    cancel_call,
    cancel_stream,
    closed_port_url,
    collect_events,
    collect_outcome,
    expect_disconnect,
    fetch_document,
    make_home,
    relay,
    run_host,
    serve,
    streamhost_executable,
)

WORDS = ["one ", "two ", "three ", "four"]


class Counting(Provider):
    """Streams WORDS with a pause, then usage; fails mid-stream when the prompt says so."""

    name = "count"

    def models(self) -> list[ModelInfo]:
        return [ModelInfo(name="up", default=True)]

    async def stream(self, request):
        for i, word in enumerate(WORDS):
            if request.prompt == "fail" and i == 2:
                raise StreamError("count broke after two words")
            yield TextDelta(word)
            await asyncio.sleep(0.02)
        yield Usage(input_tokens=1, output_tokens=len(WORDS))


class CountingPlugin:
    @hookimpl
    def register_providers(self, register):
        register(Counting())


class TwoDocuments(Fetcher):
    name = "twice"
    schemes = ("twice",)

    async def fetch(self, request):
        yield Status("first")
        for _ in range(2):
            yield Document(url=request.url, final_url=request.url, content="x")


@pytest.mark.anyio
async def test_run_host_streams_generate_to_a_real_client_session():
    async with run_host(CountingPlugin()) as host:
        names = [tool.name for tool in await host.tools()]
        call = await host.call("generate", {"prompt": "count", "model": "count/up"})

    assert "generate" in names
    assert not call.is_error, call.text
    assert call.deltas[0] == "one " and len(call.deltas) >= 2  # the first piece at once, the rest coalesced
    assert call.streamed_text == call.text == "".join(WORDS)
    assert call.meta["streamhost/usage"] == {"input_tokens": 1, "output_tokens": 4}
    assert call.structured == {}, "the answer is the text: no structuredContent for a client to prefer"
    progress = [p.progress for p in call.progress]
    assert progress == sorted(set(progress))


@pytest.mark.anyio
async def test_run_host_takes_the_config_as_a_dict_or_toml_text():
    dict_config = {"aliases": {"fast": "count/up"}, "streaming": {"coalesce_ms": 0}}
    toml_config = '[aliases]\nfast = "count/up"\n[streaming]\ncoalesce_ms = 0\n'
    for config in (dict_config, toml_config):
        async with run_host(CountingPlugin(), config=config) as host:
            call = await host.call("generate", {"prompt": "hi", "model": "fast"})
        assert call.meta["streamhost/model"] == "count/up"
        assert call.deltas == WORDS  # coalesce_ms = 0: one notification per piece
        assert host.engine.metrics.enabled is False


@pytest.mark.anyio
async def test_a_failed_call_keeps_the_streamed_text_and_progress_can_be_off():
    async with run_host(CountingPlugin()) as host:
        failed = await host.call("generate", {"prompt": "fail", "model": "count/up"})
        quiet = await host.call("generate", {"prompt": "hi", "model": "count/up"}, progress=False)

    assert failed.is_error
    assert "count broke after two words" in failed.text
    assert failed.meta["streamhost/partial_text"] == failed.streamed_text == "one two "
    assert quiet.progress == [] and quiet.text == "".join(WORDS)


@pytest.mark.anyio
async def test_run_host_loads_only_the_given_plugins_unless_asked():
    async with run_host(CountingPlugin()) as host:
        # the given plugin, and the host's built-in tools (a plugin of their own, always there)
        assert [r.name for r in host.engine.registry.plugins] == ["streamhost", "CountingPlugin-1"]
        assert list(host.engine.registry.providers) == ["count"]


@pytest.mark.anyio
async def test_relay_collects_updates_and_raises_with_the_partial_text():
    request = GenerationRequest(model="up", prompt="count")
    result, sink = await relay(Counting(), request)
    assert sink.text == result.text == "".join(WORDS)
    assert [u.delta for u in sink.updates if u.kind == "text"] == WORDS

    with pytest.raises(CallFailed) as failed:
        await relay(Counting(), GenerationRequest(model="up", prompt="fail"))
    assert failed.value.result.text == "one two "
    assert "count broke" in failed.value.error.message


@pytest.mark.anyio
async def test_collect_events_and_fetch_document_check_the_stream_shape():
    events = await collect_events(Counting().stream(GenerationRequest(model="up", prompt="x")))
    assert [type(e).__name__ for e in events] == ["TextDelta"] * 4 + ["Usage"]

    with pytest.raises(AssertionError, match="exactly one Document"):
        await fetch_document(TwoDocuments(), FetchRequest(url="twice://a"))


def test_the_kit_and_its_pytest_plugin_import_nothing_heavy():
    (entry,) = [ep for ep in metadata.entry_points(group="pytest11") if ep.name == "streamhost"]
    assert entry.value == "streamhost.testing.pytest_plugin"
    probe = textwrap.dedent("""
        import json, os, sys
        before = dict(os.environ)
        import streamhost.testing
        import streamhost.testing.pytest_plugin
        kit = [m for m in sys.modules if m.startswith("streamhost.testing.") and not m.endswith(".pytest_plugin")]
        heavy = [m for m in ("mcp", "mcp_types", "openai", "litellm", "httpx2", *kit) if m in sys.modules]
        print(json.dumps({"heavy": heavy, "env_changed": dict(os.environ) != before}))
    """)
    out = json.loads(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout)
    assert out == {"heavy": [], "env_changed": False}


def test_a_plugin_test_suite_gets_the_fixtures_without_importing_anything(tmp_path):
    (tmp_path / "test_uses_kit.py").write_text(textwrap.dedent("""
        import os
        import pytest
        from streamhost.testing import Script

        pytestmark = pytest.mark.anyio

        @pytest.fixture
        def anyio_backend():
            return "asyncio"

        def test_llm_requires_the_key(streamhost_llm, streamhost_api_key):
            assert streamhost_llm.url.startswith("http://127.0.0.1:")
            assert streamhost_api_key.startswith("sk-")

        def test_home_isolates_the_config(streamhost_home, tmp_path):
            assert os.environ["STREAMHOST_CONFIG"] == str(streamhost_home)
            assert streamhost_home.read_text() == ""

        def test_sink_starts_empty(streamhost_sink):
            assert streamhost_sink.updates == [] and streamhost_sink.text == ""

        async def test_host_factory(streamhost_host):
            async with streamhost_host() as host:
                assert {"generate", "list_models"} <= {t.name for t in await host.tools()}
    """), encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 passed" in done.stdout


class Refusing:
    @hookimpl
    def register_providers(self, register):
        raise RuntimeError("no key file at ~/.refusing")


@pytest.mark.anyio
async def test_run_host_says_at_once_why_a_given_plugin_did_not_load(monkeypatch):
    with pytest.raises(streamhost.PluginError, match=r"Refusing-1 did not load: RuntimeError: no key file"):
        async with run_host(Refusing()):
            pass
    monkeypatch.setenv("STREAMHOST_DISABLE_PLUGINS", "CountingPlugin-1")
    with pytest.raises(streamhost.PluginError, match=r"CountingPlugin-1 did not load: disabled"):
        async with run_host(CountingPlugin()):
            pass


# ---------------------------------------------------------------------------- outcomes, cancelling, serving


class Stalling(Provider):
    """Streams one word, then waits forever; records how the stream ended (or swallows it, if told to)."""

    name = "stall"

    def __init__(self, swallow: type[BaseException] | None = None) -> None:
        super().__init__()
        self.swallow = swallow
        self.ended: list[str] = []

    async def stream(self, request):
        try:
            yield TextDelta("first ")
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            self.ended.append("CancelledError")
            if self.swallow is not asyncio.CancelledError:
                raise
        except GeneratorExit:
            self.ended.append("GeneratorExit")
            if self.swallow is GeneratorExit:
                yield TextDelta("one more")
            raise


class StallingPlugin:
    def __init__(self) -> None:
        self.provider = Stalling()

    @hookimpl
    def register_providers(self, register):
        register(self.provider)


@pytest.mark.anyio
async def test_collect_outcome_keeps_the_events_before_the_error():
    failed = await collect_outcome(Counting().stream(GenerationRequest(model="up", prompt="fail")))
    assert failed.deltas == ["one ", "two "] and failed.text == "one two "
    assert isinstance(failed.error, StreamError) and failed.usages == []
    with pytest.raises(StreamError, match="count broke"):
        failed.unwrap()

    fine = await collect_outcome(Counting().stream(GenerationRequest(model="up", prompt="x")))
    assert fine.error is None and fine.unwrap() is fine and fine.usages[0].output_tokens == 4

    fetched = await collect_outcome(TwoDocuments().fetch(FetchRequest(url="twice://a")))
    assert fetched.statuses == ["first"]
    with pytest.raises(AssertionError, match="exactly one Document"):
        _ = fetched.document


@pytest.mark.anyio
@pytest.mark.parametrize(("how", "seen_by_plugin"), [("cancel", "CancelledError"), ("close", "GeneratorExit")])
async def test_cancel_stream_delivers_what_the_host_delivers(how, seen_by_plugin):
    provider = Stalling()
    cancelled = await cancel_stream(provider.stream(GenerationRequest(model="m", prompt="x")), how=how)
    assert cancelled.text == "first " and provider.ended == [seen_by_plugin]


@pytest.mark.anyio
@pytest.mark.parametrize(("how", "swallowed", "message"), [
    ("cancel", asyncio.CancelledError, "swallowed CancelledError"),
    ("close", GeneratorExit, "went on after it was closed"),
])
async def test_cancel_stream_fails_a_plugin_that_swallows_the_cancellation(how, swallowed, message):
    stream = Stalling(swallow=swallowed).stream(GenerationRequest(model="m", prompt="x"))
    with pytest.raises(AssertionError, match=message):
        await cancel_stream(stream, how=how)


@pytest.mark.anyio
async def test_cancel_call_sends_notifications_cancelled_and_the_host_goes_on():
    plugin = StallingPlugin()
    async with run_host(plugin, CountingPlugin()) as host:
        cancelled = await cancel_call(host, "generate", {"prompt": "x", "model": "stall/m"})
        after = await host.call("generate", {"prompt": "x", "model": "count/up"})
    assert cancelled.text == "first "
    assert plugin.provider.ended == ["CancelledError"], "the host cancels the provider's stream"
    assert after.text == "".join(WORDS)

    async with run_host(CountingPlugin()) as host:
        with pytest.raises(AssertionError, match="finished before it could be cancelled"):
            await cancel_call(host, "generate", {"prompt": "x", "model": "count/up"}, when=lambda progress: False)


@pytest.mark.anyio
async def test_llm_test_provider_streams_from_the_test_server_and_maps_its_errors():
    with LLMTestServer(require_key="sk-kit-1") as llm:
        llm.script("ok", Script(tokens=["Hel", "lo"], usage=(2, 2)))
        llm.script("busy", Script(status=429, retry_after=1.5))
        llm.script("breaks", Script(tokens=["a", "b", "c"], error_after=2))
        llm.script("stalls", Script(tokens=["a", "b"], stall_after=1))
        provider = LLMTestProvider(llm.url, "sk-kit-1")

        async with run_host(provider) as host:
            call = await host.call("generate", {"prompt": "hi", "model": "llmtest/ok"})
        busy = await collect_outcome(provider.stream(GenerationRequest(model="busy", prompt="x")))
        broken = await collect_outcome(provider.stream(GenerationRequest(model="breaks", prompt="x")))
        refused = await collect_outcome(LLMTestProvider(llm.url, "sk-wrong").stream(
            GenerationRequest(model="ok", prompt="x")))
        cancelled = await cancel_stream(provider.stream(GenerationRequest(model="stalls", prompt="x")))
        record = await expect_disconnect(llm, "stalls", since=cancelled.at)

    assert call.text == call.streamed_text == "Hello" and call.meta["streamhost/model"] == "llmtest/ok"
    assert llm.requests[0].body["messages"][-1] == {"role": "user", "content": "hi"}
    assert isinstance(busy.error, RateLimitError) and busy.error.retry_after == 1.5
    assert isinstance(broken.error, StreamError) and broken.text == "ab"
    assert isinstance(refused.error, AuthenticationError)
    assert record.tokens_sent == 1


@pytest.mark.anyio
async def test_expect_disconnect_fails_when_the_client_stayed():
    with LLMTestServer() as llm:
        llm.script("m", Script(tokens=["done"]))
        await collect_outcome(LLMTestProvider(llm.url).stream(GenerationRequest(model="m", prompt="x")))
        with pytest.raises(AssertionError, match="never saw the client of m leave"):
            await expect_disconnect(llm, "m", timeout=0.5)


def test_make_home_isolates_the_child_and_passes_only_what_it_is_given(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-the-machine")
    home = make_home(tmp_path, plugins=["streamhost-openai"], env={"MY_KEY": "k"}, config="[aliases]\n")
    assert home.config.read_text() == "[aliases]\n" and home.write_config("") == home.config
    assert home.env["STREAMHOST_CONFIG"] == str(home.config) and home.env["HOME"] == str(tmp_path)
    assert home.env["STREAMHOST_LOAD_PLUGINS"] == "streamhost-openai" and home.env["MY_KEY"] == "k"
    assert "OPENAI_API_KEY" not in home.env
    assert home.metrics.is_relative_to(tmp_path)
    assert Path(streamhost_executable()).name == "streamhost"
    with pytest.raises(urllib.error.URLError, match="refused"):
        urllib.request.urlopen(closed_port_url("/v1/models"), timeout=10)


@pytest.mark.anyio
async def test_serve_runs_streamhost_serve_for_an_isolated_user_and_records_each_call(tmp_path):
    with LLMTestServer(require_key="sk-kit-2") as llm:
        llm.script("chat", Script(tokens=["one ", "two ", "three"], delay_s=0.05))
        llm.script("stalls", Script(tokens=["one ", "two "], stall_after=1))
        home = make_home(tmp_path, plugins=["streamhost-openai"],
                         env={"OPENAI_API_KEY": "sk-kit-2", "OPENAI_BASE_URL": llm.url},
                         config="[streaming]\ncoalesce_ms = 0\n")
        async with serve(home.env) as served:
            names = {tool.name for tool in await served.tools()}
            call = await served.call("generate", {"prompt": "x", "model": "openai/chat"})
            quiet = await served.call("generate", {"prompt": "x", "model": "openai/chat"}, progress=False)
            cancelled = await cancel_call(served, "generate", {"prompt": "x", "model": "openai/stalls"})
            await expect_disconnect(llm, "stalls", since=cancelled.at)
        assert "generate" in names
        assert call.text == call.streamed_text == "one two three" and call.deltas[0] == "one "
        assert quiet.progress == [] and quiet.text == "one two three"
        assert "".join(served.texts()) == call.text + cancelled.text
        assert served.first_text_at() == served.arrivals[served.progress.index(served.text_progress()[0])]
        assert "streamhost" in served.stderr_text(), "the server's log is kept after it stopped"
