"""HTML to the main content as markdown or plain text, with trafilatura (imported on first use)."""

from __future__ import annotations

import html as htmllib
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_HEADING = re.compile(r"#{1,3} +(.+)")
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_INVISIBLE = "//script|//style|//template|//noscript|//head|//svg"
_BLOCKS = ("p", "div", "li", "tr", "br", "h1", "h2", "h3", "h4", "h5", "h6", "section", "article", "footer",
           "header", "nav", "pre", "blockquote", "button", "td", "th", "dd", "dt")


@dataclass(frozen=True)
class Extraction:
    """What came out of a page: its text, its title, and which path produced it."""

    text: str
    title: str | None
    extractor: str
    """``trafilatura`` (main content) or ``fallback`` (the page's whole visible text)."""


def load_trafilatura() -> Any:
    """Import trafilatura (≈0.1–0.5 s the first time): kept out of start-up, done by warm() or the first fetch."""
    import trafilatura

    return trafilatura


def _title_tag(html: str) -> str | None:
    match = _TITLE.search(html, 0, 200_000)
    title = " ".join(htmllib.unescape(match.group(1)).split()) if match else ""
    return title or None


def _title(text: str, html: str) -> str | None:
    """The heading the main content opens with (the article's own title), else the page's <title>."""
    match = _HEADING.match(text)
    if match:
        return _LINK.sub(r"\1", match.group(1)).strip() or _title_tag(html)
    return _title_tag(html)


def visible_text(html: str) -> str:
    """Every visible text of a page, one block per line: what a reader sees when nothing looks like an article."""
    from lxml import html as lxml_html

    try:
        root = lxml_html.document_fromstring(html)
    except Exception:  # lxml refuses empty or undecodable documents: then there is no visible text
        return ""
    for node in root.xpath(_INVISIBLE):
        node.drop_tree()
    for block in root.iter(*_BLOCKS):
        block.tail = "\n" + (block.tail or "")
    lines = (" ".join(line.split()) for line in root.text_content().splitlines())
    return "\n".join(line for line in lines if line)


def _with_absolute_links(html: str, url: str) -> Any:
    """The page parsed as trafilatura would, with link and image targets resolved against the page's URL.

    trafilatura takes only the domain from ``url``: on ``/a/b/page.html`` it would turn ``x.html`` into
    ``/x.html`` and ``#sec`` into the site root, links an assistant would then follow to a 404. Only
    ``a/@href`` and ``img/@src`` are resolved (lxml's ``make_links_absolute`` also parses every style
    and costs 10× more on a large page); the parse is trafilatura's own, so it is not done twice.
    """
    from trafilatura.utils import load_html

    root = load_html(html)
    if root is None:  # nothing lxml can parse: trafilatura reports nothing and the fallback takes over
        return html
    base = root.find(".//base[@href]")
    if base is not None:
        url = urljoin(url, base.get("href", "").strip())
    resolved: dict[str, str] = {}
    for element in root.iter("a", "img"):
        attribute = "href" if element.tag == "a" else "src"
        target = element.get(attribute)
        if not target or target.startswith(("http://", "https://")):
            continue
        if target not in resolved:
            try:
                resolved[target] = urljoin(url, target.strip())
            except ValueError:  # a malformed target (bad IPv6 literal): leave it as written
                resolved[target] = target
        element.set(attribute, resolved[target])
    return root


def extract(html: str, *, url: str, output: str) -> Extraction:
    """The main content of ``html`` as ``markdown`` or ``text``.

    Links (made absolute against ``url``), headings, lists, code fences and tables are kept in
    markdown. When trafilatura finds no main content (an app shell, a page of links), the page's
    whole visible text is returned instead, so the caller never gets an empty page for a full one.
    CPU-bound: call it from a worker thread.
    """
    trafilatura = load_trafilatura()
    markdown = output == "markdown"
    document = _with_absolute_links(html, url) if markdown else html
    # fast=True skips trafilatura's second pass (re-extracting with readability and jusText to
    # compare) and no metadata skips htmldate's date search: together 2-3× less time per page, with
    # the same output on the benchmark pages (bench/extract.py); a page it finds empty gets our own
    # fallback below. include_images=True because trafilatura drops every <figure> without it, and
    # docs put code listings in figures (the Rust book lost 9 of 24 code blocks).
    text = trafilatura.extract(
        document,
        url=url,
        output_format="markdown" if markdown else "txt",
        fast=True,
        include_links=markdown,
        include_formatting=markdown,
        include_tables=True,
        include_comments=False,
        include_images=True,
    )
    text = (text or "").strip()
    if text:
        return Extraction(text, _title(text, html), "trafilatura")
    return Extraction(visible_text(html), _title_tag(html), "fallback")
