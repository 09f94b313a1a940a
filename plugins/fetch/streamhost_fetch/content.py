"""What a response holds: its kind (HTML, markdown, plain text, JSON) and its text, whatever the charset."""

from __future__ import annotations

import codecs
import json
import re
from typing import Literal

from streamhost import FetchError

Kind = Literal["html", "markdown", "text", "json"]

_KINDS: dict[str, Kind] = {
    "text/html": "html",
    "application/xhtml+xml": "html",
    "text/markdown": "markdown",
    "text/x-markdown": "markdown",
    "text/plain": "text",
    "application/json": "json",
}
_LATIN = {"iso8859-1", "cp1252", "ascii"}
"""Charsets servers send by default whatever the body is; a body that is valid UTF-8 is UTF-8."""
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.IGNORECASE)
_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def parse_content_type(header: str | None) -> tuple[str, str | None]:
    """``text/html; charset=UTF-8`` → (``text/html``, ``UTF-8``); a missing header gives ("", None)."""
    if not header:
        return "", None
    mime, *params = header.split(";")
    charset = None
    for param in params:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip("\"'") or None
    return mime.strip().lower(), charset


def kind_of(mime: str, url: str) -> Kind | None:
    """The kind a media type is read as; None for no type (sniff the body). Other types are refused."""
    if not mime:
        return None
    kind = _KINDS.get(mime) or ("json" if mime.endswith("+json") else None)
    if kind is None:
        raise FetchError(
            f"{url} is {mime}, which fetch_url cannot read: it reads HTML, plain text, markdown and JSON pages"
        )
    return kind


def sniff_kind(body: bytes, url: str) -> Kind:
    """The kind of a body served with no Content-Type: HTML, JSON or text; binary data is refused."""
    head = body[:1024].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html", b"<head", b"<body")) or b"<html" in head:
        return "html"
    if head[:1] in (b"{", b"[") and _is_json(body):
        return "json"
    if b"\x00" in body[:4096] and not body.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise FetchError(f"{url} has no Content-Type and looks binary: fetch_url reads HTML, text and JSON pages")
    return "text"


def _is_json(body: bytes) -> bool:
    try:
        json.loads(body)
    except ValueError:
        return False
    return True


def _codec(name: str | None) -> str | None:
    """The Python codec name for a charset label, or None when the label is unknown."""
    if not name:
        return None
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def _decode(body: bytes, codec: str) -> str | None:
    """``body`` decoded strictly, except a character cut in half at the end (a size cap) is dropped."""
    try:
        return codecs.getincrementaldecoder(codec)().decode(body, final=False)
    except (UnicodeDecodeError, LookupError):
        return None


def _detect(body: bytes) -> str | None:
    from charset_normalizer import from_bytes  # only for bodies whose charset nothing declared correctly

    best = from_bytes(body[:65536]).best()
    return _codec(best.encoding) if best is not None else None


def valid_text(text: str) -> str:
    """``text`` with every lone surrogate replaced by U+FFFD, so that it encodes as UTF-8.

    A page can carry one (a JSON ``"\\ud800"`` escape, a UTF-7 body), and a string that cannot be
    encoded stops the MCP stdio writer that would send it. A surrogate pair written as two escapes is
    joined into the character it stands for.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text


def decode_body(body: bytes, declared: str | None, kind: Kind) -> tuple[str, str]:
    """Decode a body: BOM, then the declared charset (header, else HTML meta) if the bytes agree, then detection.

    Returns (text, codec used); the text is always valid Unicode (see ``valid_text``).
    """
    text, codec = _decode_body(body, declared, kind)
    return valid_text(text), codec


def _decode_body(body: bytes, declared: str | None, kind: Kind) -> tuple[str, str]:
    for bom, codec in _BOMS:
        if body.startswith(bom):
            text = _decode(body, codec)
            if text is not None:
                return text, codec
    if declared is None and kind == "html":
        match = _META_CHARSET.search(body[:4096])
        declared = match.group(1).decode("ascii") if match else None
    codec = _codec(declared) or ("utf-8" if kind == "json" else None)
    candidates = [codec] if codec else []
    if codec in _LATIN or codec is None:
        candidates.insert(0, "utf-8")
    for candidate in dict.fromkeys(candidates):
        text = _decode(body, candidate)
        if text is not None:
            return text, candidate
    detected = _detect(body)
    if detected is not None:
        text = _decode(body, detected)
        if text is not None:
            return text, detected
    return body.decode(codec or "utf-8", errors="replace"), codec or "utf-8"


def pretty_json(text: str) -> str:
    """JSON text indented for reading; text that does not parse is returned as it came.

    ``\\uXXXX`` escapes are written out as characters, a lone surrogate as U+FFFD.
    """
    try:
        return valid_text(json.dumps(json.loads(text), indent=2, ensure_ascii=False))
    except ValueError:
        return text
