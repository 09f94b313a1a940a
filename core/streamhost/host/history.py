"""A thread's earlier turns in a new request: the turns that fit the model's context window, and the turns
written into the prompt for a provider that takes no history."""

from __future__ import annotations

from ..providers import GenerationRequest, Message
from .pricing import estimate_tokens

OUTPUT_RESERVE = 4_096
"""Tokens kept free for the answer when the call sets no ``max_tokens``."""


def fit_history(history: tuple[Message, ...], request: GenerationRequest,
                window: int) -> tuple[tuple[Message, ...], str | None]:
    """The newest turns of ``history`` that fit in ``window`` tokens beside the request, and a status line saying
    what was left out (None when everything fits).

    Turns leave in pairs from the oldest (a question without its answer reads as unanswered); the newest turn
    pair always stays unless even it does not fit, and then the status line says the thread was left out.
    """
    reserve = request.max_tokens or OUTPUT_RESERVE
    room = window - reserve - estimate_tokens(request.prompt) - estimate_tokens(request.system or "")
    sizes = [estimate_tokens(turn.content) for turn in history]
    kept = len(history)
    used = sum(sizes)
    while kept and used > room:
        drop = 2 if kept >= 2 and history[len(history) - kept].role == "user" else 1
        used -= sum(sizes[len(history) - kept:len(history) - kept + drop])
        kept -= drop
    if kept == len(history):
        return history, None
    dropped = len(history) - kept
    left_out = sum(sizes[:dropped])
    if not kept:
        return (), (f"thread: all {dropped} earlier turns (~{left_out:,} tokens) left out: with this prompt they "
                    f"do not fit the model's context window (~{window:,} tokens)")
    return history[dropped:], (f"thread: the {dropped} oldest of {len(history)} earlier turns (~{left_out:,} tokens) "
                               f"left out to fit the model's context window (~{window:,} tokens)")


def fold_history(history: tuple[Message, ...], prompt: str) -> str:
    """``prompt`` preceded by the earlier turns as text, for a provider that takes a single prompt."""
    if not history:
        return prompt
    lines = ["The conversation so far:"]
    for turn in history:
        speaker = "User" if turn.role == "user" else "Assistant"
        lines.append(f"<turn role=\"{speaker.lower()}\">\n{turn.content}\n</turn>")
    lines.append(f"Continue the conversation. The user now says:\n\n{prompt}")
    return "\n\n".join(lines)
