"""A fetcher for ``page://NAME?...`` URLs whose query says what the page is, the way a third party
would write a fetcher. Every fetch is logged (start, end or cancelled, with ``time.monotonic()``) as
JSON lines to the file named by ``STREAMHOST_TEST_PAGES_LOG``, and kept in ``PagesFetcher.log``.

Query keys: ``delay`` (seconds before the document), ``chars`` (content length, default 400),
``title``, ``fail`` (a FetchError with this message after the delay), ``empty=1`` (no content),
``crash=1`` (an unexpected exception, as a buggy plugin would raise).
"""

import asyncio
import json
import os
import time
from urllib.parse import parse_qs, urlsplit

from streamhost import Document, Fetcher, FetchError, Status, hookimpl

LOG_ENV = "STREAMHOST_TEST_PAGES_LOG"


def content_of(name, chars):
    """Deterministic markdown: sections of numbered sentences, ``chars`` characters in all."""
    out, section = [], 0
    while sum(map(len, out)) < chars:
        section += 1
        out.append(f"## {name} section {section}\n\n")
        for sentence in range(1, 6):
            out.append(f"Sentence {sentence} of section {section} of {name} says something. " * 3 + "\n\n")
    return "".join(out)[:chars]


class PagesFetcher(Fetcher):
    name = "pages"
    schemes = ("page",)

    def __init__(self):
        super().__init__()
        self.log = []

    def _record(self, url, event):
        entry = {"url": url, "event": event, "t": time.monotonic()}
        self.log.append(entry)
        path = os.environ.get(LOG_ENV)
        if path:
            with open(path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(entry) + "\n")

    async def fetch(self, request):
        parts = urlsplit(request.url)
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        name = parts.netloc + parts.path
        self._record(request.url, "start")
        try:
            yield Status(f"connecting to {name}")
            await asyncio.sleep(float(query.get("delay", 0)))
            if "fail" in query:
                raise FetchError(f"{request.url}: {query['fail']}")
            if "crash" in query:
                raise RuntimeError("the test plugin crashed on purpose")
            content = "" if query.get("empty") else content_of(name, int(query.get("chars", 400)))
            yield Status(f"received {len(content)} bytes")
            yield Document(url=request.url, final_url=request.url, content=content,
                           title=query.get("title", f"Page {name}"), content_type="text/markdown",
                           metadata={"format": request.format})
            self._record(request.url, "end")
        except asyncio.CancelledError:
            self._record(request.url, "cancelled")
            raise


@hookimpl
def register_fetchers(register):
    register(PagesFetcher())
