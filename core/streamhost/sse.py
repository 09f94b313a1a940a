"""Server-sent events off an HTTP body: bytes in, the ``data`` of each complete event out. Standard library only.

For provider plugins that read an upstream's event stream themselves (the OpenAI-protocol streams do: the
Chat Completions and Responses APIs and every server that speaks them). Only what those streams need from the
WHATWG event-stream rules: lines end at LF, CRLF or a lone CR (also when a CRLF is split between two reads);
an empty line ends an event; ``data:`` lines are joined with LF; comments (``:`` keep-alives), ``event:``,
``id:``, ``retry:`` and unknown fields are ignored (those APIs name the event inside its JSON). An event whose
data is empty or blank is a keep-alive and is not dispatched, nor is one the body cut before its empty line.
Lines are decoded as UTF-8 only once whole, so a character split between two reads is kept, and bytes that are
not UTF-8 become U+FFFD instead of failing the stream.
"""

from __future__ import annotations

__all__ = ["MAX_EVENT_BYTES", "EventTooLarge", "SSEDecoder"]

MAX_EVENT_BYTES = 32 * 1024 * 1024
"""The largest event (or line) kept: a Responses ``response.completed`` holds the whole answer once more, and an
upstream that never ends an event cannot grow the process without bound."""


class EventTooLarge(ValueError):
    """An event (or a line) grew past :data:`MAX_EVENT_BYTES` without ending."""


class SSEDecoder:
    """Incremental decoder: ``feed(chunk)`` returns the data of every event the chunk completed."""

    __slots__ = ("_cr", "_data", "_rest", "_size")

    def __init__(self) -> None:
        self._rest = b""  # an unfinished line
        self._cr = False  # the last chunk ended in CR: an LF opening the next one ends the same line
        self._data: list[bytes] = []  # the data lines of the event being read
        self._size = 0

    def feed(self, chunk: bytes) -> list[str]:
        """The data of each event completed by ``chunk`` (none, one, or several when reads were batched)."""
        if self._cr and chunk[:1] == b"\n":
            chunk = chunk[1:]
        if b"\r" in chunk:
            self._cr = chunk[-1:] == b"\r"
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        else:
            self._cr = False
        lines = (self._rest + chunk if self._rest else chunk).split(b"\n")
        self._rest = lines.pop()
        if len(self._rest) > MAX_EVENT_BYTES:
            raise EventTooLarge(f"a line of more than {MAX_EVENT_BYTES} bytes")
        out: list[str] = []
        data = self._data
        for line in lines:
            if not line:
                if data:
                    joined = data[0] if len(data) == 1 else b"\n".join(data)
                    data.clear()
                    self._size = 0
                    if joined.strip():
                        out.append(joined.decode("utf-8", "replace"))
            elif line[:5] == b"data:":
                value = line[6:] if line[5:6] == b" " else line[5:]
                data.append(value)
                self._size += len(value)
                if self._size > MAX_EVENT_BYTES:
                    raise EventTooLarge(f"an event of more than {MAX_EVENT_BYTES} bytes")
        return out
