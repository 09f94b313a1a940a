"""fetch_url's paging: one slice of a document at a time, as mcp-server-fetch pages it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from streamhost import Document, InvalidArgumentError

DEFAULT_MAX_LENGTH = 10_000
NO_TEXT = "The page has no text content: it is empty, or its text is written by JavaScript, which is not run."


@dataclass(frozen=True)
class Slice:
    """One slice of a document's content, and where the next one starts."""

    document: Document
    text: str
    start_index: int
    next_start_index: int | None

    @property
    def note(self) -> str:
        """What to tell the reader after the slice: how to get the rest, or that the page was cut."""
        notes = [] if self.document.content else [NO_TEXT]
        if self.next_start_index is not None:
            notes.append(f"Content truncated: {len(self.document.content) - self.next_start_index} more "
                         f"characters. Call fetch_url again with start_index={self.next_start_index} to read on.")
        if self.document.truncated:
            notes.append("The page was larger than the fetcher's size limit ([fetch] max_bytes) and was cut.")
        return "\n".join(f"<note>{note}</note>" for note in notes)

    def metadata(self) -> dict[str, Any]:
        """What fetch_url reports besides the text: where the page came from and where this slice sits in it."""
        doc = self.document
        return {"url": doc.url, "final_url": doc.final_url, "title": doc.title, "content_type": doc.content_type,
                "truncated": doc.truncated, "start_index": self.start_index,
                "next_start_index": self.next_start_index, "total_length": len(doc.content)}


def slice_of(document: Document, start_index: int = 0, max_length: int = DEFAULT_MAX_LENGTH) -> Slice:
    """The slice ``[start_index, start_index + max_length)`` of the document's content."""
    total = len(document.content)
    if start_index > 0 and start_index >= total:
        raise InvalidArgumentError(f"start_index {start_index} is past the end of the page ({total} characters)")
    end = min(start_index + max_length, total)
    return Slice(document, document.content[start_index:end], start_index, end if end < total else None)
