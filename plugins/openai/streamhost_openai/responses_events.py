"""Responses API streams: the data of each SSE event in, streamhost events out."""

from __future__ import annotations

from streamhost import Event, StreamError, TextDelta, Usage

from .payloads import CUT_SHORT, parse, reported, text

__all__ = ["ResponsesEvents"]


class ResponsesEvents:
    """One Responses stream: text from ``response.output_text.delta``, usage from ``response.completed``.

    ``error``, ``response.failed`` and ``response.incomplete`` arrive as ordinary events, not HTTP errors:
    each is a :class:`~streamhost.StreamError`. Only ``response.completed`` makes the answer whole; a body that
    ends before it (or at a ``[DONE]``, which this API never sends) was cut short. Other events (the item and
    part bookkeeping, reasoning summaries) carry nothing the caller sees.
    """

    __slots__ = ("completed", "done", "label")

    def __init__(self, label: str) -> None:
        self.label = label
        self.completed = False
        self.done = False
        """``response.completed`` or ``[DONE]`` came: nothing after it is read."""

    def take(self, data: str) -> list[Event]:
        """The events in one SSE event's data."""
        if data.startswith("[DONE]"):
            self.done = True
            return []
        event = parse(data, self.label)
        kind = event.get("type")
        if kind == "response.output_text.delta":
            delta = event.get("delta")
            return [TextDelta(delta)] if delta is not None and text(delta, self.label) else []
        if kind == "error" or event.get("error"):
            # An error event carries its message at the top; a bare {"error": {...}} line nests it.
            raise StreamError(f"{self.label}: the upstream reported an error mid-stream: "
                              f"{reported(event if kind == 'error' else event['error'])}")
        if kind == "response.completed":
            self.completed = self.done = True
            usage = (event.get("response") or {}).get("usage")
            if usage is None:
                return []
            return [Usage(input_tokens=usage.get("input_tokens"), output_tokens=usage.get("output_tokens"),
                          total_tokens=usage.get("total_tokens"))]
        if kind == "response.failed":
            error = (event.get("response") or {}).get("error")
            detail = error.get("message") if isinstance(error, dict) else None
            raise StreamError(f"{self.label}: the response failed: {detail or 'no reason given'}")
        if kind == "response.incomplete":
            details = (event.get("response") or {}).get("incomplete_details")
            reason = details.get("reason") if isinstance(details, dict) else None
            raise StreamError(f"{self.label}: the response stopped incomplete ({reason or 'unknown reason'}); "
                              "output so far is kept")
        return []

    def end(self) -> None:
        """The body ended: an answer without ``response.completed`` was cut short."""
        if not self.completed:
            raise StreamError(f"{self.label}: {CUT_SHORT} (no response.completed); the text so far is kept")
