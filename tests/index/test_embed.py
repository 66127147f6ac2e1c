"""The NumPy copy of all-MiniLM-L6-v2 (questions, token counts) against sentence-transformers on
torch, and a question-answering process that never imports torch."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from index.encoder import _erf, gelu, layer_norm
from rag.errors import RagError

from conftest import ARTICLES, ROOT

QUESTIONS = [
    "How many projectiles did Gazan fighters launch in May 2023?",
    "Who was Egypt’s foreign minister?",
    "Was ist passiert? 🙂",
    "a",
]


def test_erf_and_gelu_match_the_exact_functions():
    import math

    x = np.linspace(-6, 6, 2001, dtype=np.float64)
    assert np.abs(_erf(x) - np.array([math.erf(v) for v in x])).max() < 2e-7
    ref = np.array([0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in x])
    assert np.abs(gelu(x) - ref).max() < 1e-6


def test_layer_norm_by_hand():
    x = np.array([[1.0, 2.0, 3.0, 6.0]])
    out = layer_norm(x, np.ones(4), np.zeros(4))
    assert np.allclose(out, (x - 3.0) / np.sqrt(3.5 + 1e-12))


def test_numpy_query_vectors_equal_sentence_transformers(minilm):
    long_text = (ARTICLES / "004_f3772e32fd93a989.txt").read_text()[:4000]  # over the 256-token window
    texts = QUESTIONS + [long_text]
    ours = np.stack([minilm.embed_query(t) for t in texts])
    ref = minilm.model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    assert ours.shape == (len(texts), 384) and ours.dtype == np.float32
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    assert (ours * ref).sum(1).min() > 0.99999
    assert np.abs(ours - ref).max() < 1e-4


def test_token_counts_equal_the_transformers_tokenizer(minilm):
    texts = [p.read_text() for p in sorted(ARTICLES.glob("*.txt"))] + QUESTIONS
    ref = minilm.tokenizer(texts, add_special_tokens=False, truncation=False, verbose=False)["input_ids"]
    assert minilm.count_tokens(texts) == [len(x) for x in ref]
    assert minilm.count_tokens(texts)[0] > 256  # no truncation when counting


@pytest.mark.parametrize("entities", [True, False])
def test_answering_process_never_imports_torch(bundled_index_dir, entities):
    code = (
        "import sys\n"
        "from rag.pipeline import RagPipeline\n"
        f"p = RagPipeline(index_dir={str(bundled_index_dir)!r}, entities={entities})\n"
        "a = p.ask('How many projectiles did Gazan fighters launch in May 2023?')\n"
        "assert not a.abstained and '866' in a.answer, a\n"
        "assert (a.short_answer == '866') == " + str(entities) + ", a.short_answer\n"
        "print('torch' in sys.modules, 'sentence_transformers' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"]


def test_spacy_import_leaves_torch_importable():
    code = (
        "import sys\n"
        "from rag.answering.extractive import EntityTagger\n"
        "ents = EntityTagger().entities('Egyptian President Mohammed Morsi met Erdogan in Cairo on Saturday.')\n"
        "assert 'torch' not in sys.modules\n"
        "import torch\n"
        "print(sorted({l for _, _, l in ents}), torch.ones(2).sum().item())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    labels, total = out.stdout.rsplit(" ", 1)
    assert "PERSON" in labels and "GPE" in labels and float(total) == 2.0


def test_overrides_replace_packaged_tensors_like_torch(tmp_path):
    """The NumPy encoder with an override file (a question adapter's tuned layers) gives the
    vectors of the torch model carrying the same weights."""
    import numpy as np
    from safetensors.numpy import save_file

    from eval.adapter import TorchQuestionEncoder
    from index.encoder import NumpyMiniLM

    rng = np.random.default_rng(0)
    base = TorchQuestionEncoder()
    tuned = {n: (w.astype(np.float32) + rng.normal(0, 0.02, w.shape)).astype(np.float16) for n, w in base.weights().items()}
    assert tuned and all(n.startswith(("encoder.layer.4.", "encoder.layer.5.")) for n in tuned)
    path = tmp_path / "adapter.safetensors"
    save_file(tuned, str(path))
    texts = ["How many rockets were fired from Gaza?", "Who won the best actress Bafta?"]
    want = TorchQuestionEncoder(tuned).vectors(texts)
    got = NumpyMiniLM(overrides=path).encode(texts)
    plain = NumpyMiniLM().encode(texts)
    assert np.allclose(got, want, atol=1e-4)
    assert not np.allclose(got, plain, atol=1e-3)  # the override changed the vectors
    bad = tmp_path / "bad.safetensors"
    save_file({"encoder.layer.5.output.dense.bias": np.zeros(3, np.float16)}, str(bad))
    with pytest.raises(RagError, match="does not fit"):
        NumpyMiniLM(overrides=bad).encode(texts)
