"""The plugin author's testing kit: the in-process host, the collecting helpers and the pytest plugin."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
from importlib import metadata

import pytest

import streamhost
from streamhost import (
    Document,
    Fetcher,
    FetchRequest,
    GenerationRequest,
    ModelInfo,
    Provider,
    Status,
    StreamError,
    TextDelta,
    Usage,
    hookimpl,
)
from streamhost.host.relay import GenerationFailed
from streamhost.testing import collect_events, fetch_document, relay, run_host

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
        assert [r.name for r in host.engine.registry.plugins] == ["CountingPlugin-1"]
        assert list(host.engine.registry.providers) == ["count"]


@pytest.mark.anyio
async def test_relay_collects_updates_and_raises_with_the_partial_text():
    request = GenerationRequest(model="up", prompt="count")
    result, sink = await relay(Counting(), request)
    assert sink.text == result.text == "".join(WORDS)
    assert [u.delta for u in sink.updates if u.kind == "text"] == WORDS

    with pytest.raises(GenerationFailed) as failed:
        await relay(Counting(), GenerationRequest(model="up", prompt="fail"))
    assert failed.value.result.text == "one two "
    assert "count broke" in failed.value.error.message


@pytest.mark.anyio
async def test_collect_events_and_fetch_document_check_the_stream_shape():
    events = await collect_events(Counting().stream(GenerationRequest(model="up", prompt="x")))
    assert [type(e).__name__ for e in events] == ["TextDelta"] * 4 + ["Usage"]

    with pytest.raises(AssertionError, match="exactly one Document"):
        await fetch_document(TwoDocuments(), FetchRequest(url="twice://a"))


def test_the_pytest_plugin_is_registered_and_imports_nothing_heavy():
    (entry,) = [ep for ep in metadata.entry_points(group="pytest11") if ep.name == "streamhost"]
    assert entry.value == "streamhost.testing.pytest_plugin"
    probe = textwrap.dedent("""
        import json, os, sys
        before = dict(os.environ)
        import streamhost.testing.pytest_plugin
        heavy = [m for m in ("mcp", "openai", "litellm", "httpx2", "streamhost.testing.host") if m in sys.modules]
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
