"""summarize_urls and ``streamhost summarize``: ordered streamed sections, prefetch, per-page errors,
map-reduce of long pages, progress with a total, cancellation.

Pages come from the pip-installed test plugin ``streamhost-test-pages`` (``page://NAME?...``); the
model is the openai plugin in front of the test LLM server.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import anyio
import pytest

from streamhost.errors import ConfigError, InvalidArgumentError
from streamhost.host.config import Config, SummarizeSettings, load_config
from streamhost.host.engine import Engine
from streamhost.host.loading import load_plugins
from streamhost.host.sinks import CollectingSink
from streamhost.pages.chunking import estimate_tokens, split_text
from streamhost.pages.composer import Composer
from streamhost.pages.service import PageService
from streamhost.pages.summarize import Summarizer, check_urls
from streamhost.testing import Script

pytestmark = pytest.mark.anyio
STREAMHOST = str(Path(sys.executable).with_name("streamhost"))
LOAD = "streamhost-openai,streamhost-test-pages"
SUMMARY = ["A ", "short ", "summary ", "of ", "the ", "page."]


# The user environment with the test pages plugin, and its fetch log, are test_fetch_url's.
_fetch_url_tests = Path(__file__).with_name("test_fetch_url.py")
_spec = importlib.util.spec_from_file_location("streamhost_tests_test_fetch_url", _fetch_url_tests)
_helpers = sys.modules.setdefault(_spec.name, importlib.util.module_from_spec(_spec))
if not hasattr(_helpers, "pages_env"):
    _spec.loader.exec_module(_helpers)
pages_env, fetch_log, page_text = _helpers.pages_env, _helpers.fetch_log, _helpers.page_text


@pytest.fixture
def make_engine(test_plugins, monkeypatch, home):
    """``make_engine(**summarize_settings)``: an engine with the test pages plugin and the openai plugin."""
    monkeypatch.syspath_prepend(str(test_plugins))
    monkeypatch.setenv("STREAMHOST_LOAD_PLUGINS", LOAD)
    made = []

    def make(**settings):
        config = Config(metrics_enabled=False, summarize=SummarizeSettings(**settings))
        made.append(Engine(config, load_plugins(config)))
        return made[-1]

    yield make


def part_count(test_plugins, name, chars, budget_chars):
    """How many parts the test plugin's page ``name`` splits into for a call budget."""
    return len(split_text(page_text(test_plugins, name, chars), budget_chars))


def prompts(llm, model):
    return [r.body["messages"][-1]["content"] for r in llm.requests if r.model == model]


def check_stream(progress, text, total):
    """Deltas rebuild ``text`` at contiguous offsets; progress strictly increases up to ``total``."""
    texts = [p for p in progress if p.meta and "streamhost/delta" in p.meta]
    assert "".join(p.meta["streamhost/delta"] for p in texts) == text
    assert [p.meta["streamhost/offset"] for p in texts] == [
        sum(len(p.meta["streamhost/delta"]) for p in texts[:i]) for i in range(len(texts))]
    values = [p.progress for p in progress]
    assert all(b > a for a, b in itertools.pairwise(values)), values
    assert all(p.total == total for p in progress) and values[-1] == total and max(values) <= total


async def test_sections_stream_in_order_with_errors_under_their_heading(llm, pages_env, mcp_serve, want_progress):
    llm.script("sum", Script(tokens=SUMMARY, delay_s=0.02))
    urls = ["page://first?delay=0.3&title=First+page", "page://broken?fail=HTTP+404+Not+Found",
            "page://third?title=Third", "ftp://elsewhere/x"]
    async with mcp_serve(pages_env) as served:
        result = await served.session.call_tool("summarize_urls", {"urls": urls, "model": "openai/sum"},
                                                progress_callback=want_progress)
    text = result.content[0].text
    summary = "".join(SUMMARY)
    assert not result.is_error, text
    assert text == (
        f"## [1/4] First page\n\n{summary}\n\n"
        "## [2/4] page://broken?fail=HTTP+404+Not+Found\n\n**Error:** page://broken?fail=HTTP+404+Not+Found: "
        "HTTP 404 Not Found\n\n"
        f"## [3/4] Third\n\n{summary}\n\n"
        "## [4/4] ftp://elsewhere/x\n\n**Error:** no fetcher serves ftp: URLs like ftp://elsewhere/x; "
        "schemes served: page")
    check_stream(served.progress, text, 4)
    statuses = served.statuses()
    assert statuses[0] == "[1/4] fetching page://first?delay=0.3&title=First+page"
    assert "[1/4] connecting to first" in statuses and statuses[-1] == "[4/4] done, 2 failed"
    progress_of = {p.message: p.progress for p in served.progress if not p.meta}
    assert 0 < progress_of["[1/4] connecting to first"] < 1
    meta = {key.removeprefix("streamhost/"): value for key, value in result.meta.items()}
    assert result.structured_content is None, "a client given structuredContent shows it instead of the text"
    assert [(r["url"], r["title"], r["summary"], r["error"]) for r in meta["results"]] == [
        (urls[0], "First page", summary, None),
        (urls[1], None, "", "page://broken?fail=HTTP+404+Not+Found: HTTP 404 Not Found"),
        (urls[2], "Third", summary, None),
        (urls[3], None, "", "no fetcher serves ftp: URLs like ftp://elsewhere/x; schemes served: page")]
    assert meta["model"] == "openai/sum" and meta["error"] is None
    assert meta["usage"]["output_tokens"] == 2 * len(SUMMARY)
    assert 300 <= meta["ttft_ms"] <= meta["duration_ms"]
    assert "First page" in prompts(llm, "sum")[0] and "Sentence 1 of section 1 of first" in prompts(llm, "sum")[0]


async def test_every_page_is_fetched_before_the_first_summary_ends(llm, pages_env, mcp_serve):
    # The first summary streams for 2.5 s; the two rounds of fetches (concurrency 4) take 0.6 s of it.
    llm.script("slow", Script(tokens=SUMMARY, rate=2), Script(tokens=SUMMARY))
    urls = [f"page://p{i}?delay=0.3" for i in range(6)]
    async with mcp_serve(pages_env) as served:
        result = await served.session.call_tool("summarize_urls", {"urls": urls, "model": "openai/slow"})
    assert not result.is_error
    log = fetch_log(pages_env)
    first_summary_end = min(r.ended for r in llm.requests if r.model == "slow")
    starts = [e["t"] for e in log if e["event"] == "start"]
    assert len(starts) == 6 and max(starts) < first_summary_end
    assert max(e["t"] for e in log if e["event"] == "end") < first_summary_end, "fetching hides behind summaries"


async def test_a_long_page_is_mapped_then_reduced_and_only_the_reduce_streams(llm, make_engine, test_plugins):
    engine = make_engine(max_input_tokens=1000, map_concurrency=2)
    parts = part_count(test_plugins, "long", 6000, (1000 - 400) * 4)
    llm.script("mr", *[Script(tokens=["part ", "gist."], delay_s=0.05)] * parts,
               Script(tokens=["The ", "whole ", "page."]))
    sink = CollectingSink()
    result = await Summarizer(engine, PageService(engine)).run(["page://long?chars=6000"], sink, model="openai/mr",
                                                          query="section 2")
    await engine.aclose()
    sent = prompts(llm, "mr")
    maps = [p for p in sent if "of a long web page" in p]
    assert len(maps) == parts >= 3 and len(sent) == parts + 1
    assert all("Focus on what the page says about: section 2" in p for p in sent)
    assert all(estimate_tokens(p) <= 1000 for p in sent)
    assert f"summaries of the {len(maps)} parts" in sent[-1] and sent[-1].count("part gist.") == len(maps)
    assert result.text == sink.text == "## [1/1] Page long\n\nThe whole page."
    assert result.results[0].summary == "The whole page." and result.usage["output_tokens"] == 2 * len(maps) + 3
    assert f"[1/1] long page: summarizing {len(maps)} parts" in sink.statuses
    assert f"[1/1] part {len(maps)}/{len(maps)} summarized" in sink.statuses
    starts = sorted(r.started for r in llm.requests)[: len(maps)]
    ends = sorted(r.ended for r in llm.requests)[: len(maps)]
    assert starts[1] < ends[0] and starts[2] >= ends[0], "two parts at a time (map_concurrency = 2)"


async def test_part_summaries_too_long_for_one_call_are_combined_again(llm, make_engine, test_plugins):
    engine = make_engine(max_input_tokens=1000)
    parts = part_count(test_plugins, "huge", 15000, (1000 - 400) * 4)
    wordy = ["gist " * 120]  # 600 characters each: the part summaries do not fit in one 2,400-character call
    llm.script("rr", *[Script(tokens=wordy)] * parts, Script(tokens=["merged."]))
    sink = CollectingSink()
    result = await Summarizer(engine, PageService(engine)).run(["page://huge?chars=15000"], sink, model="openai/rr")
    await engine.aclose()
    sent = prompts(llm, "rr")
    merges = [p for p in sent if "consecutive parts" in p]
    assert merges and all(estimate_tokens(p) <= 1000 for p in sent)
    assert any(s.startswith("[1/1] combining") and "groups" in s for s in sink.statuses)
    assert len(sent) == parts + len(merges) + 1 and 1 < len(merges) < parts
    assert f"summaries of the {parts} parts" in sent[-1] and sent[-1].count("merged.") == len(merges)
    assert result.text == "## [1/1] Page huge\n\nmerged."


async def test_a_summary_that_breaks_keeps_its_text_and_the_next_page_goes_on(llm, make_engine):
    engine = make_engine()
    llm.script("br", Script(tokens=["half ", "a ", "summary"], error_after=2, error_message="model fell over"),
               Script(tokens=["fine."]))
    sink = CollectingSink()
    result = await Summarizer(engine, PageService(engine)).run(["page://a", "page://b"], sink, model="openai/br")
    await engine.aclose()
    assert result.text == sink.text == ("## [1/2] Page a\n\nhalf a \n\n**Error:** the summary failed: openai/br: "
                                        "the upstream reported an error mid-stream: model fell over\n\n"
                                        "## [2/2] Page b\n\nfine.")
    assert result.results[0].summary == "half a " and "model fell over" in result.results[0].error
    assert result.results[1].error is None and result.error is None


async def test_a_url_given_twice_is_fetched_once(llm, make_engine):
    engine = make_engine()
    llm.script("twice", Script(tokens=["gist."]))
    result = await Summarizer(engine, PageService(engine)).run(["page://same", "page://other", "page://same"],
                                                         CollectingSink(), model="openai/twice")
    await engine.aclose()
    starts = [e["url"] for e in engine.registry.fetchers["pages"].log if e["event"] == "start"]
    assert sorted(starts) == ["page://other", "page://same"]
    assert [r.title for r in result.results] == ["Page same", "Page other", "Page same"]
    assert result.text.count("gist.") == 3


async def test_a_model_error_every_page_would_hit_stops_the_call(llm, pages_env, mcp_serve):
    llm.script("denied", Script(status=401, error_message="bad key"))
    async with mcp_serve(pages_env) as served:
        denied = await served.session.call_tool("summarize_urls", {"urls": ["page://a", "page://b"],
                                                                   "model": "openai/denied"})
        unknown = await served.session.call_tool("summarize_urls", {"urls": ["page://a"], "model": "nope/x"})
        empty = await served.session.call_tool("summarize_urls", {"urls": []})
    assert denied.is_error and "## [1/2] Page a" in denied.content[0].text
    first, second = denied.meta["streamhost/results"]
    assert denied.meta["streamhost/error"] and denied.structured_content is None
    assert first["title"] == "Page a" and "the summary failed: " in first["error"]
    assert f"## [1/2] Page a\n\n**Error:** {first['error']}" in denied.content[0].text
    assert second["title"] is None and second["error"].startswith("not summarized: ")
    assert len([r for r in llm.requests if r.model == "denied"]) == 1
    assert unknown.is_error and "unknown provider prefix 'nope'" in unknown.content[0].text
    assert empty.is_error and "urls must be a list of 1 to 20 URLs" in empty.content[0].text


async def test_streaming_off_sends_statuses_only_and_the_whole_text_at_the_end(llm, home, pages_env, mcp_serve,
                                                                               want_progress):
    home.write_config('[models."openai/quiet"]\nstreaming = false\n')
    llm.script("quiet", Script(tokens=SUMMARY))
    async with mcp_serve(pages_env) as served:
        result = await served.session.call_tool("summarize_urls", {"urls": ["page://a", "page://b?fail=x"],
                                                                   "model": "openai/quiet"},
                                                progress_callback=want_progress)
    assert result.content[0].text.startswith("## [1/2] Page a\n\nA short summary of the page.\n\n## [2/2]")
    assert served.text_progress() == [] and served.statuses()[-1] == "[2/2] done, 1 failed"


async def test_cancel_stops_the_summary_and_the_prefetches(llm, pages_env, mcp_serve, want_progress):
    llm.script("stall", Script(tokens=["one ", "two ", "never"], stall_after=2))
    llm.script("after", Script(tokens=["still here"]))
    urls = ["page://a", *[f"page://slow{i}?delay=30" for i in range(5)]]
    async with mcp_serve(pages_env) as served:
        with anyio.move_on_after(30) as scope:
            async with anyio.create_task_group() as group:
                group.start_soon(lambda: served.session.call_tool(
                    "summarize_urls", {"urls": urls, "model": "openai/stall"}, progress_callback=want_progress))
                while "one " not in "".join(p.meta["streamhost/delta"] for p in served.text_progress()):
                    await anyio.sleep(0.01)
                group.cancel_scope.cancel()
        assert not scope.cancelled_caught
        assert await llm.await_for(lambda rs: any(r.model == "stall" and r.disconnected for r in rs), 30)
        after = await served.session.call_tool("summarize_urls", {"urls": ["page://a"], "model": "openai/after"})
    events = {(e["url"], e["event"]) for e in fetch_log(pages_env)}
    assert {("page://slow0?delay=30", "cancelled"), ("page://slow2?delay=30", "cancelled")} <= events
    assert ("page://slow4?delay=30", "start") not in events, "only 4 fetches at once"
    assert after.content[0].text == "## [1/1] Page a\n\nstill here"


def test_streamhost_summarize_prints_the_sections(llm, pages_env):
    llm.script("cli", Script(tokens=SUMMARY))
    result = subprocess.run([STREAMHOST, "summarize", "page://a", "page://b?fail=gone", "-m", "openai/cli",
                             "-q", "what matters"], env=pages_env, stdin=subprocess.DEVNULL, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 1, "a page failed"
    assert result.stdout == ("## [1/2] Page a\n\nA short summary of the page.\n\n## [2/2] page://b?fail=gone\n\n"
                             "**Error:** page://b?fail=gone: gone\n")
    assert "[[1/2] connecting to a]" in result.stderr and "1/2 pages summarized" in result.stderr
    assert "what matters" in prompts(llm, "cli")[0]
    # Recorded as a run, as the MCP tool's calls are.
    run_id = re.search(r"run (r_\w+)", result.stderr).group(1)
    shown = subprocess.run([STREAMHOST, "runs", "show", run_id, "--json"], env=pages_env, capture_output=True,
                           text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    run = json.loads(shown.stdout)
    assert run["tool"] == "summarize_urls" and run["model"] == "openai/cli"
    assert run["text"].rstrip("\n") == result.stdout.rstrip("\n"), "the terminal shows what the run holds"


def test_ctrl_c_stops_streamhost_summarize_and_its_upstream_request(llm, pages_env):
    llm.script("stall", Script(tokens=["one ", "two ", "never"], stall_after=2))
    process = subprocess.Popen([STREAMHOST, "summarize", "page://a", "page://b?delay=30", "-m", "openai/stall"],
                               env=pages_env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True,
                               # as from a terminal, even when the suite runs as a background job (SIGINT ignored)
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    watchdog = threading.Timer(30, process.kill)  # a blocked read below must not hang the suite
    watchdog.start()
    try:
        shown = ""
        while not shown.endswith("one "):  # the summary is streaming: the text is on the terminal
            char = process.stdout.read(1)
            assert char, f"the command ended early: {shown!r}"
            shown += char
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        watchdog.cancel()
        process.kill()
    assert process.returncode == 130 and "cancelled" in err
    assert shown == "## [1/2] Page a\n\none " and "## [2/2]" not in out
    assert llm.wait_for(lambda rs: any(r.model == "stall" and r.disconnected for r in rs), 30)
    assert ("page://b?delay=30", "cancelled") in {(e["url"], e["event"]) for e in fetch_log(pages_env)}


async def test_the_tail_keeps_the_space_where_a_heading_meets_its_summary():
    sink = CollectingSink()
    composer = Composer(sink)
    for text in ("## [1/1] Page a\n\n", "A summary", " line.\n", "Next"):
        await composer.write(text)
    assert [u.tail for u in sink.updates] == [
        "## [1/1] Page a", "## [1/1] Page a A summary", "## [1/1] Page a A summary line.",
        "## [1/1] Page a A summary line. Next"]
    await composer.write("x" * 500 + "\n\nend")
    assert sink.updates[-1].tail == "x" * 196 + " end"


def test_split_text_keeps_everything_and_prefers_headings():
    text = "".join(f"## Part {i}\n\n" + f"words of part {i}. " * 30 + "\n\n" for i in range(10)) + "x" * 900
    for limit in (250, 700, 2000):
        pieces = split_text(text, limit)
        assert "".join(pieces) == text and all(len(p) <= limit for p in pieces)
    assert all(p.startswith("## Part") for p in split_text(text, 2000)[1:-1])


def test_bad_input_and_config_are_clear_errors(tmp_path):
    with pytest.raises(InvalidArgumentError, match="urls must be non-empty strings"):
        check_urls(["https://a.example", ""])
    with pytest.raises(InvalidArgumentError, match="1 to 20 URLs, got 21: split"):
        check_urls(["https://a.example"] * 21)
    path = tmp_path / "config.toml"
    path.write_text('[summarize]\nconcurrency = 2\nmax_input_tokens_per_model = { "openai/big" = 100000 }\n')
    settings = load_config(path).summarize
    assert settings.concurrency == 2 and settings.budget_for("openai/big") == 100_000
    assert settings.budget_for("openai/other") == 12_000
    path.write_text("[summarize]\nmap_concurrency = 0\n")
    with pytest.raises(ConfigError, match=r"line 2: summarize\.map_concurrency must be a whole number ≥ 1, got 0"):
        load_config(path)
