"""A loaded Milvus index: the first stage runs as Milvus searches with filter expressions; the
articles and chunks (text and offsets, no vectors) are held in memory for the sentence stage
and the answerers, as with the FAISS index. Sentence vectors are read from Milvus per article
when the sentence stage asks for them (a small cache keeps recent articles).

The chain needs the three first-stage lists one by one (the head of each list reaches the
sentence stage, and "in the BM25 head" is a scoring feature), so dense and BM25 are two
searches fused by the chain's own reciprocal rank fusion. ``hybrid_chunks`` is the same fusion
of the two lists done by Milvus ``hybrid_search`` (``RRFRanker``), for callers that only need
the fused order."""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import TYPE_CHECKING

import numpy as np

from index.first_stage import IndexContents
from rag.types import Article, Chunk

if TYPE_CHECKING:
    from rag.retrieval.search import Filters

SENTENCE_CACHE_ARTICLES = 4096  # articles whose sentence vectors stay in memory after a query
# efSearch of a filtered dense search (HNSW keeps walking until it has k rows that pass): at 1%
# selectivity over 100k vectors, Milvus Lite's recall@10 was 0.56 with 128, 0.98 with 1024 and
# 1.00 with 4096 (bench/milvus.py data; docs/benchmarks.md "Milvus and Ray")
FILTERED_EF = 1024


def quote(s: str) -> str:
    """A Milvus string literal."""
    return json.dumps(s, ensure_ascii=False)


def filter_expr(where: Filters | None = None, docs: frozenset[str] | None = None) -> str:
    """The Milvus filter expression of the user's filters (``since``, ``until``, ``sources``) on
    the ``date`` and ``source`` fields, or, without them, of a set of doc_ids. ``""``: no filter."""
    if where is not None and where.active:
        parts = []
        if where.sources:
            parts.append(f"source in [{', '.join(quote(s) for s in sorted(where.sources))}]")
        if where.since or where.until:
            parts.append('date != ""')  # an undated article is outside every date range
        if where.since:
            parts.append(f"date >= {quote(where.since.isoformat())}")
        if where.until:
            parts.append(f"date <= {quote(where.until.isoformat())}")
        return " and ".join(parts)
    if docs is not None:
        return f"doc_id in [{', '.join(quote(d) for d in sorted(docs))}]"
    return ""


class MilvusIndex(IndexContents):
    """Implements ``index.first_stage.SearchIndex`` over Milvus collections."""

    def __init__(self, client, names: dict[str, str], manifest: dict, articles: list[Article],
                 chunks: dict[int, Chunk], path: str):
        super().__init__(path, manifest, articles, chunks)
        self.client = client
        self.names = names  # role ("chunks", "sentences", "articles") -> collection name
        self._sentences: OrderedDict[str, dict[int, np.ndarray]] = OrderedDict()

    def sentence_vectors(self, doc_id: str, sent_indices: list[int]) -> np.ndarray:
        vecs = self._sentences.get(doc_id)
        if vecs is None:
            rows = self.client.query(self.names["sentences"], filter=f"doc_id == {quote(doc_id)}",
                                     output_fields=["sent_index", "vector"])
            vecs = {int(r["sent_index"]): np.asarray(r["vector"], np.float32) for r in rows}
            self._sentences[doc_id] = vecs
            if len(self._sentences) > SENTENCE_CACHE_ARTICLES:
                self._sentences.popitem(last=False)
        else:
            self._sentences.move_to_end(doc_id)
        missing = [i for i in sent_indices if i not in vecs]
        if missing:
            raise KeyError(f"sentences {missing[:10]} of {doc_id} have no vector in {self.names['sentences']}")
        if not sent_indices:
            return np.zeros((0, self.dim), np.float32)
        return np.stack([vecs[i] for i in sent_indices])

    def _search(self, role: str, data, field: str, n: int, expr: str, out: list[str]) -> list[dict]:
        """One Milvus search; ``out`` names the fields to return (an empty list returns all)."""
        if n <= 0:
            return []
        dense = field == "vector"
        params = {"params": {"ef": max(FILTERED_EF, n)}} if dense and expr else {}
        res = self.client.search(self.names[role], data=data, anns_field=field, limit=n, filter=expr,
                                 output_fields=out, search_params=params)
        return list(res[0]) if res else []

    def search_chunks(self, qv: np.ndarray, n: int, docs: frozenset[str] | None = None, where=None):
        if docs is not None and not docs:
            return []
        hits = self._search("chunks", [_vector(qv)], "vector", n, filter_expr(where, docs), ["cid"])
        out = [(int(h["cid"]), float(h["distance"])) for h in hits if int(h["cid"]) in self.chunks]
        # equal scores in file-name and position order, as the FAISS backend stores them
        return sorted(out, key=lambda x: (-round(x[1], 6), self.chunks[x[0]].source, self.chunks[x[0]].start))

    def search_bm25(self, terms: list[str], n: int, docs: frozenset[str] | None = None, where=None) -> list[int]:
        if not terms or (docs is not None and not docs):
            return []
        hits = self._search("chunks", [" ".join(terms)], "sparse", n, filter_expr(where, docs), ["cid"])
        # equal scores in file-name and position order, as the FAISS backend's bm25s returns them
        key = {int(h["cid"]): (round(abs(float(h["distance"])), 5), self.chunks[int(h["cid"])]) for h in hits
               if int(h["cid"]) in self.chunks}
        return sorted(key, key=lambda c: (-key[c][0], key[c][1].source, key[c][1].start))

    def search_sentences(self, qv: np.ndarray, n: int, docs: frozenset[str] | None = None, where=None):
        if docs is not None and not docs:
            return []
        hits = self._search("sentences", [_vector(qv)], "vector", n, filter_expr(where, docs),
                            ["doc_id", "sent_index"])
        out = [(h["entity"]["doc_id"], int(h["entity"]["sent_index"]), float(h["distance"])) for h in hits
               if h["entity"]["doc_id"] in self.articles]
        return sorted(out, key=lambda x: (-round(x[2], 6), self.articles[x[0]].source, x[1]))

    def hybrid_chunks(self, qv: np.ndarray, terms: list[str], n: int, rrf_k: int, where=None,
                      docs: frozenset[str] | None = None) -> list[tuple[int, float]]:
        """Dense + BM25 chunks fused by Milvus ``hybrid_search`` with ``RRFRanker(rrf_k)``:
        (chunk id, fused score), best first."""
        from pymilvus import AnnSearchRequest, RRFRanker

        expr = filter_expr(where, docs)
        reqs = [AnnSearchRequest(data=[_vector(qv)], anns_field="vector", param={"metric_type": "IP"},
                                 limit=n, expr=expr)]
        if terms:
            reqs.append(AnnSearchRequest(data=[" ".join(terms)], anns_field="sparse",
                                         param={"metric_type": "BM25"}, limit=n, expr=expr))
        res = self.client.hybrid_search(self.names["chunks"], reqs, ranker=RRFRanker(rrf_k), limit=n,
                                        output_fields=["cid"])
        return [(int(h["cid"]), float(h["distance"])) for h in (res[0] if res else [])]


def _vector(qv: np.ndarray) -> list[float]:
    return np.asarray(qv, np.float32).reshape(-1).tolist()
