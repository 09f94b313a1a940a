"""The http fetcher against the real loopback site: formats, content types, status errors, redirects."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

pytestmark = pytest.mark.anyio


async def test_article_becomes_main_content_markdown(stocked_site: Any, fetcher: Any, run_fetch: Any) -> None:
    outcome = await run_fetch(fetcher, stocked_site.url("/article"))
    doc = outcome.unwrap().document
    assert doc.content.startswith("# Life in the tide pools")
    assert "## Who lives there" in doc.content
    # links are kept, made absolute against the page's URL
    assert f"[green anemone]({stocked_site.url('/species/anemone')})" in doc.content
    assert "[the visitor guide](https://coast.example/guide)" in doc.content
    assert "- Limpets seal themselves to the rock." in doc.content
    for boilerplate in ("Subscribe to Coastal Notes", "All rights reserved", "Archive"):
        assert boilerplate not in doc.content
    assert doc.title == "Life in the tide pools"
    assert doc.content_type == "text/html" and doc.truncated is False
    assert doc.final_url == doc.url == stocked_site.url("/article")
    assert doc.metadata["extractor"] == "trafilatura" and doc.metadata["status"] == 200


async def test_relative_links_resolve_against_the_page_not_the_site_root(
    site: Any, fetcher: Any, run_fetch: Any
) -> None:
    words = "A paragraph long enough to count as the main content of this page. " * 12
    url = site.add("/guide/part/page.html", f"""<html><head><title>Guide</title></head><body><article>
        <h1>Guide</h1><p>{words}</p>
        <p>{words} Read <a href="next.html">the next page</a>, <a href="../index.html">the index</a>
        and <a href="#setup">the set-up section</a>.</p></article></body></html>""", content_type="text/html")
    doc = (await run_fetch(fetcher, url)).unwrap().document
    assert f"[the next page]({site.url('/guide/part/next.html')})" in doc.content
    assert f"[the index]({site.url('/guide/index.html')})" in doc.content
    assert f"[the set-up section]({url}#setup)" in doc.content


async def test_docs_page_keeps_code_fences_and_tables(stocked_site: Any, fetcher: Any, run_fetch: Any) -> None:
    doc = (await run_fetch(fetcher, stocked_site.url("/docs"))).unwrap().document
    assert "```" in doc.content
    fence = doc.content.split("```")[1]
    assert 'settings = parse_config("widgets.toml")\nprint(settings.colour)' in fence
    assert "| key | type | default |" in doc.content.replace("| \n", "|\n")
    assert "| colour | string | blue |" in doc.content
    assert "Install" not in doc.content  # the sidebar is boilerplate


async def test_statuses_come_in_order_before_one_document(stocked_site: Any, fetcher: Any, run_fetch: Any) -> None:
    outcome = await run_fetch(fetcher, stocked_site.url("/docs"))
    steps = outcome.statuses
    assert steps[0].startswith("checking ") and steps[0].endswith("/robots.txt")
    assert steps[1] == "connecting to 127.0.0.1"
    assert steps[-2] == f"127.0.0.1: {outcome.unwrap().document.metadata['bytes']} bytes received"
    assert steps[-1].startswith("extracting")
    larger = await run_fetch(fetcher, stocked_site.add("/notes.txt", "notes " * 1000, content_type="text/plain"))
    assert larger.statuses[-1] == "127.0.0.1: 5 KB received"


async def test_text_and_raw_formats(stocked_site: Any, fetcher: Any, run_fetch: Any) -> None:
    text = (await run_fetch(fetcher, stocked_site.url("/docs"), format="text")).unwrap().document
    raw = (await run_fetch(fetcher, stocked_site.url("/docs"), format="raw")).unwrap().document
    assert "parse_config" in text.content and "```" not in text.content and "](" not in text.content
    assert raw.content.startswith("<!doctype html>") and '<table>' in raw.content
    assert raw.metadata["extractor"] == "raw"


async def test_unknown_format_is_refused(stocked_site: Any, fetcher: Any, run_fetch: Any) -> None:
    outcome = await run_fetch(fetcher, stocked_site.url("/docs"), format="pdf")
    assert outcome.error is not None and "'pdf' is not one of markdown, text, raw" in str(outcome.error)


@pytest.mark.parametrize(
    ("content_type", "body", "expected"),
    [
        ("text/plain; charset=utf-8", "line one\n  line two\n", "line one\n  line two\n"),
        ("text/markdown", "# Title\n\n- a\n- b\n", "# Title\n\n- a\n- b\n"),
        ("application/json", '{"b":[1,2],"a":"é"}', '{\n  "b": [\n    1,\n    2\n  ],\n  "a": "é"\n}'),
        ("application/problem+json", '{"title":"x"}', '{\n  "title": "x"\n}'),
    ],
)
async def test_text_markdown_and_json_pass_through(
    site: Any, fetcher: Any, run_fetch: Any, content_type: str, body: str, expected: str
) -> None:
    doc = (await run_fetch(fetcher, site.add("/x", body, content_type=content_type))).unwrap().document
    assert doc.content == expected
    assert doc.content_type == content_type.split(";")[0]


async def test_other_types_are_refused_naming_the_type(site: Any, fetcher: Any, run_fetch: Any) -> None:
    url = site.add("/logo.png", b"\x89PNG\r\n\x1a\n" + bytes(2000), content_type="image/png")
    outcome = await run_fetch(fetcher, url)
    assert outcome.document is None
    assert "image/png" in str(outcome.error) and "HTML, plain text, markdown and JSON" in str(outcome.error)


async def test_missing_content_type_is_sniffed(site: Any, fetcher: Any, run_fetch: Any) -> None:
    html_url = site.add("/page", "<html><body><article><h1>Sniffed</h1><p>" + "word " * 80 + "</p></article>"
                        "</body></html>", content_type=None)
    json_url = site.add("/data", '{"ok": true}', content_type=None)
    binary_url = site.add("/blob", bytes(range(256)) * 8, content_type=None)
    html = (await run_fetch(fetcher, html_url)).unwrap().document
    assert html.content_type == "text/html" and "# Sniffed" in html.content
    assert (await run_fetch(fetcher, json_url)).unwrap().document.content == '{\n  "ok": true\n}'
    assert "looks binary" in str((await run_fetch(fetcher, binary_url)).error)


@pytest.mark.parametrize(("status", "words"), [(404, "does not exist"), (500, "try again later"),
                                               (403, "login"), (429, "rate limiting")])
async def test_status_errors_are_clear(site: Any, fetcher: Any, run_fetch: Any, status: int, words: str) -> None:
    url = site.add("/e", "<h1>nope</h1>", status=status)
    outcome = await run_fetch(fetcher, url)
    assert outcome.document is None
    assert f"{url} answered HTTP {status}" in str(outcome.error) and words in str(outcome.error)


async def test_redirects_are_followed_and_recorded(stocked_site: Any, fetcher: Any, run_fetch: Any) -> None:
    stocked_site.redirect("/old", "/older", status=301)
    stocked_site.redirect("/older", stocked_site.url("/article"), status=307)
    doc = (await run_fetch(fetcher, stocked_site.url("/old"))).unwrap().document
    assert doc.url == stocked_site.url("/old") and doc.final_url == stocked_site.url("/article")
    assert doc.metadata["redirects"] == [stocked_site.url("/older"), stocked_site.url("/article")]
    assert "# Life in the tide pools" in doc.content


async def test_more_than_five_redirects_is_an_error(site: Any, fetcher: Any, run_fetch: Any) -> None:
    for hop in range(7):
        site.redirect(f"/r{hop}", f"/r{hop + 1}")
    site.add("/r7", "<p>end</p>")
    outcome = await run_fetch(fetcher, site.url("/r0"))
    assert "redirected more than 5 times" in str(outcome.error)
    assert [r.path for r in site.requests_for("/r5")] and not site.requests_for("/r6")


@pytest.mark.parametrize(
    ("location", "scheme"),
    [("data:text/html,<h1>Injected</h1>", "data"), ("data:text/plain;base64,aGk=", "data"),
     ("file:///etc/passwd", "file"), ("ftp://127.0.0.1/x", "ftp"), ("javascript:alert(1)", "javascript"),
     ("gopher://127.0.0.1:70/", "gopher")],
)
async def test_a_redirect_to_another_scheme_is_an_error_naming_it(
        site: Any, fetcher: Any, run_fetch: Any, location: str, scheme: str) -> None:
    site.redirect("/jump", location)
    for model_initiated in (True, False):
        outcome = await run_fetch(fetcher, site.url("/jump"), model_initiated=model_initiated)
        assert outcome.document is None, "a redirect that is not followed is not an (empty) page"
        message = str(outcome.error)
        assert message.startswith(f"{site.url('/jump')} redirected to a {scheme}: URL (")
        assert "only http:// and https:// pages are fetched" in message


async def test_a_redirect_to_no_valid_url_is_an_error(site: Any, fetcher: Any, run_fetch: Any) -> None:
    site.redirect("/jump", "http://[::1")
    outcome = await run_fetch(fetcher, site.url("/jump"))
    assert outcome.document is None and "redirected to 'http://[::1', which is not a valid" in str(outcome.error)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://127.0.0.1/x", "gopher://127.0.0.1:70/", "/just/a/path"])
async def test_non_http_urls_are_refused(fetcher: Any, run_fetch: Any, url: str) -> None:
    outcome = await run_fetch(fetcher, url)
    assert outcome.document is None and "only http:// and https://" in str(outcome.error)


async def test_page_without_main_content_falls_back_to_its_text(
        site: Any, fetcher: Any, run_fetch: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    # a cookie wall: everything is in the footer, which trafilatura drops as boilerplate
    url = site.add("/wall", "<html><head><title>Consent</title><style>p {color: red}</style></head><body>"
                   "<footer><p>This site uses cookies.</p><button>Accept all</button> "
                   "<a href='/privacy'>Privacy policy</a></footer>"
                   "<script>showBanner()</script></body></html>")
    doc = (await run_fetch(fetcher, url)).unwrap().document
    assert doc.metadata["extractor"] == "fallback"
    assert doc.content == "This site uses cookies.\nAccept all\nPrivacy policy"
    assert doc.title == "Consent"
    empty = (await run_fetch(fetcher, site.add("/empty", "", content_type="text/html"))).unwrap().document
    assert empty.content == "" and empty.metadata["extractor"] == "fallback"
    assert [r.getMessage() for r in caplog.records if r.name.startswith("trafilatura")] == []


async def test_user_agent_is_configurable(stocked_site: Any, make_fetcher: Any, run_fetch: Any) -> None:
    fetcher = make_fetcher(user_agent="research-bot/2.0 (+contact@example.org)")
    await run_fetch(fetcher, stocked_site.url("/article"))
    agents = {record.headers["user-agent"] for record in stocked_site.requests}
    assert agents == {"research-bot/2.0 (+contact@example.org)"}


async def test_default_user_agent_names_the_plugin(stocked_site: Any, fetcher: Any, run_fetch: Any) -> None:
    await run_fetch(fetcher, stocked_site.url("/article"))
    assert stocked_site.requests[-1].headers["user-agent"].startswith("streamhost-fetch/")


def test_bad_options_raise_config_errors_naming_the_key(make_fetcher: Any) -> None:
    from streamhost import ConfigError

    for options, key in [({"max_bytes": 0}, "fetch.max_bytes"), ({"timeout_s": "soon"}, "fetch.timeout_s"),
                         ({"robots": "yes"}, "fetch.robots"), ({"allow_hosts": "127.0.0.1"}, "fetch.allow_hosts"),
                         ({"user_agent": "a\nb"}, "fetch.user_agent")]:
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            make_fetcher(**options)


def test_an_unknown_key_is_ignored_and_the_known_ones_are_declared_for_the_host(make_fetcher: Any) -> None:
    # The host warns about keys no fetcher declares (file, line, close match): tests/test_loading.py.
    fetcher = make_fetcher(allow_host=["10.0.0.1"])
    assert fetcher.settings.allow_hosts == ("127.0.0.1",)
    declared = {option.name for option in fetcher.declared_options}
    assert {"allow_hosts", "allow_private", "max_bytes", "timeout_s", "robots"} <= declared
    assert "allow_host" not in declared and "allow_host" not in fetcher.options


async def test_json_format_raw_keeps_the_body(site: Any, fetcher: Any, run_fetch: Any) -> None:
    url = site.add("/d.json", '{"a":1}', content_type="application/json")
    doc = (await run_fetch(fetcher, url, format="raw")).unwrap().document
    assert doc.content == '{"a":1}' and json.loads(doc.content) == {"a": 1}


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [('{"value": "\\ud800", "pair": "\\ud83d\\ude00"}', "application/json", '"value": "\ufffd"'),
     ('{"value": "\\udfff"}', None, '"value": "\ufffd"'),
     ("a+2AA-b", "text/plain; charset=utf-7", "a\ufffdb")],
)
async def test_a_lone_surrogate_in_a_page_becomes_a_replacement_character(
        site: Any, fetcher: Any, run_fetch: Any, body: str, content_type: str | None, expected: str) -> None:
    url = site.add("/odd", body.encode("ascii"), content_type=content_type)
    docs = {output: (await run_fetch(fetcher, url, format=output)).unwrap().document
            for output in ("markdown", "text", "raw")}
    for output, doc in docs.items():
        doc.content.encode("utf-8")  # what the MCP writer does; a lone surrogate raises here
        if output != "raw" or "utf-7" in (content_type or ""):  # raw JSON keeps its escapes as written
            assert expected in doc.content
    if "pair" in body:
        assert '"pair": "\U0001f600"' in docs["markdown"].content, "an escaped pair is the character it encodes"
