"""A real PostgreSQL server for tests, started from the machine's server binaries; a fresh database per test.

``tests/conftest.py`` imports the two fixtures, so any test module can ask for them by name:

- ``pg_server``: the server's URL without a database name (one server per test process: xdist worker).
- ``pg_url``: the URL of a new, empty database on that server (one per test).

Skipped, with the reason, when the binaries (``/usr/lib/postgresql/*/bin``, or ``$STREAMHOST_PG_BIN``) or the
``asyncpg`` driver are missing. ``initdb`` refuses to run as root, so as root the server runs as ``nobody``.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

START_S = 60
USER = "streamhost"


def pg_bin() -> Path | None:
    """The directory of the newest installed PostgreSQL server binaries, or ``$STREAMHOST_PG_BIN``."""
    if os.environ.get("STREAMHOST_PG_BIN"):
        return Path(os.environ["STREAMHOST_PG_BIN"])
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    return found[-1].parent if found else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def running_server(binaries: Path) -> Iterator[str]:
    """Start a PostgreSQL server from ``binaries`` on a free loopback port in a temp dir; yield its URL without a
    database name; stop it and remove its files at the end (benchmarks use this too)."""
    root = Path(tempfile.mkdtemp(prefix="streamhost-pg-"))  # not under pytest's tmp: root-only, nobody can't enter
    as_user: list[str] = []
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        os.chown(root, nobody.pw_uid, nobody.pw_gid)
        as_user = ["runuser", "-u", "nobody", "--"]
    data, port = root / "data", _free_port()
    try:
        subprocess.run([*as_user, str(binaries / "initdb"), "-D", str(data), "-A", "trust", "-U", USER,
                        "--no-sync", "-E", "UTF8"], check=True, capture_output=True, timeout=START_S)
        # -N: several replicas, each with a pool, share the one server in the replica tests and benchmarks.
        started = subprocess.run([*as_user, str(binaries / "pg_ctl"), "-D", str(data), "-l", str(root / "log"),
                                  "-w", "-t", str(START_S), "-o", f"-h 127.0.0.1 -p {port} -k {root} -F -N 300",
                                  "start"], capture_output=True, text=True, timeout=START_S + 10)
        assert started.returncode == 0, started.stderr + (root / "log").read_text(errors="replace")
        yield f"postgresql://{USER}:not-needed@127.0.0.1:{port}"
    finally:
        subprocess.run([*as_user, str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True, timeout=START_S)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """A PostgreSQL server on loopback for this test process; its URL without a database name."""
    pytest.importorskip("asyncpg", reason="asyncpg (streamhost[postgres]) is not installed")
    binaries = pg_bin()
    if binaries is None or not (binaries / "pg_ctl").exists():
        pytest.skip("no PostgreSQL server binaries (/usr/lib/postgresql/*/bin or $STREAMHOST_PG_BIN)")
    with running_server(binaries) as url:
        yield url


def new_database(server: str) -> str:
    """Create an empty database on ``server`` (a ``pg_server`` URL); its URL."""
    name = "t_" + uuid.uuid4().hex[:12]
    port = server.rsplit(":", 1)[1]
    binaries = pg_bin()
    assert binaries is not None
    # createdb, not asyncpg: a sync fixture may run while an event loop is running in this thread.
    subprocess.run([str(binaries / "createdb"), "-h", "127.0.0.1", "-p", port, "-U", USER, name],
                   check=True, capture_output=True, timeout=START_S)
    return f"{server}/{name}"


@pytest.fixture
def pg_url(pg_server: str) -> str:
    """A new, empty database on the test process's PostgreSQL server; its URL."""
    return new_database(pg_server)
