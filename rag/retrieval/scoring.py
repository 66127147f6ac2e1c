"""Sentence (evidence) scoring: the features of one candidate sentence, and the learned model
that turns them into the log-odds that the sentence answers the question.

The model is a logistic regression fitted by ``rag train`` on the train split of the written QA
set (eval/data/bbc/) and stored as JSON in ``rag/models/`` (see ``rag.answering.model``). When no
trained model ships, the hand weights of ``settings.HandWeights`` score the sentences."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# the feature vector of a candidate sentence, in this order (rag/models/*.json names them)
FEATURES = (
    "dense",  # cosine(question, sentence)
    "dense_tuned",  # the same with the question adapter's vector (rag train), else = dense
    "dense_gap",  # dense minus the best dense among the question's candidates (<= 0)
    "dense_neighbour",  # best cosine of the sentence before or after
    "lexical",  # IDF-weighted share of the question's terms in the sentence
    "lexical_gap",  # lexical minus the best lexical among the candidates (<= 0)
    "context",  # the same share in the sentence +-2 and the title
    "article_coverage",  # the same share in the whole article
    "names_sentence",  # share of the question's names found in the sentence
    "names_article",  # share of the question's names found in the article
    "chunk",  # fused first-stage score of the sentence's chunk, relative to the best
    "chunk_rank",  # 1 / (1 + rank of the chunk in the fused first-stage order)
    "bm25_head",  # the chunk is among the top BM25 hits
    "period",  # the article matches the period the question names
    "typed",  # the sentence holds an answer of the asked type
    "typed_number",  # ... for a how-many/how-much question
    "typed_who",
    "typed_when",
    "typed_where",
    "bigrams",  # share of the question's adjacent term pairs found adjacent in the sentence
    "sentence_rank",  # 1 / (1 + rank of the sentence in the dense sentence search), 0 when not hit
    "quote",  # the sentence holds a quotation mark
    "missing_context",  # the rarest question term absent from the sentence +-2 and title (its IDF / the largest IDF)
    "missing_article",  # the same for the whole article
    "position",  # sentence index / sentences in the article
    "title",  # the sentence is the headline
    "length",  # log(1 + words)
)


@dataclass(frozen=True)
class Candidate:
    """What the features of one sentence are computed from (all shares in [0, 1])."""

    dense: float
    dense_tuned: float
    dense_neighbour: float
    lexical: float
    context: float
    article_coverage: float
    names_sentence: float
    names_article: float
    chunk: float
    chunk_rank: int
    bm25_head: bool
    period: float
    typed: bool
    qtype: str
    bigrams: float
    sentence_rank: int | None
    quote: bool
    missing_context: float
    missing_article: float
    index: int
    sentences: int
    words: int


def feature_matrix(cands: list[Candidate]) -> np.ndarray:
    """One row of ``FEATURES`` per candidate."""
    if not cands:
        return np.zeros((0, len(FEATURES)), dtype=np.float32)
    best_dense = max(c.dense for c in cands)
    best_lex = max(c.lexical for c in cands)
    rows = [
        (
            c.dense, c.dense_tuned, c.dense - best_dense, c.dense_neighbour, c.lexical, c.lexical - best_lex, c.context,
            c.article_coverage, c.names_sentence, c.names_article, c.chunk, 1.0 / (1 + c.chunk_rank),
            float(c.bm25_head), c.period, float(c.typed),
            float(c.typed and c.qtype == "number"), float(c.typed and c.qtype == "who"),
            float(c.typed and c.qtype == "when"), float(c.typed and c.qtype == "where"), c.bigrams,
            0.0 if c.sentence_rank is None else 1.0 / (1 + c.sentence_rank), float(c.quote),
            c.missing_context, c.missing_article,
            c.index / max(c.sentences, 1), float(c.index == 0),
            math.log1p(c.words),
        )
        for c in cands
    ]
    return np.asarray(rows, dtype=np.float32)


@dataclass(frozen=True)
class LinearScorer:
    """log-odds = ((x - mean) / scale) . coef + intercept, over the named inputs ``names``
    (``FEATURES`` for the evidence model)."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    names: tuple[str, ...] = FEATURES

    def logits(self, X: np.ndarray) -> np.ndarray:
        if len(X) == 0:
            return np.zeros(0, dtype=np.float32)
        return ((X - self.mean) / self.scale) @ self.coef + self.intercept

    @classmethod
    def from_json(cls, d: dict, names: tuple[str, ...] = FEATURES) -> LinearScorer:
        got = tuple(d["features"])
        if got != names:
            missing = sorted(set(names) ^ set(got))
            raise ValueError(f"the model's features differ from this program's ({', '.join(missing) or 'order'})")
        return cls(
            np.asarray(d["mean"], dtype=np.float32), np.asarray(d["scale"], dtype=np.float32),
            np.asarray(d["coef"], dtype=np.float32), float(d["intercept"]), names,
        )

    def to_json(self) -> dict:
        return {
            "features": list(self.names),
            "mean": [float(x) for x in self.mean],
            "scale": [float(x) for x in self.scale],
            "coef": [float(x) for x in self.coef],
            "intercept": float(self.intercept),
        }


def bigram_share(question_terms: list[str], sentence_terms: list[str]) -> float:
    """Share of the question's adjacent term pairs that are adjacent in the sentence too."""
    pairs = set(zip(question_terms, question_terms[1:]))
    if not pairs:
        return 0.0
    return len(pairs & set(zip(sentence_terms, sentence_terms[1:]))) / len(pairs)


_QUOTES = frozenset('"“”‘’\'')


def has_quote(text: str) -> bool:
    return any(ch in _QUOTES for ch in text if ch != "'") or " '" in text


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))
