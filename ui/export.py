"""The conversation as text to take away: one answer with its citations (for the clipboard)
and the whole conversation as Markdown, each citation with its title, date, source and quote."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rag.types import Answer

from .format import NO_DATE, abstention_reason


def _md(text: str) -> str:
    """Text made inert for Markdown: characters that would start a link, emphasis or code are
    backslash-escaped."""
    return "".join("\\" + ch if ch in "\\`*_[]<>#|" else ch for ch in text)


def answer_plaintext(answer: Answer) -> str:
    """The answer and its numbered sources, as plain text for the clipboard."""
    if answer.abstained:
        return f"Not in the articles: {abstention_reason(answer)}"
    lines = [answer.answer.strip(), ""] if answer.citations else [answer.answer.strip()]
    for c in answer.citations:
        lines.append(f"[{c.n}] {c.title or c.source} ({c.date or NO_DATE}), {c.source}: “{c.quote}”")
    return "\n".join(lines)


def _turn_markdown(i: int, turn: Mapping[str, Any]) -> list[str]:
    out = [f"## {i}. {_md(turn['question'])}", ""]
    ans: Answer | None = turn.get("answer")
    if ans is None:
        out += [f"*Not answered:* {_md(turn.get('notice') or 'the question was refused')}", ""]
        return out
    if ans.abstained:
        out += [f"**Not in the articles:** {_md(abstention_reason(ans))}", ""]
        return out
    out += [_md(ans.answer.strip()).replace("\\[", "[").replace("\\]", "]"), ""]
    for c in ans.citations:
        out.append(f"[{c.n}] **{_md(c.title or c.source)}** — {c.date or NO_DATE} — source: `{c.source}`  ")
        out.append(f"> {_md(c.quote)}")
        out.append("")
    return out


def conversation_markdown(turns: Sequence[Mapping[str, Any]]) -> str:
    """Every turn of the conversation: the question, then the answer with ``[n]`` markers and
    its citations (title, date, source file, quote), or the verdict when the articles don't say."""
    lines = ["# NewsRAG conversation", ""]
    for i, t in enumerate(turns, start=1):
        lines += _turn_markdown(i, t)
    return "\n".join(lines).rstrip() + "\n"
