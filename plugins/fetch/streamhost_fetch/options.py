"""The ``[fetch]`` options this plugin declares, and the frozen settings made of their checked values."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from streamhost import Option

from .proxies import check_setting


def _default_user_agent() -> str:
    try:
        return f"streamhost-fetch/{version('streamhost-fetch')}"
    except PackageNotFoundError:
        return "streamhost-fetch"


def _hosts(value: list[str]) -> tuple[str, ...]:
    return tuple(item.strip().strip("[]").lower() for item in value)


def _one_line(value: str) -> str:
    if "\n" in value or "\r" in value:
        raise ValueError(f"must be a one-line string, got {value!r}")
    return value.strip()


MAX_REDIRECTS = 5
"""Redirect hops followed per fetch (each one re-checked by the SSRF guard)."""

OPTIONS = (
    Option("allow_private", bool, False, "Also reach loopback, private, link-local and ULA addresses (the cloud "
           "metadata address stays refused): the SSRF guard is on by default"),
    Option("allow_hosts", list[str], (), 'Host names, IP addresses or networks reachable even when not public, e.g. '
           '["127.0.0.1", "10.1.0.0/16"]', non_empty=True, check=_hosts),
    Option("max_bytes", int, 5_000_000, "Decoded bytes kept per page; the rest is not read and the result says it "
           "was cut", minimum=1),
    Option("timeout_s", float, 30.0, "One deadline for the whole fetch: robots.txt, every redirect hop, the body",
           above=0),
    Option("user_agent", str, "", "The User-Agent header; empty: streamhost-fetch/VERSION", check=_one_line),
    Option("robots", bool, True, "Honour robots.txt for fetches an assistant asks for (a user's own command "
           "skips it)"),
    Option("robots_timeout_s", float, 5.0, "How long robots.txt may take; one that cannot be read refuses the fetch",
           above=0),
    Option("proxy", str, "", '"": the proxy environment variables (HTTPS_PROXY, ...); "http://host:port": that '
           'proxy; "none": no proxy', check=check_setting),
)
"""What ``[fetch]`` sets for this plugin. Every key is optional."""


@dataclass(frozen=True)
class FetchSettings:
    """The checked ``[fetch]`` values (see OPTIONS for what each one does)."""

    allow_private: bool
    allow_hosts: tuple[str, ...]
    max_bytes: int
    timeout_s: float
    user_agent: str
    robots: bool
    robots_timeout_s: float
    proxy: str

    @classmethod
    def of(cls, options: Mapping[str, Any]) -> FetchSettings:
        """The settings of a fetcher's checked options (every declared key present)."""
        return cls(**{option.name: options[option.name] for option in OPTIONS})

    @property
    def agent(self) -> str:
        """The User-Agent actually sent."""
        return self.user_agent or _default_user_agent()
