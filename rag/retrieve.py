"""Hybrid retrieval: dense chunks + BM25 chunks + dense sentences fused by reciprocal rank,
then sentence-level scoring with article context and period awareness. Filters are applied
inside each search, so a filtered search still returns k results when k exist."""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from datetime import date

import numpy as np

from . import config as C
from .errors import BadInputError
from .query import STOPWORDS, Question, words
from .store import Index, bm25_tokenize, sentence_key
from .types import Article, Passage

# ---------- small text features ----------
_SUFFIXES = ("ations", "ation", "ings", "ing", "ions", "ion", "ments", "ment", "ers", "er", "ies", "ied", "es", "ed", "ly", "s")
_NUMBER_WORDS = frozenset(
    "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred hundreds thousand thousands million millions dozens dozen half".split()
)
_DIGITS = re.compile(r"\d")
_WHEN = re.compile(
    r"\b(Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday|January|February|March|April|May|June|July|August|September|October|November|December|Jan\.|Feb\.|Aug\.|Sept?\.|Oct\.|Nov\.|Dec\.|today|yesterday|tonight|overnight|morning|evening|night|afternoon|noon|week|weekend|month|year|\d{4}|\d{1,2} ?[ap]\.?m\.?)\b",
    re.I,
)
_CAUSE = re.compile(r"\b(because|after|since|due to|sparked|triggered|in response|retaliat\w*|following|so that|in order|to (?:stop|end|avoid|restore|ensure|protect)|prompted|led to|caused|reason|as a result|goal|aim)\b", re.I)
_CAPS = re.compile(r"(?<![.!?]\s)(?<!^)\b([A-Z][a-z’'\-]+(?:\s+(?:al-|bin\s|of\s|de\s)?[A-Z][a-z’'\-]+)*)")


def stem(w: str) -> str:
    for suf in _SUFFIXES:
        if len(w) > len(suf) + 3 and w.endswith(suf):
            return w[: -len(suf)]
    return w


def stems(text: str) -> set[str]:
    return {stem(w) for w in words(text) if w not in STOPWORDS}


def has_answer_type(qtype: str, sentence: str, question: Question) -> bool:
    if qtype == "number":
        return bool(_DIGITS.search(sentence)) or any(w in _NUMBER_WORDS for w in words(sentence))
    if qtype == "when":
        return bool(_WHEN.search(sentence))
    if qtype in ("who", "where"):
        asked = {stem(w) for w in words(question.search_text)}
        for m in _CAPS.finditer(sentence):
            if not {stem(w) for w in words(m.group(1))} <= asked:
                return True
        return False
    if qtype == "why":
        return bool(_CAUSE.search(sentence))
    return True


# ---------- filters ----------
@dataclass(frozen=True)
class Filters:
    since: date | None = None
    until: date | None = None
    sources: tuple[str, ...] = ()

    @property
    def active(self) -> bool:
        return bool(self.since or self.until or self.sources)

    def allows(self, article: Article) -> bool:
        if self.sources and article.source not in self.sources:
            return False
        if self.since or self.until:
            if not article.date:
                return False
            d = date.fromisoformat(article.date)
            if self.since and d < self.since:
                return False
            if self.until and d > self.until:
                return False
        return True


def parse_filter_date(s: str | None, name: str) -> date | None:
    if s in (None, ""):
        return None
    try:
        return date.fromisoformat(str(s).strip())
    except ValueError:
        raise BadInputError(f"--{name} {s!r} is not a date; use YYYY-MM-DD, e.g. 2012-11-01") from None


# ---------- results ----------
@dataclass(frozen=True)
class ScoredSentence:
    doc_id: str
    index: int  # sentence index in the article
    start: int
    end: int
    score: float
    dense: float
    lexical: float
    context: float
    period: float
    typed: bool
    chunk_id: int


@dataclass(frozen=True)
class Retrieval:
    question: Question
    passages: tuple[Passage, ...]
    sentences: tuple[ScoredSentence, ...]  # best first
    allowed_docs: frozenset[str]


class Statistics:
    """IDF over the index's sentences (stemmed), built once per loaded index."""

    def __init__(self, index: Index):
        df: Counter[str] = Counter()
        n = 0
        for a in index.articles.values():
            for s in a.sentences:
                df.update(stems(a.text[s.start : s.end]))
                n += 1
        self.n = max(n, 1)
        self.df = df

    def idf(self, term: str) -> float:
        return math.log(1 + (self.n + 1) / (self.df.get(term, 0) + 0.5))


def weighted_share(terms: list[str], present: set[str], stats: Statistics) -> float:
    if not terms:
        return 0.0
    total = sum(stats.idf(t) for t in terms)
    return sum(stats.idf(t) for t in terms if t in present) / total if total else 0.0


def period_score(question: Question, article: Article) -> float:
    """How well an article matches the period the question names (0 when it names none)."""
    if not (question.years or question.months or question.operations):
        return 0.0
    score, parts = 0.0, 0
    year = int(article.date[:4]) if article.date else None
    if question.years:
        parts += 1
        if year in question.years:
            score += 1.0
        elif any(str(y) in article.title for y in question.years):
            score += 0.8
    if question.months:
        parts += 1
        if article.date and date.fromisoformat(article.date).strftime("%B") in question.months:
            score += 1.0
    if question.operations:
        parts += 1
        low = article.text.lower()
        if any(op.lower() in low for op in question.operations):
            score += 1.0
    return score / parts


def _rrf(rankings: list[list[int]], k: int = C.RRF_K) -> dict[int, float]:
    fused: dict[int, float] = {}
    for ranking in rankings:
        for r, cid in enumerate(ranking):
            fused[cid] = fused.get(cid, 0.0) + 1.0 / (k + r + 1)
    return fused


def _faiss_search(index, qv: np.ndarray, k: int, allowed: np.ndarray | None):
    import faiss

    if allowed is not None and len(allowed) == 0:
        return []
    k = min(k, index.ntotal if allowed is None else len(allowed))
    if k <= 0:
        return []
    params = None
    if allowed is not None:
        params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(allowed))
    scores, ids = index.search(qv[None, :].astype(np.float32), k, params=params)
    return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]


def retrieve(
    index: Index,
    stats: Statistics,
    question: Question,
    qv: np.ndarray,
    k: int = C.DEFAULT_K,
    filters: Filters = Filters(),
) -> Retrieval:
    if k < 1:
        raise BadInputError(f"k must be at least 1. Currently, k is {k}")
    allowed_docs = frozenset(d for d, a in index.articles.items() if filters.allows(a))
    chunk_allowed = sent_allowed = bm25_mask = None
    if filters.active:
        chunk_allowed = np.array([cid for cid, c in index.chunks.items() if c.doc_id in allowed_docs], dtype=np.int64)
        sent_allowed = np.array(
            [sentence_key(index.doc_seq[d], i) for d in allowed_docs for i in range(len(index.articles[d].sentences))],
            dtype=np.int64,
        )
        pos_ok = {cid for cid in chunk_allowed.tolist()}
        bm25_mask = np.array([1.0 if cid in pos_ok else 0.0 for cid in index.bm25_ids], dtype=np.float32)
    if not allowed_docs:
        return Retrieval(question, (), (), allowed_docs)

    n = C.CANDIDATES
    dense = _faiss_search(index.chunk_index, qv, n, chunk_allowed)
    sent_hits = _faiss_search(index.sentence_index, qv, n, sent_allowed)
    bm25_rank: list[int] = []
    toks = bm25_tokenize([question.search_text])
    if index.bm25 is not None and toks.vocab and any(len(t) for t in toks.ids):
        qtokens = [[w for w in toks.vocab]]
        kk = min(n, len(index.bm25_ids) if bm25_mask is None else int(bm25_mask.sum()))
        if kk > 0:
            res, sc = index.bm25.retrieve(qtokens, k=kk, show_progress=False, weight_mask=bm25_mask)
            bm25_rank = [index.bm25_ids[int(i)] for i, s in zip(res[0], sc[0]) if s > 0]
    # sentence hits vote for the chunks that hold them
    seq_doc = {s: d for d, s in index.doc_seq.items()}
    sent_dense: dict[tuple[str, int], float] = {}
    sent_chunk_rank: list[int] = []
    for key, s in sent_hits:
        d, i = seq_doc[key >> 24], key & ((1 << 24) - 1)
        sent_dense[(d, i)] = s
        for cid in index.chunks_by_doc.get(d, ()):
            if i in index.chunks[cid].sentences and cid not in sent_chunk_rank:
                sent_chunk_rank.append(cid)
                break
    fused = _rrf([[c for c, _ in dense], bm25_rank, sent_chunk_rank])
    # period awareness: articles that match the named period rank first
    periods = {d: period_score(question, index.articles[d]) for d in allowed_docs}
    for cid in fused:
        fused[cid] += periods[index.chunks[cid].doc_id] * C.W_PERIOD / (C.RRF_K + 1)
    ranked = sorted(fused, key=fused.get, reverse=True)
    best = fused[ranked[0]] if ranked else 1.0

    # second stage: score the sentences of the top chunks
    q_terms = list(dict.fromkeys(stem(t) for t in question.terms))
    cand: dict[tuple[str, int], int] = {}
    for cid in ranked[: C.SENTENCE_CANDIDATE_CHUNKS]:
        for i in index.chunks[cid].sentences:
            cand.setdefault((index.chunks[cid].doc_id, i), cid)
    for (d, i), _ in sent_dense.items():
        if (d, i) not in cand:
            cid = next((c for c in index.chunks_by_doc[d] if i in index.chunks[c].sentences), None)
            if cid is not None:
                cand[(d, i)] = cid
    by_doc: dict[str, list[int]] = {}
    for d, i in cand:
        by_doc.setdefault(d, []).append(i)
    scored: list[ScoredSentence] = []
    for d, idxs in by_doc.items():
        art = index.articles[d]
        vecs = index.sentence_vectors(d, idxs)
        cos = vecs @ qv
        title_stems = stems(art.title)
        for i, c in zip(idxs, cos):
            sp = art.sentences[i]
            text = art.text[sp.start : sp.end]
            own = stems(text)
            lo, hi = max(0, i - 2), min(len(art.sentences), i + 3)
            ctx = set(own) | title_stems
            for j in range(lo, hi):
                ctx |= stems(art.sentence_text(j))
            lex = weighted_share(q_terms, own, stats)
            con = weighted_share(q_terms, ctx, stats)
            typed = has_answer_type(question.qtype, text, question)
            cid = cand[(d, i)]
            score = (
                C.W_DENSE * float(c)
                + C.W_LEXICAL * lex
                + C.W_CONTEXT * con
                + C.W_CHUNK * fused.get(cid, 0.0) / best
                + C.W_PERIOD * periods[d]
                + (C.W_TYPE if typed else 0.0)
            )
            scored.append(ScoredSentence(d, i, sp.start, sp.end, score, float(c), lex, con, periods[d], typed, cid))
    scored.sort(key=lambda s: s.score, reverse=True)

    # passages: chunks ranked by their best sentence, then by fused score
    chunk_best: dict[int, float] = {}
    for s in scored:
        chunk_best.setdefault(s.chunk_id, s.score)
        for cid in index.chunks_by_doc[s.doc_id]:
            if s.index in index.chunks[cid].sentences:
                chunk_best[cid] = max(chunk_best.get(cid, -1e9), s.score)
    order = sorted(chunk_best, key=lambda c: (chunk_best[c], fused.get(c, 0.0)), reverse=True)
    for cid in ranked:
        if cid not in chunk_best:
            order.append(cid)
    passages = []
    for r, cid in enumerate(order[:k]):
        c = index.chunks[cid]
        passages.append(Passage(r + 1, c.doc_id, c.source, c.start, c.end, c.text, round(chunk_best.get(cid, 0.0), 4)))
    return Retrieval(question, tuple(passages), tuple(scored), allowed_docs)
