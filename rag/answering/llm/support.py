"""The support test (plain functions): is a sentence of the model's answer supported by the
passage it cites? Content words, numbers and names must be found in one evidence window."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from index import lexical, lexicon
from index.sentences import sentence_spans
from rag.answering.llm.markers import parse_markers
from rag.types import Article, Passage, Span

SUPPORT_THRESHOLD = 0.6  # share of a sentence's content words found in one evidence window

STOP_WORDS = lexical.STOPWORDS | lexicon.words("meta_words")
NUMBER_WORDS = lexicon.number_values()

_TOKEN = re.compile(r"\d+(?:[.,]\d+)*|[^\W\d_]+(?:['’][^\W\d_]+)*")


def _norm_number(tok: str) -> str:
    if re.fullmatch(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?", tok):
        tok = tok.replace(",", "")
    tok = tok.rstrip(".,")
    if "." in tok:
        tok = tok.rstrip("0").rstrip(".") if re.fullmatch(r"\d+\.\d+", tok) else tok
    return tok.lstrip("0") or "0"


def _stem(word: str) -> str:
    w = word.lower().replace("’", "'")
    return lexical.stem(w[:-2] if w.endswith("'s") else w.rstrip("'"))


@dataclass(frozen=True)
class Terms:
    """What the support test compares: content-word stems, normalised numbers, and the stems of
    capitalised words (names, places, acronyms, days)."""

    content: frozenset[str]
    numbers: frozenset[str]
    names: frozenset[str]


def terms(text: str) -> Terms:
    content, numbers, names = set(), set(), set()
    for m in _TOKEN.finditer(text):
        tok = m.group(0)
        if tok[0].isdigit():
            n = _norm_number(tok)
            numbers.add(n)
            content.add(n)
            continue
        low = tok.lower().replace("’", "'")
        if low in NUMBER_WORDS:
            n = str(NUMBER_WORDS[low])
            numbers.add(n)
            content.add(n)
            continue
        if low in STOP_WORDS or len(low) < 2:
            continue
        st = _stem(low)
        content.add(st)
        if tok[0].isupper():
            names.add(st)
    return Terms(frozenset(content), frozenset(numbers), frozenset(names))


def _found(word: str, bag: frozenset[str] | set[str]) -> bool:
    if word in bag:
        return True
    if len(word) >= 5 and not word.isdigit():  # Israel/Israeli, Egypt/Egyptian
        return any(len(b) >= 5 and (b.startswith(word) or word.startswith(b)) for b in bag)
    return False


@dataclass(frozen=True)
class Support:
    supported: bool
    score: float  # best share of content words found in one evidence window
    best: int  # index of the single evidence sentence with the most overlap (-1: none)
    missing_numbers: tuple[str, ...] = ()
    missing_names: tuple[str, ...] = ()


def check_support(
    sentence: str, evidence: str | Sequence[str], threshold: float = SUPPORT_THRESHOLD
) -> Support:
    """Whether ``evidence`` (a passage's sentences, or a text split here into sentences) supports
    ``sentence``: at least ``threshold`` of the sentence's content words (lower-cased, stop words
    removed, crude stems, numbers normalised) occur in one evidence sentence or two consecutive
    ones, and every number and capitalised word of the sentence occurs somewhere in the evidence.
    Markers in ``sentence`` are ignored."""
    sentence, _ = parse_markers(sentence)
    if isinstance(evidence, str):
        evidence = [evidence[s.start : s.end] for s in sentence_spans(evidence, [])] or [evidence]
    ev = [terms(e) for e in evidence]
    st = terms(sentence)
    if not st.content or not ev:
        return Support(False, 0.0, -1)
    all_content = frozenset().union(*(e.content for e in ev))
    all_numbers = frozenset().union(*(e.numbers for e in ev))
    missing_numbers = tuple(sorted(n for n in st.numbers if n not in all_numbers))
    missing_names = tuple(sorted(n for n in st.names if not _found(n, all_content)))

    def share(bag) -> float:
        return sum(1 for w in st.content if _found(w, bag)) / len(st.content)

    singles = [share(e.content) for e in ev]
    pairs = [share(ev[i].content | ev[i + 1].content) for i in range(len(ev) - 1)]
    score = max(singles + pairs)
    best = max(range(len(singles)), key=lambda i: (singles[i], -i))
    ok = score >= threshold and not missing_numbers and not missing_names
    return Support(ok, round(score, 4), best, missing_numbers, missing_names)


def addresses_question(question: str, sentences: Sequence[str]) -> bool:
    """Whether any of the sentences shares a content word (or number) with the question: a guard
    against a small model copying a supported but unrelated passage when nothing answers."""
    q = terms(question).content
    if not q:
        return True
    return any(_found(w, q) for s in sentences for w in terms(parse_markers(s)[0]).content)


def supports(sentence: str, evidence: str | Sequence[str], threshold: float = SUPPORT_THRESHOLD) -> bool:
    return check_support(sentence, evidence, threshold).supported


# --------------------------------------------------------------------------------------------
# Checking an answer
# --------------------------------------------------------------------------------------------


def passage_sentences(p: Passage, articles: Mapping[str, Article]) -> list[tuple[Span, str]]:
    """The sentences of a passage as (span in the article, text), clipped to the passage. Uses the
    article's sentence spans when the passage matches its article, else splits the passage text."""
    a = articles.get(p.doc_id)
    out: list[tuple[Span, str]] = []
    if a is not None and a.text[p.start : p.end] == p.text:
        for s in a.sentences:
            lo, hi = max(s.start, p.start), min(s.end, p.end)
            if hi > lo and a.text[lo:hi].strip():
                out.append((Span(lo, hi), a.text[lo:hi]))
        if out:
            return out
    for s in sentence_spans(p.text, []):
        out.append((Span(p.start + s.start, p.start + s.end), p.text[s.start : s.end]))
    return out or [(Span(p.start, p.end), p.text)]
