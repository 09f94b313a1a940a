"""What a tool may use of the running host: the engine's public services, and what they return.

The MCP server and the CLI give a tool the same :class:`Services`; the host implements it with its
engine (models, calls, the relay) and its page features (fetching with a cache, summarizing). The
limits below are the ones those services enforce, for tools to publish in their input schemas.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from .events import Event, Sink
from .fetchers import Document

MAX_MODEL_CHARS = 200
"""The longest model name or alias the services look up; a longer one is refused before any search."""
MAX_SCHEMA_NODES = 2_000
"""The most objects and arrays an ``output_schema`` may hold."""
MAX_SCHEMA_DEPTH = 32
"""The deepest an ``output_schema`` may nest objects and arrays."""
MAX_URLS = 20
"""The most pages one ``summarize`` call takes."""


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


@dataclass(frozen=True)
class ModelEntry:
    """One advertised model, as ``list_models`` and ``streamhost models`` show it."""

    id: str
    """``PROVIDER/NAME``."""
    provider: str
    description: str
    aliases: tuple[str, ...]
    default: bool
    key_configured: bool
    """Whether the variable holding its key is set (its value is never shown)."""
    key_variable: str | None
    streaming: bool
    supports_schema: bool

    def as_dict(self) -> dict[str, object]:
        """For JSON output and result metadata."""
        return {key: (list(v) if isinstance(v, tuple) else v) for key, v in self.__dict__.items()}


@dataclass
class Streamed:
    """A finished stream: the whole text and how it came."""

    text: str
    usage: dict[str, Any] | None
    """Token counts as the upstream reported them; None when it reported none."""
    ttft_ms: float | None
    """Milliseconds until the first text; None when no text came."""
    duration_ms: float

    def metadata(self) -> dict[str, Any]:
        """``usage``, ``ttft_ms`` and ``duration_ms``, for a result's metadata."""
        return {"usage": self.usage, "ttft_ms": _ms(self.ttft_ms), "duration_ms": _ms(self.duration_ms)}


@dataclass
class Generation(Streamed):
    """A finished model call."""

    model: str
    """The model that answered: ``PROVIDER/NAME``."""
    output: Any = None
    """With an ``output_schema``: the validated JSON value of the answer."""
    run: str | None = None
    """The id of the run that recorded the call (``streamhost runs show ID``); None without a store."""
    thread: str | None = None
    """The thread the answer was added to (give it as ``thread`` to follow up); None when the call had none."""
    status: str = "completed"
    """``completed``; ``running``: handed off, ``text`` is what came since the caller's last result and the run
    goes on (``Services.wait`` gets the rest); ``cancelled``: stopped by ``wait``, ``text`` is all it wrote."""

    def metadata(self) -> dict[str, Any]:
        """``model``, ``usage`` (None when the provider did not report it), ``ttft_ms`` (None when no text came)
        and ``duration_ms``; ``run`` and ``thread`` when there are, ``status`` when the call has not completed."""
        extra = {key: value for key, value in (("run", self.run), ("thread", self.thread)) if value}
        if self.status != "completed":
            extra["status"] = self.status
        return {"model": self.model, **super().metadata(), **extra}


@dataclass
class PageSummary:
    """What became of one URL of a summarize call."""

    url: str
    final_url: str | None = None
    title: str | None = None
    summary: str = ""
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """One entry of the result's ``results``."""
        return {"url": self.url, "final_url": self.final_url, "title": self.title, "summary": self.summary,
                "error": self.error}


@dataclass
class Summaries:
    """A finished summarize call: the sections as one text, and what became of each URL."""

    text: str
    results: list[PageSummary]
    model: str
    usage: dict[str, int] | None
    ttft_ms: float | None
    duration_ms: float
    error: str | None = None
    """Set when the call stopped early (a model error that every page would hit)."""
    run: str | None = None
    """The id of the run that recorded the call; None without a store."""

    def metadata(self) -> dict[str, Any]:
        """What the result reports besides the text: ``model``, ``usage``, ``ttft_ms``, ``duration_ms``,
        ``results`` (one entry per URL, in order) and ``error`` (why the call stopped early, else None)."""
        return {"model": self.model, "usage": self.usage, "ttft_ms": _ms(self.ttft_ms),
                "duration_ms": _ms(self.duration_ms), "results": [r.as_dict() for r in self.results],
                "error": self.error, **({"run": self.run} if self.run else {})}


class Services(Protocol):
    """The engine's public services: what a tool's ``run`` (and its listing methods) may use.

    Every call streams into the sink it is given, with the host's coalescing, heartbeats, deadline and
    retries, and closes its upstream request when the tool call is cancelled. Arguments are checked
    here as well: a wrong one is an :class:`InvalidArgumentError` naming it.
    """

    def models(self) -> list[ModelEntry]:
        """Every advertised model: the default first, then models with aliases, then the rest. Over HTTP, only
        those the caller's token may call."""
        ...

    def default_model(self) -> str | None:
        """The model used when a call names none (the config's ``default_model``, else a provider's default); None
        when there is none, or over HTTP when the caller's token may not call it."""
        ...

    def aliases(self) -> dict[str, str]:
        """The config's ``[aliases]``: alias → model (over HTTP, those whose model the caller's token may call)."""
        ...

    def providers(self) -> list[str]:
        """The provider prefixes that loaded (``openai`` serves ``openai/NAME``), in load order."""
        ...

    def schemes(self) -> list[str]:
        """The URL schemes the loaded fetchers serve, sorted; empty when no fetcher plugin loaded."""
        ...

    def summary_model(self) -> str | None:
        """The model ``summarize`` uses when none is given: ``[summarize] model``, else the default model."""
        ...

    async def generate(self, prompt: str, sink: Sink, *, model: str | None = None, system: str | None = None,
                       temperature: float | None = None, max_tokens: int | None = None,
                       output_schema: dict[str, Any] | None = None, thread: str | None = None,
                       files: list[str] | None = None) -> Generation:
        """Ask a model, streaming its answer into ``sink`` (with ``output_schema``: statuses only, and the
        answer validated against it).

        ``thread`` continues an earlier conversation (an id from an earlier result, or ``"new"`` to start one):
        the model is sent its earlier turns, and the answer is added to it. ``files`` are paths or globs of
        local text files, read by the host (only under the allowed roots) and sent before the prompt.

        :raises StreamhostError: before anything streamed (an unknown model, a missing key, a bad argument).
        :raises CallFailed: the call failed later; ``.text`` is what streamed before.
        """
        ...

    async def wait(self, run: str, sink: Sink, *, cancel: bool = False) -> Generation:
        """The rest of a handed-off run (``Generation.status == "running"``), streamed into ``sink`` from where its
        caller left off; the whole answer once it ends, or ``status="running"`` again with the new text when it
        runs past the hand-off time once more. ``cancel`` stops the run instead (``status="cancelled"``).

        :raises StreamhostError: an unknown run, or no store.
        :raises CallFailed: the run failed or was interrupted; ``.text`` is what it wrote.
        """
        ...

    async def stream(self, open_stream: Callable[[], AsyncIterator[Event]], sink: Sink, *, label: str) -> Streamed:
        """Relay the events of a tool's own stream into ``sink``, as a model's are relayed.

        :param open_stream: starts the stream (called again for a retry, after a retryable error before
            any text); it yields :class:`TextDelta`, :class:`Status` and :class:`Usage` events.
        :param label: what the stream is, for heartbeats and errors (``waiting for LABEL (12 s)``).
        :raises CallFailed: the stream failed; ``.text`` is what streamed before.
        """
        ...

    async def fetch(self, url: str, sink: Sink, *, format: str = "markdown") -> Document:
        """The page at ``url`` in ``format`` (one of ``FORMATS``), with statuses sent to ``sink``; pages
        fetched in the last minutes come from a cache.

        :raises StreamhostError: a :class:`FetchError` (or another error) whose message names the URL.
        """
        ...

    async def summarize(self, urls: list[str], sink: Sink, *, query: str | None = None,
                        model: str | None = None) -> Summaries:
        """Summarize 1 to ``MAX_URLS`` pages in order, each summary streamed into ``sink`` as it is written.

        A page that fails gets its error under its heading and the others go on.

        :raises StreamhostError: before anything streamed (bad URLs, an unknown model, a missing key).
        """
        ...
