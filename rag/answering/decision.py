"""When does it answer, and from which sentences? The learned decision.

The sentences come ranked by the evidence model (``retrieval.sentences``, best first, each
``score`` a log-odds). The answer's confidence is the calibrated probability that the best
sentence answers the question (``Answerer.confidence``); below the threshold chosen on the dev
split it abstains. Only hard facts abstain on their own: nothing retrieved, or no article left
by the filters (the period filter of retrieval included).

Further evidence: sentences of other articles (and, for a list question, of the same article)
whose own probability of being evidence is at least ``EXTRA_MIN_PROB``."""

from __future__ import annotations

import math
from dataclasses import dataclass

from rag.answering.model import Answerer, confidence_inputs
from rag.question.periods import in_part, multi_period, period_parts
from rag.retrieval.search import Retrieval, ScoredSentence
from index.store import Index

EXTRA_MIN_PROB = 0.5  # a further sentence is cited when it is more likely evidence than not
MAX_EXTRA = 2


@dataclass(frozen=True)
class Decision:
    abstain: bool
    reason: str | None
    evidence: tuple[ScoredSentence, ...]
    confidence: float | None = None


def _prob(s: ScoredSentence) -> float:
    return 1.0 / (1.0 + math.exp(-max(min(s.score, 40.0), -40.0)))


def answer_confidence(retrieval: Retrieval, answerer: Answerer) -> float:
    """The calibrated probability that the best sentence answers the question."""
    ranked = retrieval.sentences
    top = ranked[0]
    second = next((s.score for s in ranked[1:] if s.doc_id != top.doc_id or abs(s.index - top.index) > 1), None)
    return answerer.confidence(confidence_inputs(top.score, second, top.features))


TYPED_QUESTIONS = ("who", "number", "when", "where")  # answer types a sentence is checked for


def attribution(retrieval: Retrieval, best: ScoredSentence) -> ScoredSentence | None:
    """The sentence before (else after) the best one when that holds the asked answer type and
    the best one does not: a quote and the sentence naming its speaker, a figure stated in the
    next sentence."""
    q = retrieval.question
    if q.qtype not in TYPED_QUESTIONS or best.typed:
        return None
    by_key = {(s.doc_id, s.index): s for s in retrieval.sentences}
    for j in (best.index - 1, best.index + 1):
        s = by_key.get((best.doc_id, j))
        if s is not None and s.typed:
            return s
    return None


def extra_evidence(retrieval: Retrieval, index: Index, best: ScoredSentence) -> list[ScoredSentence]:
    """The best sentence of each further period (multi-period questions), else likely evidence
    from other articles; for list questions also from the same article."""
    q = retrieval.question
    out: list[ScoredSentence] = []
    if multi_period(q):
        for part in period_parts(q):
            pool = [s for s in retrieval.sentences if in_part(part, index.articles[s.doc_id])]
            if pool and pool[0] is not best and pool[0] not in out and _prob(pool[0]) >= EXTRA_MIN_PROB:
                out.append(pool[0])
        return out[:MAX_EXTRA]
    for s in retrieval.sentences[1:]:
        if _prob(s) < EXTRA_MIN_PROB or len(out) >= MAX_EXTRA:
            break
        chosen = [best, *out]
        other_article = all(s.doc_id != e.doc_id for e in chosen)
        apart = all(s.doc_id != e.doc_id or abs(s.index - e.index) > 1 for e in chosen)
        if other_article or (q.is_list and apart):
            out.append(s)
    return out


def decide_learned(retrieval: Retrieval, index: Index, answerer: Answerer) -> Decision:
    if not retrieval.sentences:
        reason = "no article matches the filters" if not retrieval.allowed_docs else "nothing relevant found"
        return Decision(True, reason, (), 0.0)
    best = retrieval.sentences[0]
    conf = answer_confidence(retrieval, answerer)
    if conf < answerer.threshold:
        return Decision(
            True, f"confidence {conf:.2f} is below the answering threshold {answerer.threshold:.2f}", (), conf
        )
    near = attribution(retrieval, best)
    evidence = [best] + ([near] if near else [])
    return Decision(False, None, (*evidence, *[s for s in extra_evidence(retrieval, index, best) if s not in evidence]), conf)
