"""The client's MCP roots bound ``generate``'s ``files``, over a real ``streamhost serve`` and a real MCP client.

The server runs in one directory and the client offers another as its root: files are read from the
client's root, not from the server's working directory; a change of roots is honoured after
``notifications/roots/list_changed``; without client roots (none declared, or the 2026-07-28 era,
which has none) the working directory is the root. The file's text must reach the upstream model.
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from streamhost.mcp.client_roots import file_paths
from streamhost.testing import Home, LLMTestServer, Script, streamhost_executable

pytestmark = pytest.mark.anyio

RootsCallback = Callable[[Any], Awaitable[types.ListRootsResult]]


@asynccontextmanager
async def session_with(home: Home, cwd: Path, roots: RootsCallback | None = None,
                       era: str = "handshake") -> AsyncIterator[ClientSession]:
    """``streamhost serve`` started in ``cwd``, and a client that offers roots when ``roots`` is given."""
    params = StdioServerParameters(command=streamhost_executable(), args=["serve"], env=dict(home.env), cwd=cwd)
    with tempfile.TemporaryFile("w+", encoding="utf-8") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write), \
                ClientSession(read, write, list_roots_callback=roots) as session:
            await (session.discover() if era == "modern" else session.initialize())
            yield session


class Offered:
    """The client's roots (directories), and how often the server asked for them."""

    def __init__(self, *directories: Path) -> None:
        self.directories = list(directories)
        self.asked = 0

    async def __call__(self, context: Any) -> types.ListRootsResult:
        self.asked += 1
        return types.ListRootsResult(roots=[types.Root(uri=d.as_uri(), name=d.name) for d in self.directories])


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    """The client's project (offered as its root) and the directory the server is started in."""
    project, started = tmp_path / "project", tmp_path / "server-cwd"
    (project / "src").mkdir(parents=True)
    (project / "src/app.py").write_text("print('from the client root')\n", encoding="utf-8")
    (project / ".env").write_text("OPENAI_API_KEY=sk-live-do-not-send\n", encoding="utf-8")
    started.mkdir()
    (started / "local.txt").write_text("from the server's working directory\n", encoding="utf-8")
    return project, started


def text_of(result: types.CallToolResult) -> str:
    return "".join(block.text for block in result.content if isinstance(block, types.TextContent))


def sent_upstream(llm: LLMTestServer, needle: str) -> bool:
    """Whether ``needle`` is in a message the model was sent."""
    return any(needle in str(message.get("content")) for record in llm.requests if record.body
               for message in record.body.get("messages", []))


async def generate(session: ClientSession, files: list[str]) -> types.CallToolResult:
    with anyio.fail_after(60):
        return await session.call_tool("generate", {"prompt": "Review this.", "model": "openai/m", "files": files})


async def test_files_are_read_under_the_clients_roots_not_the_servers_directory(
        llm: LLMTestServer, home: Home, dirs: tuple[Path, Path]) -> None:
    project, started = dirs
    llm.script("m", Script(tokens=["looks ", "fine"]))
    offered = Offered(project)
    async with session_with(home, started, offered) as session:
        with anyio.fail_after(60):
            await session.call_tool("generate", {"prompt": "No files.", "model": "openai/m"})
        assert offered.asked == 0  # roots/list only when a call needs the roots
        answered = await generate(session, ["src/app.py"])
        assert not answered.is_error, text_of(answered)
        assert text_of(answered) == "looks fine"
        assert sent_upstream(llm, "print('from the client root')") and sent_upstream(llm, 'path="src/app.py"')

        outside = await generate(session, [str(started / "local.txt")])
        assert outside.is_error and "outside the allowed roots" in text_of(outside)
        assert str(project) in text_of(outside) and "[context] roots" in text_of(outside)

        secret = await generate(session, [".env"])
        assert secret.is_error and "[context] allow" in text_of(secret)
        assert offered.asked == 1  # cached for the session
    assert not sent_upstream(llm, "from the server's working directory")
    assert not sent_upstream(llm, "sk-live-do-not-send")


@pytest.mark.filterwarnings("ignore:The roots capability is deprecated")
async def test_a_roots_change_is_honoured_after_the_clients_notice(
        llm: LLMTestServer, home: Home, dirs: tuple[Path, Path], tmp_path: Path) -> None:
    project, started = dirs
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.md").write_text("notes of the second root\n", encoding="utf-8")
    llm.script("m", Script(tokens=["ok"]))
    offered = Offered(project)
    async with session_with(home, started, offered) as session:
        before = await generate(session, [str(other / "notes.md")])
        assert before.is_error and "outside the allowed roots" in text_of(before)
        offered.directories = [other]
        await session.send_roots_list_changed()
        # The notice and the next call travel separately: poll until the server has taken the notice.
        with anyio.fail_after(30):
            while (await generate(session, ["notes.md"])).is_error:
                await anyio.sleep(0.1)
        assert sent_upstream(llm, "notes of the second root")
        assert offered.asked == 2


async def test_a_client_without_roots_gets_the_servers_working_directory(
        llm: LLMTestServer, home: Home, dirs: tuple[Path, Path]) -> None:
    project, started = dirs
    llm.script("m", Script(tokens=["ok"]))
    async with session_with(home, started) as session:
        answered = await generate(session, ["local.txt"])
        assert not answered.is_error, text_of(answered)
        refused = await generate(session, [str(project / "src/app.py")])
        assert refused.is_error and "outside the allowed roots" in text_of(refused)
    assert sent_upstream(llm, "from the server's working directory")


async def test_a_client_whose_roots_list_fails_gets_the_working_directory(
        llm: LLMTestServer, home: Home, dirs: tuple[Path, Path]) -> None:
    _, started = dirs
    llm.script("m", Script(tokens=["ok"]))

    async def failing(context: Any) -> types.ErrorData:
        return types.ErrorData(code=types.INTERNAL_ERROR, message="roots unavailable")

    async with session_with(home, started, failing) as session:  # type: ignore[arg-type]
        answered = await generate(session, ["local.txt"])
        assert not answered.is_error, text_of(answered)


async def test_context_roots_from_the_config_are_allowed_besides_the_clients(
        llm: LLMTestServer, home: Home, dirs: tuple[Path, Path]) -> None:
    project, started = dirs
    home.write_config(f'[context]\nroots = ["{started}"]\n')
    llm.script("m", Script(tokens=["ok"]))
    async with session_with(home, started, Offered(project)) as session:
        answered = await generate(session, ["src/app.py", str(started / "local.txt")])
        assert not answered.is_error, text_of(answered)
    assert sent_upstream(llm, "from the server's working directory")


async def test_the_modern_era_has_no_roots_and_uses_the_working_directory(
        llm: LLMTestServer, home: Home, dirs: tuple[Path, Path]) -> None:
    _, started = dirs
    llm.script("m", Script(tokens=["ok"]))
    async with session_with(home, started, era="modern") as session:
        answered = await generate(session, ["local.txt"])
        assert not answered.is_error, text_of(answered)


def test_only_local_file_uris_become_roots() -> None:
    # Other schemes cannot arrive: the SDK refuses a roots/list answer holding one (the server then uses its cwd).
    roots = [types.Root(uri=uri) for uri in (
        "file:///home/u/project", "file://localhost/srv/a%20b", "file://elsewhere/share",
        "file:///data/caf%C3%A9", "file:///raw/%FF")]
    assert file_paths(roots) == [Path("/home/u/project"), Path("/srv/a b"), Path("/data/café"),
                                 Path("/raw/\udcff")]
