"""Background responses for :mod:`streamhost.testing.llm_server`, as OpenAI serves ``background: true``.

A :class:`BackgroundResponse` plays its script on the server's loop whether or not a client listens, keeps every
event it sent (event *i* carries ``sequence_number`` *i*), and can be streamed again from after any event
(:func:`tail`), polled as a ``response`` object (:meth:`BackgroundResponse.snapshot`) or cancelled. Standard
library only.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable
from typing import Any

from . import http_wire
from . import openai_wire as wire
from .scripts import RequestRecord, Script, play

__all__ = ["BackgroundResponse", "BackgroundResponses", "responses_action", "tail"]

SendJSON = Callable[[int, Any], Awaitable[None]]
_TOKEN_FRAME = b"event: response.output_text.delta"
_FAILED = {"response.incomplete": "incomplete"}  # a script's error_kind → the status it leaves; others: failed


class BackgroundResponse:
    """One background response: its events so far, its status, and who waits for more."""

    def __init__(self, response_id: str, body: dict[str, Any], model: str, script: Script) -> None:
        """Prepare (nothing plays until :meth:`start`)."""
        self.id, self.script = response_id, script
        self._body, self._model, self._created = body, model, int(time.time())
        self.fmt = wire.ResponsesStream(body, model, self._created, script.finish_reason, response_id=response_id,
                                        background=True, searches=script.searches)
        self.frames: list[bytes] = []
        """Every event sent so far, SSE-framed; the one at index *i* has sequence number *i*."""
        self.status = "queued"
        self.text: str | None = None
        self.usage: tuple[int, int] | None = None
        self.error_message: str | None = None
        self.created_at = time.monotonic()
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def done(self) -> bool:
        """The response reached a terminal status: no event will follow."""
        return self.status in ("completed", "failed", "incomplete", "cancelled")

    def start(self, tokens: list[Any], t0: float, usage: Callable[[int], tuple[int, int]]) -> None:
        """Play ``tokens`` on the script's schedule from loop time ``t0``, in a task of its own; ``usage`` gives
        the token counts for a number of tokens sent."""
        self._task = asyncio.ensure_future(self._run(tokens, t0, usage))

    def waiter(self) -> asyncio.Event:
        """An event set at the next change (new events, or the end): take it before reading :attr:`frames`."""
        return self._changed

    def cancel(self) -> None:
        """Stop for good (``POST /v1/responses/{id}/cancel``); a finished response stays as it is."""
        if self.done:
            return
        if self._task is not None:
            self._task.cancel()
        self._finish("cancelled")

    def snapshot(self) -> dict[str, Any]:
        """The ``response`` object as ``GET /v1/responses/{id}`` returns it now (with the text so far)."""
        return wire.response_object(self._body, self._model, self._created, self.status, text=self.text,
                                    usage=self.usage, error_message=self.error_message, response_id=self.id,
                                    background=True, searches=self.script.searches)

    def _add(self, blob: bytes) -> None:
        # Compact JSON never holds a blank line, so the frames of a blob split at their blank-line ends.
        self.frames += [frame + b"\n\n" for frame in blob.split(b"\n\n") if frame]
        self._notify()

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def _finish(self, status: str) -> None:
        self.status = status
        self._notify()

    async def _run(self, tokens: list[Any], t0: float, usage: Callable[[int], tuple[int, int]]) -> None:
        script, fmt, pieces = self.script, self.fmt, []
        self._add(fmt.start())
        self.status, self.text = "in_progress", ""

        async def send(token: Any) -> None:
            pieces.append(token)
            self.text = (self.text or "") + wire.token_text(token)
            self._add(fmt.token(token))

        outcome = await play(script, tokens, t0, send)
        if outcome == "stall":
            await asyncio.Event().wait()  # until cancelled or the server stops
        text, self.usage = self.text or "", usage(len(pieces))
        if outcome == "end":  # the upstream died: its stream ends with what it had, and so does the response
            self._add(fmt.cut(script.end_with, text))
            self.error_message = script.error_message
            self._finish("failed")
        elif outcome == "error":
            self.error_message = script.error_message
            self._add(fmt.failure(script.error_kind, script.error_message, text, self.usage))
            self._finish(_FAILED.get(script.error_kind, "failed"))
        else:
            self._add(fmt.success(text, self.usage))
            self._finish("completed")


class BackgroundResponses:
    """The background responses one server keeps, by id, and the requests that create, follow and cancel them.

    ``record(rec, **fields)`` updates a request's record (under the server's lock).
    """

    def __init__(self, record: Callable[..., None]) -> None:
        """Start empty."""
        self._responses: dict[str, BackgroundResponse] = {}
        self._record = record
        self._counter = itertools.count(1)

    async def create(self, req: http_wire.HttpRequest, rec: RequestRecord, w: asyncio.StreamWriter, script: Script,
                     tokens: list[Any], t0: float, usage: Callable[[int], tuple[int, int]],
                     send_json: SendJSON) -> bool | None:
        """``POST /v1/responses`` with ``background: true``: start one; stream it on this connection when asked
        (``drop_after`` cuts that stream), else answer with the response object at once."""
        assert rec.body is not None
        number = next(self._counter)
        response = BackgroundResponse(f"resp_bg_{number}", rec.body, rec.model or "test-model", script)
        self._responses[response.id] = response
        response.start(tokens, t0, usage)
        if not rec.stream:
            return await send_json(200, response.snapshot())
        w.write(http_wire.stream_head(req.keep_alive, f"req_bg_{number}"))
        return await tail(response, -1, w, rec, self._record, drop_after=script.drop_after)

    async def follow(self, req: http_wire.HttpRequest, rec: RequestRecord, w: asyncio.StreamWriter,
                     send_json: SendJSON) -> bool | None:
        """``GET /v1/responses/{id}`` (polled, or streamed after ``starting_after``) and ``POST .../cancel``."""
        response = self._responses.get(rec.response_id or "")
        if response is None:
            return await send_json(404, wire.error_body(404, f"No response found with id '{rec.response_id}'."))
        if rec.action == "cancel":
            response.cancel()
            return await send_json(200, response.snapshot())
        if not rec.stream:
            return await send_json(200, response.snapshot())
        window = response.script.resume_window_s
        if window is not None and time.monotonic() - response.created_at >= window:
            return await send_json(400, wire.error_body(400, f"The stream of response '{response.id}' can no longer "
                                                             "be resumed; retrieve the response without stream"))
        w.write(http_wire.stream_head(req.keep_alive, f"req_bg_{next(self._counter)}"))
        after = rec.starting_after if rec.starting_after is not None else -1
        return await tail(response, after, w, rec, self._record)


async def tail(
    response: BackgroundResponse,
    after: int,
    w: asyncio.StreamWriter,
    rec: RequestRecord,
    record: Callable[..., None],
    drop_after: int | None = None,
) -> bool | None:
    """Write ``response``'s events after sequence number ``after`` on a chunked SSE body (headers already
    sent), then the new ones as they come, until it ends. ``drop_after``: close the connection after that many
    text events instead (a dropped stream); returns False then. ``record(rec, **fields)`` updates the record."""
    index, sent = after + 1, 0
    while True:
        changed = response.waiter()
        while index < len(response.frames):
            frame = response.frames[index]
            index += 1
            if frame.startswith(_TOKEN_FRAME):
                sent += 1
                now = time.monotonic()
                record(rec, tokens_sent=sent, **({"first_token": now} if rec.first_token is None else {}))
            if w.transport.is_closing():  # the client left: stop writing into a dead socket
                raise ConnectionResetError("the client closed the connection")
            w.write(http_wire.chunk(frame))
            if drop_after is not None and sent >= drop_after and (drop_after == 0 or frame.startswith(_TOKEN_FRAME)):
                record(rec, ended=time.monotonic())
                await w.drain()
                w.close()  # FIN in the middle of the body: the client sees its stream cut
                return False
        await w.drain()
        if response.done:
            break
        await changed.wait()
    record(rec, ended=time.monotonic())
    w.write(b"0\r\n\r\n")
    await w.drain()
    return None


def responses_action(method: str, path: str, query: dict[str, str]) -> tuple[str | None, str | None, int | None]:
    """What a request does with the Responses API: ``(action, response id, starting_after)``; action None: other."""
    if path == "/v1/responses":
        return ("create" if method == "POST" else None), None, None
    if not path.startswith("/v1/responses/"):
        return None, None, None
    rest = path[len("/v1/responses/"):]
    if method == "POST" and rest.endswith("/cancel"):
        return "cancel", rest[: -len("/cancel")], None
    after = query.get("starting_after", "")
    return ("retrieve" if method == "GET" else None), rest, int(after) if after.lstrip("-").isdigit() else None
