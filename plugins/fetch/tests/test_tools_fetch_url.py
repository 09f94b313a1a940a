"""fetch_url end to end: the real ``streamhost serve`` with only streamhost-fetch, a real MCP client over stdio
(streamhost's testing kit), the loopback web site. Paging is served from the host's document cache, not
fetched again."""

from __future__ import annotations

from typing import Any

import pytest
from fetch_test_site import article

from streamhost.testing import Home, Script, serve

pytestmark = pytest.mark.anyio
SUMMARY = ["The ", "page ", "in ", "brief."]


async def test_fetch_url_pages_without_fetching_again(site: Any, serve_home: Home) -> None:
    url = site.add("/long", article("Paged", 80, "geology"))
    async with serve(serve_home.env) as served:
        first = await served.call("fetch_url", {"url": url, "max_length": 4000})
        total = first.meta["streamhost/total_length"]
        slices = [first]
        while slices[-1].meta["streamhost/next_start_index"] is not None:
            slices.append(await served.call("fetch_url", {
                "url": url, "max_length": 4000, "start_index": slices[-1].meta["streamhost/next_start_index"]}))
    assert not any(s.is_error for s in slices)
    assert len(site.requests_for("/long")) == 1, "later slices come from the cache"
    assert len(slices) == -(-total // 4000) >= 3
    content = "".join(s.text.split("\n\n<note>")[0] for s in slices)
    assert len(content) == total and "Paragraph 80 about geology" in content and "Copyright footer" not in content
    assert "[source 3](" in content, "links are kept"
    assert f"start_index={4000}" in first.text
    assert first.meta["streamhost/title"] == "Paged" and first.meta["streamhost/final_url"] == url
    assert any(m.startswith("connecting to 127.0.0.1") for m in first.statuses)
    assert any("extracting the main content" in m for m in first.statuses)


async def test_fetch_url_refuses_a_redirect_to_a_private_address(site: Any, serve_home: Home) -> None:
    url = site.redirect("/jump", "http://169.254.169.254/latest/meta-data/")
    async with serve(serve_home.env) as served:
        result = await served.call("fetch_url", {"url": url})
        after = await served.call("fetch_url", {"url": site.add("/ok", article("Fine", 2, "x"))})
    assert result.is_error and "169.254.169.254" in result.text
    assert not after.is_error and "Paragraph 1 about x" in after.text


async def test_a_page_without_text_is_explained_and_not_sent_to_the_model(site: Any, llm: Any,
                                                                          host_with_model: Any) -> None:
    shell = site.add("/app", "<html><head><title>App</title></head><body><div id='root'></div>"
                             "<script>render()</script></body></html>")
    fine = site.add("/fine", article("Fine", 3, "tides"))
    llm.script("sum", Script(tokens=SUMMARY))
    async with host_with_model() as host:
        fetched = await host.call("fetch_url", {"url": shell})
        summarized = await host.call("summarize_urls", {"urls": [shell, fine], "model": "llmtest/sum"})
    assert not fetched.is_error and fetched.meta["streamhost/total_length"] == 0
    assert fetched.text == "<note>The page has no text content: it is empty, or its text is written by " \
        "JavaScript, which is not run.</note>"
    empty, summary = summarized.meta["streamhost/results"]
    assert "has no text to summarize" in empty["error"] and "JavaScript" in empty["error"]
    assert f"## [1/2] App\n\n**Error:** {empty['error']}" in summarized.text
    assert summary["error"] is None and summary["summary"] == "".join(SUMMARY)
    assert len(llm.requests) == 1, "only the page with text goes to the model"
    assert len(site.requests_for("/app")) == 1, "summarize_urls takes the page from the cache"


async def test_a_page_with_a_lone_surrogate_is_answered_and_the_host_keeps_serving(site: Any,
                                                                                   serve_home: Home) -> None:
    odd = site.add("/odd.json", b'{"value": "\\ud800", "next": "fine"}', content_type="application/json")
    fine = site.add("/fine", article("Fine", 2, "tides"))
    async with serve(serve_home.env) as served:
        result = await served.call("fetch_url", {"url": odd})
        after = await served.call("fetch_url", {"url": fine})
    assert not result.is_error, result.text
    assert '"value": "\ufffd"' in result.text and '"next": "fine"' in result.text
    assert not after.is_error and "Paragraph 1 about tides" in after.text


async def test_serve_honours_http_proxy_and_keeps_the_guard(site: Any, serve_home: Home) -> None:
    from fetch_test_proxy import ForwardProxy

    url = site.add("/via", article("Proxied", 2, "tunnels"))
    with ForwardProxy() as proxy:
        async with serve({**serve_home.env, "HTTP_PROXY": proxy.url}) as served:
            fetched = await served.call("fetch_url", {"url": url})
            refused = await served.call("fetch_url", {"url": "http://169.254.169.254/latest/"})
    assert not fetched.is_error and "Paragraph 1 about tunnels" in fetched.text
    assert refused.is_error and "cloud metadata" in refused.text
    assert [(r.method, r.target) for r in proxy.requests] == [("GET", f"{site.base_url}/robots.txt"), ("GET", url)]
    assert f"connecting to 127.0.0.1 through the proxy 127.0.0.1:{proxy.port}" in fetched.statuses
