"""summarize_urls end to end: the real ``streamhost serve`` with streamhost-fetch and streamhost-openai,
driven by a real MCP client over stdio, reading the loopback web site and the test LLM server."""

from __future__ import annotations

import importlib.util
import itertools
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from streamhost.testing import LLMTestServer, Script

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parents[3]
KEY = "sk-test-tools-2b3c4d"
SUMMARY = ["The ", "page ", "in ", "brief."]


def _host_conftest() -> Any:
    """The host suite's ``serve`` (spawns ``streamhost serve`` and opens an MCP client session)."""
    name = "streamhost_host_conftest"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "tests" / "conftest.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


serve = _host_conftest().serve


def article(title: str, paragraphs: int, topic: str) -> str:
    """An HTML article with navigation boilerplate around the main content."""
    body = "".join(
        f"<h2>{topic} part {i}</h2><p>Paragraph {i} about {topic}: the measured value was {i * 7} units, "
        f"as <a href='/source/{i}'>source {i}</a> reports, and nothing else is claimed here. "
        f"It goes on about {topic} for a while so that the paragraph has some length to it.</p>"
        for i in range(1, paragraphs + 1)
    )
    return (f"<html><head><title>{title}</title></head><body><nav><a href='/'>Home</a> | <a href='/x'>More</a></nav>"
            f"<article><h1>{title}</h1>{body}</article><footer>Copyright footer text</footer></body></html>")


@pytest.fixture
def llm() -> Iterator[LLMTestServer]:
    with LLMTestServer(require_key=KEY) as server:
        yield server


@pytest.fixture
def make_env(tmp_path: Path, llm: LLMTestServer) -> Any:
    """``make_env(extra_toml)``: an isolated user whose fetcher may reach the loopback site."""

    def make(extra: str = "") -> dict[str, str]:
        config = tmp_path / "config.toml"
        config.write_text(f'[fetch]\nallow_hosts = ["127.0.0.1"]\n{extra}', encoding="utf-8")
        return {
            "PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "c"),
            "XDG_STATE_HOME": str(tmp_path / "s"), "XDG_CACHE_HOME": str(tmp_path / "cache"),
            "STREAMHOST_CONFIG": str(config), "STREAMHOST_LOAD_PLUGINS": "streamhost-openai,streamhost-fetch",
            "OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": llm.url,
        }

    return make


def completions(llm: LLMTestServer) -> list[Any]:
    """The requests that asked the model for text (the host may also list the server's models)."""
    return [record for record in llm.requests if record.api != "models"]


def check_deltas(progress: list[Any], text: str, total: int) -> None:
    texts = [p for p in progress if p.meta and "streamhost/delta" in p.meta]
    assert "".join(p.meta["streamhost/delta"] for p in texts) == text
    values = [p.progress for p in progress]
    assert all(b > a for a, b in itertools.pairwise(values))
    assert all(p.total == total for p in progress) and values[-1] == total


async def test_pages_in_order_errors_per_page_and_all_fetched_before_the_first_summary_ends(
        site: Any, llm: LLMTestServer, make_env: Any) -> None:
    # The first summary streams for 3 s, against ~0.6 s for both rounds of fetches: a wide margin for
    # "every page started before the first summary ended"; the others are quick.
    llm.script("sum", Script(tokens=SUMMARY, rate=1), Script(tokens=SUMMARY, rate=5))
    paths = ["/one", "/two", "/gone", "/four", "/five", "/six"]
    for number, path in enumerate(paths, 1):
        if path != "/gone":
            site.add(path, article(f"Article {path[1:]}", 4, f"topic {number}"), delay_s=0.3)
    urls = [site.url(path) for path in paths]
    async with serve(make_env()) as served:
        result = await served.session.call_tool("summarize_urls", {"urls": urls, "model": "openai/sum"},
                                                progress_callback=_want_progress)
    text = result.content[0].text
    assert not result.is_error, text
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert headings == ["## [1/6] Article one", "## [2/6] Article two", f"## [3/6] {urls[2]}",
                        "## [4/6] Article four", "## [5/6] Article five", "## [6/6] Article six"]
    assert text.count("The page in brief.") == 5
    gone = result.meta["streamhost/results"][2]
    assert gone["error"] and "404" in gone["error"] and gone["summary"] == ""
    assert f"## [3/6] {urls[2]}\n\n**Error:** {gone['error']}" in text
    check_deltas(served.progress, text, 6)
    assert any(m.startswith("[1/6] connecting to 127.0.0.1") for m in served.statuses())
    first_summary_end = min(r.ended for r in completions(llm))
    page_starts = [r.start for r in site.requests if r.path in paths]
    assert len(page_starts) == 6 and max(page_starts) < first_summary_end
    prompt = completions(llm)[0].body["messages"][-1]["content"]
    assert "Paragraph 1 about topic 1" in prompt and "Copyright footer" not in prompt


async def test_a_long_page_is_summarized_map_reduce(site: Any, llm: LLMTestServer, make_env: Any) -> None:
    llm.script("mr", Script(tokens=["part ", "gist."]))
    url = site.add("/long", article("Long read", 120, "history"))
    async with serve(make_env("[summarize]\nmax_input_tokens = 2000\n")) as served:
        result = await served.session.call_tool("summarize_urls", {"urls": [url], "model": "openai/mr",
                                                                   "query": "part 7"},
                                                progress_callback=_want_progress)
    prompts = [r.body["messages"][-1]["content"] for r in completions(llm)]
    maps = [p for p in prompts if "of a long web page. Summarize this part" in p]
    assert len(maps) >= 3 and len(prompts) == len(maps) + 1 and "summaries of the" in prompts[-1]
    assert all(len(p) <= 2000 * 4 for p in prompts) and all("part 7" in p for p in prompts)
    assert "Paragraph 120 about history" in "".join(maps), "the end of the page is summarized too"
    assert result.content[0].text == "## [1/1] Long read\n\npart gist."
    check_deltas(served.progress, result.content[0].text, 1)
    assert any("long page: summarizing" in m for m in served.statuses())
    assert len(site.requests_for("/long")) == 1


async def _want_progress(progress: float, total: float | None, message: str | None) -> None:
    """Passed as progress_callback so the request carries a progress token."""
