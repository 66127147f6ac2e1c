"""A language-model answer, checked sentence by sentence against the passages it cites; the
extractive answer when nothing supported is left."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rag.answering.llm.markers import (
    drop_out_of_range,
    is_abstention,
    parse_markers,
    render_sentence,
    renumber,
    split_answer,
)
from rag.answering.llm.model import text_of
from rag.answering.llm.prompt import build_messages
from rag.answering.llm.support import (
    SUPPORT_THRESHOLD,
    addresses_question,
    check_support,
    passage_sentences,
)
from rag.types import ABSTAIN_TEXT, Answer, Article, Citation, Passage

log = logging.getLogger(__name__)

def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _to_fallback(fallback: Answer, reason: str, elapsed_ms: float) -> Answer:
    note = f"llm: {reason}; showing the extractive answer"
    if fallback.note:
        note += f" ({fallback.note})"
    return dataclasses.replace(
        fallback, mode="llm-fallback", note=note, latency_ms=fallback.latency_ms + elapsed_ms
    )


@dataclass
class Grounding:
    """What the support test kept of a model's answer: each sentence with the passages (1-based)
    that support it, the best-supporting sentence of each passage, and what was dropped."""

    kept: list[tuple[str, list[int]]] = field(default_factory=list)
    best_for: dict[int, tuple[float, int]] = field(default_factory=dict)  # passage index -> (score, sentence index)
    removed: int = 0
    dropped: int = 0
    attributed: int = 0
    moved: int = 0
    hedges: int = 0

    def summary(self) -> str:
        parts = [f"{_plural(len(self.kept), 'sentence')} kept"]
        if self.removed:
            parts.append(f"{self.removed} removed as unsupported")
        if self.dropped:
            parts.append(f"{_plural(self.dropped, 'marker')} to passages not given dropped")
        if self.attributed:
            parts.append(f"{_plural(self.attributed, 'uncited sentence')} cited to its best passage")
        if self.moved:
            parts.append(f"{_plural(self.moved, 'sentence')} moved to the passage that supports it")
        if self.hedges:
            parts.append(f"{_plural(self.hedges, 'hedge')} (\"{ABSTAIN_TEXT}\") dropped")
        return ", ".join(parts)


def ground(pieces: Sequence[str], abstain: Sequence[bool], texts: Sequence[Sequence[str]], *,
           threshold: float, reattribute: bool) -> Grounding:
    """Keep each sentence of the answer that the passages it cites support (see check_llm_answer)."""
    n = len(texts)
    g = Grounding()
    for piece, is_abs in zip(pieces, abstain):
        if is_abs:
            g.hedges += 1
            continue
        text, markers = parse_markers(piece)
        markers, out_of_range = drop_out_of_range(markers, n)
        g.dropped += len(out_of_range)
        if not text or not n:
            g.removed += 1
            continue
        results = {k: check_support(text, texts[k - 1], threshold) for k in (markers or range(1, n + 1))}
        if markers:
            good = [k for k in markers if results[k].supported]
            if not good and len(markers) > 1:  # a claim that joins its cited passages
                joint = check_support(text, [t for k in markers for t in texts[k - 1]], threshold)
                good = list(markers) if joint.supported else []
        if not markers or (not good and reattribute):
            results.update({k: check_support(text, texts[k - 1], threshold) for k in range(1, n + 1) if k not in results})
            ok = [k for k in range(1, n + 1) if k not in markers and results[k].supported]
            good = [max(ok, key=lambda k: (results[k].score, -k))] if ok else []
            if markers:
                g.moved += bool(good)
            else:
                g.attributed += bool(good)
        if not good:
            g.removed += 1
            continue
        for k in good:
            r = results[k]
            prev = g.best_for.get(k - 1)
            if prev is None or r.score > prev[0]:
                g.best_for[k - 1] = (r.score, max(r.best, 0))
        g.kept.append((text, good))
    return g


def check_llm_answer(
    question: str,
    raw: str,
    passages: Sequence[Passage],
    articles: Mapping[str, Article],
    fallback: Answer,
    *,
    threshold: float = SUPPORT_THRESHOLD,
    elapsed_ms: float = 0.0,
    reattribute: bool = False,
) -> Answer:
    """Ground a model's raw answer: split it into sentences, drop markers to passages not given,
    keep only sentences supported by the passages they cite (a sentence without a marker: by any
    passage, and it is then cited to the best one), renumber the markers 1..m and cite, for each
    passage, its sentence that best supports the answer. Falls back to ``fallback`` when nothing
    supported is left, or when the model abstains while the extractive reader answered.

    ``reattribute=True`` also keeps a sentence that its cited passages do not support but another
    given passage does, cited to that passage instead (small models often cite the wrong number);
    off by default, so a wrong citation removes the sentence."""
    passages = tuple(passages)
    pieces = split_answer(raw or "")
    if not pieces:
        return _to_fallback(fallback, "the model gave an empty answer", elapsed_ms)
    abstain = [is_abstention(s) for s in pieces]
    if all(abstain):
        if fallback.abstained:
            return Answer(
                question=question, answer=ABSTAIN_TEXT, abstained=True, passages=passages,
                latency_ms=elapsed_ms, mode="llm",
                note="llm: the model abstained, and so did the extractive reader"
                + (f" ({fallback.note})" if fallback.note else ""),
            )
        return _to_fallback(fallback, "the model abstained but the extractive reader found an answer", elapsed_ms)

    evidence = [passage_sentences(p, articles) for p in passages]
    g = ground(pieces, abstain, [[t for _, t in ev] for ev in evidence], threshold=threshold, reattribute=reattribute)
    if not g.kept:
        return _to_fallback(fallback, g.summary(), elapsed_ms)
    if not addresses_question(question, [t for t, _ in g.kept]):
        reason = f"{g.summary()}, but none of them shares a content word with the question"
        return _to_fallback(fallback, reason, elapsed_ms)

    new_lists, mapping = renumber([ms for _, ms in g.kept])
    answer = " ".join(render_sentence(t, ms) for (t, _), ms in zip(g.kept, new_lists))
    citations = []
    for old, new in sorted(mapping.items(), key=lambda kv: kv[1]):
        p = passages[old - 1]
        span, _ = evidence[old - 1][g.best_for[old - 1][1]]
        a = articles.get(p.doc_id)
        if a is not None and a.text[p.start : p.end] == p.text:
            quote = a.text[span.start : span.end]
        else:
            quote = p.text[span.start - p.start : span.end - p.start]
        citations.append(
            Citation(
                n=new, doc_id=p.doc_id, source=a.source if a is not None else p.source,
                title=a.title if a is not None else "", date=a.date if a is not None else None,
                start=span.start, end=span.end, quote=quote,
            )
        )
    return Answer(
        question=question, answer=answer, abstained=False, citations=tuple(citations),
        passages=passages, latency_ms=elapsed_ms, mode="llm", note=f"llm: {g.summary()}",
    )


def llm_answer(
    question: str,
    passages: Sequence[Passage],
    articles: Mapping[str, Article],
    chat_model: Any,
    fallback: Answer,
) -> Answer:
    """Ask ``chat_model`` to answer from the numbered passages and return the checked answer (see
    :func:`check_llm_answer`). A model error falls back to ``fallback`` with the error in the note."""
    t0 = time.perf_counter()
    if not passages:
        return _to_fallback(fallback, "no passages to answer from", 0.0)
    try:
        raw = text_of(chat_model.invoke(build_messages(question, passages, articles)))
    except Exception as e:  # the extractive answer is always there to show instead
        log.warning("the language model failed: %s", e)
        return _to_fallback(fallback, f"the model failed ({type(e).__name__}: {e})", (time.perf_counter() - t0) * 1e3)
    return check_llm_answer(
        question, raw, passages, articles, fallback, elapsed_ms=(time.perf_counter() - t0) * 1e3
    )


def stream_llm_answer(
    question: str,
    passages: Sequence[Passage],
    articles: Mapping[str, Article],
    chat_model: Any,
    fallback: Answer,
) -> Iterator[str | Answer]:
    """Like :func:`llm_answer`, but yields the model's raw text deltas as they come, then the
    checked ``Answer`` as the last item (whose text may differ from the streamed draft)."""
    t0 = time.perf_counter()
    if not passages:
        yield _to_fallback(fallback, "no passages to answer from", 0.0)
        return
    buf: list[str] = []
    try:
        for chunk in chat_model.stream(build_messages(question, passages, articles)):
            delta = text_of(chunk)
            if delta:
                buf.append(delta)
                yield delta
    except Exception as e:
        log.warning("the language model failed: %s", e)
        yield _to_fallback(fallback, f"the model failed ({type(e).__name__}: {e})", (time.perf_counter() - t0) * 1e3)
        return
    yield check_llm_answer(
        question, "".join(buf), passages, articles, fallback, elapsed_ms=(time.perf_counter() - t0) * 1e3
    )
