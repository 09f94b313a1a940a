"""The public error helpers a provider plugin uses."""

from __future__ import annotations

import pytest

from streamhost import retry_after_seconds


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
