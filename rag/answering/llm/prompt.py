"""The prompt: numbered passages and the instructions that ask for [n] markers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rag.types import ABSTAIN_TEXT, Article, Passage

SYSTEM_PROMPT = (
    "You answer questions about news articles using only the numbered passages given by the user. "
    "Answer in one to three short sentences. After each claim, put the number of the passage that "
    "states it in square brackets, like [1] or [2]. Use only facts written in the passages; add "
    "nothing from your own knowledge. If the passages do not answer the question, reply exactly: "
    f"{ABSTAIN_TEXT}"
)


def format_passages(passages: Sequence[Passage], articles: Mapping[str, Article]) -> str:
    """The passages numbered [1]..[n], each under its article's title (and date when known)."""
    blocks = []
    for i, p in enumerate(passages, 1):
        a = articles.get(p.doc_id)
        title = (a.title if a is not None and a.title else "") or p.source
        date = f" ({a.date})" if a is not None and a.date else ""
        text = " ".join(p.text.split())
        blocks.append(f"[{i}] From the article \"{title}\"{date}:\n{text}")
    return "\n\n".join(blocks)


REMINDER = (
    "Answer the question in one to three short sentences, with the passage number in square "
    f"brackets after each claim. If the passages do not answer it, reply exactly: {ABSTAIN_TEXT}"
)

def _user_message(question: str, passages_block: str) -> str:
    q = " ".join(question.split())
    return f"Question: {q}\n\nPassages:\n\n{passages_block}\n\nQuestion: {q}\n\n{REMINDER}"


# A worked example (a made-up town, so that none of its facts can leak into a real answer).
EXAMPLE_USER = _user_message(
    "Why was the bridge closed, and for how long?",
    '[1] From the article "Flood closes bridge":\n'
    "Heavy rain flooded the river in Lowton on Monday. The council closed the old bridge for two weeks.\n\n"
    '[2] From the article "Mayor answers critics":\n'
    "Mayor Ann Cole said repairs will cost 40,000 pounds.",
)
EXAMPLE_ANSWER = (
    "Heavy rain flooded the river in Lowton on Monday [1]. "
    "The council closed the old bridge for two weeks [1]."
)


def build_messages(question: str, passages: Sequence[Passage], articles: Mapping[str, Article]) -> list:
    """The chat: system instruction, one worked example, then the passages and the question. (An
    abstention example made the 0.5B model abstain on every question, so there is none.)"""
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

    return [
        SystemMessage(content=SYSTEM_PROMPT),
        HumanMessage(content=EXAMPLE_USER),
        AIMessage(content=EXAMPLE_ANSWER),
        HumanMessage(content=_user_message(question, format_passages(passages, articles))),
    ]
