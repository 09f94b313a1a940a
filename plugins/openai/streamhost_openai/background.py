"""OpenAI background responses: a stream that survives its connection, yields checkpoints, and is picked up again.

A background response (``responses.create(background=True, stream=True)``) runs on OpenAI's side whatever
happens to the connection that started it. Every event of its stream carries a ``sequence_number``, so a
dropped stream is picked up with ``responses.retrieve(id, stream=True, starting_after=N)`` (the SDK's
``responses.stream(response_id=...)`` helper does not send the cursor); when that no longer works (past the
resume window), ``responses.retrieve(id)`` is polled until the response ends, and the text it holds beyond what
was given is yielded. No text is repeated or lost either way.

The checkpoint (:class:`streamhost.Checkpoint`) state is compact JSON::

    {"id": "resp_...", "after": 41, "chars": 312}

``id``: the response; ``after``: the ``sequence_number`` of the last event covered (-1: none yet); ``chars``:
how many characters of text (``len`` of the Python string) were yielded before the checkpoint. One is yielded as
soon as the response id is known, then at most every :data:`CHECKPOINT_S` seconds, and once more at the end.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from streamhost import Checkpoint, Event, StreamError, TextDelta

from .payloads import CUT_SHORT
from .responses_events import ResponsesEvents, terminal_error, usage_of
from .streaming import stream_events

__all__ = ["CHECKPOINT_S", "BackgroundEvents", "follow", "read_checkpoint"]

log = logging.getLogger("streamhost.openai")

CHECKPOINT_S = 0.25
"""The least time between two checkpoints: the host journals each, so one per text event would cost."""
RESUME_TRIES = 3
"""Dropped resumed streams in a row that brought nothing new before falling back to polling."""
RESUME_PAUSE_S = 0.25
"""The pause before resuming a stream again after one that dropped with nothing new (times the tries so far)."""
POLL_FIRST_S, POLL_MAX_S = 0.5, 5.0
"""The first pause between two polls, and the longest (each pause doubles the one before)."""
POLL_TRIES = 3
"""Polls in a row that fail to connect before the call fails."""


class BackgroundEvents(ResponsesEvents):
    """A Responses stream read as a background response: it also keeps the response id, the number of the last
    event read and the characters yielded (the cursor), skips events it has read already, adds checkpoints,
    and leaves a body that ends early to the caller (which picks the stream up again)."""

    __slots__ = ("_due", "after", "chars", "response_id")

    def __init__(self, label: str, response_id: str | None = None, after: int = -1, chars: int = 0) -> None:
        super().__init__(label)
        self.response_id, self.after, self.chars = response_id, after, chars
        self._due = 0.0

    def state(self) -> str:
        """The checkpoint state of the cursor (see the module's docstring)."""
        return json.dumps({"id": self.response_id, "after": self.after, "chars": self.chars}, separators=(",", ":"))

    def read(self, event: dict[str, Any]) -> list[Event]:
        """The events of one parsed SSE event, a checkpoint after them when one is due."""
        seq = event.get("sequence_number")
        if type(seq) is int:
            if seq <= self.after:
                return []  # a resumed stream repeating what was read: given already
            self.after = seq
        events = super().read(event)  # a failed response raises here: nothing to pick up again
        due = self.completed
        if self.response_id is None:
            response = event.get("response")
            if isinstance(response, dict) and isinstance(response.get("id"), str) and response["id"]:
                self.response_id = response["id"]
                due = True
        for item in events:
            if type(item) is TextDelta:
                self.chars += len(item.text)
        if self.response_id is not None:
            now = time.monotonic()
            if due or now >= self._due:
                events.append(Checkpoint(self.state()))
                self._due = now + CHECKPOINT_S
        return events

    def end(self) -> None:
        """The body ended: whether the answer is whole is for :func:`follow` to find out."""

    def cut_short(self) -> StreamError:
        """The error for a stream that ended early and cannot be picked up again."""
        return StreamError(f"{self.label}: {CUT_SHORT} (no response.completed); the text so far is kept")


def read_checkpoint(state: str, label: str) -> BackgroundEvents:
    """A parser positioned at a checkpoint's cursor; StreamError when ``state`` is not one of this plugin's."""
    try:
        cursor = json.loads(state)
        response_id, after, chars = cursor["id"], int(cursor["after"]), int(cursor["chars"])
    except (ValueError, TypeError, KeyError):
        raise StreamError(f"{label}: cannot resume from checkpoint {state!r:.80}: it is not an OpenAI background "
                          "response's") from None
    if not isinstance(response_id, str) or not response_id:
        raise StreamError(f"{label}: cannot resume from checkpoint {state!r:.80}: it names no response")
    return BackgroundEvents(label, response_id, after, chars)


async def follow(client: Any, parser: BackgroundEvents, create: dict[str, Any] | None = None) -> AsyncIterator[Event]:
    """Yield a background response's events to its end: from its creation (``create``: the arguments of
    ``responses.create``), or from the cursor ``parser`` holds. A dropped stream is picked up where it stopped,
    then polled when it cannot be; the failures that end it are the ones a plain Responses stream has."""
    import anyio
    import openai

    label, quiet = parser.label, 0
    if create is not None:
        opened = client.responses.with_streaming_response.create(**create, background=True)
        try:
            async for event in stream_events(opened, parser, label):
                yield event
        except openai.APIConnectionError:  # a time-out too
            if parser.response_id is None or _cancelling():
                raise
            log.info("%s: the stream of %s dropped after event %d; picking it up", label, parser.response_id,
                     parser.after)
        if parser.completed:
            return
        if parser.response_id is None:
            raise parser.cut_short()
    while True:
        before, dropped = parser.after, False
        cursor = {"starting_after": parser.after} if parser.after >= 0 else {}
        opened = client.responses.with_streaming_response.retrieve(parser.response_id, stream=True, **cursor)
        try:
            async for event in stream_events(opened, parser, label):
                yield event
        except openai.APIStatusError as exc:  # past the resume window, or never resumable: poll
            log.info("%s: %s cannot be streamed again (HTTP %d); polling it", label, parser.response_id,
                     exc.status_code)
            break
        except openai.APIConnectionError:
            if _cancelling():
                raise
            dropped = True
        if parser.completed:
            return
        if parser.after != before:
            quiet = 0
            continue
        if not dropped:
            break  # the stream ended with nothing new: the response ended another way (cancelled, expired)
        quiet += 1
        if quiet >= RESUME_TRIES:
            break
        await anyio.sleep(RESUME_PAUSE_S * quiet)
    async for event in _poll(client, parser):
        yield event


async def _poll(client: Any, parser: BackgroundEvents) -> AsyncIterator[Event]:
    """Retrieve the response until it ends, yielding the text it holds beyond what was given."""
    import anyio
    import openai

    pause, failures = POLL_FIRST_S, 0
    while True:
        try:
            raw = await client.responses.with_raw_response.retrieve(parser.response_id)
        except openai.APIConnectionError:
            failures += 1
            if failures >= POLL_TRIES:
                raise
        else:
            failures = 0
            response = _response_json(raw.http_response, parser.label)
            said = output_text(response)
            if len(said) > parser.chars:
                yield TextDelta(said[parser.chars:])
                parser.chars = len(said)
            status = response.get("status")
            if status == "completed":
                usage = usage_of(response)
                if usage is not None:
                    yield usage
                return
            if status not in ("queued", "in_progress"):
                raise terminal_error(parser.label, response)
        await anyio.sleep(pause)
        pause = min(pause * 2, POLL_MAX_S)


def _cancelling() -> bool:
    """Whether this task is being cancelled: the host shut the connection down on purpose (a cancelled call),
    which is not a drop to recover from."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def _response_json(http_response: Any, label: str) -> dict[str, Any]:
    """The ``response`` object of a retrieve's body."""
    try:
        value = http_response.json()
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise StreamError(f"{label}: the upstream answered a retrieve with something that is not a response "
                          "object; the text so far is kept")
    return value


def output_text(response: dict[str, Any]) -> str:
    """The text of a ``response`` object's messages, as the SDK's ``Response.output_text`` joins it."""
    pieces = []
    for item in response.get("output") or ():
        if isinstance(item, dict) and item.get("type") == "message":
            for part in item.get("content") or ():
                if isinstance(part, dict) and part.get("type") == "output_text" and isinstance(part.get("text"), str):
                    pieces.append(part["text"])
    return "".join(pieces)
