"""The ``__NAME__`` fetcher: turns ``__NAME__://notes/NAME`` URLs into documents.

The notes live in this file, so the example works offline and its tests are exact. Replace
``NOTES`` with your source (an API, a database, a file tree); keep the shape: yield ``Status``
events while working, then exactly one ``Document``, and raise ``FetchError`` with a message that
says what to do.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlsplit

from streamhost import Document, Fetcher, FetchError, FetchEvent, FetchRequest, Status

NOTES: dict[str, tuple[str, str]] = {
    "hello": ("Hello", "The first note. Fetched through the __NAME__ fetcher."),
    "shopping": ("Shopping", "- bread\n- milk\n- coffee"),
}
"""name -> (title, markdown body)."""


class __CLASS__Fetcher(Fetcher):
    """Serves ``__NAME__://notes/NAME`` from :data:`NOTES`."""

    name = "__NAME__"
    schemes = ("__NAME__",)

    async def fetch(self, request: FetchRequest) -> AsyncIterator[FetchEvent]:
        """Yield a status line, then the note as markdown, text or raw (the stored body)."""
        parts = urlsplit(request.url)
        note = parts.path.strip("/")
        if parts.netloc != "notes" or note not in NOTES:
            raise FetchError(f"{request.url}: no such note; try {', '.join(f'__NAME__://notes/{n}' for n in NOTES)}")
        yield Status(f"reading note {note!r}")
        title, body = NOTES[note]
        content = {"markdown": f"# {title}\n\n{body}", "text": f"{title}\n\n{body.replace('- ', '')}"}.get(
            request.format, body)
        yield Document(url=request.url, final_url=request.url, content=content, title=title,
                       content_type="text/markdown")
