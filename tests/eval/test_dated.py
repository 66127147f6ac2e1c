"""The dated copy of a split: placeholder dates fixed by the file name, each kept question asking
about its own article's period, the evidence still verbatim in the dated copies of the articles."""

from __future__ import annotations

import json
from datetime import date

import pytest

from eval import bbc, dated
from eval.gold import load_qa
from eval.run import EvalOptions, evaluate
from index.ingest import parse_article
from rag.errors import BadInputError
from rag.question.analysis import analyze


def test_placeholder_dates_fall_in_the_twelve_months_and_depend_only_on_the_name():
    names = [f"bbc_sport_{i}.txt" for i in range(350, 650)]
    got = [dated.article_date(n) for n in names]
    assert got == [dated.article_date(n) for n in names]
    assert min(got) >= date(2004, 6, 1) and max(got) <= date(2005, 5, 28)
    assert len({(d.year, d.month) for d in got}) == 12  # every month used
    assert dated.article_date("bbc_business_352.txt") == date(2004, 10, 1)


def test_a_dated_question_names_its_period_at_the_end():
    assert dated.dated_question("How many shares will it buy back? ", "2005") == "How many shares will it buy back in 2005?"
    assert dated.dated_question("Name the buyer", "March 2005") == "Name the buyer in March 2005"
    phrases = {dated.period_phrase(date(2005, 3, 9), f"q-{i}") for i in range(20)}
    assert phrases == {"2005", "March 2005"}


def test_the_copy_keeps_one_article_questions_without_a_period_of_their_own(tmp_path):
    rows = [
        {"id": "a", "question": "Who bought the label?", "answers": ["Falic"], "doc": "bbc_business_510.txt",
         "evidence": "x", "type": "who"},
        {"id": "b", "question": "What were profits in 2004?", "answers": ["1"], "doc": "bbc_business_510.txt",
         "evidence": "x", "type": "numeric"},
        {"id": "c", "question": "Who sold it in March?", "answers": ["LVMH"], "doc": "bbc_business_510.txt",
         "evidence": "x", "type": "who"},
        {"id": "d", "question": "Which two firms?", "answers": ["A"], "doc": ["bbc_business_418.txt", "bbc_business_510.txt"],
         "evidence": ["x", "y"], "type": "multi_doc"},
    ]
    src, dest = tmp_path / "dev.jsonl", tmp_path / "out" / "dev.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    assert dated.write_dated_qa(src, dest) == 1
    (kept,) = [json.loads(line) for line in dest.read_text(encoding="utf-8").splitlines()]
    when = dated.article_date("bbc_business_510.txt")
    phrase = dated.period_phrase(when, "a")
    assert kept == {**rows[0], "question": f"Who bought the label in {phrase}?"}
    q = analyze(kept["question"])
    assert q.years == (when.year,)  # the phrase is read as the question's period


def test_the_dev_copy_loads_against_the_dated_articles_each_dated_as_placed(tmp_path):
    src = tmp_path / "staged"
    src.mkdir()
    items = [json.loads(line) for line in bbc.qa_path("dev").read_text(encoding="utf-8").splitlines()]
    docs = sorted({it["doc"] for it in items if isinstance(it["doc"], str)})[:6]
    paths = {bbc.staged_name(p): p for p in bbc.bbc_paths() if bbc.eligible(p)}
    for name in docs:
        (src / name).write_text(paths[name].read_text(encoding="utf-8"), encoding="utf-8")
    copies = dated.stage_dated_articles(src, tmp_path / "dated")
    texts = {p.name: p.read_text(encoding="utf-8") for p in copies}
    for name, text in texts.items():
        assert parse_article(text, name).date == dated.article_date(name).isoformat()
    sub = tmp_path / "dev_sub.jsonl"
    sub.write_text("".join(json.dumps(it) + "\n" for it in items if it["doc"] in docs), encoding="utf-8")
    n = dated.write_dated_qa(sub, tmp_path / "dev_dated.jsonl")
    loaded = load_qa(tmp_path / "dev_dated.jsonl", texts)  # raises on evidence not verbatim
    assert n == len(loaded) > 0
    assert all(analyze(it.question).years == (dated.article_date(it.docs[0]).year,) for it in loaded)


@pytest.mark.parametrize("opts", [EvalOptions(dated=True), EvalOptions(split="dev", typos=True, dated=True),
                                  EvalOptions(split="dev", followups=True, dated=True)])
def test_dated_needs_a_plain_split(opts):
    with pytest.raises(BadInputError, match="--dated needs --split"):
        evaluate(opts)


def test_the_dated_copy_of_test_is_not_held_to_the_test_splits_gate():
    from eval.run import gate_for

    path = bbc.qa_path("test")
    assert gate_for(EvalOptions(split="test"), path) == "test"
    assert gate_for(EvalOptions(split="test", dated=True), dated.DATED_DIR / "test.jsonl") is None
