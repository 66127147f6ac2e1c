"""The comparison baseline: a plain LangChain retrieval pipeline as in the tutorials.

* ``RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200)`` over each article,
* the project's own MiniLM model behind a small ``langchain_core.embeddings.Embeddings`` adapter
  (so both systems see the same vectors; only chunking, ranking and answering differ),
* a minimal ``langchain_core.vectorstores.VectorStore`` over ``faiss.IndexFlatIP`` (exact inner
  product on normalised vectors = cosine; langchain-community's FAISS store is not installed),
* its "answer" is the text of the top chunk (it never abstains).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore
from langchain_text_splitters import RecursiveCharacterTextSplitter

CHUNK_SIZE = 1000
CHUNK_OVERLAP = 200


def make_splitter() -> RecursiveCharacterTextSplitter:
    """The tutorial splitter (character lengths, default separators ``\\n\\n``, ``\\n``, `` ``, ``""``)."""
    return RecursiveCharacterTextSplitter(chunk_size=CHUNK_SIZE, chunk_overlap=CHUNK_OVERLAP, add_start_index=True)


def split_articles(articles: Mapping[str, str]) -> list[Document]:
    """One Document per chunk, ``metadata = {"source": file name, "start_index": offset}``."""
    splitter = make_splitter()
    names = sorted(articles)
    return splitter.create_documents([articles[n] for n in names], metadatas=[{"source": n} for n in names])


class ProjectEmbeddings(Embeddings):
    """Adapter: a ``index.embed.Embedder`` (``embed_texts``/``embed_query``, normalised float32
    vectors) as a LangChain ``Embeddings``."""

    def __init__(self, embedder):
        self.embedder = embedder

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return np.asarray(self.embedder.embed_texts(list(texts)), dtype=np.float32).tolist()

    def embed_query(self, text: str) -> list[float]:
        return np.asarray(self.embedder.embed_query(text), dtype=np.float32).tolist()


def _unit(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 1:
        x = x[None, :]
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


class FaissVectorStore(VectorStore):
    """The smallest useful LangChain vector store: an exact ``faiss.IndexFlatIP`` over
    L2-normalised vectors (score = cosine similarity, higher is better) plus the documents in
    insertion order. Ties keep insertion order (FAISS flat search is stable)."""

    def __init__(self, embedding: Embeddings):
        self._embedding = embedding
        self._index = None  # built on the first add, when the dimension is known
        self._docs: list[Document] = []
        self._ids: list[str] = []

    @property
    def embeddings(self) -> Embeddings:
        return self._embedding

    def __len__(self) -> int:
        return len(self._docs)

    def add_texts(
        self, texts: Iterable[str], metadatas: list[dict[str, Any]] | None = None, *,
        ids: list[str] | None = None, **kwargs: Any,
    ) -> list[str]:
        import faiss

        texts = list(texts)
        if not texts:
            return []
        metadatas = metadatas or [{} for _ in texts]
        ids = list(ids) if ids else [str(uuid.uuid4()) for _ in texts]
        if not (len(metadatas) == len(ids) == len(texts)):
            raise ValueError("texts, metadatas and ids must have the same length")
        vecs = _unit(self._embedding.embed_documents(texts))
        if self._index is None:
            self._index = faiss.IndexFlatIP(vecs.shape[1])
        self._index.add(vecs)
        for t, m, i in zip(texts, metadatas, ids):
            self._docs.append(Document(page_content=t, metadata=dict(m), id=i))
            self._ids.append(i)
        return ids

    def add_documents(self, documents: list[Document], **kwargs: Any) -> list[str]:
        ids = kwargs.pop("ids", None) or [d.id or str(uuid.uuid4()) for d in documents]
        return self.add_texts([d.page_content for d in documents], [d.metadata for d in documents], ids=ids, **kwargs)

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        pos = {i: n for n, i in enumerate(self._ids)}
        return [self._docs[pos[i]] for i in ids if i in pos]

    def similarity_search_with_score_by_vector(self, embedding: Sequence[float], k: int = 4) -> list[tuple[Document, float]]:
        if self._index is None or k <= 0:
            return []
        scores, idx = self._index.search(_unit(embedding), min(k, len(self._docs)))
        return [(self._docs[i], float(s)) for s, i in zip(scores[0], idx[0]) if i >= 0]

    def similarity_search_with_score(self, query: str, k: int = 4, **kwargs: Any) -> list[tuple[Document, float]]:
        return self.similarity_search_with_score_by_vector(self._embedding.embed_query(query), k)

    def similarity_search_by_vector(self, embedding: list[float], k: int = 4, **kwargs: Any) -> list[Document]:
        return [d for d, _ in self.similarity_search_with_score_by_vector(embedding, k)]

    def similarity_search(self, query: str, k: int = 4, **kwargs: Any) -> list[Document]:
        return [d for d, _ in self.similarity_search_with_score(query, k)]

    def _select_relevance_score_fn(self):
        return lambda score: (score + 1.0) / 2.0  # cosine in [-1, 1] -> [0, 1]

    @classmethod
    def from_texts(
        cls, texts: list[str], embedding: Embeddings, metadatas: list[dict] | None = None, *,
        ids: list[str] | None = None, **kwargs: Any,
    ) -> FaissVectorStore:
        store = cls(embedding)
        store.add_texts(texts, metadatas, ids=ids)
        return store


@dataclass(frozen=True)
class BaselineResult:
    question: str
    answer: str  # the top chunk's text ("" when the store is empty)
    chunks: tuple[Document, ...]  # best first
    scores: tuple[float, ...]
    latency_ms: float  # query embedding + FAISS search


class LangChainBaseline:
    """Tutorial-style LangChain RAG retrieval over ``articles`` (file name -> text), embedded
    with ``embedder`` (the project's ``MiniLMEmbedder`` for a fair comparison)."""

    def __init__(self, articles: Mapping[str, str], embedder):
        t0 = time.perf_counter()
        self.embeddings = ProjectEmbeddings(embedder)
        self.documents = split_articles(articles)
        self.store = FaissVectorStore(self.embeddings)
        self.store.add_documents(self.documents)
        self.build_seconds = time.perf_counter() - t0

    def search(self, question: str, k: int = 10) -> BaselineResult:
        t0 = time.perf_counter()
        hits = self.store.similarity_search_with_score(question, k=k)
        ms = (time.perf_counter() - t0) * 1000
        docs = tuple(d for d, _ in hits)
        return BaselineResult(question, docs[0].page_content if docs else "", docs, tuple(s for _, s in hits), ms)

    ask = search
