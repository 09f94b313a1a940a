"""The metrics file: one JSON line per event, bounded in size, never failing a call."""

from __future__ import annotations

import json

from streamhost.host import metrics as metrics_module
from streamhost.host.metrics import Metrics


def test_lines_are_json_and_the_file_rolls_over(tmp_path):
    path = tmp_path / "state" / "metrics.jsonl"
    metrics = Metrics(path, max_bytes=400)
    for call in range(20):
        metrics.record("complete", call=call, chars=10)
    current = [json.loads(line) for line in path.read_text().splitlines()]
    previous = [json.loads(line) for line in path.with_name("metrics.jsonl.1").read_text().splitlines()]
    assert current[-1]["call"] == 19 and current[-1]["event"] == "complete"
    assert path.stat().st_size <= 400 + 100
    assert previous and previous[-1]["call"] < current[0]["call"]


def test_an_unwritable_place_is_reported_not_raised(tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    metrics = Metrics(blocker / "metrics.jsonl")
    metrics.record("start", call=1)
    metrics.record("start", call=2)
    assert len([r for r in caplog.records if "cannot write metrics" in r.message]) == 1


def test_disabled_writes_nothing(tmp_path):
    path = tmp_path / "metrics.jsonl"
    Metrics(path, enabled=False).record("start", call=1)
    assert not path.exists()


def test_a_file_rolled_over_or_removed_elsewhere_is_reopened(tmp_path, monkeypatch):
    # The file stays open between events; another process (a second replica on this host) may roll it over, or
    # the user remove it: the next check of the path reopens it, and no event goes to the renamed file after that.
    monkeypatch.setattr(metrics_module, "CHECK_S", 0.0)
    path = tmp_path / "metrics.jsonl"
    ours, theirs = Metrics(path, max_bytes=10_000), Metrics(path, max_bytes=10_000)
    ours.record("start", call=1)
    theirs.record("start", call=2)
    path.replace(path.with_name("metrics.jsonl.1"))  # rolled over by someone else
    ours.record("start", call=3)
    path.unlink()  # removed by the user
    theirs.record("start", call=4)
    assert [json.loads(line)["call"] for line in path.with_name("metrics.jsonl.1").read_text().splitlines()] == [1, 2]
    assert [json.loads(line)["call"] for line in path.read_text().splitlines()] == [4]
    ours.close()
    theirs.close()
