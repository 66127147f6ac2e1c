"""The learned answerer: its linear scorer, model file, calibrated confidence and decision."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rag.answering.decision import answer_confidence, decide_learned
from rag.answering.model import CONFIDENCE_FEATURES, Answerer, confidence_inputs, load_answerer, save_answerer
from rag.errors import RagError
from rag.retrieval.scoring import FEATURES, LinearScorer


def _calibrator(top: float = 1.0, intercept: float = 0.0) -> LinearScorer:
    """Confidence = sigmoid(top * top_logit + intercept)."""
    n = len(CONFIDENCE_FEATURES)
    coef = np.zeros(n, np.float32)
    coef[0] = top
    return LinearScorer(np.zeros(n, np.float32), np.ones(n, np.float32), coef, intercept, CONFIDENCE_FEATURES)


def _scorer(coef=None) -> LinearScorer:
    n = len(FEATURES)
    c = np.zeros(n, np.float32) if coef is None else np.asarray(coef, np.float32)
    return LinearScorer(np.zeros(n, np.float32), np.ones(n, np.float32), c, 0.0)


def test_linear_scorer_logits_are_exact():
    n = len(FEATURES)
    s = LinearScorer(np.full(n, 1.0, np.float32), np.full(n, 2.0, np.float32), np.arange(n, dtype=np.float32), -1.0)
    X = np.full((2, n), 3.0, np.float32)  # (3 - 1) / 2 = 1 for every feature
    assert s.logits(X).tolist() == [float(sum(range(n)) - 1)] * 2
    assert s.logits(np.zeros((0, n), np.float32)).shape == (0,)


def test_scorer_refuses_a_model_with_other_features():
    d = _scorer().to_json()
    d["features"] = d["features"][:-1] + ["something_else"]
    with pytest.raises(ValueError, match="something_else"):
        LinearScorer.from_json(d)


def test_confidence_inputs_cap_the_margin():
    f = [0.5, 0.25]
    assert confidence_inputs(2.0, -5.0, None, f) == [2.0, 4.0, 0.0, 0.5, 0.25]
    assert confidence_inputs(2.0, 1.5, 1.25, f) == [2.0, 0.5, 1.25, 0.5, 0.25]
    assert confidence_inputs(2.0, None, None, f)[1] == 4.0
    assert CONFIDENCE_FEATURES == ("top_logit", "margin", "reader", *FEATURES)


def test_model_file_round_trip_and_a_broken_file_is_an_error(tmp_path):
    a = Answerer(_scorer(np.linspace(-1, 1, len(FEATURES))), _calibrator(top=1.0, intercept=-0.5), 0.42, {"seed": 1})
    path = tmp_path / "m.json"
    save_answerer(a, path)
    b = load_answerer(path)
    assert b.threshold == 0.42 and b.meta == {"seed": 1}
    assert np.allclose(b.scorer.coef, a.scorer.coef) and np.allclose(b.calibrator.coef, a.calibrator.coef)
    inputs = [1.0] + [0.0] * (len(CONFIDENCE_FEATURES) - 1)
    assert b.confidence(inputs) == pytest.approx(1 / (1 + np.exp(-0.5)))
    assert load_answerer(tmp_path / "missing.json") is None
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": 2, "evidence": {}}))
    with pytest.raises(RagError, match="rag train"):
        load_answerer(bad)


def test_decision_abstains_below_the_threshold_and_reports_the_confidence(tiny_pipeline):
    coef = [1.0 if f in ("dense", "lexical") else 0.0 for f in FEATURES]
    r = tiny_pipeline.retrieve("Where were the harbour cranes of Nordport built?")
    low = Answerer(_scorer(coef), _calibrator(), 0.999)
    d = decide_learned(r, tiny_pipeline.index, low)
    expected = answer_confidence(r, low)
    assert d.abstain and d.confidence == expected and f"confidence {expected:.0%}; it answers from 100%" in d.reason
    high = Answerer(_scorer(coef), _calibrator(), 0.0)
    d = decide_learned(r, tiny_pipeline.index, high)
    assert not d.abstain and d.evidence[0] == r.sentences[0]


def test_ask_json_carries_the_confidence(tiny_pipeline):
    coef = [{"lexical": 6.0, "title": -5.0}.get(f, 0.0) for f in FEATURES]
    scorer = LinearScorer(np.zeros(len(FEATURES), np.float32), np.ones(len(FEATURES), np.float32),
                          np.asarray(coef, np.float32), -3.0)
    tiny_pipeline._answerer = Answerer(scorer, _calibrator(), 0.0)
    ans = tiny_pipeline.ask("Where were the harbour cranes of Nordport built?")
    assert not ans.abstained and 0.0 < ans.confidence < 1.0
    assert ans.to_json()["confidence"] == round(ans.confidence, 4)
    best = tiny_pipeline.retrieve("Where were the harbour cranes of Nordport built?").sentences[0]
    assert [(c.source, c.start) for c in ans.citations] == [("a_cranes.txt", best.start)]  # the best sentence, alone
    rules = type(tiny_pipeline)(index_dir=tiny_pipeline.index_dir, embedder=tiny_pipeline.embedder,
                                entities=False, answerer="rules")
    assert rules.ask("Where were the harbour cranes of Nordport built?").confidence is None


def test_nothing_retrieved_abstains_whatever_the_model(tiny_pipeline):
    tiny_pipeline._answerer = Answerer(_scorer(), _calibrator(0.0, 10.0), 0.0)
    ans = tiny_pipeline.ask("Where were the cranes built?", since="2030-01-01")
    assert ans.abstained and ans.note == "no article matches the filters"


def test_model_with_an_adapter_names_it_and_needs_the_file(tmp_path):
    from safetensors.numpy import save_file

    adapter = tmp_path / "question_adapter.safetensors"
    save_file({"encoder.layer.5.output.dense.bias": np.zeros(384, np.float16)}, str(adapter))
    a = Answerer(_scorer(), _calibrator(), 0.5, {}, adapter)
    path = tmp_path / "answerer.json"
    save_answerer(a, path)
    d = json.loads(path.read_text())
    assert d["adapter"]["file"] == "question_adapter.safetensors" and len(d["adapter"]["sha256"]) == 64
    assert load_answerer(path).adapter == adapter
    adapter.unlink()
    load_answerer.cache_clear()
    with pytest.raises(RagError, match="question adapter"):
        load_answerer(path)


def test_a_pipeline_answers_with_the_model_file_it_is_given(tiny_pipeline, tmp_path):
    """``rag eval --model``: a candidate that ``rag train --out`` wrote is judged before it ships."""
    from rag.errors import BadInputError
    from rag.pipeline import RagPipeline

    question = "Where were the harbour cranes of Nordport built?"
    path = tmp_path / "candidate" / "answerer.json"
    save_answerer(Answerer(_scorer(), _calibrator(0.0, 10.0), 0.0), path)  # confidence sigmoid(10): always answers
    given = RagPipeline(index_dir=tiny_pipeline.index_dir, embedder=tiny_pipeline.embedder, entities=False,
                        answerer_model=path)
    ans = given.ask(question)
    assert given.answerer.threshold == 0.0 and not ans.abstained
    assert ans.confidence == pytest.approx(1 / (1 + np.exp(-10.0)), abs=1e-4)
    save_answerer(Answerer(_scorer(), _calibrator(0.0, -10.0), 0.5), path.with_name("never.json"))
    never = RagPipeline(index_dir=tiny_pipeline.index_dir, embedder=tiny_pipeline.embedder, entities=False,
                        answerer_model=path.with_name("never.json"))
    assert never.ask(question).abstained  # the other file, not the first one or the shipped one
    with pytest.raises(BadInputError, match="no answerer model at"):
        RagPipeline(index_dir=tiny_pipeline.index_dir, embedder=tiny_pipeline.embedder, answerer_model=tmp_path / "none.json")
    with pytest.raises(BadInputError, match="for the learned answerer"):
        RagPipeline(index_dir=tiny_pipeline.index_dir, embedder=tiny_pipeline.embedder, answerer="rules",
                    answerer_model=path)
