"""What surrounds a test of a child process: an isolated user (:class:`Home`), the ``streamhost``
program of this environment, and a loopback address where nothing listens. Standard library only."""

from __future__ import annotations

import os
import shutil
import socket
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Home", "closed_port_url", "make_home", "streamhost_executable"]


@dataclass
class Home:
    """An isolated user for a ``streamhost`` child process: its directory, config file and environment.

    Pass :attr:`env` as the child's whole environment (``serve(home.env)``, ``subprocess.run(...,
    env=home.env)``): it holds ``PATH``, a ``HOME`` and XDG config/state/cache/data dirs inside :attr:`root`,
    ``STREAMHOST_CONFIG`` naming :attr:`config`, and whatever variables you add (keys, base URLs).
    """

    root: Path
    config: Path
    env: dict[str, str] = field(default_factory=dict)

    def write_config(self, text: str) -> Path:
        """Replace the config file's TOML with ``text``; returns its path."""
        self.config.write_text(text, encoding="utf-8")
        return self.config

    @property
    def store(self) -> Path:
        """The store file the host keeps runs and threads in for this user (when ``[store]`` is on)."""
        return self.root / "data" / "streamhost" / "streamhost.db"

    @property
    def metrics(self) -> Path:
        """The metrics file the host writes for this user (when ``[metrics]`` is on)."""
        return self.root / "state" / "streamhost" / "metrics.jsonl"


def make_home(
    root: Path,
    *,
    plugins: Iterable[str] | None = None,
    env: Mapping[str, str] | None = None,
    config: str = "",
) -> Home:
    """An isolated user under ``root`` (e.g. pytest's ``tmp_path``), with ``config`` as its config file.

    :param plugins: distribution names to load (``STREAMHOST_LOAD_PLUGINS``); None loads every
        installed plugin, as a user's host does.
    :param env: variables to add to the child's environment, e.g. ``{"ACME_API_KEY": key}``. Nothing
        else of this process's environment is passed on but ``PATH``: no key or setting of the
        machine leaks into the test.
    :param config: the TOML text of the config file (empty by default).
    """
    config_file = root / "config.toml"
    home = Home(root=root, config=config_file, env={
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(root),
        "XDG_CONFIG_HOME": str(root / "config"),
        "XDG_STATE_HOME": str(root / "state"),
        "XDG_CACHE_HOME": str(root / "cache"),
        "XDG_DATA_HOME": str(root / "data"),
        "STREAMHOST_CONFIG": str(config_file),
    })
    if plugins is not None:
        home.env["STREAMHOST_LOAD_PLUGINS"] = ",".join(plugins)
    home.env.update(env or {})
    home.write_config(config)
    return home


def streamhost_executable() -> str:
    """The ``streamhost`` program of the running interpreter's environment (a venv's ``bin/streamhost``).

    :raises FileNotFoundError: streamhost is not installed as a program beside this interpreter or on ``PATH``.
    """
    beside = Path(sys.executable).with_name("streamhost")
    if beside.is_file():
        return str(beside)
    found = shutil.which("streamhost")
    if found is None:
        raise FileNotFoundError(f"no streamhost program beside {sys.executable} or on PATH: install streamhost "
                                "into the environment that runs the tests")
    return found


def closed_port_url(path: str = "/v1") -> str:
    """A loopback base URL on which nothing listens: connecting is refused at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # The port was free a moment ago and nothing binds it now: the kernel refuses connections to it.
    return f"http://127.0.0.1:{port}{path}"
