"""Question analysis: validation, the expected answer type, content terms, period cues and
follow-up resolution. Plain functions, no model."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from .config import MAX_QUESTION_CHARS
from .errors import BadInputError

STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had
    has have having he her here hers herself him himself his how i if in into is it its itself just
    me more most my myself no nor not now of off on once only or other our ours out over own same
    she should so some such than that the their theirs them themselves then there these they this
    those through to too under until up very was we were what when where which while who whom whose
    why will with would you your yours also say said says tell told according did does many much
    whose one ones else ever get got give given make made take took per via yet still""".split()
)
QUESTION_WORDS = frozenset("what when where which who whom whose why how".split())
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'’\-]*")
_YEAR = re.compile(r"\b(19[5-9]\d|20[0-4]\d)\b")
_MONTH = re.compile(
    r"\b(January|February|March|April|May|June|July|August|September|October|November|December)\b"
)
_OPERATION = re.compile(r"\bOperation\s+((?:[A-Z][\w’'-]+)(?:\s+(?:of|and|the|[A-Z][\w’'-]+))*\s*[A-Z]?[\w’'-]*)")
_FOLLOWUP_START = re.compile(r"^(and|but|also|what about|how about|then|so)\b", re.I)
_PRONOUN = re.compile(r"\b(it|its|they|them|their|he|him|his|she|her|that|those|these|this|there)\b", re.I)

TYPE_PATTERNS: list[tuple[str, re.Pattern]] = [
    ("number", re.compile(r"^\s*(how many|how much|what (?:was |is )?the (?:number|total|toll|death toll|percentage|population)|what number|how large|how big|how old|how long|by how much)\b", re.I)),
    ("when", re.compile(r"^\s*(when|what (?:day|date|time|month|year)|on what (?:day|date)|which (?:day|date|month|year)|at what time|in what year|in which year)\b", re.I)),
    ("who", re.compile(r"^\s*(who|whom|whose|which (?:person|official|minister|leader|politician|spokesman|spokesperson|journalist|reporter|commander|group|organi[sz]ation|country|countries)|what (?:is the name of|group|organi[sz]ation|country))\b", re.I)),
    ("where", re.compile(r"^\s*(where|in what (?:city|town|place|country)|in which (?:city|town|place|country)|what (?:city|town|place))\b", re.I)),
    ("why", re.compile(r"^\s*(why|what (?:caused|sparked|triggered|prompted|led to)|for what reason|what was the reason)\b", re.I)),
]
LIST_CUE = re.compile(r"\b(which (?:countries|leaders|officials|groups|ministers)|name (?:the|all)|list|what are the|who are the|both|each of|which two|three)\b", re.I)


@dataclass(frozen=True)
class Question:
    text: str  # as asked (normalised white space)
    search_text: str  # what retrieval uses: with the previous turn for a follow-up
    qtype: str  # number | when | who | where | why | what
    terms: tuple[str, ...]  # lower-cased content words
    names: tuple[str, ...]  # capitalised words/phrases inside the question (not the first word)
    years: tuple[int, ...]
    months: tuple[str, ...]
    operations: tuple[str, ...]
    is_list: bool
    followup: bool


def normalize_question(q: str) -> str:
    if q is None:
        raise BadInputError("the question is empty; type a question about the articles")
    q = unicodedata.normalize("NFC", str(q))
    q = " ".join(q.split())
    if not q:
        raise BadInputError("the question is empty; type a question about the articles")
    if len(q) > MAX_QUESTION_CHARS:
        raise BadInputError(
            f"the question is {len(q):,} characters long; the limit is {MAX_QUESTION_CHARS:,}. Ask a shorter question"
        )
    return q


def words(text: str) -> list[str]:
    return [w.strip("'’-").lower() for w in _WORD.findall(text)]


def content_terms(text: str) -> list[str]:
    return [w for w in words(text) if w and w not in STOPWORDS and len(w) > 1 or w.isdigit()]


def is_english(q: str) -> bool:
    letters = [c for c in q if c.isalpha()]
    if not letters:
        return False
    ascii_share = sum(c.isascii() for c in letters) / len(letters)
    return ascii_share >= 0.8


def question_type(q: str) -> str:
    for name, pat in TYPE_PATTERNS:
        if pat.search(q):
            return name
    return "what"


def period_cues(text: str) -> tuple[tuple[int, ...], tuple[str, ...], tuple[str, ...]]:
    years = tuple(sorted({int(y) for y in _YEAR.findall(text)}))
    months = tuple(sorted({m for m in _MONTH.findall(text)}))
    ops = tuple(sorted({" ".join(m.split()) for m in _OPERATION.findall(text)}))
    return years, months, ops


def _names(q: str) -> tuple[str, ...]:
    toks = _WORD.findall(q)
    out = []
    for i, t in enumerate(toks):
        if i > 0 and t[0].isupper() and t.lower() not in STOPWORDS and t.lower() not in QUESTION_WORDS:
            out.append(t.strip("'’-"))
    return tuple(dict.fromkeys(out))


def is_followup(q: str) -> bool:
    n = len(words(q))
    return bool(_FOLLOWUP_START.search(q)) or (n <= 8 and bool(_PRONOUN.search(q)) and not _names(q))


def analyze(question: str, history: list[str] | None = None) -> Question:
    """Validate and analyse a question. ``history`` holds the user's earlier questions, newest
    last; a follow-up borrows the previous question's words and period."""
    q = normalize_question(question)
    terms = content_terms(q)
    if not terms:
        if not any(c.isalnum() for c in q):
            raise BadInputError("the question has no words to search for (only symbols or emoji); ask in words")
        if is_english(q):
            raise BadInputError(
                "the question has only common words (like 'what is the'); add what you want to know about"
            )
    prev = normalize_question(history[-1]) if history else None
    followup = bool(prev) and is_followup(q)
    search_text = f"{prev} {q}" if followup else q
    years, months, ops = period_cues(search_text)
    qtype = question_type(q)
    if followup and qtype == "what":
        qtype = question_type(q.split(" ", 1)[-1]) if _FOLLOWUP_START.search(q) else qtype
    return Question(
        text=q,
        search_text=search_text,
        qtype=qtype,
        terms=tuple(dict.fromkeys(content_terms(search_text) if followup else terms)),
        names=_names(search_text),
        years=years,
        months=months,
        operations=ops,
        is_list=bool(LIST_CUE.search(q)),
        followup=followup,
    )
