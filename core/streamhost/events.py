"""The typed events a provider or fetcher stream yields, in the order they happen."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class TextDelta:
    """A piece of generated text, to be appended to what came before."""

    text: str


@dataclass(frozen=True)
class Usage:
    """Token counts as the upstream reported them; any field may be unknown (None)."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The counts that are known, for results and metrics."""
        out: dict[str, Any] = {
            key: value
            for key, value in (
                ("input_tokens", self.input_tokens),
                ("output_tokens", self.output_tokens),
                ("total_tokens", self.total_tokens),
            )
            if value is not None
        }
        out.update(self.details)
        return out


@dataclass(frozen=True)
class Status:
    """A human-readable word on what is happening ("connecting", "extracting"), not part of the text."""

    message: str


Event = TextDelta | Usage | Status
"""What a provider's stream yields."""
