"""The CI gate: the whole eval on the bundled corpus must meet eval/thresholds.json."""

from __future__ import annotations

import json
from pathlib import Path

from eval.harness import check_thresholds, load_qa, run_eval

from conftest import ROOT


def test_eval_meets_thresholds(pipeline, tmp_path):
    qa = load_qa(ROOT / "eval" / "data" / "qa.jsonl", {a.source: a.text for a in pipeline.index.articles.values()})
    assert len(qa) >= 80
    metrics = run_eval(pipeline, qa, tmp_path, baseline=False, progress=False)
    for name in ("predictions.jsonl", "metrics.json", "report.md"):
        assert (tmp_path / name).exists()
    failures = check_thresholds(metrics, ROOT / "eval" / "thresholds.json")
    assert not failures, "eval below thresholds: " + "; ".join(failures)
    # every citation of every prediction quotes its article exactly
    for line in (tmp_path / "predictions.jsonl").read_text().splitlines():
        p = json.loads(line)
        for c in p["citations"]:
            art = pipeline.index.articles[c["doc_id"]]
            assert art.text[c["start"] : c["end"]] == c["quote"]
        assert p["abstained"] == (not p["citations"])


def test_gate_fails_when_a_bar_is_raised(tmp_path):
    bars = json.loads((ROOT / "eval" / "thresholds.json").read_text())
    bars["answer_accuracy"] = 1.01
    f = tmp_path / "t.json"
    f.write_text(json.dumps(bars))
    fails = check_thresholds({k: 0.99 for k in bars} | {"abstention_answerable": 0.0}, Path(f))
    assert any("answer_accuracy" in x for x in fails)
