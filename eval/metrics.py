"""Metrics: scoring one answer against its gold item, and aggregating a run. Plain functions.

Scoring rules (the metric functions below are tested on hand-made inputs in tests/eval/test_eval.py):

* evidence rank: the smallest r such that every gold evidence string of the item is contained
  (white space collapsed) in the text of some passage at rank <= r; ``None`` when not within the
  returned passages. recall@r = share of answerable items with rank <= r; MRR = mean of 1/rank
  (0 when not found). Answerable = every type but ``unanswerable`` (false premises are answered
  by correcting them).
* answer accuracy (answerable items): not abstained AND some gold answer is contained, after
  ``normalize_answer``, as whole words in the answer text or the short answer; for gold answers
  longer than 4 words a token F1 >= 0.6 against either also counts.
* citation precision: over all citations given for answerable items, the share whose quote
  contains a gold evidence string, or is contained in one, or contains a gold answer.
  citation recall: per answerable item, the share of its gold docs among the cited articles,
  averaged (abstaining cites nothing: 0).
* abstention rates: share of unanswerable items abstained on (higher is better) and share of
  answerable items abstained on (lower is better).
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from eval.calibration import expected_calibration_error
from eval.gold import QAItem
from index import lexicon

RECALL_AT = (1, 3, 5, 10)
F1_MIN_WORDS = 5  # gold answers longer than 4 words may also match by token F1
F1_THRESHOLD = 0.6

# the headline metrics (flat keys of the metrics dict), in report order
HEADLINE = (
    "evidence_recall@1", "evidence_recall@3", "evidence_recall@5", "evidence_recall@10", "mrr",
    "answer_accuracy", "citation_precision", "citation_recall",
    "abstention_unanswerable", "abstention_answerable", "short_answer_f1", "short_answer_em", "ece",
    "latency_p50_ms", "latency_p95_ms",
)
BASELINE_HEADLINE = (
    "evidence_recall@1", "evidence_recall@3", "evidence_recall@5", "evidence_recall@10", "mrr",
    "answer_accuracy", "search_latency_p50_ms",
)


# ---------------------------------------------------------------------------------------------
# metric functions
# ---------------------------------------------------------------------------------------------
_UNITS = {w: v for w, v in lexicon.number_values("cardinal").items() if v < 20}
_TENS = {w: v for w, v in lexicon.number_values("cardinal").items() if v >= 20}
_SCALES = {w: v for w, v in lexicon.number_values("scale").items() if v >= 100}
_DIGIT_SCALE = re.compile(r"\b(\d+(?:\.\d+)?)\s+(thousand|million|billion)\b")


def _kind(tok: str) -> str | None:
    if tok in _UNITS:
        return "teen" if _UNITS[tok] >= 10 else "unit"
    if tok in _TENS:
        return "tens"
    if tok in _SCALES:
        return "scale"
    return None


_FOLLOWS = {  # which number word may continue a number after which
    None: {"unit", "teen", "tens"},
    "unit": {"scale"},
    "teen": {"scale"},
    "tens": {"unit", "scale"},
    "scale": {"unit", "teen", "tens", "scale"},
}


def _words_to_digits(tokens: list[str]) -> list[str]:
    """'twenty one thousand' -> '21000', 'seven' -> '7'; other tokens unchanged."""
    out: list[str] = []
    run: list[str] = []

    def flush() -> None:
        if not run:
            return
        total = current = 0
        for t in run:
            if t in _UNITS:
                current += _UNITS[t]
            elif t in _TENS:
                current += _TENS[t]
            elif t == "hundred":
                current = max(current, 1) * 100
            else:
                total += max(current, 1) * _SCALES[t]
                current = 0
        out.append(str(total + current))
        run.clear()

    last: str | None = None
    for i, tok in enumerate(tokens):
        if tok == "and" and run and last == "scale" and i + 1 < len(tokens) and _kind(tokens[i + 1]) in ("unit", "teen", "tens"):
            continue  # "three hundred and five"
        kind = _kind(tok)
        if kind is not None and kind in _FOLLOWS[last if run else None]:
            run.append(tok)
            last = kind
            continue
        flush()
        if kind is not None and kind in _FOLLOWS[None]:
            run.append(tok)
            last = kind
        else:
            out.append(tok)
            last = None
    flush()
    return out


def _digit_scale(m: re.Match) -> str:
    value = float(m.group(1)) * _SCALES[m.group(2)]
    return str(int(round(value)))


def normalize_answer(text: str | None) -> str:
    """Lower-case, accents and punctuation stripped (punctuation becomes a space), thousands
    separators dropped ("30,000" -> "30000"), "%"/"per cent" -> "percent", digits with a scale
    word expanded ("1.5 million" -> "1500000"), number words as digits ("seven" -> "7",
    "twenty-one" -> "21", "three hundred" -> "300"), white space collapsed."""
    if not text:
        return ""
    t = unicodedata.normalize("NFKD", text)
    t = "".join(ch for ch in t if not unicodedata.combining(ch)).lower()
    t = re.sub(r"(?<=\d),(?=\d{3}(?!\d))", "", t)
    t = t.replace("%", " percent ").replace("per cent", "percent")
    t = _DIGIT_SCALE.sub(_digit_scale, t)
    t = re.sub(r"(?<!\d)\.|\.(?!\d)|[^\w\s.]|_", " ", t)  # decimals ("2.5") stay whole
    return " ".join(_words_to_digits(t.split()))


def contains_answer(text: str | None, gold: str) -> bool:
    """Whether normalised ``gold`` occurs in normalised ``text`` as whole words."""
    g = normalize_answer(gold)
    if not g:
        return False
    return f" {g} " in f" {normalize_answer(text)} "


def token_f1(prediction: str | None, gold: str) -> float:
    """SQuAD-style token F1 between the normalised strings."""
    p, g = normalize_answer(prediction).split(), normalize_answer(gold).split()
    if not p or not g:
        return 0.0
    common = sum((Counter(p) & Counter(g)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(p), common / len(g)
    return 2 * precision * recall / (precision + recall)


def answer_correct(answer: str | None, golds: Iterable[str], *, short_answer: str | None = None,
                   abstained: bool = False) -> bool:
    """Not abstained, and some gold answer is contained in the answer text or the short answer
    (normalised, whole words); a gold answer longer than 4 words also counts at token F1 >= 0.6."""
    if abstained:
        return False
    candidates = [c for c in (answer, short_answer) if c]
    for g in golds:
        if any(contains_answer(c, g) for c in candidates):
            return True
        if len(normalize_answer(g).split()) >= F1_MIN_WORDS and any(
            token_f1(c, g) >= F1_THRESHOLD for c in candidates
        ):
            return True
    return False


def _ws(s: str) -> str:
    return " ".join(s.split())


def evidence_in(text: str, evidence: str) -> bool:
    """``evidence`` is contained in ``text`` (white space runs collapsed on both sides)."""
    ev = _ws(evidence)
    return bool(ev) and ev in _ws(text)


def evidence_rank(passages: Sequence[str], evidence: Sequence[str]) -> int | None:
    """1-based rank r at which every evidence string is contained in some passage at rank <= r;
    None when some evidence string is in no passage (or there is no evidence)."""
    if not evidence:
        return None
    worst = 0
    for ev in evidence:
        r = next((i for i, p in enumerate(passages, start=1) if evidence_in(p, ev)), None)
        if r is None:
            return None
        worst = max(worst, r)
    return worst


def recall_at(ranks: Sequence[int | None], k: int) -> float | None:
    """Share of items whose evidence rank is <= k (None for an empty list)."""
    if not ranks:
        return None
    return sum(1 for r in ranks if r is not None and r <= k) / len(ranks)


def mean_reciprocal_rank(ranks: Sequence[int | None]) -> float | None:
    if not ranks:
        return None
    return sum(1.0 / r for r in ranks if r) / len(ranks)


def citation_supported(quote: str, evidence: Sequence[str], answers: Sequence[str]) -> bool:
    """The quote contains a gold evidence string, or is contained in one, or contains a gold answer."""
    q = _ws(quote)
    if not q:
        return False
    for ev in evidence:
        e = _ws(ev)
        if e and (e in q or q in e):
            return True
    return any(contains_answer(quote, a) for a in answers)


def citation_precision(per_item: Sequence[tuple[Sequence[str], Sequence[str], Sequence[str]]]) -> float | None:
    """Micro average over every citation: ``per_item`` = (quotes, gold evidence, gold answers).
    None when no citation was given."""
    total = good = 0
    for quotes, evidence, answers in per_item:
        for q in quotes:
            total += 1
            good += citation_supported(q, evidence, answers)
    return good / total if total else None


def citation_recall(cited_sources: Iterable[str], gold_docs: Sequence[str]) -> float:
    """Share of the gold docs among the cited article names (1.0 when there is no gold doc)."""
    gold = set(gold_docs)
    if not gold:
        return 1.0
    return len(gold & set(cited_sources)) / len(gold)


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (numpy's default), None for no values."""
    if not values:
        return None
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def mean(xs: Sequence[float | bool]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def compare(clean: dict, distractor: dict) -> dict:
    """For each headline metric (and the baseline's, as ``baseline.<name>``):
    ``{"clean": a, "distractor": b, "drop": a - b}`` (``drop`` None when either is n/a). A positive
    drop is a loss for quality metrics; for latencies and ``abstention_answerable`` a negative
    drop is the loss."""
    out: dict[str, dict[str, float | None]] = {}

    def add(name: str, a: Any, b: Any) -> None:
        drop = None if a is None or b is None else round(a - b, 6)
        out[name] = {"clean": a, "distractor": b, "drop": drop}

    for name in HEADLINE:
        if name in clean or name in distractor:
            add(name, clean.get(name), distractor.get(name))
    cb, db = clean.get("baseline") or {}, distractor.get("baseline") or {}
    for name in BASELINE_HEADLINE:
        if name in cb or name in db:
            add(f"baseline.{name}", cb.get(name), db.get(name))
    return out


# ---------------------------------------------------------------------------------------------
# running


@dataclass
class ItemResult:
    item: QAItem
    answer: Any = None  # rag.types.Answer, None on error
    error: str | None = None
    rank: int | None = None
    correct: bool = False
    abstained: bool = False
    quotes: tuple[str, ...] = ()
    supported: tuple[bool, ...] = ()
    cited_sources: tuple[str, ...] = ()
    cit_recall: float | None = None
    latency_ms: float | None = None
    baseline_rank: int | None = None
    baseline_correct: bool | None = None
    baseline_latency_ms: float | None = None
    baseline_top: str | None = None
    baseline_sources: tuple[str, ...] = ()
    reasons: list[str] = field(default_factory=list)
    confidence: float | None = None  # the answer's calibrated confidence (learned answerer)
    best_right: bool | None = None  # the best sentence answers it right (also when abstained)
    short_f1: float | None = None  # token F1 of the short answer (answerable items; 0 when none)
    short_em: bool | None = None


def score_item(item: QAItem, answer) -> ItemResult:
    """Score one ``rag.types.Answer`` against its gold item (``answer`` None = the ask failed)."""
    res = ItemResult(item, answer)
    if answer is None:
        return res
    res.abstained = bool(answer.abstained)
    res.latency_ms = float(answer.latency_ms)
    res.quotes = tuple(c.quote for c in answer.citations)
    res.cited_sources = tuple(c.source for c in answer.citations)
    res.supported = tuple(citation_supported(q, item.evidence, item.answers) for q in res.quotes)
    if item.answerable:
        res.rank = evidence_rank([p.text for p in answer.passages], item.evidence)
        res.correct = answer_correct(answer.answer, item.answers, short_answer=answer.short_answer,
                                     abstained=answer.abstained)
        res.cit_recall = citation_recall(res.cited_sources, item.docs)
        short = None if answer.abstained else answer.short_answer
        res.short_f1 = max(token_f1(short or "", g) for g in item.answers)
        res.short_em = any(normalize_answer(short or "") == normalize_answer(g) for g in item.answers) if short else False
    res.confidence = getattr(answer, "confidence", None)
    if res.confidence is not None and not answer.abstained:
        res.best_right = res.correct if item.answerable else False
    return res


@functools.lru_cache(maxsize=4096)  # sentence_labels asks once for each candidate sentence of a question
def answer_evidence(item: QAItem) -> tuple[str, ...]:
    """The evidence strings that hold a gold answer, when some do and some do not: the others
    only set the scene ("Reliance shares had fallen 13% …; how much did they gain on the news?"
    quotes the fall and the gain, and only the gain answers). Otherwise all of them."""
    holding = tuple(ev for ev in item.evidence if answer_correct(ev, item.answers))
    return holding or item.evidence


def sentence_labels(item: QAItem, source: str, text: str) -> tuple[bool, bool]:
    """(is answer evidence, answers right) for one sentence of article ``source``: answer evidence
    holds or is held by one of the ``answer_evidence`` strings in a gold article, or holds a whole
    one in any other (a near-duplicate article repeats the sentence word for word, and a citation
    of it is supported: ``citation_supported`` does not ask which article a quote is from); a
    right one is that, or holds a gold answer in a gold article."""
    if not item.answerable:
        return False, False
    evidence = answer_evidence(item)
    if source not in item.docs:
        gold = any(evidence_in(text, ev) for ev in evidence)
        return gold, gold
    gold = any(evidence_in(text, ev) or evidence_in(ev, text) for ev in evidence)
    return gold, gold or any(contains_answer(text, a) for a in item.answers)


def aggregate(results: Sequence[ItemResult], k: int = 5) -> dict[str, Any]:
    """The metric dict of a group of scored items (None where a metric does not apply)."""
    ans = [r for r in results if r.item.answerable]
    una = [r for r in results if not r.item.answerable]
    ranks = [r.rank for r in ans]
    out: dict[str, Any] = {"n": len(results), "answerable": len(ans), "unanswerable": len(una)}
    for at in sorted(set(RECALL_AT) | {k}):
        out[f"evidence_recall@{at}"] = recall_at(ranks, at)
    out["mrr"] = mean_reciprocal_rank(ranks)
    out["answer_accuracy"] = mean([r.correct for r in ans])
    total = sum(len(r.quotes) for r in ans)
    out["citation_precision"] = sum(sum(r.supported) for r in ans) / total if total else None
    out["citation_recall"] = mean([r.cit_recall or 0.0 for r in ans])
    out["abstention_unanswerable"] = mean([r.abstained for r in una])
    out["abstention_answerable"] = mean([r.abstained for r in ans])
    out["short_answer_f1"] = mean([r.short_f1 or 0.0 for r in ans])
    out["short_answer_em"] = mean([bool(r.short_em) for r in ans])
    calib = [(r.confidence, r.best_right) for r in results if r.confidence is not None and r.best_right is not None]
    out["ece"] = expected_calibration_error([c for c, _ in calib], [b for _, b in calib]) if calib else None
    lat = [r.latency_ms for r in results if r.latency_ms is not None]
    out["latency_p50_ms"] = _round(percentile(lat, 50), 1)
    out["latency_p95_ms"] = _round(percentile(lat, 95), 1)
    return out


def aggregate_baseline(results: Sequence[ItemResult], k: int = 5) -> dict[str, Any]:
    ans = [r for r in results if r.item.answerable]
    ranks = [r.baseline_rank for r in ans]
    out: dict[str, Any] = {"n": len(ans)}
    for at in sorted(set(RECALL_AT) | {k}):
        out[f"evidence_recall@{at}"] = recall_at(ranks, at)
    out["mrr"] = mean_reciprocal_rank(ranks)
    out["answer_accuracy"] = mean([bool(r.baseline_correct) for r in ans])
    lat = [r.baseline_latency_ms for r in results if r.baseline_latency_ms is not None]
    out["search_latency_p50_ms"] = _round(percentile(lat, 50), 2)
    out["search_latency_p95_ms"] = _round(percentile(lat, 95), 2)
    return out


def _round(v: float | None, nd: int) -> float | None:
    return None if v is None else round(v, nd)


def failure_reasons(r: ItemResult, k: int) -> list[str]:
    if r.error:
        return [f"error: {r.error}"]
    it = r.item
    if not it.answerable:
        return [] if r.abstained else ["answered an unanswerable question instead of abstaining"]
    reasons = []
    if r.abstained:
        reasons.append("abstained on an answerable question")
    elif not r.correct:
        reasons.append("wrong answer (no gold answer in the answer text)")
    if r.rank is None or r.rank > k:
        reasons.append(f"gold evidence not within the top {k} passages" + (f" (rank {r.rank})" if r.rank else ""))
    bad = sum(1 for s in r.supported if not s)
    if bad:
        reasons.append(f"{bad} of {len(r.supported)} citation(s) quote no gold evidence or answer")
    if not r.abstained:
        missing = [d for d in it.docs if d not in r.cited_sources]
        if missing:
            reasons.append(f"did not cite {', '.join(missing)}")
    return reasons
