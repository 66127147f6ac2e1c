"""The learned short-answer span scorer (rag/answering/span.py) with the real spaCy pipeline and
the shipped model: it picks the asked-for span, its candidates keep their offsets, the model file
is checked on load, and the manifest matches the data it was fitted on."""

from __future__ import annotations

import hashlib
import json

import pytest

from rag import settings as C
from rag.answering import span as S
from rag.answering.extractive import EntityTagger, short_answer, typed_entity
from rag.errors import RagError
from rag.question.analysis import analyze

HAGARI = (
    "Gazan fighters, who only began firing rockets in response to the bombing on Wednesday afternoon, "
    "launched 866 projectiles during the conflict, 163 of which fell short of the border and 260 of which "
    "were intercepted, Hagari said."
)


@pytest.fixture(scope="module")
def tagger():
    return EntityTagger()


@pytest.mark.parametrize("question, expected", [
    ("How many were intercepted?", "260"),
    # "of the projectiles": a part is asked, so the total (866 projectiles) is not the answer
    ("During Operation Shield and Arrow, how many of the projectiles fired from Gaza were intercepted?", "260"),
    # the other part (the refit on 6,933 train questions answered 260 here; the refit on 8,376, 163)
    ("How many of the projectiles fell short of the border?", "163"),
    ("During Operation Shield and Arrow, how many projectiles did Gazan fighters launch?", "866"),
])
def test_the_asked_for_number_not_the_first(tagger, question, expected):
    assert short_answer(analyze(question), HAGARI, tagger) == expected


def test_the_typed_entity_rule_took_the_first_number(tagger):
    """The defect the scorer fixes: the rule answers 866 to 'how many were intercepted'."""
    assert typed_entity(analyze("How many were intercepted?"), HAGARI, tagger) == "866"


@pytest.mark.parametrize("question, sentence, expected", [
    ("Who at Mellon Bank reckoned it wouldn't take much to move the dollar either way?",
     "\"It's not going to take much to push [the dollar] one way or the other,\" said Grant Wilson of Mellon Bank.",
     "Grant Wilson"),
    ("How much is Sri Lanka asking the IMF for?",
     "The island state is asking for about $320m from the International Monetary Fund to help pay for relief, he said.",
     "$320m"),
    ("In which month did the dollar start weakening?",
     "The dollar has weakened sharply since September when it traded about $1.20 against the euro.",
     "September"),
])
def test_short_answers_of_each_type(tagger, question, sentence, expected):
    assert short_answer(analyze(question), sentence, tagger) == expected


def test_candidates_keep_offsets_and_cover_scores_durations_and_quotes(tagger):
    sentence = ("Henman beat Rusedski 4-6 7-6 (8-6) 6-4 in two hours and 40 minutes, saying \"it was tough\" "
                "after the match cost $2.2bn.")
    cands = S.candidates(tagger.parse(sentence))
    for c in cands:
        assert sentence[c.start : c.end] == c.text
    texts = {c.text for c in cands}
    assert {"4-6 7-6 (8-6) 6-4", "two hours and 40 minutes", "it was tough", "$2.2bn", "Rusedski"} <= texts
    assert len({(c.start, c.end) for c in cands}) == len(cands)  # deduplicated by offsets


def test_features_say_when_the_question_names_the_span(tagger):
    q = analyze("How many projectiles did Gazan fighters launch?")
    doc = tagger.parse(HAGARI)
    view = S.question_view(q, tagger.parse(q.text, entities=False))
    by_text = {c.text: S.features(doc, c, view) for c in S.candidates(doc)}
    assert by_text["Gazan fighters"]["q_all"] == 1.0
    assert by_text["866"]["q_none"] == 1.0
    assert by_text["866"].get("wh_noun|q=number") == 1.0  # "866 projectiles": the counted noun


@pytest.mark.parametrize("question, noun, partitive", [
    ("How many projectiles did Gazan fighters launch?", "projectil", False),
    ("How many more jobs will go?", "job", False),
    ("During Operation Shield and Arrow, how many of the projectiles fired from Gaza were intercepted?", "projectil", True),
    ("How much of Korea First Bank does Newbridge own?", "bank", True),
    ("How many were intercepted?", "", False),  # not "were"
    ("Which German club did he join?", "club", False),
])
def test_the_counted_noun_and_whether_a_part_of_it_is_asked(tagger, question, noun, partitive):
    view = S.question_view(analyze(question), tagger.parse(question, entities=False))
    assert (view.wh_noun, view.partitive) == (noun, partitive)


def test_a_part_asked_marks_the_whole_and_the_part(tagger):
    q = analyze("How many of the projectiles were intercepted?")
    doc = tagger.parse(HAGARI)
    view = S.question_view(q, tagger.parse(q.text, entities=False))
    by_text = {c.text: S.features(doc, c, view) for c in S.candidates(doc)}
    assert by_text["866"].get("wh_noun_whole|q=number") == 1.0 and "wh_noun|q=number" not in by_text["866"]
    assert by_text["260"].get("part_of_whole") == 1.0 and by_text["163"].get("part_of_whole") == 1.0
    assert "part_of_whole" not in by_text["866"]


def test_model_json_round_trip_and_bad_files(tmp_path):
    m = S.SpanModel(("a", "b"), S.np.array([1.0, -2.0]), 0.5, {"seed": 1})
    path = tmp_path / "span.json"
    S.save_span_model(m, path)
    back = S.load_span_model(path)
    assert back.names == ("a", "b") and back.scores([{"a": 1.0}, {"b": 1.0, "zzz": 9.0}]).tolist() == [1.5, -1.5]
    assert S.load_span_model(tmp_path / "missing.json") is None
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**m.to_json(), "coef": [1.0]}))
    with pytest.raises(RagError, match="2 features but 1 weights.*train_span"):
        S.load_span_model(bad)
    old = tmp_path / "old.json"
    old.write_text(json.dumps({**m.to_json(), "format": 0}))
    with pytest.raises(RagError, match="format 0"):
        S.load_span_model(old)


def test_without_a_model_the_rule_answers(tagger, monkeypatch, tmp_path):
    monkeypatch.setattr(S.C, "SPAN_MODEL", tmp_path / "none.json")
    S.load_span_model.cache_clear()
    try:
        assert short_answer(analyze("How many were intercepted?"), HAGARI, tagger) == "866"
    finally:
        S.load_span_model.cache_clear()


def test_shipped_manifest_matches_the_data():
    d = json.loads(C.SPAN_MODEL.read_text(encoding="utf-8"))
    meta = d["meta"]
    for split, info in meta["data"].items():
        data = (C.PROJECT_ROOT / info["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == info["sha256"], f"{split} changed: run python -m eval.train_span"
    assert set(meta["data"]) == {"train", "dev"}  # test is never read when fitting or choosing
    assert meta["seed"] == 13 and len(d["features"]) == meta["features"] == len(d["coef"])
    assert "train (in-sample)" in meta["metrics"] and meta["metrics"]["dev"]["f1"] > meta["metrics"]["dev, typed-entity rule"]["f1"]
