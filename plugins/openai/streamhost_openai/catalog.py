"""Which OpenAI models to list, which API each uses, and the on-disk cache of ``/v1/models``."""

from __future__ import annotations

import json
import re
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


def api_for(name: str, forced: str | None = None) -> str:
    """``chat`` or ``responses`` for this model: a forced choice, the curated one, else by name."""
    if forced in ("chat", "responses"):
        return forced
    if name in CURATED:
        return CURATED[name][0]
    return "responses" if _REASONING.match(name) else "chat"


def cache_path() -> Path:
    """Where ``streamhost models --refresh`` keeps what the endpoint listed."""
    import platformdirs

    return Path(platformdirs.user_cache_dir("streamhost")) / "openai-models.json"


def cache_stamp() -> int | None:
    """The cache file's modification time (None when there is none), to notice a refresh."""
    try:
        return cache_path().stat().st_mtime_ns
    except OSError:
        return None


def read_cache(base_url: str) -> list[str]:
    """The model ids the endpoint listed at the last refresh (empty when never refreshed)."""
    try:
        data = json.loads(cache_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    ids = data.get(base_url, []) if isinstance(data, dict) else []
    return [i for i in ids if isinstance(i, str)]


def write_cache(base_url: str, ids: list[str]) -> None:
    """Remember the endpoint's model ids."""
    path = cache_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            data = {}
    except (OSError, ValueError):
        data = {}
    data[base_url] = sorted(ids)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")


def model_infos(base_url: str, official: bool, extra: list[str]) -> list[ModelInfo]:
    """Curated (for the official endpoint) plus configured plus cached models, without repeats."""
    infos = []
    if official:
        infos = [ModelInfo(name=n, description=d, default=n == DEFAULT) for n, (_, d) in CURATED.items()]
    seen = {i.name for i in infos}
    cached = [i for i in read_cache(base_url) if not official or _LISTABLE.match(i)]
    for name in [*extra, *cached]:
        if name not in seen:
            seen.add(name)
            # Whether an arbitrary endpoint's model enforces JSON Schema is unknown: the host asks in words too.
            infos.append(ModelInfo(name=name, description="" if name in extra else "listed by the endpoint",
                                   supports_schema=official))
    return infos
