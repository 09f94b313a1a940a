"""Making text from outside safe to show: secrets masked, lone surrogates repaired.

Everything an upstream or a plugin says can reach a tool result, a progress message, a log line or
the metrics. The relay passes provider statuses and error messages through :func:`scrub`; the
logging filter (:class:`ScrubFilter`) does the same for every log record. Generated text only gets
:func:`repair` (it is the answer; the model never saw a key).

A secret is the value of a watched variable (each provider's key variable, registered by the engine
with :func:`watch`, and at start-up every variable whose name says KEY, TOKEN, SECRET or PASSWORD),
or anything shaped like an API key (``sk-…``, ``Bearer …``, ``?key=…``). Values shorter than
:data:`MIN_SECRET_CHARS` are not masked: replacing every ``1234`` or ``test`` in a message would
mangle it more than it protects.
"""

from __future__ import annotations

import logging
import os
import re

MASK = "****"
MIN_SECRET_CHARS = 8

_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL", re.IGNORECASE)
# A bearer token must hold a digit, so that "Bearer responsibilities" in prose stays as it is.
_KEYLIKE = re.compile(
    r"(?P<sk>\b(?:sk|rk|pk)-[A-Za-z0-9_\-]{8,})"
    r"|(?P<bearer>\b[Bb]earer\s+)(?=[^\s\d]*\d)[A-Za-z0-9._~+/=\-]{16,}"
    r"|(?P<query>[?&](?:api[_-]?)?key=)[^&\s\"']{8,}"
)
_watched: set[str] = set()


def watch(*variables: str | None) -> None:
    """Treat the values of these environment variables as secrets from now on (None is skipped)."""
    _watched.update(name for name in variables if name)


def watch_environment() -> None:
    """Watch every variable set now whose name says it holds a key, token, secret or password."""
    watch(*(name for name in os.environ if _SECRET_NAME.search(name)))


def repair(text: str) -> str:
    """``text`` with every lone surrogate replaced by U+FFFD (a valid pair is joined), so it encodes as UTF-8.

    Cheap when there is nothing to repair (one encode); call it on every piece of outside text.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text


def scrub(text: str) -> str:
    """``text`` repaired (:func:`repair`), with secrets and key-shaped strings replaced by ``****``."""
    text = repair(text)
    values = {os.environ.get(name, "") for name in _watched}
    # Longest first: a key that contains another secret must be masked whole.
    for value in sorted((v for v in values if len(v) >= MIN_SECRET_CHARS), key=len, reverse=True):
        if value in text:
            text = text.replace(value, MASK)
    return _KEYLIKE.sub(_mask_match, text)


def _mask_match(match: re.Match[str]) -> str:
    return (match["bearer"] or match["query"] or "") + MASK


class ScrubFilter(logging.Filter):
    """A handler filter that scrubs each record's message and traceback before it is written."""

    def __init__(self) -> None:
        super().__init__()
        self._formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        """Replace the record's message (arguments merged in) and its traceback by scrubbed text."""
        record.msg = scrub(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = scrub(record.stack_info)
        return True
