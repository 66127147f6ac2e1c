"""eval (gold set, metrics, gate, run) and eval.baseline: metric functions on exact hand-made inputs, gold-set
validation, the bundled gold set against the bundled articles, the baseline's splitter and
vector store, and run_eval end to end on a stub pipeline (no MiniLM model; fast)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from eval import bbc as B
from eval import distractors as D
from eval import gate as Gate
from eval import gold as G
from eval import metrics as M
from eval import run as R
from eval.baseline import (
    CHUNK_OVERLAP, CHUNK_SIZE, FaissVectorStore, LangChainBaseline, ProjectEmbeddings, make_splitter, split_articles,
)
from index.embed import HashEmbedder
from rag.errors import BadInputError
from rag.types import Answer, Citation, Passage

ROOT = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------------------------------------
# normalisation, containment, F1
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, expected",
    [
        ("Seven people", "7 people"),
        ("30,000 troops", "30000 troops"),
        ("1,500,000", "1500000"),
        ("1.5 million", "1500000"),
        ("twenty-one", "21"),
        ("Three hundred and five", "305"),
        ("one two", "1 2"),
        ("Hamas’ Al-Aqsa radio!", "hamas al aqsa radio"),
        ("In 2012.", "in 2012"),
        ("2.5 percent", "2.5 percent"),
        ("50%", "50 percent"),
        ("Café  “Déjà”", "cafe deja"),
        ("war and peace", "war and peace"),
        ("", ""),
        (None, ""),
    ],
)
def test_normalize_answer(text, expected):
    assert M.normalize_answer(text) == expected


def test_contains_answer_number_words_both_ways():
    assert M.contains_answer("Seven people were hurt.", "7")
    assert M.contains_answer("7 people were hurt.", "seven")
    assert M.contains_answer("about 30,000 reservists", "30000")
    assert M.contains_answer("about 30000 reservists", "30,000")
    assert M.contains_answer("It went to ASHKELON, then home", "Ashkelon")
    assert not M.contains_answer("thus it was", "US")  # whole words only
    assert not M.contains_answer("17 people", "7")
    assert not M.contains_answer("anything", "—")  # empty after normalisation never matches


def test_token_f1_exact():
    # tokens p = [the, quick, brown, fox], g = [quick, brown, dog]: 2 common, P 1/2, R 2/3
    assert M.token_f1("The quick brown fox", "quick brown dog") == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    assert M.token_f1("a b c", "a b c") == 1.0
    assert M.token_f1("a b", "c d") == 0.0
    assert M.token_f1("", "c d") == 0.0
    assert M.token_f1("a a b", "a b b") == pytest.approx(2 / 3)  # multiset overlap


def test_answer_correct_rules():
    assert M.answer_correct("Hamas warned residents of Ashkelon. [1]", ["Ashdod", "Ashkelon"])
    assert not M.answer_correct("Hamas warned residents of Ashkelon.", ["Ashkelon"], abstained=True)
    assert M.answer_correct("The long sentence.", ["seven"], short_answer="7")
    # gold longer than 4 words: token F1 >= 0.6 also counts (here 5 of 6 gold tokens, F1 = 10/13)
    gold = "planned evictions of Palestinian families in Sheikh"
    assert M.answer_correct("over planned evictions of Palestinian families there", [gold])
    # the same overlap is no match for a gold of 4 words or fewer (containment only)
    assert not M.answer_correct("planned evictions of families", ["planned evictions of Palestinian"])
    assert not M.answer_correct("nothing in common here at all", [gold])
    assert not M.answer_correct(None, ["x"])


# ---------------------------------------------------------------------------------------------
# retrieval and citation metrics
# ---------------------------------------------------------------------------------------------
def test_evidence_rank_recall_mrr():
    passages = ["intro. Gold one is here.", "filler", "Gold  two\nis here. tail"]
    assert M.evidence_rank(passages, ["Gold one is here."]) == 1
    assert M.evidence_rank(passages, ["Gold two is here."]) == 3  # white space collapsed
    assert M.evidence_rank(passages, ["Gold one is here.", "Gold two is here."]) == 3  # all within top 3
    assert M.evidence_rank(passages, ["Gold one is here.", "missing"]) is None
    assert M.evidence_rank(passages, []) is None
    assert M.evidence_rank([], ["x"]) is None

    ranks = [1, 3, None, 2, 10]
    assert M.recall_at(ranks, 1) == pytest.approx(1 / 5)
    assert M.recall_at(ranks, 3) == pytest.approx(3 / 5)
    assert M.recall_at(ranks, 5) == pytest.approx(3 / 5)
    assert M.recall_at(ranks, 10) == pytest.approx(4 / 5)
    assert M.mean_reciprocal_rank(ranks) == pytest.approx((1 + 1 / 3 + 0 + 1 / 2 + 1 / 10) / 5)
    assert M.recall_at([], 5) is None and M.mean_reciprocal_rank([]) is None


def test_sentence_labels_mark_the_evidence_that_answers():
    # two articles: a.txt sets the scene, b.txt holds the answer
    item = G.QAItem("q", "Shares had fallen 13%; how much did they gain on the news?", ("1.7%",), ("a.txt", "b.txt"),
                    ("Shares have fallen 13% since the feud began.", "Shares added 1.7% on the news."), "multi_doc")
    assert M.answer_evidence(item) == ("Shares added 1.7% on the news.",)
    assert M.sentence_labels(item, "a.txt", "Shares have fallen 13% since the feud began.") == (False, False)
    assert M.sentence_labels(item, "b.txt", "Shares added 1.7% on the news.") == (True, True)
    assert M.sentence_labels(item, "b.txt", "Rivals gained 1.7% too.") == (False, True)  # holds the answer
    # another article: only a sentence holding a whole answer-evidence string (a near-duplicate's copy)
    assert M.sentence_labels(item, "c.txt", "Shares added 1.7% on the news.") == (True, True)
    assert M.sentence_labels(item, "c.txt", "Rivals gained 1.7% too.") == (False, False)
    assert M.sentence_labels(item, "c.txt", "Shares added 1.7%") == (False, False)
    assert M.sentence_labels(item, "c.txt", "Shares have fallen 13% since the feud began.") == (False, False)
    # no evidence string holds the answer (a paraphrased "why"): all of them are answer evidence
    why = G.QAItem("w", "Why did they sell?", ("to pay debts",), ("a.txt",), ("It needed cash.", "Its debts were due."), "why")
    assert M.answer_evidence(why) == why.evidence
    assert M.sentence_labels(why, "a.txt", "It needed cash.") == (True, True)
    unanswerable = G.QAItem("u", "Who won?", (), ("a.txt",), (), "unanswerable")
    assert M.sentence_labels(unanswerable, "a.txt", "It needed cash.") == (False, False)


def test_citation_precision_and_recall():
    ev = ["Netanyahu met Gallant on Tuesday."]
    assert M.citation_supported("Before that, Netanyahu met Gallant on Tuesday. After.", ev, [])  # contains evidence
    assert M.citation_supported("Netanyahu met Gallant", ev, [])  # contained in evidence
    assert M.citation_supported("Benjamin Netanyahu spoke.", [], ["Netanyahu"])  # contains an answer
    assert not M.citation_supported("Rockets fell on Sderot.", ev, ["Netanyahu"])
    assert not M.citation_supported("   ", ev, [])

    per_item = [
        (["Netanyahu met Gallant on Tuesday.", "Rockets fell on Sderot."], ev, ["Netanyahu"]),
        (["Seven people were hurt."], ["x"], ["7"]),
        ([], ev, ["y"]),
    ]
    assert M.citation_precision(per_item) == pytest.approx(2 / 3)
    assert M.citation_precision([([], ev, [])]) is None

    assert M.citation_recall(["a.txt", "a.txt"], ["a.txt", "b.txt"]) == 0.5
    assert M.citation_recall(["a.txt", "b.txt", "c.txt"], ["a.txt", "b.txt"]) == 1.0
    assert M.citation_recall([], ["a.txt"]) == 0.0
    assert M.citation_recall([], []) == 1.0


def test_percentile():
    assert M.percentile([10, 20, 30, 40, 50], 50) == 30
    assert M.percentile([10, 20, 30, 40, 50], 95) == pytest.approx(48)
    assert M.percentile([5.0], 95) == 5.0
    assert M.percentile([], 50) is None


# ---------------------------------------------------------------------------------------------
# thresholds and comparison
# ---------------------------------------------------------------------------------------------
def test_shipped_thresholds_gate_only_sets_nothing_was_fitted_on():
    bars = json.loads((ROOT / "eval" / "thresholds.json").read_text())
    gates = {k: v for k, v in bars.items() if not k.startswith("_")}
    assert set(gates) == {"test", "heldout"}  # never train, dev or the in-sample bundled set
    for gate in gates.values():
        for key in gate:
            name = key.removesuffix("_max").removesuffix("_min")
            assert name in M.HEADLINE, key


GOOD = {
    "evidence_recall@5": 0.98, "answer_accuracy": 0.9, "citation_precision": 0.96,
    "abstention_unanswerable": 0.9, "abstention_answerable": 0.02,
}


BARS = {
    "evidence_recall@5": 0.97, "answer_accuracy": 0.85, "citation_precision": 0.95,
    "abstention_unanswerable_min": 0.85, "abstention_answerable_max": 0.05,
}


@pytest.fixture
def bars(tmp_path):
    p = tmp_path / "bars.json"
    p.write_text(json.dumps({"test": BARS, "_note": "gates by set"}))
    return p


def test_check_thresholds_passing(bars):
    assert Gate.check_thresholds(GOOD, bars, "test") == []
    assert Gate.check_thresholds({**GOOD, "answer_accuracy": 0.85, "abstention_answerable": 0.05}, bars, "test") == []  # inclusive
    assert Gate.check_thresholds({"overall": GOOD}, bars, "test") == []  # nested layout accepted too


def test_check_thresholds_failing(tmp_path, bars):
    with pytest.raises(BadInputError, match="no gate 'dev'"):
        Gate.check_thresholds(GOOD, bars, "dev")
    bad = {**GOOD, "answer_accuracy": 0.81, "abstention_answerable": 0.0625, "citation_precision": None}
    del bad["evidence_recall@5"]
    assert Gate.check_thresholds(bad, bars, "test") == [
        "evidence_recall@5 is missing from the metrics (bar >= 0.97)",
        "answer_accuracy 0.81 < 0.85",
        "citation_precision n/a (no item to measure it; bar >= 0.95)",
        "abstention_answerable 0.0625 > 0.05",
    ]
    p = tmp_path / "t.json"
    p.write_text(json.dumps({"mrr": 0.9, "latency_p95_ms_max": 500}))
    assert Gate.check_thresholds({"mrr": 0.8999, "latency_p95_ms": 612.5}, p) == [
        "mrr 0.8999 < 0.90", "latency_p95_ms 612.50 > 500",
    ]
    p.write_text("[1, 2]")
    with pytest.raises(BadInputError):
        Gate.check_thresholds(GOOD, p)


def test_compare():
    clean = {"answer_accuracy": 0.9, "evidence_recall@5": 1.0, "latency_p50_ms": 100.0, "citation_precision": None,
             "baseline": {"evidence_recall@5": 0.8}}
    dis = {"answer_accuracy": 0.75, "evidence_recall@5": 0.95, "latency_p50_ms": 160.0, "citation_precision": 0.9,
           "baseline": {"evidence_recall@5": 0.5}}
    c = M.compare(clean, dis)
    assert c["answer_accuracy"] == {"clean": 0.9, "distractor": 0.75, "drop": pytest.approx(0.15)}
    assert c["evidence_recall@5"]["drop"] == pytest.approx(0.05)
    assert c["latency_p50_ms"]["drop"] == pytest.approx(-60.0)
    assert c["citation_precision"]["drop"] is None
    assert c["baseline.evidence_recall@5"]["drop"] == pytest.approx(0.3)
    assert "mrr" not in c


# ---------------------------------------------------------------------------------------------
# gold set loading
# ---------------------------------------------------------------------------------------------
ARTS = {
    "a.txt": "Springfield news\n\nThe mayor of Springfield is Joe Quimby. Seven people attended the meeting.",
    "b.txt": "Shelbyville news\n\nThe mayor of Shelbyville is Shelby Junior. Rain fell on Monday.",
}


def _row(**kw):
    d = {"id": "q1", "question": "Who is the mayor of Springfield?", "answers": ["Joe Quimby"], "doc": "a.txt",
         "evidence": "The mayor of Springfield is Joe Quimby.", "type": "who"}
    d.update(kw)
    return json.dumps(d)


def _write(tmp_path, lines):
    p = tmp_path / "qa.jsonl"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p


def test_load_qa_good(tmp_path):
    p = _write(tmp_path, [
        _row(),
        "",
        _row(id="q2", type="multi_doc", doc=["a.txt", "b.txt"], answers=["mayor"],
             evidence=["The mayor of Springfield is Joe Quimby.", "The mayor of Shelbyville is Shelby Junior."]),
        _row(id="q3", type="unanswerable", answers=[], doc=None, evidence=None),
    ])
    qa = G.load_qa(p, ARTS)
    assert [q.id for q in qa] == ["q1", "q2", "q3"]
    assert qa[0] == G.QAItem("q1", "Who is the mayor of Springfield?", ("Joe Quimby",), ("a.txt",),
                             ("The mayor of Springfield is Joe Quimby.",), "who", 1)
    assert qa[1].docs == ("a.txt", "b.txt") and len(qa[1].evidence) == 2 and qa[1].line == 3
    assert qa[2].docs == () and qa[2].evidence == () and not qa[2].answerable
    with pytest.raises(AttributeError):  # frozen
        qa[0].id = "x"  # type: ignore[misc]


def test_load_qa_malformed_json_names_line(tmp_path):
    p = _write(tmp_path, [_row(), '{"id": "q2", "question": ', _row(id="q3")])
    with pytest.raises(BadInputError) as e:
        G.load_qa(p, ARTS)
    msg = str(e.value)
    assert f"{p}:2:" in msg and "line 2 is not valid JSON" in msg
    assert ":1:" not in msg and ":3:" not in msg


def test_load_qa_unknown_doc(tmp_path):
    p = _write(tmp_path, [_row(), _row(id="q2", doc="nope.txt")])
    with pytest.raises(BadInputError) as e:
        G.load_qa(p, ARTS)
    msg = str(e.value)
    assert f"{p}:2: unknown doc 'nope.txt'" in msg


def test_load_qa_evidence_not_found(tmp_path):
    ev = "The mayor of Springfield is Homer Simpson, said nobody at all in this article."
    p = _write(tmp_path, [_row(evidence=ev)])
    with pytest.raises(BadInputError) as e:
        G.load_qa(p, ARTS)
    msg = str(e.value)
    assert f"{p}:1: evidence not found verbatim in a.txt" in msg
    assert ev[:40] in msg


def test_load_qa_evidence_in_another_doc_is_not_enough(tmp_path):
    p = _write(tmp_path, [_row(doc="b.txt")])
    with pytest.raises(BadInputError, match="evidence not found verbatim in b.txt"):
        G.load_qa(p, ARTS)


@pytest.mark.parametrize(
    "line, fragment",
    [
        (json.dumps({"id": "q1", "question": "x?"}), "missing key(s) answers, doc, evidence, type"),
        (_row(type="opinion"), "type 'opinion' is not one of"),
        (_row(answers=[]), "a who item needs at least one answer"),
        (_row(answers="Joe"), "answers must be a list"),
        (_row(doc=None), "doc must be a file name"),
        (_row(type="multi_doc"), "multi_doc item needs at least two docs"),
        (_row(history=["Who?", ""]), "history must be a list of the earlier questions"),
        ("[1, 2]", "is not a JSON object"),
    ],
)
def test_load_qa_other_errors(tmp_path, line, fragment):
    p = _write(tmp_path, [line])
    with pytest.raises(BadInputError, match=None) as e:
        G.load_qa(p, ARTS)
    assert f"{p}:1:" in str(e.value) and fragment in str(e.value)


def test_load_qa_duplicate_id(tmp_path):
    p = _write(tmp_path, [_row(), _row()])
    with pytest.raises(BadInputError, match="id 'q1' is already used on line 1"):
        G.load_qa(p, ARTS)


def test_bundled_gold_set_evidence_is_verbatim():
    """Every evidence string of eval/qa.jsonl is verbatim in its article under articles/ (as the
    index reads them); load_qa raises otherwise."""
    articles = G.article_texts([ROOT / "articles"])
    qa = G.load_qa(ROOT / "eval" / "data" / "qa.jsonl", articles)
    assert len(qa) >= 100
    assert {q.type for q in qa} == set(G.QA_TYPES)
    for q in qa:
        for ev in q.evidence:
            assert any(ev in articles[d] for d in q.docs), (q.id, ev[:60])


def test_heldout_gold_set_is_separate_and_verbatim():
    """eval/qa_heldout.jsonl: questions written after the main set's calibration, none repeated."""
    articles = G.article_texts([ROOT / "articles"])
    held = G.load_qa(ROOT / "eval" / "data" / "qa_heldout.jsonl", articles)
    main = G.load_qa(ROOT / "eval" / "data" / "qa.jsonl", articles)
    assert len(held) >= 25 and {q.type for q in held} >= {"who", "numeric", "unanswerable", "multi_doc"}
    assert not {q.question for q in held} & {q.question for q in main}
    assert not {q.id for q in held} & {q.id for q in main}
    for q in held:
        for ev in q.evidence:
            assert any(ev in articles[d] for d in q.docs), (q.id, ev[:60])


def test_bbc_paths():
    paths = B.bbc_paths()
    assert len(paths) == 2225
    assert {p.parent.name for p in paths} == {"business", "entertainment", "politics", "sports", "tech"}
    assert all(p.suffix == ".txt" and p.parent.parent.name == "data" for p in paths)


# ---------------------------------------------------------------------------------------------
# baseline
# ---------------------------------------------------------------------------------------------
def _words(n: int, tag: str = "w") -> str:
    return " ".join(f"{tag}{i:03d}" for i in range(n))  # 5 characters a word


def _check_chunks(text: str, chunks, max_gap: int) -> None:
    for a, b in zip(chunks, chunks[1:]):
        a_start, b_start = a.metadata["start_index"], b.metadata["start_index"]
        assert text[a_start:a_start + len(a.page_content)] == a.page_content
        overlap = a_start + len(a.page_content) - b_start
        assert -max_gap <= overlap <= 200, overlap
    # together the chunks cover the text (up to the separators they were split at)
    assert chunks[0].metadata["start_index"] == 0
    last = chunks[-1]
    assert last.metadata["start_index"] + len(last.page_content) == len(text.rstrip())


def test_baseline_splitter_1000_200():
    s = make_splitter()
    assert (CHUNK_SIZE, CHUNK_OVERLAP) == (1000, 200)
    assert (s._chunk_size, s._chunk_overlap) == (1000, 200)
    one_paragraph = _words(700)  # 4,199 characters, splittable only at spaces
    paragraphs = "\n\n".join(_words(n, f"p{j}") for j, n in enumerate([30, 150, 40, 90, 20, 160, 60]))
    docs = split_articles({"x.txt": one_paragraph, "y.txt": "short one.", "z.txt": paragraphs})
    assert all(len(d.page_content) <= 1000 for d in docs)
    xs = [d for d in docs if d.metadata["source"] == "x.txt"]
    assert len(xs) == 5 and all(len(d.page_content) > 950 for d in xs[:-1])  # filled up to the size
    _check_chunks(one_paragraph, xs, max_gap=0)
    for a, b in zip(xs, xs[1:]):  # word-level overlap of nearly 200 characters
        overlap = a.metadata["start_index"] + len(a.page_content) - b.metadata["start_index"]
        assert 190 <= overlap <= 200
    zs = [d for d in docs if d.metadata["source"] == "z.txt"]
    assert len(zs) >= 3
    _check_chunks(paragraphs, zs, max_gap=2)  # whole paragraphs never exceed the 200 overlap
    assert [d.page_content for d in docs if d.metadata["source"] == "y.txt"] == ["short one."]


def test_faiss_store_ranks_like_brute_force_and_in_memory_store():
    from langchain_core.vectorstores import InMemoryVectorStore

    emb = ProjectEmbeddings(HashEmbedder(dim=64))
    texts = [f"article {i} about {'rockets' if i % 3 else 'ceasefire'} and talks number {i % 5}" for i in range(40)]
    ours = FaissVectorStore.from_texts(texts, emb, metadatas=[{"i": i} for i in range(40)])
    ref = InMemoryVectorStore(emb)
    ref.add_texts(texts, metadatas=[{"i": i} for i in range(40)])
    vecs = np.array(emb.embed_documents(texts))
    for q in ["ceasefire talks number 3", "rockets", "article 17"]:
        got = ours.similarity_search_with_score(q, k=5)
        want = ref.similarity_search_with_score(q, k=5)
        assert [s for _, s in got] == pytest.approx([s for _, s in want], abs=1e-5)
        brute = np.sort(vecs @ np.array(emb.embed_query(q)))[::-1][:5]
        assert [s for _, s in got] == pytest.approx(list(brute), abs=1e-5)
        assert [d.page_content for d in ours.similarity_search(q, k=5)] == [d.page_content for d, _ in got]
    assert len(ours.get_by_ids([ours._ids[3]])) == 1
    assert FaissVectorStore(emb).similarity_search("x") == []


def test_langchain_baseline_answer_is_top_chunk():
    bl = LangChainBaseline(ARTS, HashEmbedder(dim=64))
    assert len(bl.documents) == 2
    r = bl.search("mayor of Shelbyville Shelby Junior", k=10)
    assert len(r.chunks) == 2
    assert r.answer == r.chunks[0].page_content == ARTS["b.txt"]
    assert r.latency_ms >= 0


# ---------------------------------------------------------------------------------------------
# run_eval end to end on a stub pipeline
# ---------------------------------------------------------------------------------------------
EV_MAYOR = "The mayor of Springfield is Joe Quimby."
EV_SEVEN = "Seven people attended the meeting."
EV_SHELBY = "The mayor of Shelbyville is Shelby Junior."


def _cit(n, source, quote):
    return Citation(n, source, source, "", None, ARTS[source].index(quote), ARTS[source].index(quote) + len(quote), quote)


def _psg(rank, source, text):
    return Passage(rank, source, source, 0, len(text), text, 1.0 / rank)


class StubPipeline:
    def __init__(self, answers):
        self.answers = answers
        self.embedder = HashEmbedder(dim=64)
        self.index = SimpleNamespace(articles={n: SimpleNamespace(source=n, text=t) for n, t in ARTS.items()})
        self.calls = []

    def ask(self, question, k=5, mode="extractive", history=()):
        self.calls.append((question, k, mode, history))
        return self.answers[question]


def _stub_case(tmp_path):
    rows = [
        _row(id="q1", question="Who is the mayor?"),
        _row(id="q2", question="How many attended?", type="numeric", answers=["7"], evidence=EV_SEVEN,
             history=["Who is the mayor?"]),  # a follow-up: asked after its history
        _row(id="q3", question="Who are the mayors?", type="multi_doc", answers=["Joe Quimby"], doc=["a.txt", "b.txt"],
             evidence=[EV_MAYOR, EV_SHELBY]),
        _row(id="q4", question="Who is the sheriff?", type="unanswerable", answers=[], doc=None, evidence=None),
        _row(id="q5", question="When did rain fall?", type="when", answers=["Monday"], doc="b.txt",
             evidence="Rain fell on Monday."),
    ]
    qa = G.load_qa(_write(tmp_path, rows), ARTS)
    filler = _psg(1, "b.txt", "Shelbyville news")
    answers = {
        "Who is the mayor?": Answer("Who is the mayor?", f"{EV_MAYOR} [1]", False, (_cit(1, "a.txt", EV_MAYOR),),
                                    (_psg(1, "a.txt", ARTS["a.txt"]),), 10.0, "Joe Quimby"),
        "How many attended?": Answer("How many attended?", f"{EV_SEVEN} [1]", False, (_cit(1, "a.txt", EV_SEVEN),),
                                     (filler, _psg(2, "b.txt", "x"), _psg(3, "a.txt", EV_SEVEN)), 20.0),
        "Who are the mayors?": Answer("Who are the mayors?", f"{EV_MAYOR} [1] Springfield news [2]", False,
                                      (_cit(1, "a.txt", EV_MAYOR), _cit(2, "a.txt", "Springfield news")),
                                      (_psg(1, "a.txt", EV_MAYOR), _psg(2, "b.txt", EV_SHELBY)), 30.0),
        "Who is the sheriff?": Answer("Who is the sheriff?", "The articles don't say.", True, (), (filler,), 40.0,
                                      note="nothing relevant found"),
        "When did rain fall?": Answer("When did rain fall?", "The articles don't say.", True, (), (filler,), 50.0,
                                      note="the closest passage is weak (score 0.40)"),
    }
    return qa, StubPipeline(answers)


def test_run_eval_end_to_end_on_stub(tmp_path):
    qa, pipe = _stub_case(tmp_path)
    out = tmp_path / "out"
    bars = tmp_path / "bars.json"
    bars.write_text(json.dumps({"stub": {"evidence_recall@5": 0.97, "_note": "ignored"}}))
    m = R.run_eval(pipe, qa, out, k=3, progress=False, label="stubrun", gate="stub", thresholds=bars)
    assert {c[1] for c in pipe.calls} == {10} and {c[2] for c in pipe.calls} == {"extractive"}
    assert [c[3] for c in pipe.calls] == [(), ("Who is the mayor?",), (), (), ()]

    # answerable q1, q2, q3, q5 with evidence ranks 1, 3, 2, None
    assert m["evidence_recall@1"] == pytest.approx(1 / 4)
    assert m["evidence_recall@3"] == pytest.approx(3 / 4)
    assert m["evidence_recall@5"] == pytest.approx(3 / 4)
    assert m["evidence_recall@10"] == pytest.approx(3 / 4)
    assert m["mrr"] == pytest.approx((1 + 1 / 3 + 1 / 2 + 0) / 4)
    assert m["answer_accuracy"] == pytest.approx(3 / 4)  # q2 via "Seven" <-> "7"; q5 abstained
    assert m["citation_precision"] == pytest.approx(3 / 4)  # "Springfield news" supports nothing
    assert m["citation_recall"] == pytest.approx((1 + 1 + 0.5 + 0) / 4)
    assert m["abstention_unanswerable"] == 1.0
    assert m["abstention_answerable"] == pytest.approx(1 / 4)
    assert m["latency_p50_ms"] == 30.0 and m["latency_p95_ms"] == 48.0
    assert m["multi_doc_all_cited"] == 0.0
    assert m["counts"]["questions"] == 5 and m["counts"]["answerable"] == 4 and m["counts"]["errors"] == 0
    assert m["counts"]["citations"] == 4 and m["counts"]["citations_supported"] == 3
    assert m["per_type"]["numeric"]["answer_accuracy"] == 1.0
    assert m["per_type"]["multi_doc"]["citation_recall"] == 0.5
    assert m["per_type"]["unanswerable"]["evidence_recall@5"] is None
    assert m["label"] == "stubrun" and m["k"] == 3
    assert m["threshold_failures"] == ["evidence_recall@5 0.75 < 0.97"]

    b = m["baseline"]
    for key in ("evidence_recall@1", "evidence_recall@3", "evidence_recall@5", "evidence_recall@10", "mrr",
                "answer_accuracy"):
        assert 0.0 <= b[key] <= 1.0
    assert b["search_latency_p50_ms"] >= 0 and b["chunks"] == 2 and b["evidence_in_no_chunk"] == 0
    assert b["evidence_recall@10"] == 1.0  # both whole articles are returned

    preds = [json.loads(l) for l in (out / "predictions.jsonl").read_text().splitlines()]
    assert [p["id"] for p in preds] == ["q1", "q2", "q3", "q4", "q5"]
    assert preds[3]["abstained"] is True and preds[3]["note"] == "nothing relevant found"
    assert json.loads((out / "metrics.json").read_text()) == json.loads(json.dumps(m))
    assert (out / "per_type.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len((out / "baseline_predictions.jsonl").read_text().splitlines()) == 5

    report = (out / "report.md").read_text()
    assert report.startswith("# Evaluation report — stubrun")
    assert "![per-type results](per_type.png)" in report
    assert "| evidence_recall@5 | 0.750 |" in report
    failures = report.split("## Failures")[1]
    assert "### q1 " not in failures and "### q4 " not in failures
    assert "### q3 (multi_doc)" in failures and "did not cite b.txt" in failures
    assert "### q5 (when)" in failures and "the closest passage is weak (score 0.40)" in failures
    assert "Rain fell on Monday." in failures and "“Monday”" in failures
    assert "### q2 (numeric) — gold evidence not within the top 3 passages" not in failures  # rank 3 <= k


def test_run_eval_without_baseline_and_errors(tmp_path):
    qa, pipe = _stub_case(tmp_path)
    del pipe.answers["How many attended?"]

    def ask(question, k=5, mode="extractive", history=()):
        if question not in pipe.answers:
            raise BadInputError("boom")
        return pipe.answers[question]

    pipe.ask = ask
    m = R.run_eval(pipe, qa, tmp_path / "o", baseline=False, progress=False)
    assert "baseline" not in m and m["counts"]["errors"] == 1
    assert m["answer_accuracy"] == pytest.approx(2 / 4)
    assert "error: BadInputError: boom" in (tmp_path / "o" / "report.md").read_text()
    assert not (tmp_path / "o" / "baseline_predictions.jsonl").exists()

    pipe.index.articles.pop("b.txt")
    with pytest.raises(BadInputError, match="does not hold b.txt"):
        R.run_eval(pipe, qa, tmp_path / "o2", baseline=False, progress=False)


def test_stage_bbc_gives_distinct_names(tmp_path):
    staged = D.stage_bbc(tmp_path / "bbc")
    assert len(staged) == 2225 == len({p.name for p in staged})
    assert all(p.name.startswith("bbc_") for p in staged)


@pytest.mark.parametrize("options, message", [
    (dict(followups=True), "--followups needs --split"),
    (dict(split="dev", typos=True, followups=True), "two different sets"),
])
def test_follow_ups_are_a_split_of_their_own(options, message):
    with pytest.raises(BadInputError, match=message):
        R.evaluate(R.EvalOptions(**options))
