"""The __NAME__ fetcher, on its own and through the host's fetch_url tool.

``streamhost_host`` comes from streamhost's pytest plugin; the rest from its testing kit (``streamhost.testing``).
"""

from __future__ import annotations

import pytest
from streamhost import FetchError, FetchRequest
from streamhost.testing import fetch_document, make_home, serve

import __PACKAGE__
from __PACKAGE__ import __CLASS__Fetcher

pytestmark = pytest.mark.anyio


async def test_a_note_comes_back_as_markdown_after_a_status():
    document, statuses = await fetch_document(__CLASS__Fetcher(), FetchRequest(url="__NAME__://notes/hello"))

    assert document.content.startswith("# Hello\n\n")
    assert document.title == "Hello"
    assert statuses == ["reading note 'hello'"]


async def test_text_format_drops_the_markup():
    document, _ = await fetch_document(__CLASS__Fetcher(),
                                       FetchRequest(url="__NAME__://notes/shopping", format="text"))

    assert document.content == "Shopping\n\nbread\nmilk\ncoffee"


async def test_an_unknown_note_is_a_clear_error():
    with pytest.raises(FetchError, match="no such note; try __NAME__://notes/hello"):
        await fetch_document(__CLASS__Fetcher(), FetchRequest(url="__NAME__://notes/nope"))


async def test_fetch_url_through_the_host(streamhost_host):
    async with streamhost_host(__PACKAGE__) as host:
        call = await host.call("fetch_url", {"url": "__NAME__://notes/hello"})

    assert not call.is_error, call.text
    assert "The first note." in call.text
    assert call.statuses, "fetch_url reports progress while it works"


async def test_fetch_url_over_stdio(tmp_path):
    # The installed plugin in a real `streamhost serve`, with a real MCP client on its stdio, as a user runs it.
    async with serve(make_home(tmp_path, plugins=["__DIST__"]).env) as served:
        call = await served.call("fetch_url", {"url": "__NAME__://notes/shopping", "format": "text"})
        missing = await served.call("fetch_url", {"url": "__NAME__://notes/nope"})

    assert call.text.startswith("Shopping\n\nbread\nmilk\ncoffee"), call.text
    assert "reading note 'shopping'" in call.statuses
    assert missing.is_error and "no such note" in missing.text
