"""A thread's earlier turns in the next request: the newest that fit the context window (and a status line
saying what was left out), sent as messages, or written into the prompt for a provider that takes none."""

from __future__ import annotations

import pytest

from streamhost import GenerationRequest, Message
from streamhost.host.history import fit_history, fold_history
from streamhost.testing import LLMTestProvider, LLMTestServer, Script, run_host

pytestmark = pytest.mark.anyio


def _turns(n: int, chars: int) -> tuple[Message, ...]:
    return tuple(Message("user" if i % 2 == 0 else "assistant", f"{i}:" + "x" * (chars - 2)) for i in range(n))


def test_a_history_that_fits_is_kept_whole() -> None:
    history = _turns(6, 400)
    kept, note = fit_history(history, GenerationRequest(model="m", prompt="q", max_tokens=100), 10_000)
    assert kept == history and note is None


def test_the_oldest_turns_leave_in_pairs_and_a_status_line_says_so() -> None:
    history = _turns(10, 4_000)  # ~1,000 tokens each
    kept, note = fit_history(history, GenerationRequest(model="m", prompt="q", max_tokens=1_000), 5_500)
    assert len(kept) == 4 and kept == history[-4:], "the newest pairs stay, the oldest go"
    assert kept[0].role == "user"
    assert note is not None and "the 6 oldest of 10 earlier turns" in note and "5,500" in note


def test_a_prompt_too_big_for_any_history_leaves_all_of_it_out_and_says_so() -> None:
    kept, note = fit_history(_turns(2, 400), GenerationRequest(model="m", prompt="p" * 40_000), 10_000)
    assert kept == () and note is not None and "all 2 earlier turns" in note


def test_folded_history_names_each_speaker_before_the_new_prompt() -> None:
    folded = fold_history((Message("user", "Capital?"), Message("assistant", "Paris.")), "Population?")
    assert folded.index("Capital?") < folded.index("Paris.") < folded.index("Population?")
    assert '<turn role="user">\nCapital?\n</turn>' in folded and '<turn role="assistant">\nParis.\n</turn>' in folded
    assert fold_history((), "alone") == "alone"


class PromptOnly(LLMTestProvider):
    supports_history = False


async def test_a_provider_without_history_gets_the_thread_in_its_prompt(tmp_path) -> None:
    with LLMTestServer() as server:
        server.script("m", Script(tokens=["Paris."]))
        provider = PromptOnly(server.url, name="plain")
        config = {"store": {"path": str(tmp_path / "store.db")}}
        async with run_host(provider, config=config) as host:
            first = await host.call("generate", {"prompt": "Capital?", "model": "plain/m", "thread": "new"})
            assert not first.result.is_error, first.text
            thread = first.result.meta["streamhost/thread"]
            second = await host.call("generate", {"prompt": "Population?", "model": "plain/m", "thread": thread})
            assert not second.result.is_error, second.text
        last = server.requests[-1].body["messages"]
    assert [m["role"] for m in last] == ["user"], "a prompt-only provider gets one user message"
    assert last[0]["content"] == fold_history((Message("user", "Capital?"), Message("assistant", "Paris.")),
                                              "Population?")


async def test_a_long_thread_is_cut_to_the_configured_window_with_a_status_line(tmp_path) -> None:
    with LLMTestServer() as server:
        server.script("m", Script(tokens=["y" * 40 for _ in range(200)]))  # 8,000 characters: ~2,000 tokens
        config = {"store": {"path": str(tmp_path / "store.db")},
                  "models": {"llmtest/m": {"context_window": 6_000}}}
        async with run_host(LLMTestProvider(server.url), config=config) as host:
            thread = "new"
            for question in ("one", "two", "three", "four"):
                call = await host.call("generate", {"prompt": question, "model": "llmtest/m", "thread": thread,
                                                    "max_tokens": 2_000})
                assert not call.result.is_error, call.text
                thread = call.result.meta["streamhost/thread"]
        sent = [[m["content"] for m in r.body["messages"]] for r in server.requests if r.body]
    # Each answer is ~2,000 tokens: with 2,000 reserved for the answer, ~4,000 of 6,000 are left for history,
    # so the fourth call keeps only the newest question and answer.
    assert sent[-1][0] == "three" and sent[-1][-1] == "four" and len(sent[-1]) == 3
    assert any("the 4 oldest of 6 earlier turns" in status for status in call.statuses), call.statuses
