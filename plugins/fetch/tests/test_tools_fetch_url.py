"""fetch_url end to end: the real ``streamhost serve`` with streamhost-fetch, a real MCP client, the
loopback web site. Paging is served from the host's document cache, not fetched again."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

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
        total = first.structured_content["total_length"]
        slices = [first]
        while slices[-1].structured_content["next_start_index"] is not None:
            slices.append(await served.session.call_tool("fetch_url", {
                "url": url, "max_length": 4000, "start_index": slices[-1].structured_content["next_start_index"]}))
    assert not any(s.is_error for s in slices)
    assert len(site.requests_for("/long")) == 1, "later slices come from the cache"
    assert len(slices) == -(-total // 4000) >= 3
    content = "".join(s.content[0].text.split("\n\n<note>")[0] for s in slices)
    assert len(content) == total and "Paragraph 80 about geology" in content and "Copyright footer" not in content
    assert "[source 3](" in content, "links are kept"
    assert f"start_index={4000}" in first.content[0].text
    assert first.structured_content["title"] == "Paged" and first.structured_content["final_url"] == url
    assert any(m.startswith("connecting to 127.0.0.1") for m in statuses)
    assert any("extracting the main content" in m for m in statuses)


async def test_fetch_url_refuses_a_redirect_to_a_private_address(site: Any, make_env: Any) -> None:
    url = site.redirect("/jump", "http://169.254.169.254/latest/meta-data/")
    async with serve(make_env()) as served:
        result = await served.session.call_tool("fetch_url", {"url": url})
        after = await served.session.call_tool("fetch_url", {"url": site.add("/ok", article("Fine", 2, "x"))})
    assert result.is_error and "169.254.169.254" in result.content[0].text
    assert not after.is_error and "Paragraph 1 about x" in after.content[0].text

