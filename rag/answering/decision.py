"""When does it answer, and from which sentences? The learned decision.

The sentences come ranked by the evidence model (``retrieval.sentences``, best first, each
``score`` a log-odds). The answer's confidence is the calibrated probability that the best
sentence answers the question (``Answerer.confidence``); below the threshold chosen on the dev
split it abstains. Only hard facts abstain on their own: nothing retrieved, or no article left
by the filters (the period filter of retrieval included).

Further evidence: the neighbouring sentence that holds the asked answer type when the best one
does not, and, for a question about several periods, the best sentence of each period. (Citing
any other sentence more likely evidence than not did not pay on dev and was dropped.)"""

from __future__ import annotations

from dataclasses import dataclass

from rag import settings as C
from rag.answering.model import Answerer, confidence_inputs, rival_logit
from rag.question.periods import in_part, multi_period, period_parts
from rag.retrieval.scoring import sigmoid
from rag.retrieval.search import Retrieval, ScoredSentence
from index.store import Index

USE_ATTRIBUTION = True  # cite the neighbour holding the asked type (dev ablation: docs/answerer.md)


@dataclass(frozen=True)
class Decision:
    abstain: bool
    reason: str | None
    evidence: tuple[ScoredSentence, ...]
    confidence: float | None = None


def _prob(s: ScoredSentence) -> float:
    return float(sigmoid(s.score))


def answer_confidence(retrieval: Retrieval, answerer: Answerer) -> float:
    """The calibrated probability that the best sentence answers the question."""
    top, *rest = retrieval.sentences
    second = rival_logit((top.doc_id, top.index), ((s.doc_id, s.index, s.score) for s in rest))
    return answerer.confidence(confidence_inputs(top.score, second, top.reader, top.features))


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


def period_evidence(retrieval: Retrieval, index: Index, best: ScoredSentence) -> list[ScoredSentence]:
    """For a question about several periods, the best sentence of each further period's articles
    (when it is itself more likely evidence than not)."""
    q = retrieval.question
    out: list[ScoredSentence] = []
    if not multi_period(q):
        return out
    for part in period_parts(q):
        pool = [s for s in retrieval.sentences if in_part(part, index.articles[s.doc_id])]
        if pool and pool[0] is not best and pool[0] not in out and _prob(pool[0]) >= C.LEARNED.extra_min_prob:
            out.append(pool[0])
    return out


def decide_learned(retrieval: Retrieval, index: Index, answerer: Answerer) -> Decision:
    if not retrieval.sentences:
        reason = "no article matches the filters" if not retrieval.allowed_docs else "nothing relevant found"
        return Decision(True, reason, (), 0.0)
    best = retrieval.sentences[0]
    conf = answer_confidence(retrieval, answerer)
    if conf < answerer.threshold:
        return Decision(
            True, f"no passage is likely enough to answer it (confidence {conf:.0%}; it answers from "
                  f"{answerer.threshold:.0%})", (), conf,
        )
    near = attribution(retrieval, best) if USE_ATTRIBUTION else None
    evidence = [best] + ([near] if near else [])
    return Decision(False, None, (*evidence, *[s for s in period_evidence(retrieval, index, best) if s not in evidence]), conf)
