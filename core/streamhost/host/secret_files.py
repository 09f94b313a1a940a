"""Which local files look like secrets (``.env``, private keys, credential stores), and ``[context] allow``.

``files`` never sends one of these to a model unless the user allowed it by path or glob: a calling
agent passing ``**/*`` must not leak a deploy key or a cloud credential file by accident.
"""

from __future__ import annotations

import re
from pathlib import PurePath

from .file_globs import glob_regex

_NAMES = frozenset({
    ".env", ".netrc", "_netrc", ".pgpass", ".npmrc", ".pypirc", ".git-credentials", ".htpasswd",
    "credentials", "credentials.json",
})
_SUFFIXES = (".pem", ".key", ".kdbx", ".p12", ".pfx")
_IN_DIR = {".docker": "config.json", ".kube": "config"}
"""A directory and the credential file it holds (``~/.docker/config.json`` keeps registry logins)."""
_SSH_PUBLIC = frozenset({"known_hosts", "authorized_keys"})
_PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----")
"""PEM, OpenSSH and PGP private keys: each begins with a line like this whatever the file is called."""


def secret_name(path: PurePath) -> str | None:
    """Why ``path`` is a well-known secret file by its name, or None when its name is innocent."""
    name = path.name.lower()
    parent = path.parent.name.lower()
    if name in _NAMES or name.startswith(".env."):
        return "a credentials file"
    if name.endswith(_SUFFIXES):
        return "a key or key store"
    # id_rsa, id_ed25519, id_ecdsa_sk: private keys have no suffix; id_rsa.pub and id_mapping.py do.
    if name.startswith("id_") and "." not in name:
        return "a private key"
    if parent == ".ssh" and not name.endswith(".pub") and name not in _SSH_PUBLIC:
        return "a file of ~/.ssh"
    if _IN_DIR.get(parent) == name:
        return "a credentials file"
    if name.startswith("service-account") and name.endswith(".json"):
        return "a cloud service account key"
    return None


def holds_private_key(text: str) -> bool:
    """Whether ``text`` contains a PEM/OpenSSH/PGP private key block."""
    return _PRIVATE_KEY.search(text) is not None


class Allowed:
    """``[context] allow``: paths or globs of secret-looking files that may be sent all the same.

    An absolute entry matches the file's resolved path; a relative one matches its path relative to
    its root, and an entry without a ``/`` also matches the file name anywhere (``.env.example``).
    """

    def __init__(self, entries: tuple[str, ...]) -> None:
        self._absolute = [glob_regex(entry, hidden=True) for entry in entries if entry.startswith("/")]
        self._relative = [glob_regex(entry, hidden=True) for entry in entries if not entry.startswith("/")]
        self._names = [glob_regex(entry, hidden=True) for entry in entries if "/" not in entry]

    def __contains__(self, item: tuple[str, str]) -> bool:
        """``(resolved_path, shown_path) in allowed``."""
        resolved, shown = item
        name = PurePath(resolved).name
        return (any(rx.fullmatch(resolved) for rx in self._absolute)
                or any(rx.fullmatch(shown) for rx in self._relative)
                or any(rx.fullmatch(name) for rx in self._names))
