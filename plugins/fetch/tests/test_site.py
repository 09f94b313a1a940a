"""The test web site itself: pages, redirects, delays and the request log behave as the other tests assume."""

from __future__ import annotations

import time
from typing import Any

import anyio
import httpx2
import pytest


@pytest.mark.anyio
async def test_pages_status_redirect_and_log(site: Any) -> None:
    site.add("/a", "<p>hé</p>", content_type="text/html; charset=utf-8")
    site.redirect("/old", "/a", status=301)
    async with httpx2.AsyncClient(trust_env=False) as client:
        ok = await client.get(site.url("/a"))
        moved = await client.get(site.url("/old"))
        missing = await client.get(site.url("/nope?x=1"))
    assert ok.status_code == 200 and ok.text == "<p>hé</p>"
    assert moved.status_code == 301 and moved.headers["location"] == "/a"
    assert missing.status_code == 404
    assert [r.path for r in site.requests] == ["/a", "/old", "/nope?x=1"]
    [record] = site.requests_for("/nope")
    assert record.status == 404 and record.end is not None and record.end >= record.start


@pytest.mark.anyio
async def test_delay_is_logged_with_monotonic_times(site: Any) -> None:
    site.add("/slow", "late", content_type="text/plain", delay_s=0.2)
    before = time.monotonic()
    async with httpx2.AsyncClient(trust_env=False) as client:
        response = await client.get(site.url("/slow"))
    after = time.monotonic()
    assert response.text == "late"
    [record] = site.requests_for("/slow")
    # The server thread stamps ``end`` just after its last write, which the client may read first.
    deadline = time.monotonic() + 30
    while record.end is None and time.monotonic() < deadline:
        await anyio.sleep(0.01)
    assert record.end is not None, "the request never finished in the log"
    assert before <= record.start < record.end
    assert record.start <= after and record.duration is not None and record.duration >= 0.2
