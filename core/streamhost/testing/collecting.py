"""Run a provider's or fetcher's stream the way the host does and keep what came out, to assert on."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from streamhost.events import Status, TextDelta, Update, Usage, close_stream
from streamhost.fetchers import Document
from streamhost.host.sinks import CollectingSink

if TYPE_CHECKING:
    from streamhost.fetchers import Fetcher, FetchRequest
    from streamhost.host.relay import RelayResult
    from streamhost.providers import GenerationRequest, Provider

__all__ = ["CollectingSink", "Outcome", "Update", "collect_events", "collect_outcome", "fetch_document", "relay"]

T = TypeVar("T")


@dataclass
class Outcome:
    """What a provider's or fetcher's stream yielded, in order, and the exception it ended with."""

    events: list[Any] = field(default_factory=list)
    error: Exception | None = None
    """The exception the stream raised (a ``ProviderError``, ``FetchError``, …); None when it finished."""

    @property
    def deltas(self) -> list[str]:
        """The text of each ``TextDelta``, in order."""
        return [e.text for e in self.events if isinstance(e, TextDelta)]

    @property
    def text(self) -> str:
        """The text streamed before the stream ended (however it ended)."""
        return "".join(self.deltas)

    @property
    def usages(self) -> list[Usage]:
        """The ``Usage`` events."""
        return [e for e in self.events if isinstance(e, Usage)]

    @property
    def statuses(self) -> list[str]:
        """The messages of the ``Status`` events."""
        return [e.message for e in self.events if isinstance(e, Status)]

    @property
    def document(self) -> Document | None:
        """The ``Document`` a fetch ended with; None when there is none (it failed)."""
        documents = [e for e in self.events if isinstance(e, Document)]
        assert len(documents) <= 1 and (not documents or self.events[-1] is documents[0]), (
            f"a fetcher must yield Status events and then exactly one Document, got {self.events!r}"
        )
        return documents[0] if documents else None

    def unwrap(self) -> Outcome:
        """This outcome, after raising the exception the stream ended with, if any."""
        if self.error is not None:
            raise self.error
        return self


async def collect_events(stream: AsyncIterator[T]) -> list[T]:
    """Every event ``stream`` yields, in order; the stream is closed however it ends.

    An exception from the stream propagates (use ``pytest.raises``); events before it are lost:
    :func:`collect_outcome` keeps them with the exception, :func:`relay` shows what the host makes
    of a failed call.
    """
    events: list[T] = []
    try:
        async for event in stream:
            events.append(event)
    finally:
        await close_stream(stream)
    return events


async def collect_outcome(stream: AsyncIterator[Any]) -> Outcome:
    """Run ``stream`` to its end: every event it yielded and the exception it ended with, if any.

    The stream is closed however it ends. Only an ``Exception`` is kept: a cancellation
    (``CancelledError``) or ``KeyboardInterrupt`` propagates, as it must from a plugin's stream.
    """
    outcome = Outcome()
    try:
        async for event in stream:
            outcome.events.append(event)
    except Exception as exc:
        outcome.error = exc
    finally:
        await close_stream(stream)
    return outcome


async def relay(
    provider: Provider, request: GenerationRequest, sink: CollectingSink | None = None, **settings: Any
) -> tuple[RelayResult, CollectingSink]:
    """Relay one call of ``provider`` into a :class:`CollectingSink`, as the host's engine would.

    :param settings: :class:`streamhost.host.relay.RelaySettings` fields; by default nothing is coalesced
        (``coalesce_ms=0``) and failed calls are not retried (``max_retries=0``).
    :returns: the relay's result (whole text, usage, timings) and the sink holding every update.
    :raises streamhost.CallFailed: the call failed; ``.error`` is the user-facing error
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
    events = await collect_events(fetcher.fetch(request))
    documents = [e for e in events if isinstance(e, Document)]
    assert len(documents) == 1 and events[-1] is documents[0], (
        f"fetcher {fetcher.name!r} must yield Status events and then exactly one Document, got {events!r}"
    )
    return documents[0], [e.message for e in events if isinstance(e, Status)]
