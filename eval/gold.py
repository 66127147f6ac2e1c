"""The gold set: read and validate hand-written Q&A pairs (``eval/data/*.jsonl``) against the
articles they quote."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.errors import BadInputError

EVAL_DIR = Path(__file__).resolve().parent
DATA_DIR = EVAL_DIR / "data"
DEFAULT_QA = DATA_DIR / "qa.jsonl"
DEFAULT_HELDOUT = DATA_DIR / "qa_heldout.jsonl"

QA_TYPES = (
    "factoid", "numeric", "who", "when", "why", "list", "multi_doc", "temporal", "unanswerable", "false_premise",
)
REQUIRED_KEYS = ("id", "question", "answers", "doc", "evidence", "type")


@dataclass(frozen=True)
class QAItem:
    id: str
    question: str
    answers: tuple[str, ...]  # empty for unanswerable items
    docs: tuple[str, ...]  # article file names ("doc" in the file: a name, a list or null)
    evidence: tuple[str, ...]  # sentences quoted verbatim from the docs ("evidence": str, list or null)
    type: str
    line: int = 0  # line number in the gold file
    history: tuple[str, ...] = ()  # a follow-up's earlier questions in the conversation, oldest first

    @property
    def answerable(self) -> bool:
        return self.type != "unanswerable"


def _str_list(value: Any, *, allow_null: bool) -> tuple[str, ...] | None:
    """A string or a list of strings as a tuple; ``None`` when the value has another shape."""
    if value is None:
        return () if allow_null else None
    if isinstance(value, str):
        return (value,) if value.strip() else None
    if isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value):
        return tuple(value)
    return None


def _clip(s: str, n: int = 60) -> str:
    return s if len(s) <= n else s[:n] + "…"


def load_qa(path: Path, articles: Mapping[str, str]) -> list[QAItem]:
    """Read and check the gold set. ``articles`` maps file name -> article text (the text the
    index holds, e.g. ``{a.source: a.text for a in index.ingest.collect(paths).articles}``).

    Raises BadInputError listing every problem, each as ``<file>:<line>: <what>``: a line that is
    not JSON or not an object, missing keys, an unknown type, a bad answers/doc/evidence shape,
    a doc name that is not among the articles, an evidence string not found verbatim in its
    doc(s), a repeated id."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise BadInputError(f"{path}: cannot read the gold set ({e.strerror})") from e
    except UnicodeDecodeError as e:
        raise BadInputError(f"{path}: the gold set is not UTF-8 ({e})") from e
    items: list[QAItem] = []
    errors: list[str] = []
    seen: dict[str, int] = {}
    for lineno, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            d = json.loads(raw)
        except json.JSONDecodeError as e:
            errors.append(f"{where}: line {lineno} is not valid JSON ({e.msg} at column {e.colno})")
            continue
        if not isinstance(d, dict):
            errors.append(f"{where}: line {lineno} is not a JSON object")
            continue
        missing = [k for k in REQUIRED_KEYS if k not in d]
        if missing:
            errors.append(f"{where}: missing key(s) {', '.join(missing)}")
            continue
        item, problems = _check_item(d, lineno, seen, articles)
        if problems:
            errors.extend(f"{where}: {p}" for p in problems)
            continue
        seen[item.id] = lineno
        items.append(item)
    if errors:
        head = f"{path}: {len(errors)} problem(s) in the gold set"
        raise BadInputError(head + "\n" + "\n".join(errors))
    if not items:
        raise BadInputError(f"{path}: the gold set holds no question")
    return items


def _check_item(d: dict[str, Any], lineno: int, seen: Mapping[str, int],
                articles: Mapping[str, str]) -> tuple[QAItem, list[str]]:
    """One gold line as an item, and what is wrong with it (see load_qa)."""
    problems = []
    qid, question, qtype = d["id"], d["question"], d["type"]
    if not isinstance(qid, str) or not qid.strip():
        problems.append("id must be a non-empty string")
    elif qid in seen:
        problems.append(f"id {qid!r} is already used on line {seen[qid]}")
    if not isinstance(question, str) or not question.strip():
        problems.append("question must be a non-empty string")
    if qtype not in QA_TYPES:
        problems.append(f"type {qtype!r} is not one of {', '.join(QA_TYPES)}")
    unanswerable = qtype == "unanswerable"
    answers = d["answers"]
    if not isinstance(answers, list) or not all(isinstance(a, str) and a.strip() for a in answers):
        problems.append("answers must be a list of non-empty strings")
        answers = []
    elif not answers and not unanswerable:
        problems.append(f"a {qtype} item needs at least one answer")
    null_note = "" if unanswerable else " (null only for unanswerable items)"
    docs = _str_list(d["doc"], allow_null=unanswerable)
    if docs is None:
        problems.append("doc must be a file name or a list of file names" + null_note)
        docs = ()
    evidence = _str_list(d["evidence"], allow_null=unanswerable)
    if evidence is None:
        problems.append("evidence must be a string or a list of strings" + null_note)
        evidence = ()
    if evidence and not docs:
        problems.append("evidence is given but doc is null")
    if qtype == "multi_doc" and len(set(docs)) < 2:
        problems.append("a multi_doc item needs at least two docs")
    unknown = [n for n in docs if n not in articles]
    for n in unknown:
        known = ", ".join(sorted(articles)[:8]) + (", …" if len(articles) > 8 else "")
        problems.append(f"unknown doc {n!r} (not among the {len(articles)} articles: {known})")
    if not unknown:
        for ev in evidence:
            if not any(ev in articles[n] for n in docs):
                problems.append(f"evidence not found verbatim in {', '.join(docs)}: {_clip(ev)!r}")
    history = _str_list(d.get("history", []), allow_null=False)
    if history is None:
        problems.append("history must be a list of the earlier questions (non-empty strings)")
        history = ()
    return QAItem(qid, question, tuple(answers), docs, evidence, qtype, lineno, history), problems


def article_texts(paths: Sequence[Path | str] | None = None) -> dict[str, str]:
    """File name -> text, read exactly as the index reads it (default: the bundled articles)."""
    from rag import settings as C
    from index.ingest import collect

    corpus = collect(paths or (C.BUNDLED_ARTICLES,))
    return {a.source: a.text for a in corpus.articles}


# ---------------------------------------------------------------------------------------------
