"""Secrets masked and lone surrogates repaired, in text and in the log lines ``streamhost`` writes."""

from __future__ import annotations

import logging

import pytest

from streamhost.cli.common import setup_logging
from streamhost.host.scrub import repair, scrub, watch

KEY = "k3y-value-0123456789"


@pytest.fixture
def secret(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("STREAMHOST_TEST_PROVIDER_CREDS", KEY)
    watch("STREAMHOST_TEST_PROVIDER_CREDS")
    return KEY


def test_the_value_of_a_watched_variable_is_masked(secret):
    assert scrub(f"invalid key {secret}, try again") == "invalid key ****, try again"


def test_key_shaped_strings_are_masked_without_being_watched():
    text = scrub("sk-proj-abcdefgh12345678 in Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload and "
                 "?key=AIzaSyA1234567&x=1")
    assert text == "**** in Authorization: Bearer **** and ?key=****&x=1"


def test_short_values_and_ordinary_words_are_left_alone(monkeypatch):
    monkeypatch.setenv("STREAMHOST_TEST_SHORT", "abc123")
    watch("STREAMHOST_TEST_SHORT")
    prose = "code abc123, a task-list, sk-short, the Bearer responsibilities of a bearer token"
    assert scrub(prose) == prose


def test_repair_replaces_lone_surrogates_and_joins_pairs():
    assert repair("a\ud800b\ud83d\ude00c\udfff") == "a\ufffdb\U0001f600c\ufffd"
    plain = "nothing to do: é ü 日本"
    assert repair(plain) is plain


def test_log_lines_are_scrubbed_messages_arguments_and_tracebacks(secret, capsys):
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        setup_logging("info")
        try:
            raise RuntimeError(f"upstream said: bad key {secret} \ud800")
        except RuntimeError as exc:
            logging.getLogger("streamhost.test").error("call failed with %s", secret, exc_info=exc)
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    err = capsys.readouterr().err
    assert secret not in err
    assert "call failed with ****" in err and "upstream said: bad key **** \ufffd" in err
