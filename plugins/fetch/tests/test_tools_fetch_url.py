"""fetch_url end to end: the real ``streamhost serve`` with streamhost-fetch, a real MCP client, the
loopback web site. Paging is served from the host's document cache, not fetched again."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

from streamhost.testing import Script

pytestmark = pytest.mark.anyio


def _sibling(name: str) -> Any:
    """test_tools_summarize.py, for its environment and server helpers."""
    module = f"streamhost_fetch_{name}"
    if module not in sys.modules:
        spec = importlib.util.spec_from_file_location(module, Path(__file__).with_name(f"{name}.py"))
        assert spec is not None and spec.loader is not None
        sys.modules[module] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[module])
    return sys.modules[module]


tools = _sibling("test_tools_summarize")
llm, make_env, serve, article = tools.llm, tools.make_env, tools.serve, tools.article


async def test_fetch_url_pages_without_fetching_again(site: Any, make_env: Any) -> None:
    url = site.add("/long", article("Paged", 80, "geology"))
    async with serve(make_env()) as served:
        first = await served.session.call_tool("fetch_url", {"url": url, "max_length": 4000},
                                               progress_callback=tools._want_progress)
        statuses = served.statuses()
        total = first.meta["streamhost/total_length"]
        slices = [first]
        while slices[-1].meta["streamhost/next_start_index"] is not None:
            slices.append(await served.session.call_tool("fetch_url", {
                "url": url, "max_length": 4000, "start_index": slices[-1].meta["streamhost/next_start_index"]}))
    assert not any(s.is_error for s in slices)
    assert len(site.requests_for("/long")) == 1, "later slices come from the cache"
    assert len(slices) == -(-total // 4000) >= 3
    content = "".join(s.content[0].text.split("\n\n<note>")[0] for s in slices)
    assert len(content) == total and "Paragraph 80 about geology" in content and "Copyright footer" not in content
    assert "[source 3](" in content, "links are kept"
    assert f"start_index={4000}" in first.content[0].text
    assert first.meta["streamhost/title"] == "Paged" and first.meta["streamhost/final_url"] == url
    assert any(m.startswith("connecting to 127.0.0.1") for m in statuses)
    assert any("extracting the main content" in m for m in statuses)


async def test_fetch_url_refuses_a_redirect_to_a_private_address(site: Any, make_env: Any) -> None:
    url = site.redirect("/jump", "http://169.254.169.254/latest/meta-data/")
    async with serve(make_env()) as served:
        result = await served.session.call_tool("fetch_url", {"url": url})
        after = await served.session.call_tool("fetch_url", {"url": site.add("/ok", article("Fine", 2, "x"))})
    assert result.is_error and "169.254.169.254" in result.content[0].text
    assert not after.is_error and "Paragraph 1 about x" in after.content[0].text



async def test_a_page_without_text_is_explained_and_not_sent_to_the_model(site: Any, llm: Any, make_env: Any) -> None:
    shell = site.add("/app", "<html><head><title>App</title></head><body><div id='root'></div>"
                             "<script>render()</script></body></html>")
    fine = site.add("/fine", article("Fine", 3, "tides"))
    llm.script("sum", Script(tokens=tools.SUMMARY))
    async with serve(make_env()) as served:
        fetched = await served.session.call_tool("fetch_url", {"url": shell})
        summarized = await served.session.call_tool("summarize_urls", {"urls": [shell, fine], "model": "openai/sum"})
    assert not fetched.is_error and fetched.meta["streamhost/total_length"] == 0
    assert fetched.content[0].text == "<note>The page has no text content: it is empty, or its text is written by " \
        "JavaScript, which is not run.</note>"
    empty, summary = summarized.meta["streamhost/results"]
    assert "has no text to summarize" in empty["error"] and "JavaScript" in empty["error"]
    assert f"## [1/2] App\n\n**Error:** {empty['error']}" in summarized.content[0].text
    assert summary["error"] is None and summary["summary"] == "".join(tools.SUMMARY)
    assert len(tools.completions(llm)) == 1, "only the page with text goes to the model"
    assert len(site.requests_for("/app")) == 1, "summarize_urls takes the page from the cache"


async def test_a_page_with_a_lone_surrogate_is_answered_and_the_host_keeps_serving(site: Any, make_env: Any) -> None:
    odd = site.add("/odd.json", b'{"value": "\\ud800", "next": "fine"}', content_type="application/json")
    fine = site.add("/fine", article("Fine", 2, "tides"))
    async with serve(make_env()) as served:
        result = await served.session.call_tool("fetch_url", {"url": odd}, progress_callback=tools._want_progress)
        after = await served.session.call_tool("fetch_url", {"url": fine})
    assert not result.is_error, result.content[0].text
    assert '"value": "\ufffd"' in result.content[0].text and '"next": "fine"' in result.content[0].text
    assert not after.is_error and "Paragraph 1 about tides" in after.content[0].text


async def test_serve_honours_http_proxy_and_keeps_the_guard(site: Any, make_env: Any) -> None:
    from fetch_test_proxy import ForwardProxy

    url = site.add("/via", article("Proxied", 2, "tunnels"))
    with ForwardProxy() as proxy:
        env = {**make_env(), "HTTP_PROXY": proxy.url}
        async with serve(env) as served:
            fetched = await served.session.call_tool("fetch_url", {"url": url}, progress_callback=tools._want_progress)
            refused = await served.session.call_tool("fetch_url", {"url": "http://169.254.169.254/latest/"})
            statuses = served.statuses()
    assert not fetched.is_error and "Paragraph 1 about tunnels" in fetched.content[0].text
    assert refused.is_error and "cloud metadata" in refused.content[0].text
    assert [(r.method, r.target) for r in proxy.requests] == [("GET", f"{site.base_url}/robots.txt"), ("GET", url)]
    assert f"connecting to 127.0.0.1 through the proxy 127.0.0.1:{proxy.port}" in statuses
