"""The fitting steps of ``rag train`` on synthetic rows (the full run is ``rag train``)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from eval.gold import QAItem
from eval.train import (QuestionRows, choose_threshold, confidence_rows, fit_scorer, fold_split, folds, handled,
                        net_right, out_of_fold, rescale, top_answer)
from rag.answering.model import CONFIDENCE_FEATURES
from rag.retrieval.scoring import FEATURES, LinearScorer, sigmoid

DENSE = FEATURES.index("dense")


def _rows(n_questions: int, seed: int = 0) -> list[QuestionRows]:
    rng = np.random.default_rng(seed)
    rows = []
    for q in range(n_questions):
        X = rng.normal(size=(6, len(FEATURES))).astype(np.float32)
        gold = int(rng.integers(6))
        X[gold, DENSE] += 5.0  # the gold sentence stands out on one feature
        y = np.zeros(6, bool)
        y[gold] = True
        doc = f"a{q % 7}.txt"  # seven articles
        item = QAItem(f"q{q}", "?", ("a",), (doc,), ("e",), "factoid")
        rows.append(QuestionRows(item, X, y, y.copy(), [(doc, i * 3) for i in range(6)], doc))
    return rows


def test_the_scorer_learns_the_feature_that_separates_gold():
    scorer = fit_scorer(_rows(60), c=1.0)
    assert int(np.argmax(scorer.coef)) == DENSE
    right = [top_answer(scorer.logits(r.X), r)[1] for r in _rows(40, seed=1)]
    assert np.mean(right) > 0.9


def test_top_answer_margin_skips_neighbouring_sentences():
    r = _rows(1)[0]
    r.keys = [("d", 0), ("d", 1), ("d", 5), ("d", 6), ("e", 0), ("e", 1)]
    r.X[:, :] = 0
    r.X[:, DENSE] = [5, 4, 3, 0, 0, 0]
    scorer = fit_scorer(_rows(60), c=1.0)
    z = scorer.logits(r.X)
    inputs, _ = top_answer(z, r)
    assert inputs[0] == z[0] and inputs[1] == min(z[0] - z[2], 4.0)  # sentence 1 is adjacent: skipped
    assert inputs[2] == 0.0  # no reader
    reader = np.array([1.5, 0.0, 0.0, np.nan, np.nan, np.nan])
    assert top_answer(z, r, reader)[0][2] == 1.5


def test_threshold_maximises_right_minus_wrong_answers():
    conf = np.array([0.9, 0.8, 0.3, 0.2, 0.6])
    right = np.array([True, True, False, False, False])
    answerable = np.array([True, True, True, False, False])
    th = choose_threshold(conf, right, answerable)
    assert 0.6 < th <= 0.8
    assert net_right(conf, right, answerable, th) == 2 / 5  # two right, nothing wrong
    assert net_right(conf, right, answerable, 0.0) == (2 - 3) / 5  # answering all: 2 right, 3 wrong
    assert handled(conf, right, answerable, th) == 1.0 - 1 / 5  # only the answerable miss is lost


def test_rescaling_an_under_confident_calibrator_fixes_its_confidence_and_keeps_the_order():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(4000, len(CONFIDENCE_FEATURES)))
    true_z = 3.0 * X[:, 0] + 0.5  # the answers' real log-odds
    right = rng.random(4000) < sigmoid(true_z)
    n = len(CONFIDENCE_FEATURES)
    unit = np.zeros(n)
    unit[0] = 1.0
    shy = LinearScorer(np.zeros(n), np.ones(n), unit, 0.0, CONFIDENCE_FEATURES)  # z = x0: too unsure
    conf = sigmoid(shy.logits(X))
    fixed, (a, b) = rescale(shy, conf, right)
    assert abs(a - 3.0) < 0.3 and abs(b - 0.5) < 0.2
    after = sigmoid(fixed.logits(X))
    assert np.array_equal(np.argsort(after, kind="stable"), np.argsort(conf, kind="stable"))
    top = conf > 0.8  # said 0.8-1.0 before; the answers there are right far more often
    assert right[top].mean() - conf[top].mean() > 0.05 and abs(right[top].mean() - after[top].mean()) < 0.03


def test_out_of_fold_rows_cover_every_question():
    rows = _rows(30)
    logits = out_of_fold(rows, c=1.0)
    assert [len(z) for z in logits] == [len(r.y) for r in rows]
    Z, t = confidence_rows(rows, logits)
    assert Z.shape == (30, 3 + len(FEATURES)) and t.dtype == bool and t.mean() > 0.8


def test_out_of_fold_scores_come_from_models_that_did_not_see_the_article():
    rows = _rows(30)
    for r in rows:
        if r.group == "a0.txt":
            r.X[:, DENSE] *= -1  # article a0 alone says the opposite
    logits = out_of_fold(rows, c=1.0)
    a0 = [top_answer(z, r)[1] for r, z in zip(rows, logits) if r.group == "a0.txt"]
    assert not any(a0)  # its fold's model learned from the other articles only


def on(r: QuestionRows, *docs: str) -> QuestionRows:
    r.item = replace(r.item, docs=docs)
    r.group = docs[0]
    return r


def test_folds_deal_whole_articles_by_question_count():
    rows = _rows(40)
    for r in rows[:14]:
        on(r, "big.txt")  # one article with 14 of the 40 questions; the rest as _rows made them
    fold_of = folds(rows, 2)
    sizes = [sum(fold_of[r.group] == f for r in rows) for f in (0, 1)]
    assert sorted(sizes) == [19, 21]  # as even as whole articles allow: 14 + 4 + 3 against 4 + 4 + 4 + 4 + 3
    assert fold_of["big.txt"] == 0  # the largest is dealt first, to the first fold
    five = folds(rows, 5)
    assert set(five.values()) == set(range(5)) and five == folds(rows, 5)  # every fold used; seeded


def test_a_two_article_question_does_not_chain_its_articles_into_one_fold():
    rows = [on(r, "a.txt") for r in _rows(10)] + [on(r, "b.txt") for r in _rows(10, seed=1)]
    bridge = on(_rows(1, seed=2)[0], "a.txt", "b.txt")
    rows.append(bridge)
    fold_of = folds(rows, 2)
    assert fold_of["a.txt"] != fold_of["b.txt"]  # 11 and 10 questions, not 21 and 0
    for f in (0, 1):
        fit, held = fold_split(rows, fold_of, f)
        assert {rows[i].group for i in held} == {u for u, g in fold_of.items() if g == f}
        assert not {u for i in fit for u in rows[i].units} & {u for u, g in fold_of.items() if g == f}
        assert len(rows) - 1 not in fit  # the bridging question is fitted on by neither fold
    # scored once, by the fold of its first article
    assert sum(len(rows) - 1 in fold_split(rows, fold_of, f)[1] for f in (0, 1)) == 1


def test_an_article_only_ever_second_gets_a_fold_too():
    rows = _rows(14) + [on(_rows(1, seed=3)[0], "a0.txt", "only-second.txt")]
    fold_of = folds(rows, 2)
    assert "only-second.txt" in fold_of and set(fold_of.values()) == {0, 1}


def test_a_follow_up_is_collected_after_its_history_and_read_as_the_chat_reads_it(tiny_pipeline):
    from eval.train import collect

    source = "a_cranes.txt"
    earlier = "Where were the harbour cranes of Nordport built?"
    item = QAItem("f1", "and when?", (), (source,), (), "unanswerable", history=(earlier,))
    single = replace(item, id="s1", question=earlier, history=())
    fu, one = collect(tiny_pipeline, [item, single], "features")
    assert fu.reader_question == "and when? (after: Where were the harbour cranes of Nordport built?)"
    assert fu.adapter_question == f"{earlier} and when?"  # what retrieval searched, as the chat does
    assert fu.keys and fu.keys[0][0] == "a_cranes.txt"  # found through the history: "and when?" alone has no words
    assert one.reader_question == one.adapter_question == earlier


def test_the_reader_is_fitted_on_what_it_will_read():
    from eval.train_reader import training_pairs

    rows = _rows(2)
    rows[0].asked = "and when? (after: who won?)"
    z = [r.X[:, DENSE] for r in rows]
    texts = [[f"s{j}" for j in range(6)] for _ in rows]
    pairs = training_pairs(rows, z, texts)
    assert {q for q, _, _ in pairs} == {"and when? (after: who won?)", "?"}


def test_the_train_follow_ups_are_fitted_on_only_when_the_reader_reads_history(monkeypatch):
    from eval import train as T
    from rag import settings as C

    names = {s: [p.name for p in paths] for s, paths in T.training_files().items()}
    assert names == {"train": ["train.jsonl", "train_followups.jsonl"], "dev": ["dev.jsonl"],
                     "dev follow-ups": ["dev_followups.jsonl"]}
    monkeypatch.setattr(C, "READER", replace(C.READER, history=False))
    assert {s: [p.name for p in paths] for s, paths in T.training_files().items()} == {
        "train": ["train.jsonl"], "dev": ["dev.jsonl"]}
