"""Chat Completions streams: the data of each SSE event in, streamhost events out."""

from __future__ import annotations

from streamhost import Event, Status, StreamError, TextDelta, Usage

from .payloads import CUT_SHORT, parse, reported, text

__all__ = ["FINISH_NOTICES", "ChatEvents"]

# Finish reasons that end an answer early without failing it: the text is whole up to there, so the call
# succeeds, and the user hears why it stops where it does.
FINISH_NOTICES = {
    "length": 'the answer stopped at the output token limit (finish_reason "length") and is cut short — '
              "a larger max_tokens gives more",
    "content_filter": 'the upstream\'s content filter stopped the answer (finish_reason "content_filter")',
}


class ChatEvents:
    """One Chat Completions stream (``chat.completion.chunk`` objects, ``[DONE]``, ``{"error": …}`` lines).

    Text comes from ``choices[].delta.content``, usage from any chunk that carries it (the extra chunk that
    ``stream_options.include_usage`` asks for, whose ``choices`` is empty or holds an empty delta). Only a
    ``finish_reason`` tells a whole answer from one cut short: many servers send it on the last chunk only,
    and a body may end with or without ``[DONE]``.
    """

    __slots__ = ("done", "finish_reason", "label")

    def __init__(self, label: str) -> None:
        self.label = label
        self.finish_reason: str | None = None
        self.done = False
        """``[DONE]`` came: nothing after it is read."""

    def take(self, data: str) -> list[Event]:
        """The events in one SSE event's data."""
        if data.startswith("[DONE]"):
            self.done = True
            return []
        chunk = parse(data, self.label)
        if chunk.get("error"):
            raise StreamError(f"{self.label}: the upstream reported an error mid-stream: {reported(chunk['error'])}")
        events: list[Event] = []
        choices = chunk.get("choices")
        if choices:
            for choice in choices:
                delta = choice.get("delta")
                if delta:
                    content = delta.get("content")
                    if content is not None and text(content, self.label):
                        events.append(TextDelta(content))
                reason = choice.get("finish_reason")
                if reason:
                    self.finish_reason = reason
                    if reason in FINISH_NOTICES:
                        events.append(Status(f"{self.label}: {FINISH_NOTICES[reason]}"))
        usage = chunk.get("usage")
        if usage is not None:
            events.append(Usage(input_tokens=usage.get("prompt_tokens"), output_tokens=usage.get("completion_tokens"),
                                total_tokens=usage.get("total_tokens")))
        return events

    def end(self) -> None:
        """The body ended: an answer with no finish_reason was cut short."""
        if self.finish_reason is None:
            raise StreamError(f"{self.label}: {CUT_SHORT} (no finish_reason); the text so far is kept")
