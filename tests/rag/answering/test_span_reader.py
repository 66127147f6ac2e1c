"""The span reader (rag/answering/span_reader.py) and how the span scorer adds it: exact values on
hand-made token scores, the real MiniLM tokenizer for the training targets, and the shipped graph
when the span model names one."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from eval.train_span_reader import SpanExample, examples, locate, targets
from rag import settings as C
from rag.answering import span as S
from rag.answering.span_reader import TokenScores, encode, sentence_mask, span_tokenizer

LOG = np.log


def scores() -> TokenScores:
    # three tokens: "Cairo" [0, 5), "hosted" [6, 12), "talks" [13, 18)
    return TokenScores(np.array([[0, 5], [6, 12], [13, 18]]), LOG(np.array([0.7, 0.2, 0.1])), LOG(np.array([0.6, 0.1, 0.3])))


def test_a_span_scores_its_first_token_start_and_its_last_token_end():
    t = scores()
    assert t.span_score(0, 5) == pytest.approx(LOG(0.7) + LOG(0.6))
    assert t.span_score(0, 18) == pytest.approx(LOG(0.7) + LOG(0.3))
    assert t.span_score(7, 9) == pytest.approx(LOG(0.2) + LOG(0.1))  # inside one token
    assert t.span_score(30, 40) is None  # past the cut


def test_best_span_respects_order_and_length():
    t = scores()
    a, b, z = t.best(3)
    assert (a, b) == (0, 5) and z == pytest.approx(LOG(0.7) + LOG(0.6))
    backwards = TokenScores(t.offsets, LOG(np.array([0.1, 0.1, 0.8])), LOG(np.array([0.9, 0.05, 0.05])))
    assert backwards.best(3)[:2] == (0, 5)  # not "start at talks, end at Cairo"
    wide = TokenScores(t.offsets, LOG(np.array([0.8, 0.1, 0.1])), LOG(np.array([0.05, 0.05, 0.9])))
    assert wide.best(3)[:2] == (0, 18)
    assert wide.best(1)[:2] == (13, 18)  # one token at most


def test_the_reader_column_is_added_with_its_weight():
    cands = [S.SpanCandidate(0, 5, "Cairo", (0, 1), frozenset({"ent"}), "GPE"),
             S.SpanCandidate(13, 18, "talks", (2, 3), frozenset({"head"}), ""),
             S.SpanCandidate(30, 35, "later", (5, 6), frozenset({"head"}), "")]
    t = scores()
    col = S.reader_column(t, cands)
    assert col[:2].tolist() == pytest.approx([LOG(0.7) + LOG(0.6), LOG(0.1) + LOG(0.3)])
    assert col[2] == pytest.approx(col[1] - S.UNSEEN_PENALTY)  # unseen: the worst seen, less the penalty
    model = S.SpanModel(("kind=head",), np.array([2.0]), 0.5, {}, reader_weight=0.5)
    feats = [{"kind=ent": 1.0}, {"kind=head": 1.0}, {"kind=head": 1.0}]
    assert S.span_scores(model, feats, cands, t).tolist() == pytest.approx((np.array([0.5, 2.5, 2.5]) + 0.5 * col).tolist())
    assert S.span_scores(model, feats, cands, None).tolist() == [0.5, 2.5, 2.5]  # unread
    unweighted = S.SpanModel(model.names, model.coef, model.intercept, {})
    assert S.span_scores(unweighted, feats, cands, t).tolist() == [0.5, 2.5, 2.5]


def test_model_file_keeps_the_weight_and_finds_the_reader_beside_it(tmp_path):
    m = S.SpanModel(("a",), np.array([1.0]), 0.0, {"reader": {"file": "span_reader.onnx"}}, reader_weight=0.25)
    S.save_span_model(m, tmp_path / "span.json")
    back = S.load_span_model(tmp_path / "span.json")
    assert back.reader_weight == 0.25 and back.reader_path == tmp_path / "span_reader.onnx"
    plain = S.SpanModel(("a",), np.array([1.0]), 0.0, {})
    S.save_span_model(plain, tmp_path / "plain.json")
    back = S.load_span_model(tmp_path / "plain.json")
    assert back.reader_weight == 0.0 and back.reader_path is None and back.reader_scores("q", "s") is None


def test_training_targets_are_the_answer_tokens_of_the_sentence():
    sentence = "The company plans to buy back 52 million shares at 570 rupees apiece."
    assert locate(sentence, ["52m", "52 million"]) == (30, 40)  # the first variant found, in the order written
    assert locate(sentence, ["52"]) == (30, 32)
    assert locate(sentence, ["5"]) is None  # whole words only
    item = {"question": "How many shares?", "answers": ["52 million"], "evidence": [sentence], "type": "numeric"}
    (ex,) = examples([item])
    assert ex == SpanExample("How many shares?", sentence, 30, 40)
    tok = span_tokenizer()
    _, (enc,) = encode(tok, [(ex.question, ex.sentence)])
    i, j = targets(enc, ex.start, ex.end)
    assert enc.sequence_ids[i] == 1 and sentence[enc.offsets[i][0] : enc.offsets[j][1]] == "52 million"
    mask = sentence_mask([enc])[0]
    assert mask[i] and not mask[0]  # [CLS] and the question are not the sentence


def test_shipped_span_reader_matches_its_manifest():
    d = json.loads(C.SPAN_MODEL.read_text(encoding="utf-8"))
    info = d["meta"].get("reader")
    if info is None:
        pytest.fail("the shipped span model names no span reader")
    path = C.SPAN_MODEL.parent / info["file"]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == info["sha256"]
    assert str(d["reader_weight"]) == str(d["meta"]["reader_weight"])
    by_weight = {float(w): f for w, f in d["meta"]["dev_f1_by_reader_weight"].items()}
    near = [w for w, f in by_weight.items() if f >= max(by_weight.values()) - d["meta"]["dev_f1_standard_error"]]
    assert d["reader_weight"] == min(near) > 0  # chosen on dev: the smallest within one standard error of the best


def test_the_reader_weight_is_the_smallest_within_one_standard_error_of_the_best():
    from eval.train_span import SpanRows, choose_weight

    cands = [S.SpanCandidate(0, 5, "Cairo", (0, 1), frozenset({"ent"}), "GPE"),
             S.SpanCandidate(13, 18, "talks", (2, 3), frozenset({"head"}), "")]
    # the reader prefers "talks" (log p -0.45 against -4.6); the parse prefers "Cairo" by x
    reader = TokenScores(np.array([[0, 5], [6, 12], [13, 18]]), LOG(np.array([0.1, 0.1, 0.8])), LOG(np.array([0.1, 0.1, 0.8])))
    model = S.SpanModel(("x",), np.array([1.0]), 0.0, {})

    def row(i: int, x: float, gold: str) -> SpanRows:
        return SpanRows(f"q{i}", "q", "Cairo hosted talks", (gold,), ["Cairo", "talks"], cands, [{"x": x}, {}],
                        np.zeros(2), True)

    # "talks" wins from weight 0.25 when x = 1, from weight 1 when x = 4
    rows = [row(i, 1.0, "talks") for i in range(7)] + [row(7 + i, 1.0, "Cairo") for i in range(3)] + [row(10, 4.0, "talks")]
    weight, info = choose_weight(model, rows, {r.item_id: reader for r in rows})
    assert info["dev_f1_by_reader_weight"] == {"0": round(3 / 11, 4), "0.1": round(3 / 11, 4), "0.25": round(7 / 11, 4),
                                               "0.5": round(7 / 11, 4), "1": round(8 / 11, 4), "2": round(8 / 11, 4),
                                               "4": round(8 / 11, 4)}
    assert info["dev_f1_standard_error"] == round(float(np.std([1.0] * 8 + [0.0] * 3, ddof=1) / np.sqrt(11)), 4)
    assert weight == info["reader_weight"] == 0.25  # the best is 1; 0.25 is within one standard error (0.141)


@pytest.mark.slow
def test_a_fitted_span_reader_exports_a_graph_that_points_at_the_answer(tmp_path):
    from eval import train_span_reader as tsr
    from rag.answering.span_reader import SpanReader

    data = [SpanExample("Who won the race?", "Smith won the race on Monday.", 0, 5),
            SpanExample("When was the race?", "Smith won the race on Monday.", 22, 28)] * 24
    net = tsr.fit(data, seed=0, progress=False, epochs=4)
    tsr.export(net, tmp_path / "span_reader.onnx")
    reader = SpanReader(tmp_path / "span_reader.onnx")
    sentence = "Smith won the race on Monday."
    t = reader.scores("Who won the race?", sentence)
    assert t.offsets.tolist()[0] == [0, 5] and t.offsets.tolist()[-1] == [28, 29]  # the sentence's tokens, in its offsets
    assert np.exp(t.start).sum() == pytest.approx(1.0, abs=1e-4) and np.exp(t.end).sum() == pytest.approx(1.0, abs=1e-4)
    a, b, _ = t.best(4)
    assert sentence[a:b] == "Smith"  # it learned the pairs it was shown
    a, b, _ = reader.scores("When was the race?", sentence).best(4)
    assert sentence[a:b] == "Monday"
    assert reader.scores("Who won?", "").start.size == 0  # an empty sentence has no tokens
