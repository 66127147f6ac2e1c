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

``python -m eval.train_span [--out FILE] [--test]`` (or ``rag train --span``) writes ``settings.SPAN_MODEL`` with a
manifest (data hashes, seed, grid, dev metrics, train metrics labelled in-sample) and prints the
comparison with the typed-entity rule; ``--test`` also reports the test split (once, at the end).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eval.metrics import contains_answer, normalize_answer, token_f1
from rag import settings as C
from rag.answering.span import SpanModel, candidates, features, question_view, save_span_model
from rag.question.analysis import analyze

DATA = C.PROJECT_ROOT / "eval" / "data" / "bbc"
SEED = 13
MIN_F1 = 0.5
MIN_COUNT = 2
C_GRID = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)
LABELLINGS = ("best", "any", "best-listwise", "any-listwise")


@dataclass
class SpanRows:
    """The candidates of one (question, gold sentence) pair."""

    item_id: str
    question: str
    sentence: str
    answers: tuple[str, ...]
    texts: list[str]
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
                it["id"], it["question"], sentence, tuple(it["answers"]), [c.text for c in cands],
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


def predict(model: SpanModel, r: SpanRows) -> str | None:
    if not r.texts:
        return None
    z = model.scores(r.feats)
    return r.texts[int(np.argmax(z))]  # ties: the first candidate (candidates come in text order)


def score(preds: list[str | None], rows: list[SpanRows]) -> dict:
    f1 = [best_f1(p or "", r.answers) for p, r in zip(preds, rows)]
    em = [bool(p) and any(normalize_answer(p) == normalize_answer(a) for a in r.answers) for p, r in zip(preds, rows)]
    return {"questions": len(rows), "f1": round(float(np.mean(f1)), 4), "em": round(float(np.mean(em)), 4)}


def evaluate(model: SpanModel, rows: list[SpanRows]) -> dict:
    scored = [r for r in rows if r.scored]
    return score([predict(model, r) for r in scored], scored)


def entity_rule(tagger, rows: list[SpanRows]) -> dict:
    """The typed-entity rule (``extractive.typed_entity``) on the same sentences."""
    from rag.answering.extractive import typed_entity

    scored = [r for r in rows if r.scored]
    return score([typed_entity(analyze(r.question), r.sentence, tagger) for r in scored], scored)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def train(out: Path | None = None, test: bool = False, progress: bool = True) -> tuple[SpanModel, dict]:
    from rag.answering.extractive import EntityTagger

    tagger = EntityTagger()
    splits = ("train", "dev", "test") if test else ("train", "dev")
    rows = {}
    for s in splits:
        t0 = time.perf_counter()
        rows[s] = collect(tagger, load_items(s))
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
        "metrics": {"dev": evaluate(model, rows["dev"]), "train (in-sample)": evaluate(model, rows["train"]),
                    "dev, typed-entity rule": entity_rule(tagger, rows["dev"])},
    }
    model = SpanModel(model.names, model.coef, model.intercept, meta)
    save_span_model(model, Path(out or C.SPAN_MODEL))
    if test:  # reported, never chosen on
        meta = {**meta, "test": {"model": evaluate(model, rows["test"]), "typed-entity rule": entity_rule(tagger, rows["test"]),
                                 "oracle": oracle(rows["test"])}}
    return model, meta


def summary(meta: dict) -> str:
    """A few lines for the command line: the choice, the oracle and the metrics."""
    lines = [f"labels {meta['labelling']}, C = {meta['regularisation_C']} chosen on dev; {meta['features']} features; "
             f"oracle (some candidate reaches F1 >= {MIN_F1}): dev {meta['oracle']['dev']['any_candidate_f1>=0.5']}"]
    rows = dict(meta["metrics"], **{f"test, {k}": v for k, v in meta.get("test", {}).items() if k != "oracle"})
    lines += [f"  {name:28s} F1 {m['f1']:.3f}  EM {m['em']:.3f}  ({m['questions']} questions)" for name, m in rows.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m eval.train_span", description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=None, help="model file (default: the shipped rag/models/span.json)")
    p.add_argument("--test", action="store_true", help="also report the test split (after all choices are made)")
    args = p.parse_args(argv)
    _, meta = train(args.out, args.test)
    print(json.dumps({k: v for k, v in meta.items() if k not in ("data", "trained")}, indent=1))
    print(summary(meta))


if __name__ == "__main__":
    main()
