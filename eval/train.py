"""``rag train``: fit the learned answerer on the train split, choose on the dev split.

1. Every question of a split is run through the real first stage (BBC index, eligible articles
   only); each candidate sentence gives one row of ``scoring.FEATURES`` and a label: it is the
   answer's evidence (it holds, or is held by, an evidence string of a gold article that holds a
   gold answer; a string that only sets the scene of a two-article question is not).
2. The evidence model is a logistic regression on the train rows. Its regularisation is chosen
   on dev (top-1 evidence accuracy). Train questions are scored out of fold (5 folds of
   articles, dealt by question count; ``fold_split``) for the steps below.
3. The reader (``eval/train_reader.py``), a cross-encoder over the evidence model's best
   sentences, is fitted out of fold on train (two halves of the articles, dealt like the
   folds) and then on all of train; a logistic stack over (evidence log-odds, reader log-odds)
   is fitted on the out-of-fold train scores of the sentences it read.
4. The confidence of an answer is a logistic calibration over ``model.CONFIDENCE_FEATURES`` of
   the best sentence after the stack, fitted on the out-of-fold train scores, with the label
   "the best sentence is right" (always 0 for unanswerable questions). Its log-odds are then
   rescaled (a slope and an offset, Platt scaling) on dev, where the reader that answers is
   read: the out-of-fold train reads come from half-train readers, less sure than the reader
   of all of train, so a confidence fitted on them alone is too low where it is high. The
   rescaling keeps the order of answers, so it changes what the confidence says, not which
   questions are answered.
5. The threshold is the one that maximises, on dev, right answers minus wrong answers (an answer
   to an unanswerable question is wrong; abstaining counts 0).

Seeded; writes ``settings.ANSWERER_MODEL`` with a manifest (data hashes, choices, dev metrics;
train metrics labelled in-sample) and the reader and question adapter beside it."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from eval.gold import QAItem, load_qa
from eval.metrics import sentence_labels
from rag import settings as C
from rag.answering.model import (CONFIDENCE_FEATURES, READER_INPUTS, READER_QUESTIONS, STACK_FEATURES, Answerer,
                                 confidence_inputs, rival_logit, save_answerer)
from eval.adapter import save_adapter
from rag.retrieval.scoring import FEATURES, LinearScorer

C_GRID = (0.01, 0.1, 1.0, 10.0)
ADAPTER_FILE = "question_adapter.safetensors"
READER_FILE = "reader.onnx"
FOLDS = 5
SEED = 13


@dataclass
class QuestionRows:
    item: QAItem
    X: np.ndarray  # (n, FEATURES)
    y: np.ndarray  # 1 = answer evidence sentence (metrics.sentence_labels)
    right: np.ndarray  # 1 = citing this sentence answers the question right
    keys: list[tuple[str, int]]  # (source, sentence index)
    group: str  # the question's fold unit: its first article (its id when it has none)
    asked: str = ""  # what the reader reads of the question (``reader_question``; the item's question when empty)
    searched: str = ""  # what the question adapter encodes (``core_text``; the item's question when empty)

    @property
    def reader_question(self) -> str:
        return self.asked or self.item.question

    @property
    def adapter_question(self) -> str:
        return self.searched or self.item.question

    @property
    def units(self) -> set[str]:
        """Every article the question draws on (its id when it has none)."""
        return set(self.item.docs) or {self.group}


def collect(pipeline, items: list[QAItem], desc: str) -> list[QuestionRows]:
    """The candidate rows of every question, a follow-up asked after its history (features do not
    depend on the scorer)."""
    from tqdm import tqdm

    from rag.question.analysis import core_text
    from rag.retrieval.reader import reader_question

    index = pipeline.index
    out = []
    for item in tqdm(items, desc=desc, unit="q"):
        r = pipeline.retrieve(item.question, k=10, history=list(item.history))
        X = np.array([s.features for s in r.sentences], dtype=np.float32).reshape(-1, len(FEATURES))
        y, right, keys = [], [], []
        for s in r.sentences:
            art = index.articles[s.doc_id]
            g, ok = sentence_labels(item, art.source, art.text[s.start : s.end])
            y.append(g)
            right.append(ok)
            keys.append((art.source, s.index))
        group = item.docs[0] if item.docs else item.id
        out.append(QuestionRows(item, X, np.array(y, bool), np.array(right, bool), keys, group,
                                reader_question(r.question, C.READER.history), core_text(r.question)))
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


def top_answer(z: np.ndarray, r: QuestionRows, reader: np.ndarray | None = None) -> tuple[list[float], bool] | None:
    """The confidence inputs of the best sentence by log-odds ``z`` (reader log-odds ``reader``,
    when read) and whether it is right (None: no candidate). Mirrors
    ``rag.answering.decision.answer_confidence``."""
    if len(r.X) == 0:
        return None
    order = np.argsort(-z, kind="stable")
    t = int(order[0])
    src, idx = r.keys[t]
    second = rival_logit((src, idx), ((r.keys[j][0], r.keys[j][1], float(z[j])) for j in order[1:]))
    read = None if reader is None else float(reader[t])
    return confidence_inputs(float(z[t]), second, read, r.X[t].tolist()), bool(r.right[t])


def folds(rows: list[QuestionRows], k: int = FOLDS) -> dict[str, int]:
    """Article -> one of ``k`` folds, dealt by question count (the questions whose first article
    it is) so the folds hold about as many questions each: the articles, most questions first
    (ties in seeded order), each go to the fold with the fewest questions so far (then the fewest
    articles, then the lowest-numbered). Articles that are only ever a question's second come last."""
    sizes: dict[str, int] = {}
    for r in rows:
        sizes[r.group] = sizes.get(r.group, 0) + 1
        for u in r.units:
            sizes.setdefault(u, 0)
    units = sorted(sizes)
    np.random.default_rng(SEED).shuffle(units)
    units.sort(key=lambda u: -sizes[u])  # stable: equal sizes keep the seeded order
    load, count = [0] * k, [0] * k
    fold_of: dict[str, int] = {}
    for u in units:
        f = min(range(k), key=lambda i: (load[i], count[i], i))
        fold_of[u] = f
        load[f] += sizes[u]
        count[f] += 1
    return fold_of


def fold_split(rows: list[QuestionRows], fold_of: dict[str, int], f: int) -> tuple[list[int], list[int]]:
    """(questions to fit on, questions to score) for fold ``f``: scored are those whose first
    article is in it; fitted on are those none of whose articles is. Articles, not the groups that
    two-article questions chain them into: those chains joined three quarters of the train
    questions into one group, which left a quarter to fit the models that scored it."""
    held = [i for i, r in enumerate(rows) if fold_of[r.group] == f]
    fit = [i for i, r in enumerate(rows) if all(fold_of[u] != f for u in r.units)]
    return fit, held


def out_of_fold(rows: list[QuestionRows], c: float) -> list[np.ndarray]:
    """The evidence log-odds of every train question's candidates, each by a model that did not
    see its articles (``fold_split``)."""
    fold_of = folds(rows)
    out: list[np.ndarray] = [np.zeros(0)] * len(rows)
    for f in range(FOLDS):
        fit, held = fold_split(rows, fold_of, f)
        scorer = fit_scorer([rows[i] for i in fit], c)
        for i in held:
            out[i] = scorer.logits(rows[i].X)
    return out


def top_answers(rows: list[QuestionRows], logits: list[np.ndarray],
                reader: list[np.ndarray] | None = None) -> list[tuple[list[float], bool] | None]:
    """``top_answer`` of every question (``reader[i]``: question i's reader log-odds)."""
    return [top_answer(z, r, None if reader is None else reader[i]) for i, (r, z) in enumerate(zip(rows, logits))]


def confidence_rows(rows: list[QuestionRows], logits: list[np.ndarray],
                    reader: list[np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Confidence inputs and labels (the best sentence is right) of every question with a candidate."""
    tops = [t for t in top_answers(rows, logits, reader) if t]
    return np.array([x for x, _ in tops], dtype=np.float64), np.array([ok for _, ok in tops], dtype=bool)


def fit_confidence(Z: np.ndarray, t: np.ndarray, c: float = 1.0) -> LinearScorer:
    return fit_linear(Z, t, c, CONFIDENCE_FEATURES)


def rescale(calibrator: LinearScorer, conf: np.ndarray, right: np.ndarray) -> tuple[LinearScorer, list[float]]:
    """``calibrator`` with its log-odds z mapped to a*z + b, (a, b) the logistic fit of ``right``
    on the z of ``conf`` (Platt scaling; nearly unregularised, two numbers)."""
    from sklearn.linear_model import LogisticRegression

    p = np.clip(conf, 1e-6, 1 - 1e-6)
    z = np.log(p / (1 - p)).reshape(-1, 1)
    fit = LogisticRegression(C=1e4).fit(z, right)
    a, b = float(fit.coef_[0, 0]), float(fit.intercept_[0])
    return replace(calibrator, coef=calibrator.coef * a, intercept=calibrator.intercept * a + b), [a, b]


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


def outcomes(answerer: Answerer, rows: list[QuestionRows], logits: list[np.ndarray],
             reader: list[np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per question: the answer's confidence, whether its best sentence is right, whether the
    question is answerable (the pipeline's decision, without building answers)."""
    conf, right, ans = [], [], []
    for r, top in zip(rows, top_answers(rows, logits, reader)):
        conf.append(answerer.confidence(top[0]) if top else 0.0)
        right.append(bool(top and top[1]))
        ans.append(r.item.answerable)
    return np.array(conf), np.array(right), np.array(ans)


def split_scores(answerer: Answerer, rows: list[QuestionRows], logits: list[np.ndarray],
                 reader: list[np.ndarray] | None = None) -> dict:
    """Top-1 evidence accuracy, handled-right share and abstention rates of ``answerer`` on rows."""
    conf_a, right_a, ans_a = outcomes(answerer, rows, logits, reader)
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
    fold's questions by an adapter that did not see their articles), by the adapter of all
    of train on the other splits. Each fit is cached beside the readers'. Returns the final
    adapter's weights."""
    from tqdm import tqdm

    from eval.adapter import fit_adapter, tuned_cosines
    from eval.train_reader import CACHE_DIR

    col = FEATURES.index("dense_tuned")
    index = pipeline.index

    def vectors(r: QuestionRows) -> np.ndarray:
        out = [index.sentence_vectors(index.by_source[src], [i])[0] for src, i in r.keys]
        return np.array(out, np.float32).reshape(len(out), -1)

    V = {s: [vectors(r) for r in rs] for s, rs in rows.items()}

    def fill(weights, rs, vs):
        for r, cos in zip(rs, tuned_cosines(weights, [r.adapter_question for r in rs], vs)):
            if len(r.X):
                r.X[:, col] = cos

    train_rows, train_v = rows["train"], V["train"]
    fold_of = folds(train_rows)
    for f in tqdm(range(FOLDS + 1), desc="question adapter (folds, then all)", disable=not progress):
        fit_idx, held = fold_split(train_rows, fold_of, f) if f < FOLDS else (list(range(len(train_rows))), [])
        weights = fit_adapter([train_rows[i].adapter_question for i in fit_idx], [train_v[i] for i in fit_idx],
                              [train_rows[i].y for i in fit_idx], seed=SEED + f, cache=CACHE_DIR,
                              progress=progress, desc=f"question adapter {f + 1} of {FOLDS + 1}")
        if f < FOLDS:
            fill(weights, [train_rows[i] for i in held], [train_v[i] for i in held])
    for s, rs in rows.items():
        if s != "train":
            fill(weights, rs, V[s])
    return weights


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _shown(path: Path) -> str:
    """A data file as the manifest names it: relative to the project, or in full outside it."""
    path = Path(path).resolve()
    return str(path.relative_to(C.PROJECT_ROOT)) if path.is_relative_to(C.PROJECT_ROOT) else str(path)


def reader_stage(pipeline, rows: dict[str, list[QuestionRows]], logits: dict[str, list[np.ndarray]],
                 path: Path, progress: bool = True) -> tuple[LinearScorer, dict[str, list[np.ndarray]], dict]:
    """Fit the reader: out of fold on train (two halves of the articles, dealt by question
    count; ``fold_split``) for the stack and the confidence, then on all of train, exported to ``path`` and read
    from there on dev (the int8 graph the answerer ships). Returns the stack, each split's reader
    log-odds (NaN where unread) and what to record."""
    from eval import train_reader as tr
    from rag.retrieval.reader import Reader

    texts = {s: tr.row_texts(pipeline.index, rs) for s, rs in rows.items()}
    halves = folds(rows["train"], 2)
    reads = {"train": tr.read_out_of_fold(rows["train"], logits["train"], texts["train"],
                                          [fold_split(rows["train"], halves, h) for h in (0, 1)], SEED, progress,
                                          cache=tr.CACHE_DIR)}
    pairs = tr.training_pairs(rows["train"], logits["train"], texts["train"])
    tr.export_reader(tr.fit_reader(pairs, SEED, progress, desc="reader, all of train", cache=tr.CACHE_DIR), path)
    reads["dev"] = tr.read_heads(Reader(path).scores, rows["dev"], logits["dev"], texts["dev"])
    X, y = tr.stack_rows(rows["train"], logits["train"], reads["train"])
    stack = fit_linear(X, y, 1.0, STACK_FEATURES)
    return stack, reads, {"reader_pairs": len(pairs), "reader_candidates": C.READER.candidates,
                          "reader_epochs": tr.EPOCHS, "reader_negatives": tr.NEGATIVES, "reader_loss": tr.LOSS,
                          "reader_precision": tr.PRECISION,
                          "reader_input": READER_INPUTS[C.READER.titled],
                          "reader_question": READER_QUESTIONS[C.READER.history],
                          "stack_rows": len(y)}


def answerer_logits(answerer: Answerer, index, rows: list[QuestionRows]) -> tuple[list[np.ndarray], list | None]:
    """Each question's candidate log-odds by ``answerer`` (the evidence model, restacked after its
    reader when it has one) and their reader columns (None without a reader)."""
    from eval import train_reader as tr

    logits = [answerer.scorer.logits(r.X) for r in rows]
    reader = answerer.read()
    if reader is None:
        return logits, None
    texts = tr.row_texts(index, rows, reader.titled)
    return tr.stacked(rows, logits, tr.read_heads(reader.scores, rows, logits, texts), answerer.stack)


def top1(rows: list[QuestionRows], logits: list[np.ndarray]) -> float:
    """Share of the answerable questions whose best candidate by ``logits`` is right."""
    tops = [top_answer(z, r) for r, z in zip(rows, logits) if r.item.answerable]
    return float(np.mean([bool(t and t[1]) for t in tops]))


def training_files() -> dict[str, list[Path]]:
    """The question files each split fits or chooses on: train's questions, and its follow-ups
    when the reader learns to read them with their history (``settings.READER.history``); dev's
    questions; then the dev follow-ups, only measured (nothing is chosen on them)."""
    from eval import bbc

    if not C.READER.history:
        return {"train": [bbc.qa_path("train")], "dev": [bbc.qa_path("dev")]}
    return {"train": [bbc.qa_path("train"), bbc.qa_path("train", followups=True)], "dev": [bbc.qa_path("dev")],
            "dev follow-ups": [bbc.qa_path("dev", followups=True)]}


def train(out: Path | None = None, progress: bool = True, reader: bool = True) -> tuple[Answerer, dict]:
    """Fit and write the answerer (``reader=False``: without the reader, minutes faster)."""
    from eval import bbc

    pipeline = bbc.ensure_index(answerer="rules")
    articles = {a.source: a.text for a in pipeline.index.articles.values()}
    files = training_files()
    data = {s: [it for path in paths for it in load_qa(path, articles)] for s, paths in files.items()}
    rows = {s: collect(pipeline, items, f"features {s}") for s, items in data.items()}

    # 1b. the question adapter and its feature
    adapter_weights = add_adapter_column(pipeline, rows, progress)
    # 2. regularisation chosen on dev (top-1 evidence accuracy over answerable questions)
    choice = {}
    for c in C_GRID:
        fitted = fit_scorer(rows["train"], c)
        choice[c] = top1(rows["dev"], [fitted.logits(r.X) for r in rows["dev"]])
    c_best = max(C_GRID, key=lambda c: (choice[c], -abs(np.log10(c))))
    scorer = fit_scorer(rows["train"], c_best)
    # evidence log-odds: out of fold on train, by the scorer of all of train on dev
    logits = {"train": out_of_fold(rows["train"], c_best), "dev": [scorer.logits(r.X) for r in rows["dev"]]}
    out = Path(out or C.ANSWERER_MODEL)
    meta = {
        "trained": time.strftime("%Y-%m-%d %H:%M:%S"),
        "seed": SEED,
        "data": {s: {"questions": len(data[s]),
                     "files": [{"file": _shown(path), "sha256": _sha256(path)} for path in paths]}
                 for s, paths in files.items()},
        "train_rows": int(sum(len(r.y) for r in rows["train"])),
        "regularisation_C": c_best,
        "dev_top1_by_C": {str(k): round(v, 4) for k, v in choice.items()},
        "dev_top1_evidence_model": round(choice[c_best], 4),
    }
    # 3. the reader and the stack that reorders the evidence model's best sentences
    stack, reads, reader_path = None, {"train": None, "dev": None}, None
    if reader:
        reader_path = out.parent / READER_FILE
        stack, raw, meta["reader"] = reader_stage(pipeline, rows, logits, reader_path, progress)
        from eval.train_reader import stacked

        for s in ("train", "dev"):
            logits[s], reads[s] = stacked(rows[s], logits[s], raw[s], stack)
        meta["dev_top1_with_reader"] = round(top1(rows["dev"], logits["dev"]), 4)
    # 4. confidence on out-of-fold train predictions
    calibrator = fit_confidence(*confidence_rows(rows["train"], logits["train"], reads["train"]))
    # 4b. its log-odds rescaled on dev, where the reader of all of train is read
    conf, right, _ = outcomes(Answerer(scorer, calibrator, 0.5), rows["dev"], logits["dev"], reads["dev"])
    calibrator, meta["confidence_rescaled_on_dev"] = rescale(calibrator, conf, right)
    # 5. threshold on dev
    conf, right, answerable = outcomes(Answerer(scorer, calibrator, 0.5), rows["dev"], logits["dev"], reads["dev"])
    meta["threshold"] = threshold = choose_threshold(conf, right, answerable)
    adapter_path = out.parent / ADAPTER_FILE
    save_adapter(adapter_weights, adapter_path)
    answerer = Answerer(scorer, calibrator, threshold, meta, adapter_path, reader_path, stack,
                        reader_titled=bool(reader_path) and C.READER.titled,
                        reader_history=bool(reader_path) and C.READER.history)
    meta["metrics"] = {"dev": split_scores(answerer, rows["dev"], logits["dev"], reads["dev"]),
                       "train (out-of-fold scores, in-sample calibration)": split_scores(answerer, rows["train"], logits["train"], reads["train"])}
    for s in set(rows) - {"train", "dev"}:  # measured with the finished answerer, nothing chosen on them
        meta["metrics"][s] = split_scores(answerer, rows[s], *answerer_logits(answerer, pipeline.index, rows[s]))
    save_answerer(answerer, out)
    return answerer, meta
