"""Cutting long text into pieces that fit a model's input budget, at headings and paragraphs.

No tokenizer is downloaded: a token is estimated as four characters, which is close for English
prose and errs on the safe side for code and markup-heavy pages.
"""

from __future__ import annotations

import re

from ..host.pricing import CHARS_PER_TOKEN, estimate_tokens

__all__ = ["CHARS_PER_TOKEN", "estimate_tokens", "split_text"]
_HEADING = re.compile(r"^#{1,6}\s")


def split_text(text: str, max_chars: int) -> list[str]:
    """``text`` in consecutive pieces of at most ``max_chars`` characters, joined they give it back.

    Pieces end at a heading when one is near, else at a paragraph, else at a line, else at a space;
    only a run of ``max_chars`` characters with no space is cut mid-word.
    """
    if max_chars < 1:
        raise ValueError("max_chars must be ≥ 1")
    pieces: list[str] = []
    current = ""
    for block in _blocks(text, max_chars):
        starts_section = bool(_HEADING.match(block.lstrip("\n")))
        # A new section starts a new piece once the current one is half full: parts stay on topic.
        if current and (len(current) + len(block) > max_chars or (starts_section and len(current) > max_chars // 2)):
            pieces.append(current)
            current = ""
        current += block
    if current:
        pieces.append(current)
    return pieces


def _blocks(text: str, max_chars: int) -> list[str]:
    """Paragraphs (each with the blank lines that follow it), cut further where one is too long."""
    blocks = []
    for paragraph in re.split(r"(?<=\n\n)(?=[^\n])", text):
        if len(paragraph) <= max_chars:
            blocks.append(paragraph)
            continue
        for line in paragraph.splitlines(keepends=True):
            blocks.extend(_cut(line, max_chars))
    return [block for block in blocks if block]


def _cut(line: str, max_chars: int) -> list[str]:
    """A single over-long line in pieces that end at a space where there is one."""
    out = []
    while len(line) > max_chars:
        at = line.rfind(" ", max_chars // 2, max_chars)
        at = max_chars if at < 0 else at + 1
        out.append(line[:at])
        line = line[at:]
    out.append(line)
    return out
