"""Local files as context for ``generate``: the calling agent passes paths and globs, not contents.

Safety first: a file is sent only when its resolved path (symlinks followed) lies under an allowed root
(the client's MCP roots, else the working directory, plus ``[context] roots``), it is a regular text
file within the caps, and it is not a well-known secret file unless ``[context] allow`` names it. A
device, FIFO or socket is refused from its ``stat`` without being opened (opening a FIFO blocks).
Everything that touches the disk runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import os
import stat
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InvalidArgumentError
from .config import ContextSettings
from .file_globs import WalkLimitError, expand, has_magic, split_glob
from .secret_files import Allowed, holds_private_key, secret_name

WALK_LIMIT = 10_000
"""Directory entries one glob may look at before it stops with an error."""
SNIFF = 1024
"""Bytes looked at to tell text from binary before the whole file is read."""
MAX_PATTERN = 4096


@dataclass(frozen=True)
class ContextFile:
    """One local file read for a model."""

    path: str
    """The resolved absolute path (bytes of a name that are not UTF-8 shown as U+FFFD, so it can be stored)."""
    shown: str
    """The path as the user reads it: relative to its root when under one, else absolute."""
    size: int
    """Bytes read."""
    sha256: str
    """Hex digest of the bytes read."""
    text: str


@dataclass
class Gathered:
    """What :func:`gather_files` found: the files to send, and notes on what a glob skipped (status lines)."""

    files: list[ContextFile] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


async def client_or_default_roots(client_roots: Callable[[], Awaitable[list[Path]]] | None,
                                  settings: ContextSettings, cwd: Path | None = None) -> list[Path]:
    """The allowed roots, resolved and existing, the first one being where relative paths start.

    The client's MCP roots when it offers any (``client_roots`` returns them; an empty list means it
    offers none), else the working directory; then ``[context] roots`` (``~`` expanded, relative ones
    from the working directory).
    """
    offered = await client_roots() if client_roots is not None else []
    return allowed_roots(offered or [cwd or Path.cwd()], settings, cwd)


def allowed_roots(roots: list[Path], settings: ContextSettings, cwd: Path | None = None) -> list[Path]:
    """``roots`` and then ``[context] roots``, resolved (symlinks followed), existing directories, no repeats."""
    cwd = cwd or Path.cwd()
    found: list[Path] = []
    for candidate in [*roots, *(Path(root).expanduser() for root in settings.roots)]:
        try:
            root = (cwd / candidate).resolve(strict=True)
        except (OSError, RuntimeError):  # a root that does not exist allows nothing
            continue
        if root.is_dir() and root not in found:
            found.append(root)
    return found


async def gather_files(patterns: Any, roots: list[Path], settings: ContextSettings) -> Gathered:
    """Check ``patterns`` (the client's ``files``), expand globs and read the files, off the event loop.

    :param roots: the client's roots or the working directory (:func:`client_or_default_roots`); relative
        paths start at the first. ``[context] roots`` from ``settings`` are allowed too, whoever built the list.
    :raises InvalidArgumentError: a pattern is malformed, names nothing, names a file that may not be
        sent, or the files exceed a cap; the message says which and what to do.
    """
    checked = _check_patterns(patterns, settings)

    def run() -> Gathered:
        usable = allowed_roots(roots, settings)
        if not usable:
            raise InvalidArgumentError("files: no allowed root exists (the working directory and [context] roots "
                                       "are gone): add an existing directory to [context] roots")
        return _Gatherer(usable, settings).run(checked)

    return await asyncio.to_thread(run)


def context_block(files: list[ContextFile]) -> str:
    """The text a model receives before the prompt: each file between tags of its own, then a lead-in line.

    Each file's tag ends with the start of its SHA-256 (``<file-9f86d081 ...>`` ... ``</file-9f86d081>``),
    lengthened until the file's text does not contain it: no file can close its own block early and
    pass what follows as the user's words, whatever it holds.
    """
    parts = [f"The user attached {len(files)} local file{'s' if len(files) != 1 else ''}. Each one is between "
             "<file-ID ...> and </file-ID>, where ID is unique to that file."]
    for item in files:
        tag = _tag(item)
        text = item.text if item.text.endswith("\n") or not item.text else item.text + "\n"
        parts.append(f'<{tag} path="{_attribute(item.shown)}" bytes="{item.size}">\n{text}</{tag}>')
    parts.append("The user's request follows.")
    return "\n\n".join(parts) + "\n\n"


def _tag(item: ContextFile) -> str:
    for length in range(8, len(item.sha256) + 1, 4):
        tag = f"file-{item.sha256[:length]}"
        if f"</{tag}>" not in item.text:
            return tag
    counter = 0
    while f"</file-{item.sha256}-{counter}>" in item.text:
        counter += 1
    return f"file-{item.sha256}-{counter}"


def _attribute(text: str) -> str:
    return html.escape(text, quote=True).replace("\n", "&#10;").replace("\r", "&#13;")


def display(path: str) -> str:
    """``path`` fit for a message: bytes of a file name that are not UTF-8 become U+FFFD."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _check_patterns(patterns: Any, settings: ContextSettings) -> list[str]:
    example = 'e.g. ["src/app.py", "docs/**/*.md"]'
    if isinstance(patterns, str) or not isinstance(patterns, list | tuple):
        raise InvalidArgumentError(f"files must be a list of paths or globs, {example}; got "
                                   f"{type(patterns).__name__}")
    if not patterns:
        raise InvalidArgumentError(f"files is empty: give at least one path or glob, {example}, or leave it out")
    if len(patterns) > settings.max_files:
        raise InvalidArgumentError(f"files has {len(patterns)} entries; at most {settings.max_files} files are sent "
                                   "(raise [context] max_files, or use a glob)")
    for index, pattern in enumerate(patterns):
        if not isinstance(pattern, str) or not pattern.strip():
            raise InvalidArgumentError(f"files[{index}] must be a non-empty path or glob, {example}; got "
                                       f"{pattern!r}"[:300])
        if "\0" in pattern or len(pattern) > MAX_PATTERN:
            raise InvalidArgumentError(f"files[{index}] is not a usable path (a NUL byte, or longer than "
                                       f"{MAX_PATTERN} characters)")
    return list(patterns)


class _Gatherer:
    """One ``files`` argument resolved and read (runs in a worker thread)."""

    def __init__(self, roots: list[Path], settings: ContextSettings) -> None:
        self.roots = roots
        self.settings = settings
        self.allowed = Allowed(settings.allow)
        self.result = Gathered()
        self.seen: set[str] = set()
        self.total = 0

    def run(self, patterns: list[str]) -> Gathered:
        for pattern in patterns:
            if has_magic(pattern):
                self._glob(pattern)
            else:
                self._explicit(pattern)
        if not self.result.files:
            raise InvalidArgumentError("files: nothing left to send. " + " ".join(self.result.notes))
        return self.result

    # ------------------------------------------------------------------ naming files

    def _absolute(self, pattern: str) -> str:
        path = os.path.expanduser(pattern)
        return path if os.path.isabs(path) else os.path.join(self.roots[0], path)

    def _explicit(self, pattern: str) -> None:
        given = self._absolute(pattern)
        try:
            resolved = Path(given).resolve(strict=True)
        except FileNotFoundError:
            raise InvalidArgumentError(f"{display(pattern)} does not exist (relative paths start at "
                                       f"{display(str(self.roots[0]))})") from None
        except (OSError, RuntimeError) as exc:
            raise InvalidArgumentError(f"{display(pattern)} cannot be read: {exc.__class__.__name__}") from None
        self._take(pattern, resolved, given)

    def _glob(self, pattern: str) -> None:
        base, segments = split_glob(os.path.normpath(self._absolute(pattern)))
        try:
            resolved_base = Path(base).resolve(strict=True)
        except (OSError, RuntimeError):
            raise InvalidArgumentError(f"{display(pattern)} matched nothing: {display(base)} does not "
                                       "exist") from None
        if self._root_of(resolved_base) is None and not any(root.is_relative_to(resolved_base)
                                                             for root in self.roots):
            raise self._outside(pattern)
        try:
            matches = expand(str(resolved_base), segments, WALK_LIMIT)
        except WalkLimitError:
            raise InvalidArgumentError(f"{display(pattern)} looks at more than {WALK_LIMIT} directory entries: "
                                       "narrow it (e.g. src/**/*.py rather than **/*)") from None
        skipped: dict[str, list[str]] = {}
        sent = 0
        for match in matches:
            try:
                resolved = Path(match).resolve(strict=True)
            except (OSError, RuntimeError):  # a dangling symlink: nothing to read
                continue
            if resolved.is_dir():
                continue  # "src/*" matches directories too; only their files were asked for
            try:
                self._take(pattern, resolved, match)
                sent += 1
            except _Skip as skip:
                skipped.setdefault(skip.reason, []).append(self._shown(resolved))
        for reason, shown_paths in skipped.items():
            listed = ", ".join(map(display, shown_paths[:5])) + (", ..." if len(shown_paths) > 5 else "")
            self.result.notes.append(f"{display(pattern)}: skipped {len(shown_paths)} {reason}: {listed}")
        if not sent and not skipped:
            raise InvalidArgumentError(f"{display(pattern)} matched no file")

    def _take(self, pattern: str, resolved: Path, given: str) -> None:
        """Check and read one file named by ``pattern`` (once, however many patterns name it)."""
        path = str(resolved)
        if path in self.seen:
            return
        shown = self._shown(resolved)
        try:
            self._refuse(pattern, resolved, given, shown)
            if len(self.result.files) >= self.settings.max_files:
                raise InvalidArgumentError(f"files names more than {self.settings.max_files} files: narrow the globs "
                                           "or raise [context] max_files")
            self.seen.add(path)
            self.result.files.append(self._read(pattern, path, shown))
        except OSError as exc:  # removed or made unreadable while we looked
            raise InvalidArgumentError(f"{display(shown)} cannot be read: {exc.strerror or exc}") from None

    # ------------------------------------------------------------------ refusing files

    def _root_of(self, resolved: Path) -> Path | None:
        return next((root for root in self.roots if resolved.is_relative_to(root)), None)

    def _shown(self, resolved: Path) -> str:
        root = self._root_of(resolved)
        return str(resolved.relative_to(root)) if root is not None else str(resolved)

    def _outside(self, pattern: str) -> InvalidArgumentError:
        roots = ", ".join(display(str(root)) for root in self.roots)
        return InvalidArgumentError(f"{display(pattern)} is outside the allowed roots ({roots}): files are read only "
                                    "under the client's roots (or the working directory) and [context] roots; add "
                                    "its directory to [context] roots in the config file to allow it")

    def _refuse(self, pattern: str, resolved: Path, given: str, shown: str) -> None:
        """Raise when a file may not be sent: InvalidArgumentError when it was named, _Skip when a glob found it."""
        in_glob = has_magic(pattern)
        if self._root_of(resolved) is None:
            if not in_glob:
                raise self._outside(pattern)
            raise _Skip("outside the allowed roots (symlinks)")
        mode = os.stat(resolved).st_mode
        if stat.S_ISDIR(mode):
            raise InvalidArgumentError(f"{display(pattern)} is a directory: name its files, or use a glob like "
                                       f"{display(pattern.rstrip('/'))}/**/*.py")
        if not stat.S_ISREG(mode):
            if not in_glob:
                raise InvalidArgumentError(f"{display(pattern)} is not a regular file ({_kind(mode)}); only text "
                                           "files can be sent")
            raise _Skip("special files (devices, FIFOs, sockets)")
        reason = secret_name(resolved) or secret_name(Path(given))
        if reason is not None and (str(resolved), shown) not in self.allowed:
            if not in_glob:
                raise InvalidArgumentError(f"{display(pattern)} looks like {reason} and is not sent to a model; if "
                                           "it holds no secret, add it to [context] allow in the config file")
            raise _Skip("secret-looking files (allow them with [context] allow)")

    # ------------------------------------------------------------------ reading

    def _read(self, pattern: str, path: str, shown: str) -> ContextFile:
        in_glob = has_magic(pattern)
        cap = self.settings.max_file_kb * 1024
        flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        before = os.stat(path)
        fd = os.open(path, flags)
        with os.fdopen(fd, "rb") as handle:
            after = os.fstat(handle.fileno())
            # Swapped between the checks and the open (for a FIFO, or a link out of the root): refuse.
            if (after.st_dev, after.st_ino) != (before.st_dev, before.st_ino) or not stat.S_ISREG(after.st_mode):
                raise InvalidArgumentError(f"{display(shown)} changed while it was being read; try again")
            # Sizes from the inode: a 10 GB file is refused, never read. A glob first skips binaries quietly.
            if after.st_size > cap and not in_glob:
                raise _too_big(shown, after.st_size, cap)
            head = handle.read(SNIFF)
            if _binary(head):
                if in_glob:
                    raise _Skip("binary files")
                raise _not_text(shown)
            if after.st_size > cap:
                raise _too_big(shown, after.st_size, cap)
            data = head + handle.read(cap + 1 - len(head))
        if len(data) > cap:
            raise _too_big(shown, len(data), cap)
        limit = self.settings.max_total_kb * 1024
        if self.total + len(data) > limit:
            raise InvalidArgumentError(f"files add up to more than {_kib(limit)} ({_kib(self.total + len(data))} "
                                       f"with {display(shown)}): send fewer or raise [context] max_total_kb")
        text = _text(data)
        if text is None:
            if in_glob:
                raise _Skip("binary files")
            raise _not_text(shown)
        if holds_private_key(text) and (path, shown) not in self.allowed:
            if in_glob:
                raise _Skip("files holding a private key (allow them with [context] allow)")
            raise InvalidArgumentError(f"{display(shown)} holds a private key and is not sent to a model; if that is "
                                       "intended, add it to [context] allow in the config file")
        self.total += len(data)
        return ContextFile(path=display(path), shown=display(shown), size=len(data),
                           sha256=hashlib.sha256(data).hexdigest(), text=text)


class _Skip(Exception):
    """A file a glob matched but that is not sent; the caller gets a note, not an error."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _binary(head: bytes) -> bool:
    """Whether the first bytes of a file say binary: a NUL byte, or not UTF-8 (a character cut at the end is fine)."""
    if b"\0" in head:
        return True
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return not (exc.reason == "unexpected end of data" and exc.end == len(head))
    return False


def _text(data: bytes) -> str | None:
    """``data`` as text, or None when it is binary somewhere: a NUL byte, or not UTF-8."""
    if b"\0" in data:
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return text.removeprefix("\ufeff")


def _not_text(shown: str) -> InvalidArgumentError:
    return InvalidArgumentError(f"{display(shown)} is binary (or not UTF-8); only text files can be sent")


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a file"


def _kib(size: int) -> str:
    return f"{size / 1024:.0f} KiB" if size < 10 * 1024 * 1024 else f"{size / (1024 * 1024):.0f} MiB"


def _too_big(shown: str, size: int, cap: int) -> InvalidArgumentError:
    return InvalidArgumentError(f"{display(shown)} is {_kib(size)}, over the {_kib(cap)} per file: send a smaller "
                                "file or raise [context] max_file_kb")
