"""``streamhost runs``, ``threads`` and ``usage``: a real store file in a tmp dir, filled through the Store API.

Most commands run in-process through ``main(argv)`` (quick); a few run as the venv's console script, as users
run them, where start-up imports or the pureness of stdout are the point.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import statistics
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from streamhost.cli.main import main
from streamhost.cli.runs import percentile
from streamhost.cli.store_access import parse_since
from streamhost.errors import InvalidArgumentError
from streamhost.host.config import StoreSettings
from streamhost.store import FileRecord, RunEnd, RunStart, Turn, new_id, open_store

if TYPE_CHECKING:
    from streamhost.store.database import Store

STREAMHOST = str(Path(sys.executable).with_name("streamhost"))
T = TypeVar("T")


class User:
    """An isolated user: a config file, a store file, and the commands run as ``main(argv)``."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
        self.config, self.store_path = root / "config.toml", root / "data" / "streamhost.db"
        self.capsys = capsys
        self.env = {"HOME": str(root), "XDG_CONFIG_HOME": str(root / "config"), "XDG_DATA_HOME": str(root / "data"),
                    "STREAMHOST_CONFIG": str(self.config), "STREAMHOST_STORE": str(self.store_path),
                    "STREAMHOST_LOAD_PLUGINS": "", "COLUMNS": "250"}
        for name, value in self.env.items():
            monkeypatch.setenv(name, value)
        self.config.write_text("")

    def write_config(self, text: str) -> None:
        self.config.write_text(text)

    def settings(self, **changes: Any) -> StoreSettings:
        return StoreSettings(path=str(self.store_path), **changes)

    def fill(self, work: Callable[[Store], Awaitable[T]], **settings: Any) -> T:
        """Run ``work`` on the store opened as the host opens it."""

        async def run() -> T:
            store = await open_store(self.settings(**settings))
            try:
                return await work(store)
            finally:
                await store.close()

        return asyncio.run(run())

    def run(self, *argv: str) -> tuple[int, str, str]:
        """``streamhost ARGV`` in this process: exit code, stdout, stderr."""
        self.capsys.readouterr()
        try:
            code = main(list(argv))
        except SystemExit as exit:  # argparse refusing an argument
            code = int(exit.code or 0)
        out, err = self.capsys.readouterr()
        return code, out, err

    def json(self, *argv: str) -> Any:
        code, out, err = self.run(*argv, "--json")
        assert code == 0, err
        return json.loads(out)


@pytest.fixture
def user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Iterator[User]:
    yield User(tmp_path, monkeypatch, capsys)


async def add_run(store: Store, model: str, *, tool: str = "generate", text: str = "", status: str = "completed",
                  prompt: str | None = "the question", files: list[FileRecord] | None = None,
                  thread_id: str | None = None, owner_token: str | None = None, **end: Any) -> str:
    """A finished run of ``model`` with ``text`` journaled in two chunks; ``end`` sets the RunEnd fields."""
    run_id = new_id("run")
    await store.create_run(RunStart(id=run_id, tool=tool, model=model, thread_id=thread_id, prompt=prompt,
                                    files=files or [], owner_token=owner_token))
    if text:
        half = len(text) // 2
        await store.append_text(run_id, 0, text[:half])
        await store.append_text(run_id, half, text[half:])
    if status != "running":
        await store.finish_run(run_id, RunEnd(status=status, **end))  # type: ignore[arg-type]
    return run_id


def cells(line: str) -> list[str]:
    """The cells of one row of a rich table."""
    return [cell.strip() for cell in line.split("│")[1:-1]]


# ---------------------------------------------------------------- arithmetic and --since


def test_percentile_interpolates_between_ranks() -> None:
    values = [500, 100, 400, 200, 300]
    assert percentile(values, 50) == 300
    assert percentile(values, 90) == pytest.approx(460)
    assert percentile(values, 90) == pytest.approx(statistics.quantiles(values, n=10, method="inclusive")[8])
    assert percentile([100, 200], 50) == 150
    assert percentile([42], 90) == 42
    assert percentile([], 50) is None


def test_parse_since_spans_and_dates() -> None:
    now = 1_800_000_000.0
    assert parse_since("7d", now) == now - 7 * 86400
    assert parse_since("24h", now) == now - 86400
    assert parse_since("30m", now) == now - 1800
    assert parse_since("2w", now) == now - 14 * 86400
    assert parse_since("1.5H", now) == now - 5400
    assert parse_since("2026-11-01", now) == datetime(2026, 11, 1).timestamp()  # local midnight
    assert parse_since("2026-11-01T09:30", now) == datetime(2026, 11, 1, 9, 30).timestamp()
    for bad in ("yesterday", "7", "d7", "-3d", "2026-13-01"):
        with pytest.raises(InvalidArgumentError, match="7d, 24h, 30m"):
            parse_since(bad, now)


def test_a_bad_since_is_a_clear_error_with_examples(user: User) -> None:
    for argv in (("usage", "--since", "last week"), ("runs", "list", "--since", "soon")):
        code, out, err = user.run(*argv)
        assert code == 2 and out == ""
        assert "is neither a span nor a date" in err and "7d, 24h, 30m" in err and "2026-11-01" in err
    assert not user.store_path.exists()  # refused before the store was opened


# ---------------------------------------------------------------- the store turned off


def test_every_command_says_the_store_is_off_and_how_to_turn_it_on(user: User) -> None:
    user.write_config("[store]\nenabled = false\n")
    for argv in (("runs", "list"), ("runs", "show", "r_x"), ("runs", "prune"), ("threads", "list"),
                 ("threads", "show", "t_x"), ("threads", "rm", "t_x"), ("usage",), ("usage", "--json")):
        code, out, err = user.run(*argv)
        assert code == 2, argv
        assert out == ""
        assert "the store is off" in err and "enabled = true" in err and str(user.config) in err, err
    assert not user.store_path.exists()


def test_a_database_that_cannot_be_reached_is_an_error_without_its_password(user: User,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("asyncpg", reason="the PostgreSQL driver (streamhost[postgres]) is not installed")
    monkeypatch.setenv("STREAMHOST_STORE", "postgresql://bob:hunter2pw@127.0.0.1:1/streamhost")  # port 1: refused
    code, out, err = user.run("runs", "list")
    assert code == 2 and out == ""
    assert "cannot open the store postgresql://bob:***@127.0.0.1:1/streamhost" in err.lower()
    assert "hunter2pw" not in err


# ---------------------------------------------------------------- runs


def age(user: User, run_ids: list[str], days: float) -> None:
    """Make runs ``days`` older, as time passing would (start and last heartbeat moved back)."""
    with sqlite3.connect(user.store_path) as db:
        db.executemany("UPDATE runs SET started_at = started_at - ?, heartbeat_at = heartbeat_at - ? WHERE id = ?",
                       [(days * 86400, days * 86400, run_id) for run_id in run_ids])
    db.close()


ALPHA, BETA = "openai/alpha", "litellm/beta"


def fill_runs(user: User) -> dict[str, str]:
    """Runs of two models: three completed alpha runs with known timings, a failed beta run, a dead one."""

    async def work(store: Store) -> dict[str, str]:
        ids = {}
        for n, (ttft, duration) in enumerate([(100, 1000), (900, 3000), (200, 2000)]):
            ids[f"alpha{n}"] = await add_run(store, ALPHA, text=f"answer {n}", ttft_ms=ttft, duration_ms=duration,
                                             input_tokens=1200, output_tokens=34, cost_usd=0.0012)
        ids["failed"] = await add_run(store, BETA, status="failed", ttft_ms=None, duration_ms=450.0,
                                      input_tokens=80, output_tokens=5, usage_estimated=True,
                                      error="upstream said 500: try again later")
        ids["dead"] = await add_run(store, BETA, status="running", text="half an ans")
        return ids

    ids = user.fill(work)
    age(user, [ids["dead"]], 1 / 24)  # silent for an hour: its host is taken for dead on the next opening
    return ids


def test_runs_list_shows_the_runs_newest_first_with_percentiles_per_model(user: User) -> None:
    ids = fill_runs(user)
    data = user.json("runs", "list")
    assert data["store"] == str(user.store_path)
    assert [r["id"] for r in data["runs"]] == [ids[k] for k in ("failed", "alpha2", "alpha1", "alpha0", "dead")]
    status = {r["id"]: r["status"] for r in data["runs"]}
    assert status[ids["dead"]] == "interrupted" and status[ids["failed"]] == "failed"
    alpha = data["by_model"][ALPHA]
    assert alpha["runs"] == 3
    assert alpha["ttft_ms"] == {"p50": 200, "p90": pytest.approx(760)}  # 200 + (900 - 200) * 0.8
    assert alpha["duration_ms"] == {"p50": 2000, "p90": pytest.approx(2800)}
    beta = data["by_model"][BETA]
    assert beta["runs"] == 2 and beta["ttft_ms"] == {"p50": None, "p90": None}  # neither measured a first token

    code, out, err = user.run("runs", "list")
    assert code == 0, err
    rows = {line.split()[1]: line for line in out.splitlines() if " r_" in line}
    assert set(rows) == set(ids.values())
    assert "interrupted" in rows[ids["dead"]] and "failed" in rows[ids["failed"]]
    assert "~80" in rows[ids["failed"]] and "~5" in rows[ids["failed"]]  # estimated usage is marked
    assert "1,200" in rows[ids["alpha0"]] and "$0.0012" in rows[ids["alpha0"]] and "100 ms" in rows[ids["alpha0"]]
    spread = [cells(line) for line in out.splitlines() if " r_" not in line and ("alpha" in line or "beta" in line)]
    assert spread == [[BETA, "2", "–", "–", "450 ms", "450 ms"], [ALPHA, "3", "200 ms", "760 ms", "2.0 s", "2.8 s"]]


def test_runs_list_filters_by_model_limit_and_since(user: User) -> None:
    ids = fill_runs(user)
    assert [r["id"] for r in user.json("runs", "list", "--model", BETA)["runs"]] == [ids["failed"], ids["dead"]]
    assert [r["id"] for r in user.json("runs", "list", "--limit", "2")["runs"]] == [ids["failed"], ids["alpha2"]]
    recent = [r["id"] for r in user.json("runs", "list", "--since", "30m")["runs"]]
    assert ids["dead"] not in recent and len(recent) == 4  # the dead run started an hour ago
    code, out, _ = user.run("runs", "list", "--since", "2099-01-01")
    assert code == 0 and "no runs since 2099-01-01" in out
    code, _, err = user.run("runs", "list", "--limit", "0")
    assert code == 2 and "1 or more" in err


def test_runs_show_prints_every_field_the_files_the_error_and_the_text(user: User) -> None:
    files = [FileRecord("/src/app.py", 2048, "ab12cd34ef56" + "0" * 52), FileRecord("/src/notes.md", 17, "9" * 64)]

    async def work(store: Store) -> tuple[str, str]:
        shown = await add_run(store, ALPHA, text="The [bold]answer[/] is\n42.", files=files, owner_token="ci-bot",
                              prompt="what is it?", ttft_ms=321, duration_ms=4567, input_tokens=10, output_tokens=4,
                              cost_usd=0.25)
        failed = await add_run(store, BETA, status="failed", error="upstream said 500: try again later")
        return shown, failed

    shown, failed = user.fill(work)
    code, out, err = user.run("runs", "show", shown)
    assert code == 0, err
    for expected in (shown, "generate", ALPHA, "completed", "321 ms", "4.6 s", "$0.2500", "token ci-bot",
                     "/src/app.py", "2,048 B", "ab12cd34ef56", "/src/notes.md", "999999999999", "what is it?"):
        assert expected in out, expected
    assert "ab12cd34ef560" not in out  # a prefix of the hash, not all of it
    assert out.endswith("── text ──\nThe [bold]answer[/] is\n42.\n")  # exactly as journaled, markup untouched

    data = user.json("runs", "show", shown)
    assert data["text"] == "The [bold]answer[/] is\n42." and data["keep_text"] is True
    assert data["files"][0] == {"path": "/src/app.py", "size": 2048, "sha256": files[0].sha256}
    assert data["prompt"] == "what is it?" and data["cost_usd"] == 0.25 and data["owner_token"] == "ci-bot"

    code, out, _ = user.run("runs", "show", failed)
    assert code == 0 and "error: upstream said 500: try again later" in out and "(no text)" in out


def test_runs_show_says_the_text_is_not_kept(user: User) -> None:
    user.write_config("[store]\nkeep_text = false\n")
    run_id = user.fill(lambda store: add_run(store, ALPHA, text="a secret answer", prompt="a private question"),
                       keep_text=False)
    code, out, err = user.run("runs", "show", run_id)
    assert code == 0, err
    assert "not kept: [store] keep_text = false" in out
    assert "secret" not in out and "private" not in out
    data = user.json("runs", "show", run_id)
    assert data["text"] is None and data["prompt"] is None and data["keep_text"] is False
    assert f"{data['chars']:,} characters" in out


def test_runs_show_an_unknown_id_names_it_and_the_listing_command(user: User) -> None:
    code, out, err = user.run("runs", "show", "r_nosuchrun")
    assert code == 2 and out == ""
    assert "no run 'r_nosuchrun'" in err and "streamhost runs list" in err and str(user.store_path) in err


def test_runs_prune_deletes_the_old_runs_and_counts_them(user: User) -> None:
    ids = user.fill(lambda store: asyncio.gather(*(add_run(store, ALPHA, text="x") for _ in range(4))))
    age(user, ids[:2], 40)
    age(user, ids[2:3], 3)
    code, out, err = user.run("runs", "prune")  # [store] keep_days: 30 by default
    assert code == 0, err
    assert out.startswith("2 runs older than 30 days deleted")
    assert user.json("runs", "prune", "--days", "2") == {"deleted": 1, "days": 2, "store": str(user.store_path)}
    assert [r["id"] for r in user.json("runs", "list")["runs"]] == [ids[3]]
    code, _, err = user.run("runs", "prune", "--days", "0")
    assert code == 2 and "more than 0" in err


def test_runs_prune_with_keep_days_0_says_there_is_nothing_to_prune(user: User) -> None:
    user.write_config("[store]\nkeep_days = 0\n")
    run_id = user.fill(lambda store: add_run(store, ALPHA), keep_days=0)
    age(user, [run_id], 400)
    code, out, _ = user.run("runs", "prune")
    assert code == 0 and "keep_days = 0" in out and "nothing to prune" in out and "--days N" in out
    assert user.json("runs", "prune")["deleted"] == 0
    assert [r["id"] for r in user.json("runs", "list")["runs"]] == [run_id]


# ---------------------------------------------------------------- threads


def fill_threads(user: User) -> tuple[str, str]:
    """Two threads: one continued across two models, one started later with a long first question."""

    async def work(store: Store) -> tuple[str, str]:
        across, later = new_id("thread"), new_id("thread")
        await store.append_turns(across, [Turn("user", "What is the [capital] of France?"),
                                          Turn("assistant", "Paris.", model=ALPHA, run_id="r_first")])
        await store.append_turns(across, [Turn("user", "Critique that answer."),
                                          Turn("assistant", "It is right,\nbut terse.", model=BETA)])
        await store.append_turns(later, [Turn("user", "word " * 40), Turn("assistant", "ok", model=ALPHA)])
        return across, later

    return user.fill(work)


def test_threads_list_shows_the_threads_most_recently_continued_first(user: User) -> None:
    across, later = fill_threads(user)
    data = user.json("threads", "list")
    assert [t["id"] for t in data["threads"]] == [later, across]
    first = data["threads"][1]
    assert first["turns"] == 4 and first["last_model"] == BETA and first["title"] == "What is the [capital] of France?"
    code, out, err = user.run("threads", "list")
    assert code == 0, err
    rows = {cells(line)[0]: cells(line) for line in out.splitlines() if "t_" in line}
    assert rows[across][2:] == ["4", BETA, "What is the [capital] of France?"]  # markup in a title is text
    assert rows[later][2] == "2" and rows[later][4].startswith("word word")
    assert [t["id"] for t in user.json("threads", "list", "--limit", "1")["threads"]] == [later]


def test_threads_show_prints_the_turns_in_order_with_their_models(user: User) -> None:
    across, _ = fill_threads(user)
    code, out, err = user.run("threads", "show", across)
    assert code == 0, err
    texts = ["What is the [capital] of France?", "Paris.", "Critique that answer.", "It is right,\nbut terse."]
    at = [out.index(text) for text in texts]
    assert at == sorted(at)
    headings = [line for line in out.splitlines() if line.startswith("── ")]
    assert [h.split(" · ")[0] for h in headings] == ["── 1. user", "── 2. assistant", "── 3. user", "── 4. assistant"]
    assert f"· {ALPHA} · run r_first" in headings[1] and f"· {BETA}" in headings[3]
    data = user.json("threads", "show", across)
    assert data["thread"]["id"] == across and data["thread"]["turns"] == 4
    assert [(t["role"], t["model"], t["content"]) for t in data["turns"]] == [
        ("user", None, texts[0]), ("assistant", ALPHA, texts[1]), ("user", None, texts[2]),
        ("assistant", BETA, texts[3])]


def test_threads_rm_deletes_and_an_unknown_id_is_an_error(user: User) -> None:
    across, later = fill_threads(user)
    code, out, err = user.run("threads", "rm", across)
    assert code == 0 and f"thread {across} deleted" in out, err
    assert [t["id"] for t in user.json("threads", "list")["threads"]] == [later]
    for argv in (("threads", "rm", across), ("threads", "show", across)):
        code, out, err = user.run(*argv)
        assert code == 2 and out == ""
        assert f"no thread {across!r}" in err and "streamhost threads list" in err
    assert user.json("threads", "rm", later) == {"deleted": later, "store": str(user.store_path)}


# ---------------------------------------------------------------- usage


def fill_usage(user: User) -> dict[str, str]:
    """Priced alpha runs in a thread and for a token, unpriced beta runs with estimated usage, one old run."""

    async def work(store: Store) -> dict[str, str]:
        thread = new_id("thread")
        await store.create_thread(thread)
        await add_run(store, ALPHA, thread_id=thread, input_tokens=1000, output_tokens=200, cost_usd=0.01)
        await add_run(store, ALPHA, owner_token="ci-bot", input_tokens=3000, output_tokens=100, cost_usd=0.025)
        await add_run(store, BETA, input_tokens=40, output_tokens=7, usage_estimated=True)
        await add_run(store, BETA, input_tokens=60, output_tokens=3, usage_estimated=True)
        old = await add_run(store, ALPHA, input_tokens=99_999, output_tokens=99_999, cost_usd=9.0)
        return {"thread": thread, "old": old}

    ids = user.fill(work)
    age(user, [ids["old"]], 10)
    return ids


def test_usage_by_model_adds_up_marks_estimates_and_counts_unpriced_runs(user: User) -> None:
    fill_usage(user)
    data = user.json("usage")  # --since 7d --by model: the 10-day-old run is left out
    assert data["by"] == "model"
    rows = {row["key"]: row for row in data["rows"]}
    assert rows[ALPHA] == {"key": ALPHA, "runs": 2, "input_tokens": 4000, "output_tokens": 300,
                           "cost_usd": pytest.approx(0.035), "estimated": False, "unpriced": 0}
    assert rows[BETA] == {"key": BETA, "runs": 2, "input_tokens": 100, "output_tokens": 10, "cost_usd": 0,
                          "estimated": True, "unpriced": 2}
    assert data["total"] == {"key": "total", "runs": 4, "input_tokens": 4100, "output_tokens": 310,
                             "cost_usd": pytest.approx(0.035), "estimated": True, "unpriced": 2}
    assert data["note"].startswith(f'2 runs have no price: set [models."{BETA}"] price_in / price_out')

    code, out, err = user.run("usage")
    assert code == 0, err
    table = {cells(line)[0]: cells(line)[1:] for line in out.splitlines() if line.startswith("│")}
    assert table[ALPHA] == ["2", "4,000", "300", "$0.0350", ""]
    assert table[BETA] == ["2", "~100", "~10", "–", "2"]  # estimated tokens marked, no price counted
    assert table["total"] == ["4", "~4,100", "~310", "~$0.0350", "2"]
    assert f'2 runs have no price: set [models."{BETA}"] price_in / price_out' in " ".join(out.split())

    everything = user.json("usage", "--since", "30d")["total"]
    assert everything["runs"] == 5 and everything["cost_usd"] == pytest.approx(9.035)


def test_usage_by_day_thread_and_token(user: User) -> None:
    ids = fill_usage(user)
    today = datetime.now().strftime("%Y-%m-%d")
    days = user.json("usage", "--by", "day", "--since", "30d")["rows"]
    assert [(d["runs"], d["cost_usd"] == pytest.approx(0.035)) for d in days if d["key"] == today] == [(4, True)]
    assert sum(d["runs"] for d in days) == 5 and len(days) == 2
    threads = {row["key"]: row["runs"] for row in user.json("usage", "--by", "thread")["rows"]}
    assert threads == {ids["thread"]: 1, "-": 3}
    tokens = {row["key"]: row["cost_usd"] for row in user.json("usage", "--by", "token")["rows"]}
    assert tokens == {"ci-bot": pytest.approx(0.025), "-": pytest.approx(0.01)}
    note = user.json("usage", "--by", "token")["note"]
    assert note.startswith('2 runs have no price: set [models."PROVIDER/NAME"]')
    code, out, _ = user.run("usage", "--since", "2099-01-01")
    assert code == 0 and out.startswith("no runs: usage since 2099-01-01")


# ---------------------------------------------------------------- as users run it


def test_the_commands_print_pure_json_and_import_no_database_library_to_start(user: User) -> None:
    ids = fill_runs(user)
    env = {**user.env, "PATH": os.environ.get("PATH", "")}
    for argv in (["runs", "list", "--json"], ["runs", "show", ids["alpha0"], "--json"], ["threads", "list", "--json"],
                 ["usage", "--by", "day", "--json"]):
        result = subprocess.run([STREAMHOST, *argv], env=env, capture_output=True, text=True, timeout=120,
                                stdin=subprocess.DEVNULL)
        assert result.returncode == 0, result.stderr
        json.loads(result.stdout)  # one JSON document, nothing else
    code = ("import sys; from streamhost.cli.main import build_parser; build_parser(); "
            "print([m for m in sys.modules if m.split('.')[0] in ('sqlalchemy', 'aiosqlite', 'alembic', 'asyncpg')"
            " or m == 'streamhost.store.database'])")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stdout + result.stderr
