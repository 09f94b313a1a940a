"""Extraction benchmark: HTML → markdown time per page and output quality, streamhost-fetch vs mcp-server-fetch's way.

Runs on the fixed page set in ``bench/pages/`` (real documentation pages found on the project machine
plus two written blog pages with the usual boilerplate), with no network.

- streamhost-fetch: ``streamhost_fetch.extract.extract(html, url=..., output="markdown")``, the exact
  function the plugin runs (trafilatura with links, tables and code fences kept).
- baseline: what mcp-server-fetch's ``extract_content_from_html`` does,
  ``readabilipy.simple_json.simple_json_from_html_string(html, use_readability=...)`` then
  ``markdownify.markdownify(content, heading_style=ATX)``. Without Readability.js's node modules
  installed (no network here) readabilipy takes its pure-Python path, which mcp-server-fetch also gets
  then; with node it would spawn a node process per page, which is slower still.

Each page is timed ``--runs`` times per side, the two sides interleaved (the side that goes first
alternates run by run), after one untimed warm-up call of each. Figures are medians.

Quality, per page and side: the page's chosen heading is a markdown heading; the chosen code lines are
inside a ``` fence with their line breaks; the chosen link target is a markdown link; the number of
markdown links; and for the written pages, that boilerplate (cookie banner, ads, footer) is gone.

Needs a venv with streamhost-fetch plus ``readabilipy markdownify`` (bench only, not test deps):
    python -m venv /tmp/venv-bench && /tmp/venv-bench/bin/python -m pip install --upgrade pip
    /tmp/venv-bench/bin/python -m pip install -e . -e plugins/fetch readabilipy markdownify
    /tmp/venv-bench/bin/python bench/extract.py [--runs 7]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

PAGES = Path(__file__).resolve().parent / "pages"


@dataclass(frozen=True)
class Page:
    """One page of the set and what a good markdown rendering of it must keep."""

    file: str
    url: str
    heading: str
    code: tuple[str, ...] = ()
    link: str = ""
    boilerplate: tuple[str, ...] = ()


SET = [
    Page("note-short.html", "https://notes.example/pin-pip", "Quick note: pinning pip in CI",
         ("python -m venv .venv", ".venv/bin/python -m pip install --upgrade pip"),
         "https://pip.pypa.io/en/stable/news/", ("Written by a tired engineer",)),
    Page("blog-build-times.html", "https://eng.harbor.example/posts/ci-build-times", "Cache what does not change",
         ("def shards(timings: dict[str, float], n: int) -> list[list[str]]:",
          '    """Greedy: the slowest file goes to the least loaded shard."""'),
         "https://github.com/harbor-eng/ci-timings",
         ("We use cookies", "Sponsored", "All rights reserved", "Subscribe", "Our monorepo migration")),
    Page("rust-book-strings.html", "https://doc.rust-lang.org/book/ch08-02-strings.html", "Creating a New String",
         ("fn main() {", '    let s = String::from("initial contents");'), "https://crates.io/"),
    Page("python-idle-help.html", "https://docs.python.org/3.13/library/idle.html", "Menus",
         (">>> len(s)", "14"), "https://github.com/python/cpython/tree/main/Lib/idlelib/"),
    Page("rust-reference-expressions.html", "https://doc.rust-lang.org/reference/expressions.html",
         "Expression precedence", ("fn temp() -> String { String::from(\"\") }",), "attributes.html"),
    Page("rustc-platform-support.html", "https://doc.rust-lang.org/rustc/platform-support.html",
         "Tier 1 with Host Tools", (), "target-tier-policy.html"),
    Page("rust-std-vec.html", "https://doc.rust-lang.org/std/vec/struct.Vec.html", "Examples",
         ("let mut vec = Vec::new();", "vec.push(1);"), "primitive.slice.html"),
]

_FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
_LINK = re.compile(r"\]\(([^)\s]+)")
_HEADING = re.compile(r"^#{1,6}\s+(.*)$", re.MULTILINE)
_LINK_TEXT = re.compile(r"\[([^\]]*)\]\([^)]*\)")


def streamhost_markdown(html: str, url: str) -> str:
    from streamhost_fetch.extract import extract

    return extract(html, url=url, output="markdown").text


def baseline_markdown(html: str, url: str) -> str:
    """mcp-server-fetch's extract_content_from_html (pure-Python readabilipy: no Readability.js here)."""
    import markdownify
    from readabilipy.simple_json import simple_json_from_html_string

    ret = simple_json_from_html_string(html, use_readability=False)
    if not ret["content"]:
        return "<error>Page failed to be simplified from HTML</error>"
    return markdownify.markdownify(ret["content"], heading_style=markdownify.ATX)


def quality(page: Page, markdown: str) -> dict[str, object]:
    """The checks of one rendering: heading, code, link kept; links counted; boilerplate gone."""
    headings = [_LINK_TEXT.sub(r"\1", h).replace("§", "").replace("¶", "").strip() for h in _HEADING.findall(markdown)]
    fences = ["\n".join(line.rstrip() for line in block.splitlines()) for block in _FENCE.findall(markdown)]
    snippet = "\n".join(page.code)
    links = _LINK.findall(markdown)
    return {
        "heading": any(h == page.heading or h.endswith(page.heading) for h in headings),
        "code": None if not page.code else any(snippet in block for block in fences),
        "link": any(page.link in href for href in links),
        "links": len(links),
        "fences": len(fences),
        "clean": None if not page.boilerplate else not any(b in markdown for b in page.boilerplate),
        "chars": len(markdown),
    }


def time_once(fn: Callable[[str, str], str], html: str, url: str) -> tuple[float, str]:
    started = time.perf_counter()
    out = fn(html, url)
    return time.perf_counter() - started, out


def mark(value: object) -> str:
    return "–" if value is None else ("yes" if value is True else "NO" if value is False else str(value))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="timed runs per page and side (default 7)")
    runs = parser.parse_args().runs
    sides = {"streamhost-fetch": streamhost_markdown, "readabilipy+markdownify": baseline_markdown}
    print(f"# extraction benchmark: {runs} runs per page and side, interleaved; "
          f"{time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    rows = []
    totals = {name: 0.0 for name in sides}
    failures = {name: 0 for name in sides}
    for page in SET:
        html = (PAGES / page.file).read_text(encoding="utf-8")
        times: dict[str, list[float]] = {name: [] for name in sides}
        outputs = {name: fn(html, page.url) for name, fn in sides.items()}  # warm-up, and the output checked
        for run in range(runs):
            order = list(sides) if run % 2 == 0 else list(reversed(sides))
            for name in order:
                times[name].append(time_once(sides[name], html, page.url)[0])
        medians = {name: statistics.median(values) for name, values in times.items()}
        for name in sides:
            totals[name] += medians[name]
        checks = {name: quality(page, outputs[name]) for name in sides}
        for name, check in checks.items():
            failures[name] += sum(check[key] is False for key in ("heading", "code", "link", "clean"))
        rows.append((page, len(html), medians, checks))

    header = ("| page | KB | streamhost-fetch ms | readabilipy+markdownify ms | speed-up | "
              "heading kept (s/b) | code kept (s/b) | link kept (s/b) | links (s/b) | boilerplate gone (s/b) |")
    print(header)
    print("|" + " --- |" * 10)
    base, ours = "readabilipy+markdownify", "streamhost-fetch"
    for page, size, medians, checks in rows:
        s, b = checks[ours], checks[base]
        print(f"| {page.file} | {size / 1024:.0f} | {medians[ours] * 1000:.1f} | {medians[base] * 1000:.1f} | "
              f"{medians[base] / medians[ours]:.1f}× | {mark(s['heading'])}/{mark(b['heading'])} | "
              f"{mark(s['code'])}/{mark(b['code'])} | {mark(s['link'])}/{mark(b['link'])} | "
              f"{s['links']}/{b['links']} | {mark(s['clean'])}/{mark(b['clean'])} |")
    ratios = [medians[base] / medians[ours] for _, _, medians, _ in rows]
    print(f"\nsum of medians: streamhost-fetch {totals[ours] * 1000:.1f} ms, "
          f"readabilipy+markdownify {totals[base] * 1000:.1f} ms, ratio {totals[base] / totals[ours]:.1f}×")
    print(f"per-page speed-up: median {statistics.median(ratios):.1f}×, min {min(ratios):.1f}×, "
          f"max {max(ratios):.1f}×")
    print(f"quality checks failed: streamhost-fetch {failures[ours]}, readabilipy+markdownify {failures[base]}")


if __name__ == "__main__":
    main()
