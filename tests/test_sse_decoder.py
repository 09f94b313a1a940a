"""The SSE decoder on its own: every way a body can be cut into reads gives the same events."""

from __future__ import annotations

import pytest

from streamhost import sse
from streamhost.sse import EventTooLarge, SSEDecoder

BODY = ('data: {"a":1}\n\n'
        ": keep-alive comment\n\n"
        "event: response.output_text.delta\nid: 7\nretry: 100\nunknown: x\n"
        'data: {"b":"wörld ✓"}\n\n'
        "data: line one\ndata: line two\n\n"
        "event: ping\n\n"
        "data:\n\n"
        "data:    \n\n"
        "data:no-space\n\n"
        "data: [DONE]\n\n").encode()
EVENTS = ['{"a":1}', '{"b":"wörld ✓"}', "line one\nline two", "no-space", "[DONE]"]


def decode(chunks: list[bytes]) -> list[str]:
    decoder = SSEDecoder()
    return [data for chunk in chunks for data in decoder.feed(chunk)]


def test_events_comments_and_keep_alives():
    assert decode([BODY]) == EVENTS


@pytest.mark.parametrize("ending", [b"\r\n", b"\r"], ids=["crlf", "lone-cr"])
def test_every_line_ending_reads_the_same(ending):
    assert decode([BODY.replace(b"\n", ending)]) == EVENTS


@pytest.mark.parametrize("ending", [b"\n", b"\r\n", b"\r"], ids=["lf", "crlf", "lone-cr"])
def test_any_split_into_reads_gives_the_same_events(ending):
    # Every cut point: inside a CRLF, inside a multi-byte character, inside "data:", between events.
    body = BODY.replace(b"\n", ending)
    for cut in range(1, len(body)):
        assert decode([body[:cut], body[cut:]]) == EVENTS, cut


def test_one_byte_per_read():
    body = BODY.replace(b"\n", b"\r\n")
    assert decode([body[i:i + 1] for i in range(len(body))]) == EVENTS


def test_an_event_the_body_cut_before_its_empty_line_is_not_dispatched():
    assert decode([b'data: {"a":1}\n\ndata: {"half":']) == ['{"a":1}']
    assert decode([b'data: {"a":1}\n\ndata: {"b":2}\n']) == ['{"a":1}']


def test_bytes_that_are_not_utf8_become_replacement_characters():
    assert decode([b'data: {"t":"a\xffb"}\n\n']) == ['{"t":"a\ufffdb"}']
    # A character split between reads is not a bad byte.
    text = '{"t":"😀"}'.encode()
    assert decode([b"data: " + text[:7], text[7:] + b"\n\n"]) == ['{"t":"😀"}']


def test_a_lone_surrogate_escape_passes_through_as_text():
    assert decode([b'data: {"t":"\\ud800"}\n\n']) == ['{"t":"\\ud800"}']


def test_an_endless_line_or_event_is_refused(monkeypatch):
    monkeypatch.setattr(sse, "MAX_EVENT_BYTES", 64)
    decoder = SSEDecoder()
    with pytest.raises(EventTooLarge):
        for _ in range(10):
            decoder.feed(b"x" * 10)
    decoder = SSEDecoder()
    with pytest.raises(EventTooLarge):
        for _ in range(10):
            decoder.feed(b"data: " + b"y" * 10 + b"\n")
    assert decode([b"data: " + b"z" * 60 + b"\n\n"]) == ["z" * 60]  # under the limit: fine
