"""``rag train``: fit the learned answerer on the train split, choose on the dev split.

1. Every question of a split is run through the real first stage (BBC index, eligible articles
   only); each candidate sentence gives one row of ``scoring.FEATURES`` and a label: it is gold
   evidence (it holds, or is held by, an evidence string of a gold article).
2. The evidence model is a logistic regression on the train rows. Its regularisation is chosen
   on dev (top-1 evidence accuracy).
3. The confidence of an answer is a logistic calibration over ``model.CONFIDENCE_FEATURES`` of
   the best sentence, fitted on out-of-fold predictions of train (folds by article group), with
   the label "the best sentence is right" (always 0 for unanswerable questions).
4. The threshold is the one that maximises, on dev, right answers minus wrong answers (an answer
   to an unanswerable question is wrong; abstaining counts 0).

Seeded and deterministic; writes ``settings.ANSWERER_MODEL`` with a manifest (data hashes,
choices, dev metrics; train metrics labelled in-sample)."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eval.gold import QAItem, load_qa
from eval.metrics import sentence_labels
from rag.answering.model import CONFIDENCE_FEATURES, Answerer, confidence_inputs, rival_logit, save_answerer
from eval.adapter import save_adapter
from eval.split import article_groups
from rag.retrieval.scoring import FEATURES, LinearScorer

C_GRID = (0.01, 0.1, 1.0, 10.0)
ADAPTER_FILE = "question_adapter.safetensors"
FOLDS = 5
SEED = 13


@dataclass
class QuestionRows:
    item: QAItem
    X: np.ndarray  # (n, FEATURES)
    y: np.ndarray  # 1 = gold evidence sentence
    right: np.ndarray  # 1 = citing this sentence answers the question right
    keys: list[tuple[str, int]]  # (source, sentence index)
    group: str  # the article group (split unit) of the question


def collect(pipeline, items: list[QAItem], groups: dict[str, str], desc: str) -> list[QuestionRows]:
    """The candidate rows of every question (features do not depend on the scorer)."""
    from tqdm import tqdm

    index = pipeline.index
    out = []
    for item in tqdm(items, desc=desc, unit="q"):
        r = pipeline.retrieve(item.question, k=10)
        X = np.array([s.features for s in r.sentences], dtype=np.float32).reshape(-1, len(FEATURES))
        y, right, keys = [], [], []
        for s in r.sentences:
            art = index.articles[s.doc_id]
            g, ok = sentence_labels(item, art.source, art.text[s.start : s.end])
            y.append(g)
            right.append(ok)
            keys.append((art.source, s.index))
        group = groups.get(item.docs[0], item.id) if item.docs else item.id
        out.append(QuestionRows(item, X, np.array(y, bool), np.array(right, bool), keys, group))
    return out


def fit_scorer(rows: list[QuestionRows], c: float) -> LinearScorer:
    return fit_linear(np.concatenate([r.X for r in rows]), np.concatenate([r.y for r in rows]), c, FEATURES)


def fit_linear(X: np.ndarray, y: np.ndarray, c: float, names: tuple[str, ...]) -> LinearScorer:
    """A standardised, L2-regularised logistic regression as a ``LinearScorer``."""
    from sklearn.linear_model import LogisticRegression

    mean = X.mean(axis=0)
    scale = X.std(axis=0)
    scale[scale < 1e-6] = 1.0
    lr = LogisticRegression(C=c, max_iter=2000, random_state=SEED)
    lr.fit((X - mean) / scale, y)
    return LinearScorer(mean.astype(np.float32), scale.astype(np.float32), lr.coef_[0].astype(np.float32),
                        float(lr.intercept_[0]), names)


def top_answer(scorer: LinearScorer, r: QuestionRows) -> tuple[list[float], bool] | None:
    """The confidence inputs of the best sentence and whether it is right (None: no candidate).
    Mirrors ``rag.answering.decision.answer_confidence``."""
    if len(r.X) == 0:
        return None
    z = scorer.logits(r.X)
    order = np.argsort(-z, kind="stable")
    t = int(order[0])
    src, idx = r.keys[t]
    second = rival_logit((src, idx), ((r.keys[j][0], r.keys[j][1], float(z[j])) for j in order[1:]))
    return confidence_inputs(float(z[t]), second, r.X[t].tolist()), bool(r.right[t])


def folds(rows: list[QuestionRows]) -> dict[str, int]:
    """Article group -> fold (seeded)."""
    groups = sorted({r.group for r in rows})
    rng = np.random.default_rng(SEED)
    rng.shuffle(groups)
    return {g: i % FOLDS for i, g in enumerate(groups)}


def out_of_fold(rows: list[QuestionRows], c: float) -> tuple[np.ndarray, np.ndarray]:
    """Confidence inputs and labels of every train question, each scored by a model that did not
    see its article group."""
    fold_of = folds(rows)
    Z, t = [], []
    for f in range(FOLDS):
        fit = [r for r in rows if fold_of[r.group] != f]
        held = [r for r in rows if fold_of[r.group] == f]
        scorer = fit_scorer(fit, c)
        for r in held:
            top = top_answer(scorer, r)
            if top:
                Z.append(top[0])
                t.append(top[1])
    return np.array(Z, dtype=np.float64), np.array(t, dtype=bool)


def fit_confidence(Z: np.ndarray, t: np.ndarray, c: float = 1.0) -> LinearScorer:
    return fit_linear(Z, t, c, CONFIDENCE_FEATURES)


def handled(conf: np.ndarray, right: np.ndarray, answerable: np.ndarray, threshold: float) -> float:
    """Share of questions handled right at ``threshold``: answerable ones answered right,
    unanswerable ones abstained on."""
    answered = conf >= threshold
    return float(np.mean(np.where(answerable, answered & right, ~answered)))


def net_right(conf: np.ndarray, right: np.ndarray, answerable: np.ndarray, threshold: float) -> float:
    """Per question: +1 for a right answer, -1 for a wrong one (an answer to an unanswerable
    question included), 0 for abstaining. A wrong answer costs as much as a right one gains:
    with a calibrated confidence the best threshold is near 0.5."""
    answered = conf >= threshold
    ok = answered & right & answerable
    return float((ok.sum() - (answered & ~ok).sum()) / len(conf))


def choose_threshold(conf: np.ndarray, right: np.ndarray, answerable: np.ndarray) -> float:
    grid = np.round(np.arange(0.05, 0.96, 0.01), 2)
    scores = [net_right(conf, right, answerable, th) for th in grid]
    best = max(scores)
    # the middle of the best plateau, not its edge
    best_grid = [th for th, s in zip(grid, scores) if s == best]
    return float(best_grid[len(best_grid) // 2])


def outcomes(answerer: Answerer, rows: list[QuestionRows]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per question: the answer's confidence, whether its best sentence is right, whether the
    question is answerable (the pipeline's decision, without building answers)."""
    conf, right, ans = [], [], []
    for r in rows:
        top = top_answer(answerer.scorer, r)
        conf.append(answerer.confidence(top[0]) if top else 0.0)
        right.append(bool(top and top[1]))
        ans.append(r.item.answerable)
    return np.array(conf), np.array(right), np.array(ans)


def split_scores(answerer: Answerer, rows: list[QuestionRows]) -> dict:
    """Top-1 evidence accuracy, handled-right share and abstention rates of ``answerer`` on rows."""
    conf_a, right_a, ans_a = outcomes(answerer, rows)
    answered = conf_a >= answerer.threshold
    return {
        "questions": len(rows),
        "top1_right_answerable": round(float(right_a[ans_a].mean()), 4) if ans_a.any() else None,
        "handled_right": round(handled(conf_a, right_a, ans_a, answerer.threshold), 4),
        "net_right": round(net_right(conf_a, right_a, ans_a, answerer.threshold), 4),
        "abstain_unanswerable": round(float((~answered[~ans_a]).mean()), 4) if (~ans_a).any() else None,
        "abstain_answerable": round(float((~answered[ans_a]).mean()), 4) if ans_a.any() else None,
    }


def add_adapter_column(pipeline, rows: dict[str, list[QuestionRows]], progress: bool = True) -> dict:
    """Fit the question adapter and fill the ``dense_tuned`` column: out of fold on train (each
    fold's questions by an adapter that did not see their article group), by the adapter of all
    of train on the other splits. Returns the final adapter's weights."""
    from tqdm import tqdm

    from eval.adapter import fit_adapter, tuned_cosines

    col = FEATURES.index("dense_tuned")
    index = pipeline.index

    def vectors(r: QuestionRows) -> np.ndarray:
        out = [index.sentence_vectors(index.by_source[src], [i])[0] for src, i in r.keys]
        return np.array(out, np.float32).reshape(len(out), -1)

    V = {s: [vectors(r) for r in rs] for s, rs in rows.items()}

    def fill(weights, rs, vs):
        for r, cos in zip(rs, tuned_cosines(weights, [r.item.question for r in rs], vs)):
            if len(r.X):
                r.X[:, col] = cos

    train_rows, train_v = rows["train"], V["train"]
    fold_of = folds(train_rows)
    for f in tqdm(range(FOLDS + 1), desc="question adapter (folds, then all)", disable=not progress):
        fit_idx = [i for i, r in enumerate(train_rows) if f == FOLDS or fold_of[r.group] != f]
        weights = fit_adapter([train_rows[i].item.question for i in fit_idx], [train_v[i] for i in fit_idx],
                              [train_rows[i].y for i in fit_idx], seed=SEED + f)
        if f < FOLDS:
            held = [i for i, r in enumerate(train_rows) if fold_of[r.group] == f]
            fill(weights, [train_rows[i] for i in held], [train_v[i] for i in held])
    for s, rs in rows.items():
        if s != "train":
            fill(weights, rs, V[s])
    return weights


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def train(out: Path | None = None, progress: bool = True) -> tuple[Answerer, dict]:
    from eval import bbc
    from rag import settings as C

    pipeline = bbc.ensure_index(answerer="rules")
    articles = {a.source: a.text for a in pipeline.index.articles.values()}
    data = {s: load_qa(bbc.qa_path(s), articles) for s in ("train", "dev")}
    # a question's group is its split unit: articles joined by a multi-article question share one
    unit = article_groups([*data["train"], *data["dev"]])
    rows = {s: collect(pipeline, items, unit, f"features {s}") for s, items in data.items()}

    # 1b. the question adapter and its feature
    adapter_weights = add_adapter_column(pipeline, rows, progress)
    # 2. regularisation chosen on dev (top-1 evidence accuracy over answerable questions)
    choice = {}
    for c in C_GRID:
        scorer = fit_scorer(rows["train"], c)
        tops = [top_answer(scorer, r) for r in rows["dev"] if r.item.answerable]
        choice[c] = float(np.mean([bool(t and t[1]) for t in tops]))
    c_best = max(C_GRID, key=lambda c: (choice[c], -abs(np.log10(c))))
    # 3. confidence on out-of-fold train predictions; final scorer on all of train
    Z, t = out_of_fold(rows["train"], c_best)
    calibrator = fit_confidence(Z, t)
    scorer = fit_scorer(rows["train"], c_best)
    # 4. threshold on dev
    threshold = choose_threshold(*outcomes(Answerer(scorer, calibrator, 0.5), rows["dev"]))
    meta = {
        "trained": time.strftime("%Y-%m-%d %H:%M:%S"),
        "seed": SEED,
        "data": {s: {"file": str(bbc.qa_path(s).relative_to(C.PROJECT_ROOT)), "sha256": _sha256(bbc.qa_path(s)),
                     "questions": len(data[s])} for s in data},
        "train_rows": int(sum(len(r.y) for r in rows["train"])),
        "regularisation_C": c_best,
        "dev_top1_by_C": {str(k): round(v, 4) for k, v in choice.items()},
        "threshold": threshold,
    }
    out = Path(out or C.ANSWERER_MODEL)
    adapter_path = out.parent / ADAPTER_FILE
    save_adapter(adapter_weights, adapter_path)
    answerer = Answerer(scorer, calibrator, threshold, meta, adapter_path)
    meta["metrics"] = {"dev": split_scores(answerer, rows["dev"]),
                       "train (out-of-fold features, in-sample model)": split_scores(answerer, rows["train"])}
    save_answerer(answerer, out)
    return answerer, meta
