"""The ``[fetch]`` config table, checked once into a frozen settings object."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from streamhost import ConfigError

from .proxies import check_setting


def _default_user_agent() -> str:
    try:
        return f"streamhost-fetch/{version('streamhost-fetch')}"
    except PackageNotFoundError:
        return "streamhost-fetch"


MAX_REDIRECTS = 5
"""Redirect hops followed per fetch (each one re-checked by the SSRF guard)."""


@dataclass(frozen=True)
class FetchSettings:
    """What ``[fetch]`` sets. Every key is optional; these are the defaults."""

    allow_private: bool = False
    """Reach loopback, private, link-local and ULA addresses (the cloud metadata address stays refused)."""
    allow_hosts: tuple[str, ...] = ()
    """Host names, IP addresses or networks (``10.0.0.0/8``) reachable even when not public."""
    max_bytes: int = 5_000_000
    """Decoded bytes kept per page; the rest is not read and the document says it was cut."""
    timeout_s: float = 30.0
    """One deadline for the whole fetch: robots.txt, every redirect hop, the body."""
    user_agent: str = ""
    """The User-Agent header; empty means ``streamhost-fetch/VERSION``."""
    robots: bool = True
    """Honour robots.txt for fetches an assistant asked for (a user's own command skips it)."""
    robots_timeout_s: float = 5.0
    """How long robots.txt may take; a robots.txt that cannot be read refuses the fetch."""
    proxy: str = ""
    """``""``: the proxy environment variables; ``"http://host:port"``: that proxy; ``"none"``: no proxy."""

    @property
    def agent(self) -> str:
        """The User-Agent actually sent."""
        return self.user_agent or _default_user_agent()


def _bool(table: Mapping[str, Any], key: str, default: bool) -> bool:
    value = table.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"fetch.{key} must be true or false, got {value!r}")
    return value


def _positive(table: Mapping[str, Any], key: str, default: float) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ConfigError(f"fetch.{key} must be a positive number, got {value!r}")
    return value


def _hosts(table: Mapping[str, Any]) -> tuple[str, ...]:
    value = table.get("allow_hosts", [])
    if not isinstance(value, (list, tuple)) or not all(isinstance(item, str) and item for item in value):
        raise ConfigError(f'fetch.allow_hosts must be a list of host names or IPs, e.g. ["127.0.0.1"], got {value!r}')
    return tuple(item.strip().strip("[]").lower() for item in value)


SETTING_KEYS = frozenset(f.name for f in fields(FetchSettings))
"""The ``[fetch]`` keys this plugin reads; the host warns about others (with file, line and the close match)."""


def parse_settings(table: Mapping[str, Any]) -> FetchSettings:
    """Check the ``[fetch]`` table and return its settings; a bad value raises ConfigError naming the key.

    Other keys are ignored here: ``[fetch]`` is shared with other fetcher plugins, and the host reports
    the keys no loaded fetcher declares.
    """
    user_agent = table.get("user_agent", "")
    if not isinstance(user_agent, str) or "\n" in user_agent or "\r" in user_agent:
        raise ConfigError(f"fetch.user_agent must be a one-line string, got {user_agent!r}")
    return FetchSettings(
        allow_private=_bool(table, "allow_private", False),
        allow_hosts=_hosts(table),
        max_bytes=int(_positive(table, "max_bytes", 5_000_000)),
        timeout_s=float(_positive(table, "timeout_s", 30.0)),
        user_agent=user_agent.strip(),
        robots=_bool(table, "robots", True),
        robots_timeout_s=float(_positive(table, "robots_timeout_s", 5.0)),
        proxy=check_setting(table.get("proxy", "")),
    )
