"""Keeps stdout for the MCP wire: everything else that writes to fd 1 lands on stderr instead."""

from __future__ import annotations

import os
import sys


def claim_stdio() -> tuple[int, int]:
    """Take fds 0 and 1 for the wire and point the process's own stdin/stdout elsewhere.

    Call this before plugins are imported: a plugin that prints at import, a library that writes a
    banner (litellm does), or a child process inheriting fd 1 can then only reach stderr.
    Returns private duplicates (wire in, wire out) that only the transport uses.
    """
    sys.stdout.flush()
    wire_out = os.dup(1)
    wire_in = os.dup(0)
    os.dup2(2, 1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.set_inheritable(wire_out, False)
    os.set_inheritable(wire_in, False)
    sys.stdout = sys.stderr
    sys.stdin = open(os.devnull, encoding="utf-8")
    return wire_in, wire_out
