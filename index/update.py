"""What an index update does, whatever the storage backend: the plan (which articles are added,
updated, skipped or deleted, decided by content hash) and the embedding of the articles to add
(chunks, chunk vectors, sentence vectors averaged over the chunks that hold each sentence).

Both stores (``index.store.IndexStore`` over FAISS, ``index.milvus_store.MilvusStore``) run
``plan_update`` and consume batches of ``Embedded``; ``embed_articles`` makes one batch in this
process, ``index.ray_ingest`` makes them on Ray workers."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from index.chunking import ChunkSettings, check_chunks, chunk_article, sentence_spans_in
from index.embed import Embedder
from index.ingest import Corpus
from rag.errors import ArticleError
from rag.types import Article, Chunk

Progress = Callable[[int, int], None]


@dataclass
class UpdateReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    duplicates: list[tuple[str, str]] = field(default_factory=list)
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    chunks_embedded: int = 0

    def summary(self) -> str:
        return (
            f"added {len(self.added)}, updated {len(self.updated)}, skipped {len(self.skipped)}, "
            f"deleted {len(self.deleted)}"
        )

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.deleted)


@dataclass
class Plan:
    report: UpdateReport
    to_embed: list[Article]  # new and changed articles, in corpus order
    to_remove: list[str]  # doc_ids whose rows go, in the order they were decided


@dataclass
class Embedded:
    """One batch of embedded articles: their chunks with one vector each, and one normalised
    vector per (doc_id, sentence index) that some chunk holds."""

    articles: list[Article]
    chunks: list[Chunk]
    chunk_vectors: np.ndarray  # (len(chunks), dim) float32
    sentence_keys: list[tuple[str, int]]
    sentence_vectors: np.ndarray  # (len(sentence_keys), dim) float32, L2-normalised


def plan_update(corpus: Corpus, present: dict[str, str], prune: bool,
                check: Callable[[Article], str | None] | None = None) -> Plan:
    """``present`` maps the indexed doc_ids to their file names. Unchanged articles (same name,
    same content hash) are skipped, changed ones replaced, new ones added; with ``prune``
    indexed articles not in the corpus are deleted. ``check`` (see ``chunk_check``) says why a
    new or changed article cannot be indexed: it is reported in ``unreadable`` and skipped, and
    an earlier version of it stays as it was."""
    present = dict(present)
    by_source = {s: d for d, s in present.items()}
    plan = Plan(UpdateReport(duplicates=list(corpus.duplicates),
                               unreadable=[(s.path, s.reason) for s in corpus.skipped]), [], [])
    r = plan.report

    def remove(doc_id: str) -> None:
        present.pop(doc_id, None)
        plan.to_remove.append(doc_id)

    wanted = {a.source for a in corpus.articles}
    for art in corpus.articles:
        prev = by_source.get(art.source)
        if prev == art.doc_id:
            r.skipped.append(art.source)
            continue
        other = present.get(art.doc_id)
        if other is not None and other != art.source and (other in wanted or not prune):
            r.duplicates.append((art.source, other))
            continue
        reason = check(art) if check else None
        if reason is not None:  # this article only: the rest of the batch goes on
            r.unreadable.append((art.source, reason))
            continue
        if prev is not None:
            remove(prev)
            r.updated.append(art.source)
        else:
            r.added.append(art.source)
        plan.to_embed.append(art)
    if prune:
        for source, doc_id in list(by_source.items()):
            if source not in wanted and doc_id in present:
                remove(doc_id)
                r.deleted.append(source)
    for art in plan.to_embed:
        if art.doc_id in present:  # same text re-added under its new name after a prune
            remove(art.doc_id)
    return plan


def chunk_check(embedder: Embedder, settings: ChunkSettings) -> Callable[[Article], str | None]:
    """Why an article cannot be chunked (for ``plan_update``), or None."""

    def check(art: Article) -> str | None:
        try:
            check_chunks(chunk_article(art, embedder.count_tokens, settings), embedder.count_tokens, settings.max_tokens)
        except ArticleError as e:
            return e.reason
        return None

    return check


def embed_articles(
    embedder: Embedder, settings: ChunkSettings, articles: list[Article], progress: Progress | None = None,
) -> Embedded:
    """Chunk ``articles`` and embed the chunks and their sentences in one encoder pass.
    ``progress(done, total)`` counts chunks."""
    pairs: list[tuple[Chunk, Article]] = []
    for art in articles:
        cs = chunk_article(art, embedder.count_tokens, settings)
        check_chunks(cs, embedder.count_tokens, settings.max_tokens)
        pairs.extend((c, art) for c in cs)
    if not pairs:
        empty = np.zeros((0, embedder.dim), np.float32)
        return Embedded(list(articles), [], empty, [], empty.copy())
    done = [0]

    def tick(n: int) -> None:
        done[0] += n
        if progress:
            progress(done[0], len(pairs))

    chunk_vecs, sent_vecs = embedder.embed_chunks(
        [c.embed_text for c, _ in pairs], [sentence_spans_in(c, a) for c, a in pairs], tick
    )
    # sentence vectors: average over the chunks a sentence appears in (overlap)
    acc: dict[tuple[str, int], np.ndarray] = {}
    for (c, _), sv in zip(pairs, sent_vecs):
        for i, v in zip(c.sentences, sv):
            key = (c.doc_id, i)
            acc[key] = acc[key] + v if key in acc else v.copy()
    if acc:
        vecs = np.stack(list(acc.values())).astype(np.float32)
        vecs /= np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
    else:
        vecs = np.zeros((0, embedder.dim), np.float32)
    return Embedded(list(articles), [c for c, _ in pairs], np.asarray(chunk_vecs, np.float32), list(acc), vecs)


# how a store gets its vectors: the articles to embed -> batches of Embedded (in process, or on Ray)
EmbedFn = Callable[[list[Article], "Progress | None"], Iterable[Embedded]]


def local_embed(embedder: Embedder, settings: ChunkSettings) -> EmbedFn:
    """The in-process embedding: one batch holding every article."""

    def run(articles: list[Article], progress: Progress | None = None) -> Iterator[Embedded]:
        yield embed_articles(embedder, settings, articles, progress)

    return run
