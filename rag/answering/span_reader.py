"""The span reader: MiniLM fine-tuned to point at the short answer inside a cited sentence. It
reads the question and the sentence in one pass and gives, for every token of the sentence, the
log-probability that the answer starts there and that it ends there.

Trained by ``rag train --span`` (``eval/train_span_reader.py``) and shipped as an int8 ONNX graph
beside the span model, whose manifest names it; it runs on ONNX Runtime, no torch. Loads on first
use. The span scorer (``span.py``) adds its log-probabilities to the scores of its candidates.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag import settings as C
from rag.onnx_graph import Graph, pair_feeds, pair_tokenizer


def span_tokenizer():
    """The pair tokenizer at ``settings.SPAN_READER.max_tokens``."""
    return pair_tokenizer(C.SPAN_READER.max_tokens)


def encode(tok, pairs: list[tuple[str, str]]) -> tuple[dict[str, np.ndarray], list]:
    """The graph's inputs for (question, sentence) pairs, and the tokenizer's encodings."""
    encs = tok.encode_batch(pairs)
    return pair_feeds(encs), encs


def sentence_mask(encs) -> np.ndarray:
    """(pairs, tokens): the tokens of the sentence (the pair's second text)."""
    return np.array([[s == 1 for s in e.sequence_ids] for e in encs], bool)


@dataclass(frozen=True)
class TokenScores:
    """Per sentence token: char offsets in the sentence and the log-probabilities that the answer
    starts and ends there."""

    offsets: np.ndarray  # (tokens, 2)
    start: np.ndarray  # (tokens,)
    end: np.ndarray

    def span_score(self, a: int, b: int) -> float | None:
        """log p(start) + log p(end) of the char span [a, b): its first and last overlapping
        token; None when no token overlaps it (the sentence was cut)."""
        hit = np.flatnonzero((self.offsets[:, 0] < b) & (self.offsets[:, 1] > a))
        if not len(hit):
            return None
        return float(self.start[hit[0]] + self.end[hit[-1]])

    def best(self, max_tokens: int) -> tuple[int, int, float]:
        """Char offsets and score of the best span of at most ``max_tokens`` tokens, whatever
        the parse (the reader alone: a comparison when training)."""
        n = len(self.start)
        s = self.start[:, None] + self.end[None, :]
        i, j = np.indices((n, n))
        s = np.where((j >= i) & (j - i < max_tokens), s, -np.inf)
        a, b = np.unravel_index(int(np.argmax(s)), s.shape)
        return int(self.offsets[a, 0]), int(self.offsets[b, 1]), float(s[a, b])


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max()
    return x - np.log(np.exp(x).sum())


class SpanReader:
    """The shipped span reader graph and the packaged MiniLM tokenizer. Loads on first use."""

    def __init__(self, path: Path | str, threads: int | None = None):
        self._graph = Graph(path, threads or C.SPAN_READER.threads, "span reader", "rag train --span", span_tokenizer)
        self.path = self._graph.path

    def scores(self, question: str, sentence: str) -> TokenScores:
        session, tok = self._graph.load()
        feeds, encs = encode(tok, [(question, sentence)])
        logits = np.asarray(session.run(None, feeds)[0], np.float32)[0]
        keep = np.flatnonzero(sentence_mask(encs)[0])
        if not len(keep):  # an empty sentence
            return TokenScores(np.zeros((0, 2), np.int64), np.zeros(0, np.float32), np.zeros(0, np.float32))
        offsets = np.array([encs[0].offsets[i] for i in keep], np.int64).reshape(-1, 2)
        return TokenScores(offsets, _log_softmax(logits[keep, 0]), _log_softmax(logits[keep, 1]))


@functools.cache
def load_span_reader(path: Path) -> SpanReader:
    """One reader per graph file, shared (it loads on first use)."""
    return SpanReader(path)
