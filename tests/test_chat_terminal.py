"""``streamhost chat`` on a real (pseudo-)terminal, read back through a terminal emulator.

rich's live display re-prints a view taller than the screen at every refresh, so the answer used
to stand two or more times in the scrollback, Ctrl-C or not. What a user scrolls back through must
hold the answer exactly once.
"""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path
from typing import Any

import pyte
import pytest

from streamhost.testing import Script

STREAMHOST = str(Path(sys.executable).with_name("streamhost"))
ROWS, COLS = 20, 100
LINES = [f"line {i:02d} of the answer\n\n" for i in range(40)]  # far taller than the screen


def _spawn_on_a_terminal(env: dict[str, str], model: str) -> tuple[subprocess.Popen[bytes], int]:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
    env = {**env, "TERM": "xterm-256color"}
    env.pop("COLUMNS", None)
    proc = subprocess.Popen([STREAMHOST, "chat", "-m", model, "hi"], stdin=slave, stdout=slave, stderr=slave,
                            env=env, start_new_session=True,
                            # as from a terminal, even when the suite runs as a background job (SIGINT ignored)
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    os.close(slave)
    return proc, master


def _read_until(master: int, done: Any, deadline_s: float = 60) -> bytes:
    """Everything the terminal received until ``done(output)`` holds or the child closes it."""
    out = b""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline and not done(out):
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child is gone and the terminal closed
                break
            if not chunk:
                break
            out += chunk
    return out


def _scrollback(output: bytes) -> list[str]:
    """The lines a user can scroll through afterwards: history and screen, as a terminal shows them."""
    screen = pyte.HistoryScreen(COLS, ROWS, history=10_000)
    pyte.ByteStream(screen).feed(output)
    history = ["".join(char.data for char in row.values()).rstrip() for row in screen.history.top]
    return history + [line.rstrip() for line in screen.display]


def _count(lines: list[str], text: str) -> int:
    return sum(text in line for line in lines)


@pytest.mark.parametrize("cancel", [False, True], ids=["finished", "ctrl-c"])
def test_chat_shows_the_answer_exactly_once(llm: Any, home: Any, cancel: bool) -> None:
    model = "tall-stalls" if cancel else "tall"
    llm.script(model, Script(tokens=LINES, delay_s=0.02, stall_after=len(LINES) if cancel else None))
    proc, master = _spawn_on_a_terminal(home.env, f"openai/{model}")
    try:
        output = _read_until(master, lambda out: b"line 39" in out)
        assert b"line 39" in output, output[-2000:]
        if cancel:
            # Every token is out and the upstream is holding the connection open: a user's Ctrl-C.
            assert llm.wait_for(lambda rs: any(r.model == model and r.tokens_sent == len(LINES) for r in rs), 30)
            os.killpg(proc.pid, signal.SIGINT)
        output += _read_until(master, lambda out: False)
        assert proc.wait(timeout=30) == (130 if cancel else 0)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    lines = _scrollback(output)
    for i in (0, 1, 20, 39):
        assert _count(lines, f"line {i:02d} of the answer") == 1, "\n".join(lines)
    assert _count(lines, "cancelled") == (1 if cancel else 0)


def test_chat_says_what_its_first_token_figure_measures(llm: Any, home: Any) -> None:
    import re

    llm.script("timed", Script(tokens=["a ", "b"]))
    result = subprocess.run([STREAMHOST, "chat", "-m", "openai/timed", "hi"], env=home.env, capture_output=True,
                            text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "a b"
    # The SDK import (0.6-1.8 s) is reported apart, not folded into the model's first-token time.
    assert re.search(r"first token \d+ ms from the request \(provider set up in \d+ ms\)", result.stderr), result.stderr


def test_chat_without_a_model_uses_what_a_compatible_endpoint_serves_on_first_use(llm: Any, home: Any) -> None:
    # A fresh user pointed OPENAI_BASE_URL at vLLM/Ollama and names no model anywhere.
    llm.set_models(["local-llama", "local-embed"])
    llm.script("local-llama", Script(tokens=["from ", "llama"]))
    result = subprocess.run([STREAMHOST, "chat", "hi"], env=home.env, capture_output=True, text=True, timeout=60,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "from llama"
    assert any(r.model == "local-llama" and r.api == "chat" for r in llm.requests)


def test_chat_refuses_a_huge_model_name_at_once_without_echoing_it(llm: Any, home: Any) -> None:
    huge = "x" * 100_000  # about what one command-line argument may hold
    result = subprocess.run([STREAMHOST, "chat", "-m", huge, "hi"], env=home.env, capture_output=True,
                            text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode != 0
    assert "100,000 characters long" in result.stderr and "at most 200" in result.stderr
    assert len(result.stderr) < 2_000 and not llm.requests
