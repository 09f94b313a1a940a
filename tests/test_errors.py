"""The public error helpers a provider plugin uses, and the one that closes a stream."""

from __future__ import annotations

import pytest

from streamhost import (
    AuthenticationError,
    ProviderError,
    RateLimitError,
    TextDelta,
    UpstreamServerError,
    close_stream,
    error_for_status,
    retry_after_seconds,
)


@pytest.mark.parametrize(("headers", "seconds"), [
    ({"retry-after": "2"}, 2.0),
    ({"retry-after": "1.5"}, 1.5),
    ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),  # the finer header wins
    ({"retry-after": "Wed, 21 Oct 2026 07:28:00 GMT"}, None),  # an HTTP date is not read
    ({"retry-after": "-3"}, None),
    ({"retry-after": "nan"}, None),
    ({"retry-after": "inf"}, None),
    ({}, None),
    (None, None),
])
def test_retry_after_seconds(headers, seconds):
    assert retry_after_seconds(headers) == seconds


@pytest.mark.parametrize(("status", "kind", "says"), [
    (401, AuthenticationError, "acme/m: the upstream refused the API key (HTTP 401): no — check ACME_KEY"),
    (403, AuthenticationError, "(HTTP 403): no — check ACME_KEY"),
    (429, RateLimitError, "acme/m: rate limited (HTTP 429): no"),
    (404, ProviderError, "acme/m: not found at https://acme.test/v1 (HTTP 404): no — list the models"),
    (500, UpstreamServerError, "acme/m: upstream server error (HTTP 500): no"),
    (503, UpstreamServerError, "(HTTP 503)"),
    (400, ProviderError, "acme/m: request rejected (HTTP 400): no"),
])
def test_error_for_status_picks_the_class_and_the_words(status, kind, says):
    error = error_for_status(status, "no", label="acme/m", where="https://acme.test/v1", key_variable="ACME_KEY",
                             headers={"retry-after": "3"}, not_found="list the models")
    assert type(error) is kind
    assert says in error.message
    assert error.status == status
    # The host retries a 429 or a 5xx (before any text), after the wait the upstream asked for; nothing else.
    assert error.retryable == (status == 429 or status >= 500)
    assert getattr(error, "retry_after", None) == (3.0 if error.retryable else None)


def test_error_for_status_without_a_key_variable_or_hint():
    assert error_for_status(401, "no", label="x", where="w").message.endswith("— check the API key")
    assert error_for_status(404, "no", label="x", where="w").message == "x: not found at w (HTTP 404): no"


async def _stream(closed: list[str]):
    try:
        yield TextDelta("a")
        yield TextDelta("b")
    finally:
        closed.append("closed")


class _BareIterator:
    """An async iterator with no ``aclose``: there is nothing to close."""

    def __aiter__(self):
        return self

    async def __anext__(self):
        raise StopAsyncIteration


@pytest.mark.anyio
async def test_close_stream_closes_a_generator_left_early_and_accepts_any_iterator():
    closed: list[str] = []
    stream = _stream(closed)
    assert await anext(stream) == TextDelta("a")
    await close_stream(stream)
    assert closed == ["closed"]
    await close_stream(_BareIterator())
    await close_stream(None)
