"""Run a provider's or fetcher's stream the way the host does and keep what came out, to assert on."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, TypeVar

from streamhost.host.sinks import CollectingSink, Update

if TYPE_CHECKING:
    from streamhost.fetchers import Fetcher, FetchRequest
    from streamhost.host.relay import RelayResult
    from streamhost.providers import GenerationRequest, Provider

__all__ = ["CollectingSink", "Update", "collect_events", "fetch_document", "relay"]

T = TypeVar("T")


async def collect_events(stream: AsyncIterator[T]) -> list[T]:
    """Every event ``stream`` yields, in order; the stream is closed however it ends.

    An exception from the stream propagates (use ``pytest.raises``); events before it are lost,
    so use :func:`relay` to see the partial text of a failed call.
    """
    events: list[T] = []
    try:
        async for event in stream:
            events.append(event)
    finally:
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            await aclose()
    return events


async def relay(
    provider: Provider, request: GenerationRequest, sink: CollectingSink | None = None, **settings: Any
) -> tuple[RelayResult, CollectingSink]:
    """Relay one call of ``provider`` into a :class:`CollectingSink`, as the host's engine would.

    :param settings: :class:`streamhost.host.relay.RelaySettings` fields; by default nothing is coalesced
        (``coalesce_ms=0``) and failed calls are not retried (``max_retries=0``).
    :returns: the relay's result (whole text, usage, timings) and the sink holding every update.
    :raises streamhost.host.relay.GenerationFailed: the call failed; ``.error`` is the user-facing error
        and ``.result.text`` the text streamed before it.
    """
    from streamhost.host.relay import Relay, RelaySettings

    sink = sink if sink is not None else CollectingSink()
    options = {"label": f"{provider.name}/{request.model}", "coalesce_ms": 0, "max_retries": 0, **settings}
    result = await Relay(RelaySettings(**options)).run(lambda: provider.stream(request), sink)
    return result, sink


async def fetch_document(fetcher: Fetcher, request: FetchRequest) -> tuple[Any, list[str]]:
    """Run ``fetcher.fetch(request)``: the Document it ended with and the status messages before it.

    Fails (AssertionError) when the stream does not yield exactly one Document, last, as the
    host requires.
    """
    from streamhost.events import Status
    from streamhost.fetchers import Document

    events = await collect_events(fetcher.fetch(request))
    documents = [e for e in events if isinstance(e, Document)]
    assert len(documents) == 1 and events[-1] is documents[0], (
        f"fetcher {fetcher.name!r} must yield Status events and then exactly one Document, got {events!r}"
    )
    return documents[0], [e.message for e in events if isinstance(e, Status)]
