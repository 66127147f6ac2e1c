"""Fit the short-answer span scorer (``rag.answering.span``) on the train split, choose on dev.

1. Every answerable question of a split, with its gold evidence sentence(s) (``evidence`` of
   ``eval/data/bbc/<split>.jsonl``), is parsed; each candidate span of a sentence gets its named
   features and its token F1 with the best-matching gold answer (``eval.metrics.token_f1``).
2. A candidate is positive when it is the best candidate of its sentence and reaches
   ``MIN_F1`` (or, the alternative labelling, whenever it reaches ``MIN_F1``). A logistic
   regression over the features (names seen at least ``MIN_COUNT`` times in train) is fitted on
   train for every labelling and regularisation of the grid; dev chooses by the mean token F1 of
   the argmax span on the gold sentence.
3. The sentence a question is scored on is its first evidence string holding a gold answer (the
   first one otherwise), as the chain shows the short answer of its first cited sentence.
4. The span reader (``eval/train_span_reader.py``) is fitted on train and written beside the
   model; dev chooses the weight of its log-probability in each candidate's score (0: unread),
   the smallest within one standard error of the best (``choose_weight``).

``python -m eval.train_span [--out FILE] [--test] [--no-reader]`` (or ``rag train --span``) writes ``settings.SPAN_MODEL`` with a
manifest (data hashes, seed, grid, dev metrics, train metrics labelled in-sample) and prints the
comparison with the typed-entity rule; ``--test`` also reports the test split (once, at the end).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from eval.metrics import contains_answer, normalize_answer, token_f1
from rag import settings as C
from rag.answering.span import (SpanCandidate, SpanModel, candidates, features, question_view, save_span_model,
                                span_scores)
from rag.answering.span_reader import SpanReader, TokenScores
from rag.question.analysis import analyze

DATA = C.PROJECT_ROOT / "eval" / "data" / "bbc"
SEED = 13
MIN_F1 = 0.5
MIN_COUNT = 2
C_GRID = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)
READER_WEIGHTS = (0.0, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0)
READER_FILE = "span_reader.onnx"
LABELLINGS = ("best", "any", "best-listwise", "any-listwise")


@dataclass
class SpanRows:
    """The candidates of one (question, gold sentence) pair."""

    item_id: str
    question: str
    sentence: str
    answers: tuple[str, ...]
    texts: list[str]
    spans: list[SpanCandidate]
    feats: list[dict[str, float]]
    f1: np.ndarray
    scored: bool  # the sentence the question is scored on (one per question)


def gold_sentences(item: dict) -> list[tuple[str, bool]]:
    """(evidence string, is the scored one) of an answerable item."""
    ev = item["evidence"]
    ev = [ev] if isinstance(ev, str) else list(ev or [])
    holding = [e for e in ev if any(contains_answer(e, a) for a in item["answers"])]
    scored = (holding or ev)[:1]
    return [(e, e in scored) for e in dict.fromkeys(ev)]


def load_items(split: str) -> list[dict]:
    path = DATA / f"{split}.jsonl"
    items = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [it for it in items if it["type"] != "unanswerable" and it.get("answers") and it.get("evidence")]


def best_f1(text: str, answers) -> float:
    return max(token_f1(text, a) for a in answers)


def collect(tagger, items: list[dict]) -> list[SpanRows]:
    out = []
    for it in items:
        q = analyze(it["question"])
        view = question_view(q, tagger.parse(q.text, entities=False))
        for sentence, scored in gold_sentences(it):
            doc = tagger.parse(sentence)
            cands = candidates(doc)
            out.append(SpanRows(
                it["id"], it["question"], sentence, tuple(it["answers"]), [c.text for c in cands], cands,
                [features(doc, c, view) for c in cands], np.array([best_f1(c.text, it["answers"]) for c in cands]),
                scored,
            ))
    return out


def oracle(rows: list[SpanRows]) -> dict:
    """The ceiling of the candidate generator on the scored sentences."""
    best = [float(r.f1.max()) if len(r.f1) else 0.0 for r in rows if r.scored]
    return {"questions": len(best), "any_candidate_f1>=0.5": round(float(np.mean([b >= MIN_F1 for b in best])), 4),
            "mean_best_f1": round(float(np.mean(best)), 4),
            "exact": round(float(np.mean([b == 1.0 for b in best])), 4),
            "candidates_per_sentence": round(float(np.mean([len(r.f1) for r in rows if r.scored])), 1)}


def labels(r: SpanRows, labelling: str) -> np.ndarray:
    if not len(r.f1):
        return np.zeros(0, bool)
    if labelling == "best":
        return (r.f1 >= MIN_F1) & (r.f1 >= r.f1.max() - 1e-9)
    return r.f1 >= MIN_F1


def vocabulary(rows: list[SpanRows]) -> tuple[str, ...]:
    counts: dict[str, int] = {}
    for r in rows:
        for f in r.feats:
            for k in f:
                counts[k] = counts.get(k, 0) + 1
    return tuple(sorted(k for k, n in counts.items() if n >= MIN_COUNT))


def matrix(rows: list[SpanRows], names: tuple[str, ...]) -> np.ndarray:
    idx = {n: i for i, n in enumerate(names)}
    X = np.zeros((sum(len(r.feats) for r in rows), len(names)), dtype=np.float64)
    i = 0
    for r in rows:
        for f in r.feats:
            for k, v in f.items():
                if k in idx:
                    X[i, idx[k]] = v
            i += 1
    return X


def fit(rows: list[SpanRows], names: tuple[str, ...], c: float, labelling: str) -> SpanModel:
    """Pointwise: an L2 logistic regression on every candidate (scikit-learn). Listwise: a
    conditional logit, softmax over the candidates of each sentence, the target spread evenly over
    the right ones (L-BFGS; the same linear score, so the same ``SpanModel``)."""
    use = [r for r in rows if labels(r, labelling.split("-")[0]).any()]  # sentences with a right candidate
    X = matrix(use, names)
    y = np.concatenate([labels(r, labelling.split("-")[0]) for r in use])
    if labelling.endswith("-listwise"):
        return SpanModel(names, _conditional_logit(X, y, [len(r.feats) for r in use], c), 0.0, {})
    from sklearn.linear_model import LogisticRegression

    lr = LogisticRegression(C=c, max_iter=5000, random_state=SEED)
    lr.fit(X, y)
    return SpanModel(names, lr.coef_[0].astype(np.float64), float(lr.intercept_[0]), {})


def _conditional_logit(X: np.ndarray, y: np.ndarray, sizes: list[int], c: float) -> np.ndarray:
    from scipy.optimize import minimize

    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int)
    group = np.repeat(np.arange(len(sizes)), sizes)
    target = y / np.add.reduceat(y.astype(float), starts)[group]

    def loss(w):
        z = X @ w
        zmax = np.maximum.reduceat(z, starts)[group]
        e = np.exp(z - zmax)
        tot = np.add.reduceat(e, starts)
        p = e / tot[group]
        nll = -np.sum(target * (z - zmax - np.log(tot)[group]))
        return nll + w @ w / (2 * c), X.T @ (p - target) + w / c

    res = minimize(loss, np.zeros(X.shape[1]), jac=True, method="L-BFGS-B", options={"maxiter": 2000})
    return res.x


def predict(model: SpanModel, r: SpanRows, tokens: TokenScores | None = None) -> str | None:
    """The best candidate (``tokens``: the span reader's scores of the sentence, when read)."""
    if not r.texts:
        return None
    z = span_scores(model, r.feats, r.spans, tokens)
    return r.texts[int(np.argmax(z))]  # ties: the first candidate (candidates come in text order)


def score(preds: list[str | None], rows: list[SpanRows]) -> dict:
    f1 = [best_f1(p or "", r.answers) for p, r in zip(preds, rows)]
    em = [bool(p) and any(normalize_answer(p) == normalize_answer(a) for a in r.answers) for p, r in zip(preds, rows)]
    return {"questions": len(rows), "f1": round(float(np.mean(f1)), 4), "em": round(float(np.mean(em)), 4)}


def f1_scores(model: SpanModel, rows: list[SpanRows], tokens: dict[str, TokenScores]) -> np.ndarray:
    """Token F1 of the model's pick on each scored sentence."""
    return np.array([best_f1(predict(model, r, tokens.get(r.item_id)) or "", r.answers) for r in rows if r.scored])


def choose_weight(model: SpanModel, rows: list[SpanRows], tokens: dict[str, TokenScores]) -> tuple[float, dict]:
    """The reader's weight: the smallest of ``READER_WEIGHTS`` whose dev F1 is within one
    standard error of the best one's (the one-standard-error rule: among weights dev cannot tell
    apart, the one that leans least on the reader and most on the parse). Returns it and what to
    record."""
    per = {w: f1_scores(replace(model, reader_weight=w), rows, tokens) for w in READER_WEIGHTS}
    mean = {w: float(v.mean()) for w, v in per.items()}
    best = max(READER_WEIGHTS, key=lambda w: mean[w])
    se = float(per[best].std(ddof=1) / np.sqrt(len(per[best])))
    weight = min(w for w in READER_WEIGHTS if mean[w] >= mean[best] - se)
    return weight, {"dev_f1_by_reader_weight": {f"{w:g}": round(m, 4) for w, m in mean.items()},
                    "dev_f1_standard_error": round(se, 4), "reader_weight": weight}


def evaluate(model: SpanModel, rows: list[SpanRows], tokens: dict[str, TokenScores] | None = None) -> dict:
    """F1 / EM of the model's pick on the scored sentences (``tokens``: the span reader's scores
    by item id)."""
    scored = [r for r in rows if r.scored]
    tokens = tokens or {}
    return score([predict(model, r, tokens.get(r.item_id)) for r in scored], scored)


def reader_stage(rows: dict[str, list[SpanRows]], items: list[dict], path: Path, progress: bool
                 ) -> tuple[dict[str, dict[str, TokenScores]], dict]:
    """Fit the span reader on the train items, write it to ``path``, and read every scored
    sentence of each split with it. Returns the token scores by split and item id, and what to
    record."""
    from eval import train_span_reader as tsr

    t0 = time.perf_counter()
    data = tsr.examples(items)
    tsr.export(tsr.fit(data, SEED, progress), path)
    reader = SpanReader(path)
    tokens = {s: {r.item_id: reader.scores(r.question, r.sentence) for r in rs if r.scored} for s, rs in rows.items()}
    info = {"file": path.name, "sha256": _sha256(path), "examples": len(data), "epochs": tsr.EPOCHS,
            "seconds": round(time.perf_counter() - t0)}
    return tokens, info


def reader_alone(rows: list[SpanRows], tokens: dict[str, TokenScores]) -> dict:
    """The span reader's own best span of at most ``settings.SPAN_READER.max_answer_tokens``
    tokens, whatever the parse's candidates (a comparison)."""
    scored = [r for r in rows if r.scored]
    preds = []
    for r in scored:
        t = tokens[r.item_id]
        a, b, _ = t.best(C.SPAN_READER.max_answer_tokens) if len(t.start) else (0, 0, 0.0)
        preds.append(r.sentence[a:b] or None)
    return score(preds, scored)


def entity_rule(tagger, rows: list[SpanRows]) -> dict:
    """The typed-entity rule (``extractive.typed_entity``) on the same sentences."""
    from rag.answering.extractive import typed_entity

    scored = [r for r in rows if r.scored]
    return score([typed_entity(analyze(r.question), r.sentence, tagger) for r in scored], scored)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def train(out: Path | None = None, test: bool = False, progress: bool = True, reader: bool = True
          ) -> tuple[SpanModel, dict]:
    """Fit and write the span model (``reader=False``: without the span reader, minutes faster)."""
    from rag.answering.extractive import EntityTagger

    tagger = EntityTagger()
    out = Path(out or C.SPAN_MODEL)
    splits = ("train", "dev", "test") if test else ("train", "dev")
    items, rows = {}, {}
    for s in splits:
        t0 = time.perf_counter()
        items[s] = load_items(s)
        rows[s] = collect(tagger, items[s])
        if progress:
            print(f"{s}: {len(rows[s])} sentences parsed in {time.perf_counter() - t0:.1f} s", flush=True)
    names = vocabulary(rows["train"])
    grid = {}
    for labelling in LABELLINGS:
        for c in C_GRID:
            grid[f"{labelling} C={c:g}"] = (evaluate(fit(rows["train"], names, c, labelling), rows["dev"])["f1"], labelling, c)
    key = max(grid, key=lambda k: (grid[k][0], -abs(np.log10(grid[k][2]))))
    _, labelling, c = grid[key]
    model = fit(rows["train"], names, c, labelling)
    meta = {
        "trained": time.strftime("%Y-%m-%d %H:%M:%S"),
        "seed": SEED,
        "data": {s: {"file": f"eval/data/bbc/{s}.jsonl", "sha256": _sha256(DATA / f"{s}.jsonl")} for s in ("train", "dev")},
        "features": len(names),
        "labelling": labelling,
        "min_f1": MIN_F1,
        "regularisation_C": c,
        "dev_f1_by_choice": {k: v[0] for k, v in grid.items()},
        "oracle": {s: oracle(rows[s]) for s in ("train", "dev")},
    }
    tokens: dict[str, dict[str, TokenScores]] = {}
    weight = 0.0
    if reader:  # the span reader, fitted on train; dev chooses its weight (0: unread)
        tokens, meta["reader"] = reader_stage(rows, items["train"], out.parent / READER_FILE, progress)
        weight, chosen = choose_weight(model, rows["dev"], tokens["dev"])
        meta |= chosen
    model = replace(model, reader_weight=weight, reader_path=out.parent / READER_FILE if reader else None)
    meta["metrics"] = {"dev": evaluate(model, rows["dev"], tokens.get("dev")),
                       "train (in-sample)": evaluate(model, rows["train"], tokens.get("train")),
                       "dev, typed-entity rule": entity_rule(tagger, rows["dev"])}
    if reader:
        meta["metrics"] |= {"dev, without the span reader": evaluate(replace(model, reader_weight=0.0), rows["dev"]),
                            "dev, the span reader alone": reader_alone(rows["dev"], tokens["dev"])}
    model = replace(model, meta=meta)
    save_span_model(model, out)
    if test:  # reported, never chosen on
        t = {"model": evaluate(model, rows["test"], tokens.get("test")), "typed-entity rule": entity_rule(tagger, rows["test"]),
             "oracle": oracle(rows["test"])}
        if reader:
            t |= {"without the span reader": evaluate(replace(model, reader_weight=0.0), rows["test"]),
                  "the span reader alone": reader_alone(rows["test"], tokens["test"])}
        meta = {**meta, "test": t}
    return model, meta


def summary(meta: dict) -> str:
    """A few lines for the command line: the choice, the oracle and the metrics."""
    lines = [f"labels {meta['labelling']}, C = {meta['regularisation_C']} chosen on dev; {meta['features']} features; "
             f"oracle (some candidate reaches F1 >= {MIN_F1}): dev {meta['oracle']['dev']['any_candidate_f1>=0.5']}"]
    if "reader" in meta:
        lines.append(f"span reader: {meta['reader']['examples']} train examples, {meta['reader']['seconds']} s; "
                     f"weight {meta['reader_weight']:g} chosen on dev (within one standard error, {meta['dev_f1_standard_error']}, of the best)")
    rows = dict(meta["metrics"], **{f"test, {k}": v for k, v in meta.get("test", {}).items() if k != "oracle"})
    lines += [f"  {name:36s} F1 {m['f1']:.3f}  EM {m['em']:.3f}  ({m['questions']} questions)" for name, m in rows.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m eval.train_span", description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=None, help="model file (default: the shipped rag/models/span.json)")
    p.add_argument("--test", action="store_true", help="also report the test split (after all choices are made)")
    p.add_argument("--no-reader", action="store_true", help="without the span reader (minutes faster)")
    args = p.parse_args(argv)
    _, meta = train(args.out, args.test, reader=not args.no_reader)
    print(json.dumps({k: v for k, v in meta.items() if k not in ("data", "trained")}, indent=1))
    print(summary(meta))


if __name__ == "__main__":
    main()
