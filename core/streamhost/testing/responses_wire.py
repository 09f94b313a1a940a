"""The Responses API for :mod:`streamhost.testing.llm_server`: ``response`` objects and the events of a streamed
response (web searches of a deep-research run included), in shapes the ``openai`` SDK validates; standard
library only.
"""

from __future__ import annotations

from typing import Any

from .sse import json_bytes, sse

__all__ = ["MESSAGE_ID", "RESPONSE_ID", "ResponsesStream", "response_object", "web_search_item"]

RESPONSE_ID = "resp_test"
MESSAGE_ID = "msg_test"


def _responses_usage(prompt: int, completion: int) -> dict[str, Any]:
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": prompt + completion,
    }


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _message_item(status: str, text: str | None = None) -> dict[str, Any]:
    content = [] if text is None else [_text_part(text)]
    return {"id": MESSAGE_ID, "type": "message", "role": "assistant", "status": status, "content": content}


def web_search_item(index: int, query: str, status: str = "completed") -> dict[str, Any]:
    """The ``web_search_call`` output item of search number ``index`` (a deep-research step)."""
    return {"id": f"ws_test_{index}", "type": "web_search_call", "status": status,
            "action": {"type": "search", "query": query}}


def response_object(
    body: dict[str, Any],
    model: str,
    created: int,
    status: str,
    text: str | None = None,
    usage: tuple[int, int] | None = None,
    error_message: str | None = None,
    response_id: str = RESPONSE_ID,
    background: bool = False,
    searches: tuple[str, ...] = (),
) -> dict[str, Any]:
    """A Responses API ``response`` object with ``status`` completed | in_progress | queued | failed | incomplete
    | cancelled.

    ``text`` None means no message item yet; ``searches`` are the web searches made before it.
    ``failed`` carries ``error_message``; ``incomplete`` carries ``incomplete_details.reason = "max_output_tokens"``.
    """
    item_status = status if status in ("completed", "in_progress") else "incomplete"
    instructions = body.get("instructions")
    output = [web_search_item(i, query) for i, query in enumerate(searches)]
    return {
        "id": response_id,
        "object": "response",
        "created_at": created,
        "status": status,
        "background": background,
        "error": {"code": "server_error", "message": error_message} if status == "failed" else None,
        "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
        "instructions": instructions if isinstance(instructions, str) else None,
        "max_output_tokens": body.get("max_output_tokens"),
        "metadata": {},
        "model": model,
        "output": output if text is None else [*output, _message_item(item_status, text)],
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "store": False,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": body.get("tools") if isinstance(body.get("tools"), list) else [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": None if usage is None else _responses_usage(*usage),
        "user": None,
    }


class ResponsesStream:
    """SSE frames (``event:`` + ``data:``) of a streamed Responses API call; ``sequence_number`` from 0.

    A ``background`` response starts ``queued``; each of ``searches`` is a web search (a deep-research step:
    its item and ``response.web_search_call.*`` events) made before the message.
    """

    def __init__(self, body: dict[str, Any], model: str, created: int, finish_reason: str,
                 response_id: str = RESPONSE_ID, background: bool = False, searches: tuple[str, ...] = ()) -> None:
        """Prepare for a response to request ``body`` naming ``model`` (``finish_reason`` unused)."""
        self._body, self._model, self._created = body, model, created
        self._id, self._background, self._searches = response_id, background, tuple(searches)
        self._index = len(self._searches)  # the message's place in ``output``
        self.seq = 0
        self._delta_prefix = (
            b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta",'
            + f'"item_id":"{MESSAGE_ID}","output_index":{self._index},"content_index":0,"delta":'.encode()
        )

    def _event(self, name: str, fields: dict[str, Any]) -> bytes:
        frame = sse({"type": name, **fields, "sequence_number": self.seq}, event=name)
        self.seq += 1
        return frame

    def _response(self, status: str, **kw: Any) -> dict[str, Any]:
        return response_object(self._body, self._model, self._created, status, response_id=self._id,
                               background=self._background, searches=self._searches, **kw)

    def start(self) -> bytes:
        """``response.created`` .. ``response.content_part.added`` frames (web searches in between)."""
        first = "queued" if self._background else "in_progress"
        frames = [self._event("response.created", {"response": self._response(first)})]
        if self._background:
            frames.append(self._event("response.queued", {"response": self._response("queued")}))
        frames.append(self._event("response.in_progress", {"response": self._response("in_progress")}))
        for index, query in enumerate(self._searches):
            frames.append(self._web_search(index, query))
        part = {"item_id": MESSAGE_ID, "output_index": self._index, "content_index": 0}
        item = _message_item("in_progress")
        frames += [
            self._event("response.output_item.added", {"output_index": self._index, "item": item}),
            self._event("response.content_part.added", {**part, "part": _text_part("")}),
        ]
        return b"".join(frames)

    def _web_search(self, index: int, query: str) -> bytes:
        call = {"output_index": index, "item_id": f"ws_test_{index}"}
        added = {"id": f"ws_test_{index}", "type": "web_search_call", "status": "in_progress",
                 "action": {"type": "search"}}
        return b"".join([
            self._event("response.output_item.added", {"output_index": index, "item": added}),
            self._event("response.web_search_call.in_progress", call),
            self._event("response.web_search_call.searching", call),
            self._event("response.web_search_call.completed", call),
            self._event("response.output_item.done", {"output_index": index, "item": web_search_item(index, query)}),
        ])

    def token(self, token: Any) -> bytes:
        """One ``response.output_text.delta`` frame."""
        seq = self.seq
        self.seq += 1
        return self._delta_prefix + json_bytes(token) + b',"sequence_number":%d,"logprobs":[]}\n\n' % seq

    def _close_item(self, text: str, item_status: str) -> bytes:
        part = {"item_id": MESSAGE_ID, "output_index": self._index, "content_index": 0}
        item = _message_item(item_status, text)
        return b"".join(
            [
                self._event("response.output_text.done", {**part, "text": text, "logprobs": []}),
                self._event("response.content_part.done", {**part, "part": _text_part(text)}),
                self._event("response.output_item.done", {"output_index": self._index, "item": item}),
            ]
        )

    def success(self, text: str, usage: tuple[int, int]) -> bytes:
        """``response.output_text.done`` .. ``response.completed`` frames."""
        resp = self._response("completed", text=text, usage=usage)
        return self._close_item(text, "completed") + self._event("response.completed", {"response": resp})

    def cut(self, frames: tuple[str, ...], text: str) -> bytes:
        """The frames of ``frames`` a stream cut short still sends: "finish" (the events closing the
        message item, never ``response.completed``), "done" (``data: [DONE]``, which this API never sends)."""
        out = self._close_item(text, "completed") if "finish" in frames else b""
        return out + (b"data: [DONE]\n\n" if "done" in frames else b"")

    def failure(self, kind: str, message: str, text: str, usage: tuple[int, int]) -> bytes:
        """Mid-stream failure frames for ``kind`` = ``error`` | ``response.failed`` | ``response.incomplete``."""
        if kind == "response.failed":
            resp = self._response("failed", text=text, usage=usage, error_message=message)
            return self._event("response.failed", {"response": resp})
        if kind == "response.incomplete":
            resp = self._response("incomplete", text=text, usage=usage)
            return self._close_item(text, "incomplete") + self._event("response.incomplete", {"response": resp})
        return self._event("error", {"code": "server_error", "message": message, "param": None})
