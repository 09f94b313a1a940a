"""summarize_urls end to end: the host with streamhost-fetch and a model of the test LLM server, behind a real MCP
client session (streamhost's testing kit, in-process: this suite needs no provider plugin), reading the loopback
web site."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from fetch_test_site import article

from streamhost.testing import LLMTestServer, Script, ToolCall

pytestmark = pytest.mark.anyio
SUMMARY = ["The ", "page ", "in ", "brief."]


def check_deltas(call: ToolCall, total: int) -> None:
    assert call.streamed_text == call.text
    values = [p.progress for p in call.progress]
    assert all(b > a for a, b in itertools.pairwise(values))
    assert all(p.total == total for p in call.progress) and values[-1] == total


async def test_pages_in_order_errors_per_page_and_all_fetched_before_the_first_summary_ends(
        site: Any, llm: LLMTestServer, host_with_model: Any) -> None:
    # The first summary streams for 3 s, against ~0.6 s for both rounds of fetches: a wide margin for
    # "every page started before the first summary ended"; the others are quick.
    llm.script("sum", Script(tokens=SUMMARY, rate=1), Script(tokens=SUMMARY, rate=5))
    paths = ["/one", "/two", "/gone", "/four", "/five", "/six"]
    for number, path in enumerate(paths, 1):
        if path != "/gone":
            site.add(path, article(f"Article {path[1:]}", 4, f"topic {number}"), delay_s=0.3)
    urls = [site.url(path) for path in paths]
    async with host_with_model() as host:
        call = await host.call("summarize_urls", {"urls": urls, "model": "llmtest/sum"})
    assert not call.is_error, call.text
    headings = [line for line in call.text.splitlines() if line.startswith("## ")]
    assert headings == ["## [1/6] Article one", "## [2/6] Article two", f"## [3/6] {urls[2]}",
                        "## [4/6] Article four", "## [5/6] Article five", "## [6/6] Article six"]
    assert call.text.count("The page in brief.") == 5
    gone = call.meta["streamhost/results"][2]
    assert gone["error"] and "404" in gone["error"] and gone["summary"] == ""
    assert f"## [3/6] {urls[2]}\n\n**Error:** {gone['error']}" in call.text
    check_deltas(call, 6)
    assert any(m.startswith("[1/6] connecting to 127.0.0.1") for m in call.statuses)
    first_summary_end = min(r.ended for r in llm.requests)
    page_starts = [r.start for r in site.requests if r.path in paths]
    assert len(page_starts) == 6 and max(page_starts) < first_summary_end
    prompt = llm.requests[0].body["messages"][-1]["content"]
    assert "Paragraph 1 about topic 1" in prompt and "Copyright footer" not in prompt


async def test_a_long_page_is_summarized_map_reduce(site: Any, llm: LLMTestServer, host_with_model: Any) -> None:
    llm.script("mr", Script(tokens=["part ", "gist."]))
    url = site.add("/long", article("Long read", 120, "history"))
    async with host_with_model({"summarize": {"max_input_tokens": 2000}}) as host:
        call = await host.call("summarize_urls", {"urls": [url], "model": "llmtest/mr", "query": "part 7"})
    prompts = [r.body["messages"][-1]["content"] for r in llm.requests]
    maps = [p for p in prompts if "of a long web page. Summarize this part" in p]
    assert len(maps) >= 3 and len(prompts) == len(maps) + 1 and "summaries of the" in prompts[-1]
    assert all(len(p) <= 2000 * 4 for p in prompts) and all("part 7" in p for p in prompts)
    assert "Paragraph 120 about history" in "".join(maps), "the end of the page is summarized too"
    assert call.text == "## [1/1] Long read\n\npart gist."
    check_deltas(call, 1)
    assert any("long page: summarizing" in m for m in call.statuses)
    assert len(site.requests_for("/long")) == 1
