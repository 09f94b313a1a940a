"""robots.txt: RFC 9309 matching, and how the fetcher applies it to assistant-initiated fetches."""

from __future__ import annotations

import time
from typing import Any

import pytest

from streamhost_fetch.robots import RobotsRules, robots_url

ROBOTS = """
# comments and unknown lines are ignored
Sitemap: https://example.org/sitemap.xml

User-agent: *
Disallow: /private/
Allow: /private/press/
Disallow: /*.pdf$
Disallow: /search?

User-agent: streamhost-fetch
User-agent: other-bot
Disallow: /no-assistants/
"""


@pytest.mark.parametrize(
    ("agent", "path", "allowed"),
    [
        ("curious-bot/1.0", "/", True),
        ("curious-bot/1.0", "/private/notes", False),
        ("curious-bot/1.0", "/private/press/release", True),  # the longer Allow wins
        ("curious-bot/1.0", "/files/report.pdf", False),
        ("curious-bot/1.0", "/files/report.pdf?x=1", True),  # `$` anchors the end
        ("curious-bot/1.0", "/search?q=tides", False),
        ("curious-bot/1.0", "/search", True),
        ("curious-bot/1.0", "/robots.txt", True),
        # a group naming the agent replaces `*` for it
        ("streamhost-fetch/0.1.0", "/private/notes", True),
        ("streamhost-fetch/0.1.0", "/no-assistants/page", False),
        ("Other-Bot/3", "/no-assistants/", False),
    ],
)
def test_rfc9309_matching(agent: str, path: str, allowed: bool) -> None:
    assert RobotsRules.parse(ROBOTS).allows(agent, f"https://example.org{path}") is allowed


def test_allow_wins_a_tie_and_empty_disallow_allows() -> None:
    rules = RobotsRules.parse("User-agent: *\nDisallow: /page\nAllow: /page\n\nUser-agent: b\nDisallow:\n")
    assert rules.allows("a", "https://h/page") is True
    assert rules.allows("b", "https://h/anything") is True
    assert RobotsRules().allows("a", "https://h/x") is True


def test_robots_url_is_per_origin() -> None:
    assert robots_url("https://user:pw@example.org:8443/a/b?c#d") == "https://example.org:8443/robots.txt"




@pytest.mark.anyio
async def test_disallowed_page_is_refused_for_assistants_only(stocked_site: Any, fetcher: Any, run_fetch: Any) -> None:
    stocked_site.add("/robots.txt", "User-agent: *\nDisallow: /article\n", content_type="text/plain")
    refused = await run_fetch(fetcher, stocked_site.url("/article"))
    assert refused.document is None
    assert "disallowed by" in str(refused.error) and "robots.txt" in str(refused.error)
    assert not stocked_site.requests_for("/article")  # refused before the page was asked for
    user = await run_fetch(fetcher, stocked_site.url("/article"), model_initiated=False)
    assert "# Life in the tide pools" in user.unwrap().document.content
    allowed = await run_fetch(fetcher, stocked_site.url("/docs"))
    assert "parse_config" in allowed.unwrap().document.content


@pytest.mark.anyio
async def test_robots_can_be_turned_off(stocked_site: Any, make_fetcher: Any, run_fetch: Any) -> None:
    stocked_site.add("/robots.txt", "User-agent: *\nDisallow: /\n", content_type="text/plain")
    outcome = await run_fetch(make_fetcher(robots=False), stocked_site.url("/article"))
    assert outcome.document is not None and not stocked_site.requests_for("/robots.txt")


@pytest.mark.anyio
@pytest.mark.parametrize("status", [500, 503])
async def test_server_error_on_robots_is_not_allow_all(
    stocked_site: Any, fetcher: Any, run_fetch: Any, status: int
) -> None:
    stocked_site.add("/robots.txt", "oops", content_type="text/plain", status=status)
    outcome = await run_fetch(fetcher, stocked_site.url("/article"))
    assert outcome.document is None
    message = str(outcome.error)
    assert message.startswith(f"{stocked_site.url('/article')} was not fetched: its site's robots.txt "
                              f"({stocked_site.url('/robots.txt')}) could not be read (HTTP {status})")
    assert "robots = false" in message
    assert not stocked_site.requests_for("/article")


@pytest.mark.anyio
async def test_missing_robots_allows_everything(stocked_site: Any, fetcher: Any, run_fetch: Any) -> None:
    outcome = await run_fetch(fetcher, stocked_site.url("/article"))  # /robots.txt answers 404
    assert outcome.document is not None and [r.status for r in stocked_site.requests_for("/robots.txt")] == [404]


@pytest.mark.anyio
async def test_slow_robots_times_out_and_refuses(stocked_site: Any, make_fetcher: Any, run_fetch: Any) -> None:
    stocked_site.add("/robots.txt", "User-agent: *\nAllow: /\n", content_type="text/plain", delay_s=30)
    started = time.monotonic()
    outcome = await run_fetch(make_fetcher(robots_timeout_s=0.3), stocked_site.url("/article"))
    assert time.monotonic() - started < 15, "the 0.3 s robots timeout, not the site's 30 s delay, ends the wait"
    message = str(outcome.error)
    assert message.startswith(f"{stocked_site.url('/article')} was not fetched: its site's robots.txt")
    assert "could not be read" in message and "took longer than 0.3 s" in message
    assert "raise [fetch] robots_timeout_s" in message


@pytest.mark.anyio
async def test_robots_is_read_once_per_site(stocked_site: Any, fetcher: Any, run_fetch: Any) -> None:
    stocked_site.add("/robots.txt", "User-agent: *\nDisallow: /private/\n", content_type="text/plain")
    for path in ("/article", "/docs", "/article"):
        assert (await run_fetch(fetcher, stocked_site.url(path))).document is not None
    assert len(stocked_site.requests_for("/robots.txt")) == 1


@pytest.mark.anyio
async def test_robots_redirect_is_followed(stocked_site: Any, fetcher: Any, run_fetch: Any) -> None:
    stocked_site.redirect("/robots.txt", "/real-robots.txt")
    stocked_site.add("/real-robots.txt", "User-agent: *\nDisallow: /docs\n", content_type="text/plain")
    outcome = await run_fetch(fetcher, stocked_site.url("/docs"))
    assert "disallowed by" in str(outcome.error)


@pytest.mark.anyio
async def test_pages_fetched_together_share_one_robots_request(stocked_site: Any, fetcher: Any, run_fetch: Any) -> None:
    import anyio

    stocked_site.add("/robots.txt", "User-agent: *\nDisallow: /private/\n", content_type="text/plain", delay_s=0.2)
    outcomes: list[Any] = []

    async def one(path: str) -> None:
        outcomes.append(await run_fetch(fetcher, stocked_site.url(path)))

    async with anyio.create_task_group() as group:
        for path in ("/article", "/docs", "/article", "/docs"):
            group.start_soon(one, path)
    assert all(outcome.document is not None for outcome in outcomes)
    assert len(stocked_site.requests_for("/robots.txt")) == 1


@pytest.mark.anyio
async def test_a_redirect_to_another_site_obeys_that_sites_robots(
    stocked_site: Any, fetcher: Any, run_fetch: Any
) -> None:
    from fetch_test_site import WebSite

    with WebSite() as other:
        other.add("/robots.txt", "User-agent: *\nDisallow: /closed\n", content_type="text/plain")
        other.add("/closed", "<p>not for robots</p>")
        stocked_site.redirect("/away", other.url("/closed"))
        outcome = await run_fetch(fetcher, stocked_site.url("/away"))
        assert "disallowed by" in str(outcome.error) and other.url("/robots.txt") in str(outcome.error)
        assert [r.path for r in other.requests] == ["/robots.txt"]  # refused before the hop


@pytest.mark.anyio
@pytest.mark.parametrize("model_initiated", [True, False])
async def test_a_host_that_does_not_resolve_is_named_without_blaming_robots(
        make_fetcher: Any, run_fetch: Any, model_initiated: bool) -> None:
    import socket

    async def no_such_name(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")  # what getaddrinfo raises

    fetcher = make_fetcher()
    fetcher.resolver = no_such_name
    outcome = await run_fetch(fetcher, "https://docs.nowhere.example/guide", model_initiated=model_initiated)
    message = str(outcome.error)
    assert message == ("could not fetch https://docs.nowhere.example/guide: the host docs.nowhere.example does not "
                       "resolve (Name or service not known); check the address")
    assert "robots" not in message


@pytest.mark.anyio
async def test_the_system_resolver_failing_is_reported_the_same_way(make_fetcher: Any, run_fetch: Any) -> None:
    # .invalid never resolves (RFC 6761); on a machine with no DNS at all getaddrinfo fails as well
    outcome = await run_fetch(make_fetcher(timeout_s=60), "http://streamhost-test.invalid/page")
    message = str(outcome.error)
    assert message.startswith("could not fetch http://streamhost-test.invalid/page: the host streamhost-test.invalid "
                              "does not resolve (")
    assert "robots" not in message
