"""The reader: the stacked rescoring (exact values), its place in retrieval (a fake reader with
known scores), and the exported int8 graph against the torch model it came from (slow)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rag import settings as C
from rag.answering.model import STACK_FEATURES, Answerer, load_answerer, save_answerer
from rag.question.analysis import analyze
from rag.retrieval.reader import reader_question, reader_text, restack
from rag.retrieval.scoring import FEATURES, LinearScorer

QUESTION = "Where were the harbour cranes of Nordport built?"


def _stack(evidence: float = 1.0, reader: float = 2.0) -> LinearScorer:
    return LinearScorer(np.zeros(2, np.float32), np.ones(2, np.float32), np.array([evidence, reader], np.float32),
                        0.0, STACK_FEATURES)


def test_restack_scores_unread_candidates_as_the_worst_read_one():
    z, r = restack(np.array([3.0, 2.0, 1.0, 0.0]), np.array([0, 1]), np.array([-1.0, 1.0]), _stack())
    assert r.tolist() == [-1.0, 1.0, -1.0, -1.0]
    assert z.tolist() == [1.0, 4.0, -1.0, -2.0]


class FakeReader:
    """Scores a text by whether it mentions a word (the real reader is a trained network)."""

    def __init__(self, word: str, titled: bool = False, history: bool = False):
        self.word, self.calls, self.titled, self.history, self.questions = word, [], titled, history, []

    def scores(self, questions, texts):
        questions = [questions] * len(texts) if isinstance(questions, str) else questions
        assert len(questions) == len(texts)
        self.calls.append(list(texts))
        self.questions.append(list(questions))
        return np.array([5.0 if self.word in t else -5.0 for t in texts], np.float32)


def _answerer(reader_word: str | None, tmp_path, titled: bool = False, history: bool = False):
    coef = [{"lexical": 6.0, "title": -5.0}.get(f, 0.0) for f in FEATURES]
    scorer = LinearScorer(np.zeros(len(FEATURES), np.float32), np.ones(len(FEATURES), np.float32),
                          np.asarray(coef, np.float32), -3.0)
    from rag.answering.model import CONFIDENCE_FEATURES

    n = len(CONFIDENCE_FEATURES)
    cal = LinearScorer(np.zeros(n, np.float32), np.ones(n, np.float32), np.zeros(n, np.float32), 0.0, CONFIDENCE_FEATURES)
    if reader_word is None:
        return Answerer(scorer, cal, 0.0)
    path = tmp_path / "reader.onnx"
    path.write_bytes(b"not used by the fake")
    a = Answerer(scorer, cal, 0.0, {}, None, path, _stack(evidence=0.0, reader=1.0), titled, history)
    a._reader.append(FakeReader(reader_word, titled, history))
    return a


def test_the_reader_reorders_the_evidence_models_best_sentences(tiny_pipeline, tmp_path):
    tiny_pipeline._answerer = _answerer(None, tmp_path)
    before = tiny_pipeline.retrieve(QUESTION).sentences
    assert all(s.reader is None for s in before)
    index = tiny_pipeline.index
    # the reader favours the evidence model's second sentence
    second = index.articles[before[1].doc_id].sentence_text(before[1].index)
    word = next(w for w in second.split() if w not in index.articles[before[0].doc_id].sentence_text(before[0].index))
    tiny_pipeline._answerer = a = _answerer(word, tmp_path)
    after = tiny_pipeline.retrieve(QUESTION).sentences
    assert (after[0].doc_id, after[0].index) == (before[1].doc_id, before[1].index)
    assert after[0].reader == 5.0 and after[0].score == 5.0
    n = min(C.READER.candidates, len(before))
    assert len(a._reader[0].calls) == 1 and len(a._reader[0].calls[0]) == n  # one batch of the best n
    assert sum(s.reader is not None for s in after) == n


def test_a_titled_reader_reads_the_article_title_before_each_sentence(tiny_pipeline, tmp_path):
    tiny_pipeline._answerer = a = _answerer("Nordport", tmp_path, titled=True)
    got = tiny_pipeline.retrieve(QUESTION).sentences
    index = tiny_pipeline.index
    n = min(C.READER.candidates, len(got))
    read = sorted(got[:n], key=lambda s: -s.score)
    texts = a._reader[0].calls[0]
    assert sorted(texts) == sorted(reader_text(index.articles[s.doc_id], s.index, True) for s in read)
    title = index.articles[read[0].doc_id].title
    assert title and any(t.startswith(title) for t in texts)


@pytest.mark.parametrize("history", [False, True])
def test_a_follow_up_is_read_after_its_earlier_question_only_by_a_reader_fitted_so(tiny_pipeline, tmp_path, history):
    tiny_pipeline._answerer = a = _answerer("Nordport", tmp_path, history=history)
    tiny_pipeline.retrieve("and who built them?", history=[QUESTION])
    tiny_pipeline.retrieve(QUESTION, history=["Who won the race?"])  # not a follow-up: its own words
    after = f" (after: {QUESTION})" if history else ""
    assert [set(q) for q in a._reader[0].questions] == [{"and who built them?" + after}, {QUESTION}]


def test_reader_question_of_follow_ups_and_single_questions():
    follow_up = analyze("and when?", ["Who signed the deal?"])
    assert follow_up.followup and follow_up.earlier == "Who signed the deal?"
    assert reader_question(follow_up, True) == "and when? (after: Who signed the deal?)"
    assert reader_question(follow_up, False) == "and when?"
    single = analyze("Who signed the deal?")
    assert single.earlier == "" and reader_question(single, True) == "Who signed the deal?"


def test_a_question_naming_its_period_is_read_without_it_against_the_articles_dated_in_it(tiny_corpus, tmp_path):
    from index.embed import HashEmbedder
    from rag.pipeline import RagPipeline

    # an undated story: nothing places it in June 2022 or out of it
    (tiny_corpus / "c_cranes.txt").write_text(
        "Cranes for Nordport\n\nMore harbour cranes for Nordport were built in Gdansk, the yard said.\n", encoding="utf-8")
    p = RagPipeline(index_dir=tmp_path / "index", embedder=HashEmbedder(), entities=False)
    p.ensure_index([tiny_corpus])
    p._answerer = a = _answerer("Rotterdam", tmp_path)
    dated_q = "Where were the harbour cranes of Nordport built in June 2022?"
    got = p.retrieve(dated_q).sentences
    n = min(C.READER.candidates, len(got))
    asked = dict(zip(a._reader[0].calls[0], a._reader[0].questions[0]))
    sources = {reader_text(p.index.articles[s.doc_id], s.index, False): p.index.articles[s.doc_id].source for s in got[:n]}
    assert {sources[t] for t in asked} == {"a_cranes.txt", "c_cranes.txt"}  # the 2021 story is out of the period
    for text, q in asked.items():
        assert q == (QUESTION if sources[text] == "a_cranes.txt" else dated_q)
    # a follow-up that borrows the period: both its words and the earlier question's lose it
    follow_up = analyze("and who paid?", [dated_q])
    assert reader_question(follow_up, True, in_period=True) == f"and who paid? (after: {QUESTION})"
    assert reader_question(follow_up, True) == f"and who paid? (after: {dated_q})"


def test_the_reader_wants_one_question_for_all_texts_or_one_a_text(tmp_path):
    from rag.retrieval.reader import Reader

    with pytest.raises(ValueError, match="1 questions for 2 texts"):
        Reader(tmp_path / "never-loaded.onnx").scores(["a question"], ["one", "two"])


def test_reader_text_joins_title_and_sentence_once():
    class Art:
        def __init__(self, title):
            self.title = title

        def sentence_text(self, i):
            return "He signed it on Monday."

    assert reader_text(Art("Deal agreed"), 0, True) == "Deal agreed. He signed it on Monday."
    assert reader_text(Art("Deal agreed?"), 0, True) == "Deal agreed? He signed it on Monday."
    assert reader_text(Art("  "), 0, True) == "He signed it on Monday."
    assert reader_text(Art("Deal agreed"), 0, False) == "He signed it on Monday."


@pytest.mark.parametrize("titled,history", [(False, False), (True, False), (True, True)])
def test_model_with_a_reader_names_it_and_needs_the_file(tmp_path, titled, history):
    a = _answerer("x", tmp_path, titled, history)
    path = tmp_path / "answerer.json"
    save_answerer(a, path)
    d = json.loads(path.read_text())
    assert d["reader"]["file"] == "reader.onnx" and d["stack"]["features"] == list(STACK_FEATURES)
    assert d["reader"]["input"] == ("title. sentence" if titled else "sentence")
    assert d["reader"]["question"] == ("question (after: earlier question)" if history else "question")
    loaded = load_answerer.__wrapped__(path)
    assert loaded.reader == tmp_path / "reader.onnx" and loaded.stack.coef.tolist() == a.stack.coef.tolist()
    assert (loaded.reader_titled, loaded.reader_history) == (titled, history)
    del d["reader"]["input"], d["reader"]["question"]  # a manifest written before readers read titles or history
    path.write_text(json.dumps(d))
    assert (load_answerer.__wrapped__(path).reader_titled, load_answerer.__wrapped__(path).reader_history) == (False, False)
    for key, value in (("input", "sentence and its neighbours"), ("question", "the whole conversation")):
        path.write_text(json.dumps({**d, "reader": {**d["reader"], key: value}}))
        with pytest.raises(Exception, match=f"reader {key} '{value}'"):
            load_answerer.__wrapped__(path)
    path.write_text(json.dumps(d))
    (tmp_path / "reader.onnx").unlink()
    with pytest.raises(Exception, match="reader .* is missing"):
        load_answerer.__wrapped__(path)


def race_pairs(n: int) -> list[tuple[str, str, float]]:
    """Training pairs of ``n`` questions, one gold sentence and one other each."""
    days = ("Monday", "Tuesday", "Sunday", "the weekend")
    return [p for i in range(n) for p in ((f"Who won the race {i}?", f"Smith won the race on {days[i % 4]}.", 1.0),
                                          (f"Who won the race {i}?", "The weather was bad.", 0.0))]


def test_training_pairs_are_cut_into_their_questions():
    from eval.train_reader import question_groups

    groups = question_groups(race_pairs(3) + [("Who lost?", "Jones lost.", 1.0)])
    assert [len(g) for g in groups] == [2, 2, 2, 1]
    assert {q for q, _, _ in groups[1]} == {"Who won the race 1?"}


def test_readers_are_fitted_in_bfloat16_only_where_the_cpu_computes_in_it(tmp_path):
    from eval.train_reader import cpu_computes_bf16

    info = tmp_path / "cpuinfo"
    for flags, expected in (("fpu sse2 avx2 avx512f", False), ("fpu avx512f avx512_bf16", True),
                            ("fpu amx_bf16 amx_tile", True), ("fpu bf16", False)):
        info.write_text(f"processor\t: 0\nflags\t\t: {flags}\n\nprocessor\t: 1\nflags\t\t: {flags}\n")
        assert cpu_computes_bf16(info) is expected, flags
    assert cpu_computes_bf16(tmp_path / "missing") is False  # not Linux: float32


def test_fewer_training_items_than_one_batch_is_an_error_not_an_untrained_reader():
    from eval.train_reader import train_loop

    with pytest.raises(ValueError, match="1 training items, fewer than one batch of 2"):
        train_loop(None, [race_pairs(1)], None, seed=0, progress=False, desc="reader", batch=2)


@pytest.mark.slow
def test_the_int8_graph_scores_like_the_torch_model(tmp_path):
    from eval import train_reader as tr
    from rag.retrieval.reader import Reader

    net = tr.fit_reader(race_pairs(24), seed=0, progress=False)
    tr.export_reader(net, tmp_path / "reader.onnx")
    texts = ["Smith won the race on Monday.", "The weather was bad.", "x " * 300]  # the last truncated
    torch_z = tr.torch_scores(net, "Who won the race in May?", texts)
    onnx_z = Reader(tmp_path / "reader.onnx").scores("Who won the race in May?", texts)
    assert onnx_z.shape == (3,) and np.all(np.abs(onnx_z - torch_z) < 0.1 + 0.1 * np.abs(torch_z))  # int8 error scales
    assert onnx_z[0] > onnx_z[1]  # it learned the pair it was shown
    import onnx

    scales = [i for i in onnx.load(str(tmp_path / "reader.onnx")).graph.initializer if i.name.endswith("_scale")]
    assert any(list(i.dims) == [tr.HIDDEN] for i in scales)  # int8 with a scale per output channel


@pytest.mark.slow
def test_a_fitted_reader_is_reloaded_from_the_cache_not_fitted_again(tmp_path, monkeypatch):
    from eval import train_reader as tr

    save = tr.save_checkpoint
    pairs = race_pairs(8)
    monkeypatch.setattr(tr, "CHECKPOINT_EVERY", 2)  # 8 batches: checkpointed on the way
    saves = []
    monkeypatch.setattr(tr, "save_checkpoint", lambda path, *a, **k: saves.append(path) or save(path, *a, **k))
    net = tr.fit_reader(pairs, seed=0, progress=False, cache=tmp_path)
    assert len(saves) == 3 and saves[0].parent == tmp_path
    (saved,) = tmp_path.iterdir()  # the fitted reader; its checkpoint went once it was saved
    assert saved.name.startswith("reader-") and saved.suffix == ".safetensors"
    assert not any(k.startswith("bert.embeddings.") for k in safe_open_keys(saved))  # frozen: not stored

    def refit(*args, **kwargs):
        raise RuntimeError("fitted again")

    monkeypatch.setattr(tr, "train_loop", refit)
    again = tr.fit_reader(pairs, seed=0, progress=False, cache=tmp_path)
    texts = ["Smith won the race on Monday.", "The weather was bad."]
    assert tr.torch_scores(again, "Who won?", texts).tolist() == tr.torch_scores(net, "Who won?", texts).tolist()
    for other_pairs, seed in ((pairs, 1), (pairs[:-1], 0)):  # another seed or other pairs: fitted anew
        with pytest.raises(RuntimeError, match="fitted again"):
            tr.fit_reader(other_pairs, seed=seed, progress=False, cache=tmp_path)


@pytest.mark.slow
def test_a_reader_fitted_in_bfloat16_with_more_frozen_layers_keeps_them_as_packaged(tmp_path, monkeypatch):
    from eval import train_reader as tr

    pairs = race_pairs(8)
    fp32_key = tr.fit_key(pairs, 0)
    monkeypatch.setattr(tr, "PRECISION", "bf16")
    monkeypatch.setattr(tr, "FROZEN", ("embeddings.", "encoder.layer.0.", "encoder.layer.1."))
    assert tr.fit_key(pairs, 0) != fp32_key  # another recipe: another cached reader
    net = tr.fit_reader(pairs, seed=0, progress=False, cache=tmp_path)
    packaged = dict(tr.minilm_net(0, 1, pooled=True).named_parameters())
    for name, p in net.named_parameters():
        if not name.startswith("bert.pooler."):  # unused (mean pooling): no gradient reaches it
            same = bool((p == packaged[name]).all())
            assert same == tr.frozen(name), name  # frozen layers as packaged, every other one trained
    assert tr.frozen("bert.encoder.layer.1.output.dense.weight") and not tr.frozen("bert.encoder.layer.2.output.dense.weight")
    (saved,) = tmp_path.iterdir()
    assert not any(tr.frozen(k) for k in safe_open_keys(saved))  # only the trained layers are stored
    texts = ["Smith won the race on Monday.", "The weather was bad."]
    again = tr.fit_reader(pairs, seed=0, progress=False, cache=tmp_path)  # reloaded over the packaged layers
    assert tr.torch_scores(again, "Who won?", texts).tolist() == tr.torch_scores(net, "Who won?", texts).tolist()
    assert np.all(np.isfinite(tr.torch_scores(net, "Who won?", texts)))


@pytest.mark.slow
def test_a_stopped_fit_resumes_from_its_checkpoint_and_ends_as_an_unstopped_one(tmp_path):
    from eval import train_reader as tr

    import torch

    pairs = race_pairs(6)  # 12 pairs: 6 batches of 2 an epoch, 12 in all

    def run(stop_after=None, checkpoint=None):
        net = tr.minilm_net(0, 1, pooled=True)
        tok = tr.reader_tokenizer()
        calls = []

        def loss(batch):
            if stop_after is not None and len(calls) == stop_after:
                raise KeyboardInterrupt
            calls.append(batch)
            feeds = {k: torch.from_numpy(v) for k, v in tr.encode_pairs(tok, [(q, t) for q, t, _ in batch]).items()}
            return torch.nn.functional.binary_cross_entropy_with_logits(
                net(**feeds), torch.tensor([y for _, _, y in batch]))

        tr.train_loop(net, pairs, loss, seed=0, progress=False, desc="reader", batch=2, checkpoint=checkpoint, every=4)
        return net, calls

    whole, whole_calls = run()
    ckpt = tmp_path / "reader.partial"
    with pytest.raises(KeyboardInterrupt):
        run(stop_after=7, checkpoint=ckpt)  # stopped in the second epoch, after the checkpoint at 4
    assert ckpt.exists()
    resumed, resumed_calls = run(checkpoint=ckpt)
    assert resumed_calls == whole_calls[4:]  # the batches after the checkpoint, in the unstopped order
    texts = ["Smith won the race on Monday.", "The weather was bad."]
    assert np.allclose(tr.torch_scores(resumed, "Who won?", texts), tr.torch_scores(whole, "Who won?", texts), atol=1e-5)
    assert not np.allclose(tr.torch_scores(tr.minilm_net(0, 1, pooled=True).eval(), "Who won?", texts),
                           tr.torch_scores(whole, "Who won?", texts), atol=1e-3)  # it did fit something

    other = tr.minilm_net(0, 1, pooled=True)
    tr.save_checkpoint(ckpt, other, *tr.optimiser(other, 99), step=4, steps=99)
    with pytest.raises(ValueError, match="checkpoint of another fit"):
        run(checkpoint=ckpt)  # a fit of 12 batches does not take up one of 99


def safe_open_keys(path) -> list[str]:
    from safetensors import safe_open

    with safe_open(str(path), "np") as f:
        return list(f.keys())


def test_training_stacks_each_question_as_rerank_does():
    from eval.train_reader import stacked

    Z, R = stacked([None, None], [np.zeros(0), np.array([3.0, 2.0, 1.0, 0.0])],
                   [np.zeros(0, np.float32), np.array([-1.0, 1.0, np.nan, np.nan], np.float32)], _stack())
    assert Z[0].size == 0 and R[0].size == 0  # a question without candidates
    assert Z[1].tolist() == [1.0, 4.0, -1.0, -2.0] and R[1].tolist() == [-1.0, 1.0, -1.0, -1.0]
