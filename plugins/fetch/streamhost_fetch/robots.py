"""robots.txt rules (RFC 9309): parse a file, and decide whether one path may be fetched.

The stdlib's ``urllib.robotparser`` knows neither ``*`` nor ``$`` in paths and lets the first
matching rule win; RFC 9309 asks for the longest match, with Allow winning a tie. Small enough to
write out here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

MAX_ROBOTS_BYTES = 512 * 1024
"""RFC 9309 asks crawlers to read at least 500 KiB; more than that is ignored."""


@dataclass
class _Group:
    agents: list[str] = field(default_factory=list)
    rules: list[tuple[bool, str]] = field(default_factory=list)
    """(allow, pattern) in file order."""


@dataclass(frozen=True)
class RobotsRules:
    """The parsed groups of one robots.txt. ``RobotsRules([])`` allows everything."""

    groups: tuple[tuple[tuple[str, ...], tuple[tuple[bool, str], ...]], ...] = ()

    @classmethod
    def parse(cls, text: str) -> RobotsRules:
        """Parse robots.txt text; unknown lines and rules outside a group are ignored."""
        groups: list[_Group] = []
        current: _Group | None = None
        for raw in text.splitlines():
            line = raw.split("#", 1)[0].strip()
            key, sep, value = line.partition(":")
            if not sep:
                continue
            key, value = key.strip().lower(), value.strip()
            if key == "user-agent":
                if current is None or current.rules:
                    current = _Group()
                    groups.append(current)
                current.agents.append(value.lower())
            elif key in ("allow", "disallow") and current is not None and value:
                current.rules.append((key == "allow", value))
        return cls(tuple((tuple(g.agents), tuple(g.rules)) for g in groups))

    def rules_for(self, user_agent: str) -> list[tuple[bool, str]]:
        """The rules of the groups naming this agent's product token, else those of ``*``."""
        token = user_agent.split("/", 1)[0].strip().lower()
        named = [rule for agents, rules in self.groups if token in agents for rule in rules]
        if named:
            return named
        return [rule for agents, rules in self.groups if "*" in agents for rule in rules]

    def allows(self, user_agent: str, url: str) -> bool:
        """Whether ``user_agent`` may fetch ``url``: the longest matching rule decides, Allow wins a tie."""
        parts = urlsplit(url)
        path = unquote(parts.path or "/") + (f"?{unquote(parts.query)}" if parts.query else "")
        if path == "/robots.txt":
            return True
        best: tuple[int, bool] | None = None
        for allow, pattern in self.rules_for(user_agent):
            if _pattern(pattern).match(path):
                candidate = (len(pattern), allow)
                if best is None or candidate > best:
                    best = candidate
        return best is None or best[1]


_compiled: dict[str, re.Pattern[str]] = {}


def _pattern(pattern: str) -> re.Pattern[str]:
    """A robots path pattern as a regex: ``*`` is any run of characters, a final ``$`` anchors the end."""
    regex = _compiled.get(pattern)
    if regex is None:
        anchored = pattern.endswith("$")
        body = unquote(pattern[:-1] if anchored else pattern)
        regex = re.compile(re.escape(body).replace(r"\*", ".*") + ("$" if anchored else ""))
        if len(_compiled) < 4096:
            _compiled[pattern] = regex
    return regex


def robots_url(url: str) -> str:
    """The robots.txt URL for the origin of ``url``."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}/robots.txt"
