"""``MiniLMEmbedder.embed_chunks``: one tokenization, batches sorted by token count, sentence
vectors pooled per batch. Checked against ``model.encode`` and against a plain per-chunk
forward pass with a per-span boolean mean (the straightforward form of late chunking)."""

from __future__ import annotations

import numpy as np
import pytest

from index.chunking import chunk_article, sentence_spans_in
from index.embed import _pool_spans_batch, normalize
from rag.errors import RagError
from index.ingest import collect

from conftest import ARTICLES


def _by_hand(hidden, offsets, mask, spans, dim):
    out = np.zeros((len(spans), dim), dtype=np.float32)
    real = (mask > 0) & (offsets[:, 1] > offsets[:, 0])
    for j, (s, e) in enumerate(spans):
        sel = real & (offsets[:, 0] >= s) & (offsets[:, 1] <= e)
        if sel.any():
            out[j] = hidden[sel].mean(0)
    return normalize(out)


def test_pool_spans_batch_equals_a_loop_per_span():
    rng = np.random.default_rng(0)
    b, t, dim = 4, 9, 6
    hidden = rng.normal(size=(b, t, dim)).astype(np.float32)
    # [CLS] w w w w w w [SEP] [PAD]-style rows: (0, 0) offsets for specials and padding
    offsets = np.zeros((b, t, 2), dtype=np.int32)
    lens = [9, 7, 5, 3]
    mask = np.zeros((b, t), dtype=np.float32)
    for r, n in enumerate(lens):
        mask[r, :n] = 1
        for k in range(1, n - 1):
            offsets[r, k] = (3 * (k - 1), 3 * (k - 1) + 2)
    spans = [
        [(0, 5), (6, 14), (15, 20)],
        [(0, 2), (3, 100)],
        [],  # a chunk without sentences
        [(50, 60), (0, 2)],  # a span that covers no token stays a zero vector
    ]
    got = _pool_spans_batch(hidden, offsets, mask, spans, dim)
    assert [g.shape for g in got] == [(3, dim), (2, dim), (0, dim), (2, dim)]
    for r in range(b):
        np.testing.assert_allclose(got[r], _by_hand(hidden[r], offsets[r], mask[r], spans[r], dim), atol=1e-6)
    assert not got[3][0].any() and got[3][1].any()
    assert _pool_spans_batch(hidden[:1], offsets[:1], mask[:1], [[]], dim)[0].shape == (0, dim)


@pytest.fixture(scope="module")
def bundled_chunks(minilm):
    texts, spans = [], []
    for a in collect([ARTICLES]).articles[:2]:
        for c in chunk_article(a, minilm.count_tokens):
            texts.append(c.embed_text)
            spans.append(sentence_spans_in(c, a))
    return texts, spans


def test_chunk_vectors_equal_encode_and_sentence_vectors_equal_per_chunk_pooling(minilm, bundled_chunks):
    import torch

    texts, spans = bundled_chunks
    chunk_vecs, sent_vecs = minilm.embed_chunks(texts, spans)
    ref = minilm.model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    assert chunk_vecs.shape == ref.shape and chunk_vecs.dtype == np.float32
    np.testing.assert_allclose(chunk_vecs, ref, atol=1e-5)
    transformer = minilm.model[0].auto_model
    for i in range(0, len(texts), 5):  # one chunk at a time: no padding at all
        enc = minilm.tokenizer([texts[i]], truncation=False, return_tensors="pt", return_offsets_mapping=True)
        offsets = enc.pop("offset_mapping").numpy()[0]
        with torch.inference_mode():
            hidden = transformer(**enc).last_hidden_state.numpy()[0]
        mask = enc["attention_mask"].numpy()[0].astype(np.float32)
        want = _by_hand(hidden, offsets, mask, spans[i], minilm.dim)
        assert sent_vecs[i].shape == want.shape
        np.testing.assert_allclose(sent_vecs[i], want, atol=1e-5)


def test_vectors_do_not_depend_on_the_batching(minilm, bundled_chunks):
    from index.embed import MiniLMEmbedder

    texts, spans = bundled_chunks
    small = MiniLMEmbedder(batch_size=3)
    small._model = minilm.model
    a_chunks, a_sents = minilm.embed_chunks(texts, spans)
    rev = list(range(len(texts)))[::-1]
    b_chunks, b_sents = small.embed_chunks([texts[i] for i in rev], [spans[i] for i in rev])
    np.testing.assert_allclose(a_chunks, b_chunks[rev], atol=1e-5)
    for i, j in enumerate(rev):
        np.testing.assert_allclose(a_sents[j], b_sents[i], atol=1e-5)


def test_overlong_chunk_is_refused_before_any_forward_pass(minilm):
    calls = []
    with pytest.raises(RagError, match="over the model's window of 256"):
        minilm.embed_chunks(["short.", " ".join(["word"] * 300)], [[(0, 6)], [(0, 4)]], calls.append)
    assert calls == []
    assert minilm.embed_chunks([], [])[0].shape == (0, 384)
