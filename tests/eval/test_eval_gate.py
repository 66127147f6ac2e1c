"""The CI gate: the learned answerer on sets nothing was fitted on — the test split of the
written BBC QA set (eval/data/bbc/test.jsonl) and the held-out bundled set — must meet
eval/thresholds.json; the typo'd copies of the test split must stay close to their originals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval import bbc
from eval.gate import check_thresholds
from eval.gold import DEFAULT_HELDOUT, load_qa
from eval.metrics import answer_correct
from eval.run import run_eval

from conftest import ROOT

THRESHOLDS = ROOT / "eval" / "thresholds.json"
TYPO_GAP = 0.05  # the typo'd copies answer within this accuracy of their clean originals


@pytest.fixture(scope="session")
def bbc_pipeline(tmp_path_factory, minilm):
    from rag.pipeline import RagPipeline

    d = tmp_path_factory.mktemp("bbc")
    articles = bbc.stage_articles(d / "articles")
    p = RagPipeline(index_dir=d / "index", embedder=minilm)
    p.ensure_index([d / "articles"])
    assert len(articles) >= 470
    return p


def _citations_quote_exactly(pipeline, predictions: Path) -> None:
    for line in predictions.read_text().splitlines():
        p = json.loads(line)
        for c in p["citations"]:
            art = pipeline.index.articles[c["doc_id"]]
            assert art.text[c["start"] : c["end"]] == c["quote"]
        assert p["abstained"] == (not p["citations"])


@pytest.mark.slow
def test_test_split_meets_thresholds(bbc_pipeline, tmp_path):
    texts = {a.source: a.text for a in bbc_pipeline.index.articles.values()}
    qa = load_qa(bbc.qa_path("test"), texts)
    assert len(qa) >= 150
    metrics = run_eval(bbc_pipeline, qa, tmp_path, baseline=False, progress=False, gate="test")
    assert not metrics["threshold_failures"], "test split below thresholds: " + "; ".join(metrics["threshold_failures"])
    for name in ("predictions.jsonl", "metrics.json", "report.md", "reliability.png"):
        assert (tmp_path / name).exists()
    _citations_quote_exactly(bbc_pipeline, tmp_path / "predictions.jsonl")


@pytest.mark.slow
def test_typos_cost_little_accuracy(bbc_pipeline):
    texts = {a.source: a.text for a in bbc_pipeline.index.articles.values()}
    clean = {it.id: it for it in load_qa(bbc.qa_path("test"), texts)}
    typos = [it for it in load_qa(bbc.qa_path("test", typos=True), texts) if it.answerable]
    assert len(typos) >= 10
    right = {"clean": 0, "typo": 0}
    for it in typos:
        orig = clean[it.id.removesuffix("-t")]
        for key, item in (("clean", orig), ("typo", it)):
            a = bbc_pipeline.ask(item.question)
            right[key] += answer_correct(a.answer, item.answers, short_answer=a.short_answer, abstained=a.abstained)
    gap = (right["clean"] - right["typo"]) / len(typos)
    assert gap <= TYPO_GAP, f"typo'd questions: {right['typo']} right, their originals {right['clean']} (of {len(typos)})"


def test_heldout_meets_thresholds(pipeline, tmp_path):
    qa = load_qa(DEFAULT_HELDOUT, {a.source: a.text for a in pipeline.index.articles.values()})
    metrics = run_eval(pipeline, qa, tmp_path, baseline=False, progress=False, gate="heldout")
    assert not metrics["threshold_failures"], "held-out set below thresholds: " + "; ".join(metrics["threshold_failures"])
    _citations_quote_exactly(pipeline, tmp_path / "predictions.jsonl")


def test_gate_fails_when_a_bar_is_raised(tmp_path):
    bars = json.loads(THRESHOLDS.read_text())
    assert set(bars) >= {"test", "heldout"}
    raised = dict(bars["test"], answer_accuracy=1.01)
    f = tmp_path / "t.json"
    f.write_text(json.dumps({"test": raised}))
    fails = check_thresholds({k: 0.99 for k in raised} | {"abstention_answerable": 0.0, "ece": 0.0}, f, "test")
    assert any("answer_accuracy" in x for x in fails)
