"""Chat completions for :mod:`streamhost.testing.llm_server`: the ``chat.completion`` object and the frames of
a streamed one (``chat.completion.chunk`` events), in shapes the ``openai`` SDK validates; standard library only.
"""

from __future__ import annotations

from typing import Any

from .sse import dumps, json_bytes, sse

__all__ = ["CHAT_ID", "ChatStream", "chat_completion"]

CHAT_ID = "chatcmpl-test"


def _chat_usage(prompt: int, completion: int) -> dict[str, int]:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def chat_completion(model: str, created: int, text: str, finish_reason: str, usage: tuple[int, int]) -> dict[str, Any]:
    """A non-streaming ``chat.completion`` object."""
    return {
        "id": CHAT_ID,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "logprobs": None,
                "finish_reason": finish_reason,
            }
        ],
        "usage": _chat_usage(*usage),
        "system_fingerprint": None,
    }


class ChatStream:
    """SSE frames of a streamed chat completion (``chat.completion.chunk`` events).

    Same interface as :class:`ResponsesStream`: :meth:`start`, :meth:`token`,
    :meth:`success`, :meth:`cut`, :meth:`failure`.
    """

    def __init__(self, body: dict[str, Any], model: str, created: int, finish_reason: str) -> None:
        """Prepare the byte templates; ``stream_options.include_usage`` is read from ``body``."""
        self._base = {"id": CHAT_ID, "object": "chat.completion.chunk", "created": created, "model": model}
        self._finish_reason = finish_reason
        opts = body.get("stream_options")
        self._include_usage = isinstance(opts, dict) and bool(opts.get("include_usage"))
        head = dumps(self._base)[:-1]  # drop the closing brace
        self._prefix = f'data: {head},"choices":[{{"index":0,"delta":{{'.encode()
        self._suffix = b'},"finish_reason":null}]}\n\n'
        self._first = True

    def start(self) -> bytes:
        """Frames before the first token (none for chat completions)."""
        return b""

    def token(self, token: Any) -> bytes:
        """Frame for one content token; the first one also carries ``role: assistant``."""
        role = b'"role":"assistant",' if self._first else b""
        self._first = False
        return self._prefix + role + b'"content":' + json_bytes(token) + self._suffix

    def success(self, text: str, usage: tuple[int, int]) -> bytes:
        """Finish chunk (empty delta), the usage chunk if requested, then ``data: [DONE]``."""
        out = sse({**self._base, "choices": [{"index": 0, "delta": {}, "finish_reason": self._finish_reason}]})
        if self._include_usage:
            out += sse({**self._base, "choices": [], "usage": _chat_usage(*usage)})
        return out + b"data: [DONE]\n\n"

    def cut(self, frames: tuple[str, ...], text: str) -> bytes:
        """The frames of ``frames`` a stream cut short still sends: "finish" (the chunk with
        ``finish_reason``, no usage), "done" (``data: [DONE]``); ``text`` is unused."""
        out = b""
        if "finish" in frames:
            out += sse({**self._base, "choices": [{"index": 0, "delta": {}, "finish_reason": self._finish_reason}]})
        return out + (b"data: [DONE]\n\n" if "done" in frames else b"")

    def failure(self, kind: str, message: str, text: str, usage: tuple[int, int]) -> bytes:
        """Mid-stream error as the API sends it: a data line holding ``{"error": ...}`` (``kind`` ignored)."""
        return sse({"error": {"message": message, "type": "server_error", "param": None, "code": None}})
