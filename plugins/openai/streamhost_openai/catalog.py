"""Which OpenAI models to list, which API each uses, and the on-disk cache of ``/v1/models``."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import tempfile
from pathlib import Path

from streamhost import ModelInfo

# Curated so the list is useful without a network call; `streamhost models --refresh` adds the rest.
CURATED: dict[str, tuple[str, str]] = {
    "gpt-4.1-mini": ("chat", "fast, cheap, 1M context"),
    "gpt-4.1": ("chat", "strong general model, 1M context"),
    "gpt-4.1-nano": ("chat", "fastest, cheapest"),
    "gpt-4o": ("chat", "multimodal general model"),
    "gpt-4o-mini": ("chat", "small multimodal model"),
    "gpt-5": ("responses", "reasoning, strongest"),
    "gpt-5-mini": ("responses", "reasoning, faster"),
    "gpt-5-nano": ("responses", "reasoning, fastest"),
    "o3": ("responses", "reasoning"),
    "o3-pro": ("responses", "reasoning, slow and thorough"),
    "o4-mini": ("responses", "reasoning, fast"),
}
DEFAULT = "gpt-4.1-mini"
_REASONING = re.compile(r"^(o\d|gpt-5)")
_LISTABLE = re.compile(r"^(gpt-|o\d|chatgpt-)")
# An endpoint's first listed model becomes the default only if it can chat (Ollama lists embedders too).
_NOT_CHAT = re.compile(r"embed|rerank|whisper|tts|moderation|dall-e", re.IGNORECASE)
MAX_LISTED = 1000
"""At most this many of an endpoint's models are kept (an aggregator lists hundreds)."""
_DATED = r"(-\d{4}-\d{2}-\d{2})?$"
_DEEP_RESEARCH = re.compile(r"-deep-research" + _DATED)
# The models that run for minutes: a connection rarely lasts that long, a background response does.
_BACKGROUND = re.compile(r"^o3-pro" + _DATED + r"|-deep-research" + _DATED)
DEEP_RESEARCH_TOOLS = ("web_search_preview",)
"""What a deep-research model is given when its config names no tools: OpenAI refuses one without a data source."""


def api_for(name: str, forced: str | None = None) -> str:
    """``chat`` or ``responses`` for this model: a forced choice, the curated one, else by name."""
    if forced in ("chat", "responses"):
        return forced
    if name in CURATED:
        return CURATED[name][0]
    return "responses" if _REASONING.match(name) else "chat"


def background_for(name: str, setting: bool | None = None, api: str | None = None) -> bool:
    """Whether this model runs as a background response: the config's choice, else on for o3-pro and the
    ``*-deep-research`` models (dated variants too) unless the config chose the chat API (``api``)."""
    if setting is not None:
        return setting
    return api != "chat" and bool(_BACKGROUND.search(name))


def tools_for(name: str, setting: list[str] | None = None, api: str | None = None) -> list[dict[str, object]]:
    """The built-in tools sent with each request, by type: the config's list, else :data:`DEEP_RESEARCH_TOOLS`
    for a ``*-deep-research`` model unless the config chose the chat API (``api``), else none."""
    if setting is not None:
        names = setting
    else:
        names = list(DEEP_RESEARCH_TOOLS) if api != "chat" and _DEEP_RESEARCH.search(name) else []
    # The code interpreter needs a container; "auto" lets OpenAI make one per request.
    return [{"type": tool, "container": {"type": "auto"}} if tool == "code_interpreter" else {"type": tool}
            for tool in names]


_CACHE_DIR_FROM = ("XDG_CACHE_HOME", "HOME", "LOCALAPPDATA")
"""The environment variables platformdirs builds the cache directory from (Linux, macOS, Windows)."""


def cache_path() -> Path:
    """Where ``streamhost models --refresh`` keeps what the endpoint listed."""
    # Asked on every call (cache_stamp): platformdirs' answer, 15 µs, is kept for as long as what it is made of.
    return _cache_path(*(os.environ.get(name) for name in _CACHE_DIR_FROM))


@functools.lru_cache(maxsize=8)
def _cache_path(*environment: str | None) -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir("streamhost")) / "openai-models.json"


def cache_stamp() -> int | None:
    """The cache file's modification time (None when there is none), to notice a refresh."""
    try:
        return os.stat(cache_path()).st_mtime_ns
    except OSError:
        return None


def _read_all() -> dict[str, object]:
    try:
        data = json.loads(cache_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def read_cache(base_url: str) -> list[str]:
    """The model ids the endpoint listed at the last refresh, in its order (empty when never refreshed)."""
    ids = _read_all().get(base_url, [])
    return [i for i in ids if isinstance(i, str)] if isinstance(ids, list) else []


def was_listed(base_url: str) -> bool:
    """Whether the endpoint's models were ever listed (an endpoint serving none counts)."""
    return base_url in _read_all()


def write_cache(base_url: str, ids: list[str]) -> None:
    """Remember the endpoint's model ids: its order, no repeats, at most :data:`MAX_LISTED`."""
    data = _read_all()
    data[base_url] = list(dict.fromkeys(ids))[:MAX_LISTED]
    path = cache_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written whole then renamed: a reader (another host process) never sees half a file, and a warm-up
    # thread stopped mid-write at exit leaves the old file.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".openai-models-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(json.dumps(data, indent=2))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def model_infos(base_url: str, official: bool, extra: list[str]) -> list[ModelInfo]:
    """Curated (for the official endpoint) plus configured plus cached models, without repeats.

    The default is the curated one on the official endpoint; on any other, the first configured model, else
    the first the endpoint listed that can chat.
    """
    infos = []
    if official:
        infos = [ModelInfo(name=n, description=d, default=n == DEFAULT) for n, (_, d) in CURATED.items()]
    seen = {i.name for i in infos}
    cached = [i for i in read_cache(base_url) if not official or _LISTABLE.match(i)]
    default = None
    if not official:
        default = next(iter([*extra, *(n for n in cached if not _NOT_CHAT.search(n))]), None)
    for name in [*extra, *cached]:
        if name not in seen:
            seen.add(name)
            # Whether an arbitrary endpoint's model enforces JSON Schema is unknown: the host asks in words too.
            infos.append(ModelInfo(name=name, description="" if name in extra else "listed by the endpoint",
                                   supports_schema=official, default=name == default))
    return infos
