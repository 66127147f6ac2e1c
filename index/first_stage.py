"""The first stage of retrieval over the FAISS index: dense chunks, BM25 chunks and dense
sentences, each restricted to a set of articles inside the search. ``index.store.Index`` calls
these; ``index.milvus_store.MilvusIndex`` answers the same three calls with Milvus searches and
filter expressions (``SearchIndex`` is the interface the retrieval chain uses)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from rag.types import Article, Chunk


class SearchIndex(Protocol):
    """What the retrieval chain and the answerers read from a loaded index. ``docs`` restricts
    a search to those doc_ids; ``where`` is the user's filter (since, until, sources) that
    produced ``docs``, for backends that filter by expression."""

    articles: dict[str, Article]
    by_source: dict[str, str]
    chunks: dict[int, Chunk]
    chunks_by_doc: dict[str, list[int]]
    manifest: dict

    def article(self, doc_id: str) -> Article: ...

    def sentence_vectors(self, doc_id: str, sent_indices: list[int]) -> np.ndarray: ...

    def search_chunks(self, qv: np.ndarray, n: int, docs: frozenset[str] | None = None, where=None) -> list[tuple[int, float]]: ...

    def search_bm25(self, terms: list[str], n: int, docs: frozenset[str] | None = None, where=None) -> list[int]: ...

    def search_sentences(self, qv: np.ndarray, n: int, docs: frozenset[str] | None = None, where=None) -> list[tuple[str, int, float]]: ...


class IndexContents:
    """The articles and chunks of a loaded index, the part of ``SearchIndex`` that every backend
    holds the same way (``index.store.Index``, ``index.milvus_index.MilvusIndex``)."""

    def __init__(self, path, manifest: dict, articles: list[Article], chunks: dict[int, Chunk]):
        self.path = path
        self.manifest = manifest
        self.articles = {a.doc_id: a for a in articles}
        self.by_source = {a.source: a.doc_id for a in articles}
        self.chunks = chunks  # chunk id -> Chunk
        self.chunks_by_doc: dict[str, list[int]] = {}
        for cid, c in sorted(chunks.items(), key=lambda kv: (kv[1].doc_id, kv[1].start)):
            self.chunks_by_doc.setdefault(c.doc_id, []).append(cid)

    @property
    def dim(self) -> int:
        return int(self.manifest["dim"])

    def article(self, doc_id: str) -> Article:
        return self.articles[doc_id]


def faiss_search(index, qv: np.ndarray, k: int, allowed: np.ndarray | None) -> list[tuple[int, float]]:
    """Top-``k`` (id, score) of a ``VectorIndex`` (Flat or HNSW); with ``allowed`` the filter
    runs inside the search, and ``min(k, live allowed ids)`` results come back."""
    import faiss

    faiss.omp_set_num_threads(1)  # one query: threads only add start-up and contention
    if allowed is not None and len(allowed) == 0:
        return []
    k = min(k, index.ntotal if allowed is None else min(len(allowed), index.ntotal))
    if k <= 0:
        return []
    scores, ids = index.search(qv[None, :].astype(np.float32), k, allowed_ids=allowed)
    return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]


def chunk_ids_of(index, docs: frozenset[str]) -> np.ndarray:
    return np.array([cid for d in docs for cid in index.chunks_by_doc.get(d, ())], dtype=np.int64)


def sentence_keys_of(index, docs: frozenset[str]) -> np.ndarray:
    from index.store import sentence_key

    return np.array(
        [sentence_key(index.doc_seq[d], i) for d in docs for i in range(len(index.articles[d].sentences))],
        dtype=np.int64,
    )


def bm25_mask_of(index, docs: frozenset[str]) -> np.ndarray:
    ok = set(chunk_ids_of(index, docs).tolist())
    return np.array([1.0 if cid in ok else 0.0 for cid in index.bm25_ids], dtype=np.float32)


def bm25_search(index, terms: list[str], n: int, mask: np.ndarray | None) -> list[int]:
    """Chunk ids by BM25 score of the question's ``terms`` (only those with a positive score)."""
    if index.bm25 is None or not terms:
        return []
    k = min(n, len(index.bm25_ids) if mask is None else int(mask.sum()))
    if k <= 0:
        return []
    res, sc = index.bm25.retrieve([terms], k=k, show_progress=False, weight_mask=mask)
    return [index.bm25_ids[int(i)] for i, s in zip(res[0], sc[0]) if s > 0]
