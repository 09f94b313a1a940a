"""Size cap, gzip bombs, the overall deadline, and charsets that are wrong or missing."""

from __future__ import annotations

import gzip
import time
import tracemalloc
from typing import Any

import pytest

pytestmark = pytest.mark.anyio

FRENCH = ("Le café du coin sert un thé à la menthe très sucré. Les habitués, un peu naïfs, "
          "disent «c’est le meilleur de la ville» — et ils ont peut-être raison. ") * 6
RUSSIAN = ("Съешь же ещё этих мягких французских булок, да выпей чаю. Широкая электрификация "
           "южных губерний даст мощный толчок подъёму сельского хозяйства. ") * 6
POLISH = "Zażółć gęślą jaźń. Pchnąć w tę łódź jeża lub ośm skrzyń fig. " * 6


async def test_huge_page_is_cut_at_max_bytes(site: Any, make_fetcher: Any, run_fetch: Any) -> None:
    line = "<p>" + "lorem ipsum dolor sit amet " * 10 + "</p>\n"
    url = site.add("/huge", "<html><body>" + line * 25_000 + "</body></html>")  # ≈ 7 MB
    outcome = await run_fetch(make_fetcher(), url, format="raw")
    doc = outcome.unwrap().document
    assert doc.truncated is True
    assert doc.metadata["bytes"] == 5_000_000 and len(doc.content) == 5_000_000
    assert "max_bytes" in doc.metadata["note"]
    assert any("(cut at max_bytes)" in status for status in outcome.statuses)


async def test_cut_page_still_extracts(site: Any, make_fetcher: Any, run_fetch: Any) -> None:
    paragraphs = "".join(f"<p>Paragraph {i}: " + "the tide comes in and out. " * 8 + "</p>" for i in range(400))
    url = site.add("/long", f"<html><body><article><h1>Tides</h1>{paragraphs}</article></body></html>")
    doc = (await run_fetch(make_fetcher(max_bytes=20_000), url)).unwrap().document
    assert doc.truncated is True and doc.metadata["bytes"] == 20_000
    assert doc.content.startswith("# Tides") and "Paragraph 3:" in doc.content and "Paragraph 399" not in doc.content


async def test_cut_in_the_middle_of_a_character_drops_only_that_character(
    site: Any, make_fetcher: Any, run_fetch: Any
) -> None:
    url = site.add("/e", "é" * 1000, content_type="text/plain; charset=utf-8")
    doc = (await run_fetch(make_fetcher(max_bytes=1001), url)).unwrap().document
    assert doc.content == "é" * 500 and doc.truncated is True


async def test_gzip_bomb_stays_bounded(site: Any, make_fetcher: Any, run_fetch: Any) -> None:
    bomb = gzip.compress(b" " * 200_000_000, compresslevel=9)  # 200 MB of spaces in ≈ 200 KB
    assert len(bomb) < 1_000_000
    url = site.add("/bomb", bomb, content_type="text/plain", headers={"Content-Encoding": "gzip"})
    tracemalloc.start()
    try:
        started = time.monotonic()
        doc = (await run_fetch(make_fetcher(), url)).unwrap().document
        elapsed = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert doc.truncated is True and doc.metadata["bytes"] == 5_000_000
    assert peak < 40_000_000, f"peak {peak / 1e6:.0f} MB while reading a bomb capped at 5 MB"
    assert elapsed < 10


async def test_slow_server_hits_the_overall_deadline(site: Any, make_fetcher: Any, run_fetch: Any) -> None:
    url = site.add("/slow", "<p>late</p>", delay_s=30)
    started = time.monotonic()
    outcome = await run_fetch(make_fetcher(timeout_s=0.5), url)
    elapsed = time.monotonic() - started
    assert outcome.document is None and "took longer than 0.5 s" in str(outcome.error)
    assert "timeout_s" in str(outcome.error)
    assert 0.45 < elapsed < 15, "the 0.5 s deadline, not the site's 30 s delay, ends the fetch"


async def test_stalled_transfer_hits_the_deadline(site: Any, make_fetcher: Any, run_fetch: Any) -> None:
    url = site.add("/stall", "<p>" + "x" * 100_000 + "</p>", stall_after=1000, stall_s=30)
    started = time.monotonic()
    outcome = await run_fetch(make_fetcher(timeout_s=1), url)
    assert "took longer than 1 s" in str(outcome.error) and time.monotonic() - started < 15  # the stall is 30 s


async def test_dripping_server_is_bounded_by_the_whole_fetch_not_each_read(
    site: Any, make_fetcher: Any, run_fetch: Any
) -> None:
    # every read returns within 0.1 s, so a per-read timeout alone would wait the full 30 s
    url = site.add("/drip", "y" * 30_000, content_type="text/plain", chunk_size=100, chunk_delay_s=0.1)
    started = time.monotonic()
    # 3 s: most of it spent reading, however long a loaded machine takes to connect
    outcome = await run_fetch(make_fetcher(timeout_s=3, robots=False), url)
    elapsed = time.monotonic() - started
    assert "took longer than 3 s (reading the page)" in str(outcome.error)
    assert elapsed < 20
    received = [status for status in outcome.statuses if status.endswith(" received")]
    # throttled to one every 0.25 s (at most 13 in 3 s), not one per 100-byte read (~30)
    assert 2 <= len(received) <= 13, received


@pytest.mark.parametrize(
    ("body", "content_type", "expected", "codec"),
    [
        # the header says UTF-8, the bytes are Windows-1252: detection wins
        (FRENCH.encode("cp1252"), "text/plain; charset=utf-8", FRENCH, None),
        # no charset anywhere: detection
        (RUSSIAN.encode("cp1251"), "text/plain", RUSSIAN, None),
        # a Latin-1 label on a UTF-8 body (a server default): the bytes win
        (FRENCH.encode("utf-8"), "text/plain; charset=iso-8859-1", FRENCH, "utf-8"),
        # a correct non-UTF-8 label is honoured
        (POLISH.encode("iso-8859-2"), "text/plain; charset=iso-8859-2", POLISH, "iso8859-2"),
        # an unknown label falls back to the bytes
        (POLISH.encode("utf-8"), "text/plain; charset=no-such-charset", POLISH, "utf-8"),
    ],
)
async def test_charsets(
    site: Any, fetcher: Any, run_fetch: Any, body: bytes, content_type: str, expected: str, codec: str | None
) -> None:
    doc = (await run_fetch(fetcher, site.add("/t", body, content_type=content_type))).unwrap().document
    assert doc.content == expected
    if codec:
        assert doc.metadata["charset"] == codec


async def test_html_meta_charset_is_used_when_the_header_has_none(site: Any, fetcher: Any, run_fetch: Any) -> None:
    html = f'<html><head><meta charset="iso-8859-2"><title>Łódź</title></head><body><p>{POLISH}</p></body></html>'
    url = site.add("/pl", html.encode("iso-8859-2"), content_type="text/html")
    raw = (await run_fetch(fetcher, url, format="raw")).unwrap().document
    assert POLISH in raw.content and raw.metadata["charset"] == "iso8859-2"
    doc = (await run_fetch(fetcher, url)).unwrap().document
    assert "Zażółć gęślą jaźń." in doc.content


async def test_utf8_bom_is_honoured(site: Any, fetcher: Any, run_fetch: Any) -> None:
    url = site.add("/bom", "\ufeff" + POLISH, content_type="text/plain; charset=iso-8859-1")
    assert (await run_fetch(fetcher, url)).unwrap().document.content == POLISH
