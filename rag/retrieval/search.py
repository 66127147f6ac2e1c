"""Hybrid retrieval: dense chunks + BM25 chunks + dense sentences fused by reciprocal rank,
then sentence-level scoring with article context and period awareness. Filters are applied
inside each search, so a filtered search still returns k results when k exist."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import numpy as np

from rag import settings as C
from rag.errors import BadInputError
from index import lexical
from rag.question.analysis import OPERATION, Question, content_terms, core_text
from rag.question.answer_types import has_answer_type, stem, stems
from rag.question.periods import in_part, multi_period, period_parts, period_scores
from index.lexical import bm25_tokenize
from index.first_stage import SearchIndex as Index
from rag.retrieval.scoring import FEATURES, Candidate, LinearScorer, bigram_share, feature_matrix, has_quote
from rag.types import Article, Passage


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
    features: tuple[float, ...] = ()  # scoring.FEATURES of this sentence
    reader: float | None = None  # the reader's log-odds (retrieval.reader), when it read this sentence


@dataclass(frozen=True)
class Retrieval:
    question: Question
    passages: tuple[Passage, ...]
    sentences: tuple[ScoredSentence, ...]  # best first
    allowed_docs: frozenset[str]


class Statistics:
    """Per-index text statistics built once after loading: IDF over sentences (stemmed) and
    the stems of every sentence, title and article, so scoring a question reads, not parses."""

    def __init__(self, index: Index):
        df: Counter[str] = Counter()
        self.sentence_stems: dict[str, list[frozenset[str]]] = {}
        self.article_stems: dict[str, frozenset[str]] = {}
        self.title_stems: dict[str, frozenset[str]] = {}
        n = 0
        for a in index.articles.values():
            ss = [frozenset(stems(a.text[s.start : s.end])) for s in a.sentences]
            self.sentence_stems[a.doc_id] = ss
            self.title_stems[a.doc_id] = frozenset(stems(a.title))
            self.article_stems[a.doc_id] = frozenset().union(*ss, self.title_stems[a.doc_id])
            for st in ss:
                df.update(st)
            n += len(ss)
        self.n = max(n, 1)
        self.df = df
        self._idf: dict[str, float] = {}
        ops: Counter[str] = Counter()
        for a in index.articles.values():
            ops.update(" ".join(m.split()) for m in OPERATION.findall(a.text))
        self.operations = sorted(ops)

    def idf(self, term: str) -> float:
        v = self._idf.get(term)
        if v is None:
            v = self._idf[term] = math.log(1 + (self.n + 1) / (self.df.get(term, 0) + 0.5))
        return v

    def context(self, doc_id: str, i: int, width: int = 2) -> frozenset[str]:
        ss = self.sentence_stems[doc_id]
        return frozenset().union(*ss[max(0, i - width) : i + width + 1], self.title_stems[doc_id])


def weighted_share(terms: list[str], present: set[str], stats: Statistics) -> float:
    if not terms:
        return 0.0
    total = sum(stats.idf(t) for t in terms)
    return sum(stats.idf(t) for t in terms if t in present) / total if total else 0.0


def rarest_missing(terms: list[str], present: frozenset[str] | set[str], stats: Statistics) -> float:
    """The IDF of the rarest question term not in ``present``, over the largest IDF (0: none missing)."""
    missing = [stats.idf(t) for t in terms if t not in present]
    return max(missing) / stats.idf("\x00") if missing else 0.0


# the hand-set weights of the rule-based chain, as a linear scorer over the same features
HAND_SCORER = LinearScorer(
    mean=np.zeros(len(FEATURES), dtype=np.float32),
    scale=np.ones(len(FEATURES), dtype=np.float32),
    coef=np.array([{"dense": C.HAND_WEIGHTS.dense, "lexical": C.HAND_WEIGHTS.lexical, "context": C.HAND_WEIGHTS.context, "chunk": C.HAND_WEIGHTS.chunk,
                    "period": C.HAND_WEIGHTS.period, "typed": C.HAND_WEIGHTS.typed}.get(f, 0.0) for f in FEATURES], dtype=np.float32),
    intercept=0.0,
)


def scoring_terms(question: Question) -> list[str]:
    """Stemmed question terms for sentence scoring. Words that only name the period are left
    out: the article-level period score carries them, and a sentence that merely repeats the
    operation's name or the year is not the answer."""
    return list(dict.fromkeys(stem(t) for t in content_terms(core_text(question))))


def _rrf(rankings: list[list[int]], k: int = C.SEARCH.rrf_k) -> dict[int, float]:
    fused: dict[int, float] = {}
    for ranking in rankings:
        for r, cid in enumerate(ranking):
            fused[cid] = fused.get(cid, 0.0) + 1.0 / (k + r + 1)
    return fused


def _bm25_terms(question: Question) -> list[str]:
    """The question's BM25 tokens (empty when it has none), tokenized once per question."""
    toks = bm25_tokenize([question.search_text])
    return list(toks.vocab) if toks.vocab and any(len(t) for t in toks.ids) else []


@dataclass
class FirstStage:
    """What the first stage found: each list's ranking, the fused chunk scores (with the period
    bonus), the dense sentence hits, and the period score of every allowed article."""

    dense: list[int]  # chunk ids by dense score
    bm25: list[int]  # chunk ids by BM25
    sentence_chunks: list[int]  # chunks in the order of their best dense sentence hit
    sentence_hits: dict[tuple[str, int], float]  # (doc_id, sentence index) -> cosine, best first
    part_chunks: list[int]  # the BM25 head of each period of a multi-period question
    fused: dict[int, float]
    ranked: list[int]  # chunk ids by fused score
    periods: dict[str, float]

    @property
    def best(self) -> float:
        return self.fused[self.ranked[0]] if self.ranked else 1.0


def retrieve(
    index: Index,
    stats: Statistics,
    question: Question,
    qv: np.ndarray,
    k: int = C.DEFAULT_K,
    filters: Filters = Filters(),
    scorer: LinearScorer | None = None,
    qv_tuned: np.ndarray | None = None,
    rerank: Callable[[list[ScoredSentence]], list[ScoredSentence]] | None = None,
) -> Retrieval:
    """``qv`` embeds the question without its period phrases (``core_text``); ``qv_tuned`` is the
    question adapter's vector of the same text, when there is one. ``scorer`` turns each
    candidate sentence's features into its score (default: the hand weights); ``rerank`` rescores
    the sentences, best first, when given (the reader). Three stages:
    first-stage search and fusion over chunks, the sentences of the best chunks scored, and the
    passages ordered by their best sentence."""
    if k < 1:
        raise BadInputError(f"k must be at least 1. Currently, k is {k}")
    allowed_docs = (frozenset(d for d, a in index.articles.items() if filters.allows(a)) if filters.active
                    else frozenset(index.articles))
    if not allowed_docs:
        return Retrieval(question, (), (), allowed_docs)
    fs = first_stage(index, question, qv, allowed_docs, filters)
    cand = candidate_sentences(index, fs)
    keys, cands = sentence_candidates(index, stats, question, qv, qv_tuned, fs, cand)
    X = feature_matrix(cands)
    logits = (scorer or HAND_SCORER).logits(X)
    scored: list[ScoredSentence] = []
    for (d, i), c, x, z in zip(keys, cands, X, logits):
        sp = index.articles[d].sentences[i]
        scored.append(ScoredSentence(d, i, sp.start, sp.end, float(z), c.dense, c.lexical, c.context, c.period,
                                     c.typed, cand[(d, i)], tuple(float(v) for v in x)))
    scored.sort(key=lambda s: s.score, reverse=True)
    scored = distinct_sentences(index, in_named_period(index, question, scored, fs.periods))
    if rerank is not None:
        scored = rerank(scored)
    return Retrieval(question, tuple(passages_of(index, question, scored, fs, k)), tuple(scored), allowed_docs)


def distinct_sentences(index: Index, scored: list[ScoredSentence]) -> list[ScoredSentence]:
    """``scored`` (best first) without the sentences whose words repeat a better one's: a
    near-duplicate article (the same story filed twice) repeats sentences word for word, and the
    copy would take one of the reader's places, be cited twice, and as the best sentence elsewhere
    make a sure answer look contested."""
    seen: set[str] = set()
    out = []
    for s in scored:
        text = " ".join(index.articles[s.doc_id].sentence_text(s.index).split())
        if text not in seen:
            seen.add(text)
            out.append(s)
    return out


def first_stage(index: Index, question: Question, qv: np.ndarray, allowed_docs: frozenset[str],
                filters: Filters) -> FirstStage:
    """Dense chunks, BM25 chunks and dense sentences, fused by reciprocal rank; the articles of
    the period the question names get a bonus, and each period of a multi-period question its
    own best hits."""
    docs = allowed_docs if filters.active else None
    where = filters if filters.active else None
    n = C.SEARCH.candidates
    dense = index.search_chunks(qv, n, docs, where)
    sent_hits = index.search_sentences(qv, n, docs, where)
    bm25_terms = _bm25_terms(question)
    bm25_rank = index.search_bm25(bm25_terms, n, docs, where)
    # sentence hits vote for the chunks that hold them
    sent_dense: dict[tuple[str, int], float] = {}
    sent_chunk_rank: list[int] = []
    for d, i, s in sent_hits:
        sent_dense[(d, i)] = s
        for cid in index.chunks_by_doc.get(d, ()):
            if i in index.chunks[cid].sentences and cid not in sent_chunk_rank:
                sent_chunk_rank.append(cid)
                break
    fused = _rrf([[c for c, _ in dense], bm25_rank, sent_chunk_rank])
    part_chunks: list[int] = []
    if multi_period(question):  # each period's own best hits reach the sentence stage
        for part in period_parts(question):
            docs = frozenset(d for d in allowed_docs if in_part(part, index.articles[d]))
            if not docs:
                continue
            for d, i, s in index.search_sentences(qv, C.SEARCH.part_candidates, docs):
                sent_dense.setdefault((d, i), s)
            part_chunks += index.search_bm25(bm25_terms, C.SEARCH.head_per_list, docs)
    # period awareness: articles that match the named period rank first
    periods = period_scores(question, [index.articles[d] for d in allowed_docs])
    for cid in fused:
        fused[cid] += periods[index.chunks[cid].doc_id] * C.HAND_WEIGHTS.period / (C.SEARCH.rrf_k + 1)
    ranked = sorted(fused, key=fused.get, reverse=True)
    return FirstStage([c for c, _ in dense], bm25_rank, sent_chunk_rank, sent_dense, part_chunks, fused, ranked, periods)


def candidate_sentences(index: Index, fs: FirstStage) -> dict[tuple[str, int], int]:
    """(doc_id, sentence index) -> the chunk it is scored with: the sentences of the fused top
    chunks, of the head of each list (RRF dilutes a strong lexical hit when the two dense lists
    agree with each other), and the dense sentence hits."""
    cand: dict[tuple[str, int], int] = {}
    heads = [c for lst in (fs.dense, fs.bm25, fs.sentence_chunks) for c in lst[: C.SEARCH.head_per_list]] + fs.part_chunks
    for cid in list(dict.fromkeys(fs.ranked[: C.SEARCH.sentence_candidate_chunks] + heads)):
        for i in index.chunks[cid].sentences:
            cand.setdefault((index.chunks[cid].doc_id, i), cid)
    for (d, i), _ in fs.sentence_hits.items():
        if (d, i) not in cand:
            cid = next((c for c in index.chunks_by_doc[d] if i in index.chunks[c].sentences), None)
            if cid is not None:
                cand[(d, i)] = cid
    return cand


def sentence_candidates(index: Index, stats: Statistics, question: Question, qv: np.ndarray,
                        qv_tuned: np.ndarray | None, fs: FirstStage,
                        cand: dict[tuple[str, int], int]) -> tuple[list[tuple[str, int]], list[Candidate]]:
    """The features of every candidate sentence (``scoring.FEATURES``), with its key."""
    by_doc: dict[str, list[int]] = {}
    for d, i in cand:
        by_doc.setdefault(d, []).append(i)
    q_terms = scoring_terms(question)
    rank_of = {cid: r for r, cid in enumerate(fs.ranked)}
    bm25_head = set(fs.bm25[: C.SEARCH.head_per_list])
    name_stems = [stem(n.lower()) for n in question.names if n.lower() not in question.period_words]
    q_seq = lexical.terms(core_text(question))
    sent_rank = {key: r for r, key in enumerate(fs.sentence_hits)}
    best = fs.best
    keys: list[tuple[str, int]] = []
    cands: list[Candidate] = []
    for d, idxs in by_doc.items():
        art = index.articles[d]
        n_sent = len(art.sentences)
        wanted = sorted({j for i in idxs for j in (i - 1, i, i + 1) if 0 <= j < n_sent})
        vecs = index.sentence_vectors(d, wanted)
        cos_of = dict(zip(wanted, (vecs @ qv).tolist()))
        tuned_of = dict(zip(wanted, (vecs @ qv_tuned).tolist())) if qv_tuned is not None else cos_of
        art_stems = stats.article_stems[d]
        art_cov = weighted_share(q_terms, art_stems, stats)
        miss_art = rarest_missing(q_terms, art_stems, stats)
        names_art = sum(n in art_stems for n in name_stems) / len(name_stems) if name_stems else 1.0
        for i in idxs:
            sp = art.sentences[i]
            text = art.text[sp.start : sp.end]
            sent_stems = stats.sentence_stems[d][i]
            cid = cand[(d, i)]
            keys.append((d, i))
            cands.append(Candidate(
                dense=cos_of[i],
                dense_tuned=tuned_of[i],
                dense_neighbour=max(cos_of.get(i - 1, -1.0), cos_of.get(i + 1, -1.0)),
                lexical=weighted_share(q_terms, sent_stems, stats),
                context=weighted_share(q_terms, ctx := stats.context(d, i), stats),
                article_coverage=art_cov,
                names_sentence=sum(n in sent_stems for n in name_stems) / len(name_stems) if name_stems else 1.0,
                names_article=names_art,
                chunk=fs.fused.get(cid, 0.0) / best,
                chunk_rank=rank_of.get(cid, len(fs.ranked)),
                bm25_head=cid in bm25_head,
                period=fs.periods[d],
                typed=has_answer_type(question.qtype, text, question, sent_stems),
                qtype=question.qtype,
                bigrams=bigram_share(q_seq, lexical.terms(text)),
                sentence_rank=sent_rank.get((d, i)),
                quote=has_quote(text),
                missing_context=rarest_missing(q_terms, ctx, stats),
                missing_article=miss_art,
                index=i,
                sentences=n_sent,
                words=len(text.split()),
            ))
    return keys, cands


def in_named_period(index: Index, question: Question, scored: list[ScoredSentence],
                    periods: dict[str, float]) -> list[ScoredSentence]:
    """A question that names a period is answered from the dated articles of that period only
    (also when a filter left no article of that period: then only sentences stating it qualify);
    an undated article cannot be placed outside the period, so it stays."""
    if not (question.years or question.months or question.operations):
        return scored
    top_period = max(periods.values(), default=0.0)
    cues = [str(y) for y in question.years] + [op.lower() for op in question.operations]
    return [
        s for s in scored
        if (top_period > 0 and s.period >= top_period)
        or index.articles[s.doc_id].date is None
        or any(c in index.articles[s.doc_id].text[s.start : s.end].lower() for c in cues)
    ]


def passages_of(index: Index, question: Question, scored: list[ScoredSentence], fs: FirstStage,
                k: int) -> list[Passage]:
    """The top ``k`` chunks ranked by their best sentence, then by fused score; passages of
    other periods go last, and a question about several periods (or articles) gets them in turn."""
    chunk_best: dict[int, float] = {}
    for s in scored:
        chunk_best.setdefault(s.chunk_id, s.score)
        for cid in index.chunks_by_doc[s.doc_id]:
            if s.index in index.chunks[cid].sentences:
                chunk_best[cid] = max(chunk_best.get(cid, -1e9), s.score)
    order = sorted(chunk_best, key=lambda c: (chunk_best[c], fs.fused.get(c, 0.0)), reverse=True)
    for cid in fs.ranked:
        if cid not in chunk_best:
            order.append(cid)
    periods = fs.periods
    top_period = max(periods.values(), default=0.0)
    if top_period > 0:  # passages of other periods go last
        order = [c for c in order if periods[index.chunks[c].doc_id] >= top_period] + [
            c for c in order if periods[index.chunks[c].doc_id] < top_period
        ]
    if question.multi:  # round-robin over the periods (or the period's articles), so each is represented
        in_period = [c for c in order if periods[index.chunks[c].doc_id] >= top_period]
        groups: dict[str, list[int]] = {}
        parts = period_parts(question) if multi_period(question) else ()
        for cid in in_period:
            art = index.articles[index.chunks[cid].doc_id]
            for g in [p for p in parts if in_part(p, art)] or [art.doc_id]:
                groups.setdefault(g, []).append(cid)
        lists = list(groups.values())
        rr = [lst[i] for i in range(max(map(len, lists), default=0)) for lst in lists if i < len(lst)]
        order = list(dict.fromkeys(rr)) + [c for c in order if c not in set(rr)]
    return [Passage(r + 1, index.chunks[cid].doc_id, index.chunks[cid].source, index.chunks[cid].start,
                    index.chunks[cid].end, index.chunks[cid].text, round(chunk_best.get(cid, 0.0), 4))
            for r, cid in enumerate(order[:k])]
