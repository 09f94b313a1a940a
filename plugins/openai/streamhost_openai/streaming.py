"""Reading an openai SDK streaming response: the body's bytes through the SSE decoder into a parser's events.

The SDK still makes the request (auth, base URL, time-outs, an HTTP error status as its own exception); the
body is read here instead of through the SDK's stream, which builds a pydantic object for every chunk: that
cost 2.4–3.7× the CPU of reading the same stream with httpx2 and json (``bench/token_cpu.py``), and this
costs about the same as that floor. Transport failures become the SDK's own exceptions, as its stream
raises them, so :func:`~.errors.map_error` maps both the same way.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from streamhost import Event, EventTooLarge, SSEDecoder, StreamError, upstream_socket

from .transport import response_socket

__all__ = ["DRAIN_S", "Parser", "stream_events"]

DRAIN_S = 0.1
"""How long the rest of a body is read after its last event, so an HTTP/1.1 connection can be used again."""


class Parser(Protocol):
    """What turns the data of each SSE event into events (:class:`.ChatEvents`, :class:`.ResponsesEvents`)."""

    done: bool
    """The stream's last event came: nothing after it is read."""

    def take(self, data: str) -> list[Event]:
        """The events in one SSE event's data; raises StreamError for an upstream's error or broken protocol."""

    def end(self) -> None:
        """The body ended (or the last event came): raises StreamError when the answer was cut short."""


async def stream_events(opened: AbstractAsyncContextManager[Any], parser: Parser, label: str) -> AsyncIterator[Event]:
    """Send the request (``opened``: an SDK ``with_streaming_response`` call) and yield the events of its body.

    Closing this generator, or cancelling the task reading it, closes the HTTP response at once; a cancel of the
    call shuts its connection down at once, even while the event loop is busy.
    """
    import anyio
    import httpx2
    import openai

    async with opened as response:
        http = response.http_response
        decoder = SSEDecoder()
        # A cancel shuts this connection down from the thread that read it (the event loop may be busy).
        with upstream_socket(response_socket(http)):
            async with contextlib.aclosing(http.aiter_bytes()) as chunks:
                try:
                    async for chunk in chunks:
                        for data in decoder.feed(chunk):
                            for event in parser.take(data):
                                yield event
                            if parser.done:
                                break
                        if parser.done:
                            break
                except httpx2.TimeoutException as exc:
                    raise openai.APITimeoutError(request=http.request) from exc
                except (httpx2.RequestError, ssl.SSLError, anyio.EndOfStream) as exc:
                    raise openai.APIConnectionError(request=http.request) from exc
                except EventTooLarge as exc:
                    raise StreamError(f"{label}: the upstream sent {exc} without ending it; the text so far is kept"
                                      ) from None
                except (AttributeError, TypeError) as exc:  # a field of the wrong kind: {"choices": 5}, "delta": [] …
                    raise StreamError(f"{label}: the upstream sent an event this plugin cannot read ({exc}); "
                                      "the text so far is kept") from None
                if parser.done:
                    await _drain(chunks)
    parser.end()


async def _drain(chunks: AsyncIterator[bytes]) -> None:
    """Read what is left of the body for a moment; whatever happens there, the answer is already whole."""
    import anyio

    with anyio.move_on_after(DRAIN_S), contextlib.suppress(Exception):
        async for _ in chunks:
            pass
