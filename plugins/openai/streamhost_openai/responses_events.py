"""Responses API streams: the data of each SSE event in, streamhost events out."""

from __future__ import annotations

from typing import Any

from streamhost import Event, Status, StreamError, TextDelta, Usage

from .payloads import CUT_SHORT, parse, reported, text

__all__ = ["STEPS", "ResponsesEvents", "terminal_error", "usage_of"]

STEPS = {
    "response.queued": "queued upstream",
    "response.web_search_call.searching": "searching the web",
    "response.file_search_call.searching": "searching files",
    "response.code_interpreter_call.interpreting": "running code",
    "response.mcp_call.in_progress": "calling a tool",
    "response.image_generation_call.generating": "generating an image",
}
"""The events (names from the openai SDK's ``types/responses``) that say what a model is doing besides writing,
and the status line each becomes: deep research spends minutes on them before its first word."""


class ResponsesEvents:
    """One Responses stream: text from ``response.output_text.delta``, usage from ``response.completed``.

    ``error``, ``response.failed`` and ``response.incomplete`` arrive as ordinary events, not HTTP errors:
    each is a :class:`~streamhost.StreamError`. Only ``response.completed`` makes the answer whole; a body that
    ends before it (or at a ``[DONE]``, which this API never sends) was cut short. Tool calls and reasoning
    (:data:`STEPS`, a web search's query or page) become :class:`~streamhost.Status` lines; the rest (the item
    and part bookkeeping, reasoning summaries) carries nothing the caller sees.
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
        return self.read(parse(data, self.label))

    def read(self, event: dict[str, Any]) -> list[Event]:
        """The events in one parsed SSE event."""
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
            usage = usage_of(event.get("response"))
            return [] if usage is None else [usage]
        if kind in ("response.failed", "response.incomplete"):
            raise terminal_error(self.label, event.get("response"), kind[len("response."):])
        step = STEPS.get(kind) if isinstance(kind, str) else None
        if step is None and kind in ("response.output_item.added", "response.output_item.done"):
            step = _item_step(event.get("item"), kind == "response.output_item.done")
        return [] if step is None else [Status(f"{self.label}: {step}")]

    def end(self) -> None:
        """The body ended: an answer without ``response.completed`` was cut short."""
        if not self.completed:
            raise StreamError(f"{self.label}: {CUT_SHORT} (no response.completed); the text so far is kept")


def usage_of(response: Any) -> Usage | None:
    """The token counts of a ``response`` object, when it has them."""
    usage = response.get("usage") if isinstance(response, dict) else None
    if not isinstance(usage, dict):
        return None
    return Usage(input_tokens=usage.get("input_tokens"), output_tokens=usage.get("output_tokens"),
                 total_tokens=usage.get("total_tokens"))


def terminal_error(label: str, response: Any, status: str | None = None) -> StreamError:
    """The error for a ``response`` object that ended without completing: failed, incomplete or cancelled
    (``status``, else the object's own)."""
    response = response if isinstance(response, dict) else {}
    status = status or response.get("status")
    if status == "incomplete":
        details = response.get("incomplete_details")
        reason = details.get("reason") if isinstance(details, dict) else None
        return StreamError(f"{label}: the response stopped incomplete ({reason or 'unknown reason'}); "
                           "output so far is kept")
    if status == "cancelled":
        return StreamError(f"{label}: the response was cancelled upstream; the text so far is kept")
    error = response.get("error")
    detail = error.get("message") if isinstance(error, dict) else None
    return StreamError(f"{label}: the response failed: {detail or 'no reason given'}")


def _item_step(item: Any, done: bool) -> str | None:
    """The status line of an output item starting (reasoning) or done (a web search: its query, or the page
    it read); None for the rest."""
    if not isinstance(item, dict):
        return None
    if item.get("type") == "reasoning":
        return None if done else "reasoning"
    action = item.get("action") if done and item.get("type") == "web_search_call" else None
    if not isinstance(action, dict):
        return None
    kind, url = action.get("type"), action.get("url")
    if kind == "search":
        queries = action.get("queries") or ([action["query"]] if action.get("query") else [])
        said = "; ".join(str(query) for query in queries)
        return f"searched the web: {said}" if said else "searched the web"
    if kind == "open_page" and url:
        return f"reading {url}"
    if kind == "find_in_page" and url:
        return f"looking for {action.get('pattern')!r} in {url}"
    return None
