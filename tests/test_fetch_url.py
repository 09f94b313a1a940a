"""fetch_url and ``streamhost fetch``: the fetcher picked by URL, statuses as progress, paging from a cache.

The pages come from the pip-installed test plugin ``streamhost-test-pages`` (``page://NAME?...``),
which logs every fetch; the end-to-end tests with the real http fetcher live in plugins/fetch/tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from streamhost.builtin_tools.slices import slice_of
from streamhost.errors import FetchError, InvalidArgumentError
from streamhost.host.config import Config
from streamhost.host.engine import Engine
from streamhost.host.loading import load_plugins
from streamhost.host.sinks import CollectingSink
from streamhost.pages.service import DocumentCache, PageService

pytestmark = pytest.mark.anyio
STREAMHOST = str(Path(sys.executable).with_name("streamhost"))
LOAD = "streamhost-openai,streamhost-test-pages"


@pytest.fixture
def pages_env(home, test_plugins, tmp_path):
    """The isolated user's environment with the test pages plugin installed; fetches are logged."""
    return {**home.env, "PYTHONPATH": str(test_plugins), "STREAMHOST_LOAD_PLUGINS": LOAD,
            "STREAMHOST_TEST_PAGES_LOG": str(tmp_path / "fetches.jsonl")}


def fetch_log(env):
    path = Path(env["STREAMHOST_TEST_PAGES_LOG"])
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def page_text(test_plugins, name, chars):
    """What the test plugin serves for ``page://NAME?chars=N``, from the installed plugin itself."""
    sys.path.insert(0, str(test_plugins))
    try:
        import streamhost_test_pages
    finally:
        sys.path.remove(str(test_plugins))
    return streamhost_test_pages.content_of(name, chars)



@pytest.fixture
def engine(test_plugins, monkeypatch, home):
    monkeypatch.syspath_prepend(str(test_plugins))
    monkeypatch.setenv("STREAMHOST_LOAD_PLUGINS", LOAD)
    config = Config(metrics_enabled=False)
    return Engine(config, load_plugins(config))


async def test_fetch_url_pages_a_long_document_from_one_fetch(pages_env, mcp_serve, want_progress, test_plugins):
    url = "page://long?chars=25000&delay=0.2"
    async with mcp_serve(pages_env) as served:
        first = await served.session.call_tool("fetch_url", {"url": url, "max_length": 10_000},
                                               progress_callback=want_progress)
        statuses = served.statuses()
        second = await served.session.call_tool("fetch_url", {"url": url, "max_length": 10_000,
                                                              "start_index": 10_000})
        last = await served.session.call_tool("fetch_url", {"url": url, "max_length": 10_000,
                                                            "start_index": 20_000})
    expected = page_text(test_plugins, "long", 25_000)
    pieces = [r.content[0].text for r in (first, second, last)]
    assert not any(r.is_error for r in (first, second, last)), pieces
    assert pieces[0].startswith(expected[:10_000]) and "start_index=10000" in pieces[0]
    assert "start_index=20000" in pieces[1] and pieces[2] == expected[20_000:]
    assert "".join(p[:10_000] for p in pieces) == expected
    assert [r.meta["streamhost/next_start_index"] for r in (first, second, last)] == [10_000, 20_000, None]
    assert first.meta == {f"streamhost/{key}": value for key, value in {
        "url": url, "final_url": url, "title": "Page long", "content_type": "text/markdown", "truncated": False,
        "start_index": 0, "next_start_index": 10_000, "total_length": 25_000}.items()}
    assert first.structured_content is None, "a client given structuredContent shows it instead of the page"
    assert [e["event"] for e in fetch_log(pages_env)] == ["start", "end"], "later slices come from the cache"
    assert "connecting to long" in statuses and "received 25000 bytes" in statuses


async def test_the_page_tools_are_listed_only_when_they_can_work(pages_env, mcp_serve):
    async def names(load):
        async with mcp_serve({**pages_env, "STREAMHOST_LOAD_PLUGINS": load}) as served:
            return {tool.name for tool in (await served.session.list_tools()).tools}

    assert await names(LOAD) == {"generate", "list_models", "fetch_url", "summarize_urls", "wait"}
    assert await names("streamhost-openai") == {"generate", "list_models", "wait"}
    assert await names("streamhost-test-pages") == {"generate", "list_models", "fetch_url", "wait"}


@pytest.mark.parametrize(("arguments", "message"), [
    ({"url": "gopher://x/1"}, "no fetcher serves gopher: URLs like gopher://x/1; schemes served: page"),
    ({"url": "https://example.com/"}, "pip install streamhost-fetch"),
    ({"url": "no-scheme"}, "is not an absolute URL"),
    ({"url": "page://p?fail=the+site+said+no"}, "page://p?fail=the+site+said+no: the site said no"),
    ({"url": "page://p?crash=1"}, "RuntimeError: the test plugin crashed on purpose (a bug in fetcher 'pages'?)"),
    ({"url": "page://p", "format": "pdf"}, "format must be one of markdown, text, raw, got 'pdf'"),
    ({"url": "page://p", "max_length": 0}, "max_length must be a whole number from 1 to 1000000, got 0"),
    ({"url": "page://p", "start_index": 400}, "start_index 400 is past the end of the page (400 characters)"),
])
async def test_fetch_url_errors_say_what_to_do(pages_env, mcp_serve, arguments, message):
    async with mcp_serve(pages_env) as served:
        result = await served.session.call_tool("fetch_url", arguments)
        after = await served.session.call_tool("fetch_url", {"url": "page://still-up"})
    assert result.is_error and message in result.content[0].text
    assert not after.is_error and "still-up section 1" in after.content[0].text, "the host stays up"


async def test_the_cache_expires_and_keeps_formats_apart(engine, monkeypatch):
    now = [1000.0]  # the cache's clock, moved by the test: a slow machine cannot expire an entry early
    monkeypatch.setattr("streamhost.pages.service.time", SimpleNamespace(monotonic=lambda: now[0]))
    pages = PageService(engine, DocumentCache(ttl_s=1.0, entries=2))
    fetcher = engine.registry.fetchers["pages"]
    sink = CollectingSink()
    first = await pages.fetch("page://a", sink)
    assert await pages.fetch("page://a", sink) is first
    text = await pages.fetch("page://a", sink, format="text")
    assert text.metadata["format"] == "text" and first.metadata["format"] == "markdown"
    await pages.fetch("page://b", sink)  # the cache holds 2: "a" as markdown, the oldest, goes
    assert await pages.fetch("page://a", sink) is not first
    now[0] += 0.9
    await pages.fetch("page://b", sink)  # 0.9 s old: still fresh
    now[0] += 0.15
    await pages.fetch("page://b", sink)  # 1.05 s old: fetched again
    starts = [e["url"] for e in fetcher.log if e["event"] == "start"]
    assert starts == ["page://a", "page://a", "page://b", "page://a", "page://b"]
    assert sink.statuses.count("connecting to a") == 3


async def test_fetch_errors_name_the_url(engine):
    pages = PageService(engine)
    with pytest.raises(FetchError, match="page://x\\?fail=gone: gone"):
        await pages.fetch("page://x?fail=gone", CollectingSink())
    with pytest.raises(InvalidArgumentError, match="past the end"):
        slice_of(await pages.fetch("page://x", CollectingSink()), start_index=10_000)


def run_cli(env, *args):
    return subprocess.run([STREAMHOST, *args], env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=60)


def test_streamhost_fetch_prints_the_page(pages_env, test_plugins):
    result = run_cli(pages_env, "fetch", "page://cli?chars=3000&title=The+CLI+page")
    assert result.returncode == 0, result.stderr
    assert result.stdout == page_text(test_plugins, "cli", 3000) + "\n"
    assert "[connecting to cli]" in result.stderr and "The CLI page" in result.stderr
    raw = run_cli(pages_env, "fetch", "--format", "raw", "page://cli?chars=50")
    assert raw.returncode == 0 and raw.stdout == page_text(test_plugins, "cli", 50) + "\n"


def test_streamhost_fetch_failures(pages_env):
    failed = run_cli(pages_env, "fetch", "page://x?fail=nope")
    assert failed.returncode == 1 and "page://x?fail=nope: nope" in failed.stderr and failed.stdout == ""
    bare = run_cli({**pages_env, "STREAMHOST_LOAD_PLUGINS": "streamhost-openai"}, "fetch", "https://example.com")
    assert bare.returncode == 1 and "no fetcher plugin is installed" in bare.stderr
    assert "pip install streamhost-fetch" in bare.stderr
