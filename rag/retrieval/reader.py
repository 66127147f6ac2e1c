"""The reader: MiniLM fine-tuned as a cross-encoder, reading the question and one candidate
sentence together, and giving the log-odds that the sentence answers the question. (Reading the
sentences around it too did worse on dev: top-1 0.66 against 0.74 alone.)

The evidence model scores each candidate from features of the question and the sentence taken
apart (cosines, term overlaps, answer types); the reader sees the two in one attention pass, so it
can tell "Book of the Year" from the asked "Novel of the Year", or the speaker from the person
asked about. It is too slow to read every candidate, so it reads the evidence model's best
``settings.READER.candidates`` and a linear stack of the two scores reorders them
(``rerank``). Trained by ``rag train`` (``eval/train_reader.py``) and shipped as an int8 ONNX
graph beside the answerer (``rag/models/reader.onnx``); it runs on ONNX Runtime, no torch.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from rag import settings as C
from rag.onnx_graph import Graph, pair_feeds, pair_tokenizer
from rag.question.analysis import period_free

def reader_tokenizer():
    """The pair tokenizer at ``settings.READER.max_tokens``."""
    return pair_tokenizer(C.READER.max_tokens)


def encode_pairs(tok, pairs: list[tuple[str, str]]) -> dict[str, np.ndarray]:
    """Token ids, attention mask and segment ids of (question, text) pairs: the reader's inputs."""
    return pair_feeds(tok.encode_batch(pairs))


class Reader:
    """The shipped reader graph and the packaged MiniLM tokenizer. Loads on first use."""

    def __init__(self, path: Path | str, threads: int | None = None, titled: bool = False, history: bool = False):
        self._graph = Graph(path, threads or C.READER.threads, "reader", "rag train", reader_tokenizer)
        self.path = self._graph.path
        self.titled = titled  # it was fitted on the article title before each sentence (``reader_text``)
        self.history = history  # it was fitted on follow-ups read with their earlier question (``reader_question``)

    def scores(self, question: str | list[str], texts: list[str]) -> np.ndarray:
        """The reader's log-odds for each (question, text) pair, in one batch; ``question`` is one
        question for every text, or one a text."""
        if not texts:
            return np.zeros(0, np.float32)
        questions = [question] * len(texts) if isinstance(question, str) else list(question)
        if len(questions) != len(texts):
            raise ValueError(f"{len(questions)} questions for {len(texts)} texts")
        session, tok = self._graph.load()
        feeds = encode_pairs(tok, list(zip(questions, texts)))
        return np.asarray(session.run(None, feeds)[0], np.float32).reshape(-1)


def reader_question(question, history: bool, in_period: bool = False) -> str:
    """What the reader reads of an analysed ``Question``: its own words, and for a follow-up, when
    ``history``, the earlier question after them ("and who brokered it? (after: when did the
    fighting end?)"). A reader fitted without follow-ups reads their own words alone: read with the
    earlier question, the sentence that answered it scores as an answer again.

    ``in_period``: the candidate's article is dated and matches the whole period the question
    names (its date in the named year and month; its text naming the named operation), so the
    period is settled and the reader reads the rest of the question (``period_free``). The
    reader learnt on undated articles, where a year in the question is content and a sentence
    without it rarely answers; read whole, "How many rockets were fired from Gaza in May 2023?"
    marks down the dated article's sentence that answers it."""
    text, earlier = question.text, question.earlier
    if in_period:
        text, earlier = period_free(text, question), period_free(earlier, question) if earlier else earlier
    if history and question.followup and earlier:
        return f"{text} (after: {earlier})"
    return text


def reader_text(article, i: int, titled: bool) -> str:
    """What the reader reads of sentence ``i`` of ``article``: the sentence, after the article's
    title when ``titled`` (the title tells the reader what the story is about when the sentence
    only says "he" or "the deal")."""
    sentence = article.sentence_text(i)
    title = article.title.strip() if titled else ""
    if not title:
        return sentence
    return f"{title} {sentence}" if title[-1] in ".?!" else f"{title}. {sentence}"


def candidate_texts(index, sentences, titled: bool = False) -> list[str]:
    """What the reader reads of each ``ScoredSentence`` of ``index`` (``reader_text``)."""
    return [reader_text(index.articles[s.doc_id], s.index, titled) for s in sentences]


def restack(logits: np.ndarray, head: np.ndarray, read: np.ndarray, stack) -> tuple[np.ndarray, np.ndarray]:
    """Stacked log-odds and reader column of all candidates: those at indices ``head`` were read
    (log-odds ``read``); the rest count as read no better than the worst read one."""
    r = np.full(len(logits), float(read.min()) if len(read) else 0.0, np.float32)
    r[head] = read
    return stack.logits(np.stack([np.asarray(logits, np.float32), r], 1)).astype(np.float32), r


def rerank(scored: list, question, index, reader: Reader, stack) -> list:
    """``scored`` (best first by the evidence model) rescored by ``stack`` once the reader has read
    the best ``settings.READER.candidates`` against the analysed ``question`` (both as this reader
    was fitted to read them: ``reader_question``, ``reader_text``), best first again; a read
    sentence keeps its reader log-odds in ``reader``."""
    n = min(C.READER.candidates, len(scored))
    if n == 0:
        return scored
    settled = [s.period >= 1.0 and index.articles[s.doc_id].date is not None for s in scored[:n]]
    whole = reader_question(question, reader.history)
    free = reader_question(question, reader.history, in_period=True) if any(settled) else whole
    asked = [free if p else whole for p in settled]
    read = reader.scores(asked, candidate_texts(index, scored[:n], reader.titled))
    z, r = restack(np.array([s.score for s in scored], np.float32), np.arange(n), read, stack)
    out = [replace(s, score=float(zz), reader=float(rr) if j < n else None)
           for j, (s, zz, rr) in enumerate(zip(scored, z, r))]
    out.sort(key=lambda s: s.score, reverse=True)
    return out
