"""Ingest on Ray Data: reading and cleaning the files (map tasks), then chunking and embedding
(``map_batches`` over an actor pool, one encoder per worker). The store writes what comes back
(``IndexStore.update``/``MilvusStore.update`` with ``embed=ray_embed(...)``), batch by batch.

Ray starts locally (``ray.init()``) unless ``RAY_ADDRESS`` names a cluster; the code is the
same. A worker batch that fails is retried (``RAY_TASK_RETRIES`` times, on a restarted actor if
the worker died); a run that still fails keeps the batches already written to Milvus, and
running it again embeds only the articles whose content hash is not in the index yet."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from index.chunking import ChunkSettings
from index.embed import Embedder, HashEmbedder, MiniLMEmbedder
from index.ingest import Corpus, collect, read_or_error
from index.update import Embedded, EmbedFn, Progress, embed_articles
from rag import settings as C
from rag.errors import ArticleError, RagError
from rag.types import Article, Chunk

RAY_TASK_RETRIES = 3  # attempts after the first for a failing worker batch
READ_BATCH_FILES = 64


def ensure_ray(num_cpus: int | None = None):
    """Ray, started locally unless already running or ``RAY_ADDRESS`` points at a cluster."""
    try:
        import ray
    except ImportError as e:
        raise RagError("--ray needs Ray: pip install -e .[scale]") from e
    if not ray.is_initialized():
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, configure_logging=False)
    ctx = ray.data.DataContext.get_current()
    ctx.actor_task_retry_on_errors = True  # an exception in a batch is retried too, not only a dead worker
    ctx.enable_progress_bars = True
    return ray


def _embedder_spec(embedder: Embedder) -> tuple[type, dict]:
    """How a worker builds its own copy of ``embedder`` (models are not shipped, but loaded
    once per worker)."""
    if isinstance(embedder, MiniLMEmbedder):
        return MiniLMEmbedder, {"batch_size": embedder.batch_size, "device": embedder.device}
    if isinstance(embedder, HashEmbedder):
        return HashEmbedder, {"dim": embedder.dim}
    raise RagError(f"--ray builds {MiniLMEmbedder.__name__} or {HashEmbedder.__name__} on its workers, not {type(embedder).__name__}")


def _read_batch(batch: dict) -> dict:
    out = {"path": [], "article": [], "error": []}
    for p in batch["path"]:
        res = read_or_error(Path(str(p)))
        out["path"].append(str(p))
        if isinstance(res, ArticleError):
            out["article"].append("")
            out["error"].append(res.reason)
        else:
            out["article"].append(json.dumps(res.to_json(), ensure_ascii=False))
            out["error"].append("")
    return out


def ray_collect(paths, num_cpus: int | None = None) -> Corpus:
    """``index.ingest.collect`` with the files read and cleaned on Ray workers."""
    def read_all(files: list[Path]):
        if not files:
            return []
        ray = ensure_ray(num_cpus)
        ds = ray.data.from_items([{"path": str(f)} for f in files]).map_batches(
            _read_batch, batch_size=READ_BATCH_FILES, batch_format="numpy", max_retries=RAY_TASK_RETRIES)
        got = {}
        for row in ds.iter_rows():
            got[row["path"]] = (ArticleError(row["path"], row["error"]) if row["error"]
                                else Article.from_json(json.loads(row["article"])))
        return [got[str(f)] for f in files]

    return collect(paths, read_all=read_all)


class _EmbedWorker:
    """One Ray actor: its own encoder, loaded once, embedding batches of articles."""

    def __init__(self, spec: tuple[type, dict], settings: ChunkSettings):
        cls, kwargs = spec
        self.embedder = cls(**kwargs)
        self.settings = settings

    def __call__(self, batch: dict) -> dict:
        arts = [Article.from_json(json.loads(str(s))) for s in batch["article"]]
        e = embed_articles(self.embedder, self.settings, arts)
        out = {"article": [], "chunks": [], "chunk_vectors": [], "sentences": [], "sentence_vectors": []}
        for a in arts:
            ci = [n for n, c in enumerate(e.chunks) if c.doc_id == a.doc_id]
            si = [n for n, (d, _) in enumerate(e.sentence_keys) if d == a.doc_id]
            out["article"].append(json.dumps(a.to_json(), ensure_ascii=False))
            out["chunks"].append(json.dumps([_chunk_json(e.chunks[n]) for n in ci], ensure_ascii=False))
            out["chunk_vectors"].append(e.chunk_vectors[ci].astype(np.float32).tobytes())
            out["sentences"].append(json.dumps([e.sentence_keys[n][1] for n in si]))
            out["sentence_vectors"].append(e.sentence_vectors[si].astype(np.float32).tobytes())
        return out


def _chunk_json(c: Chunk) -> dict:
    return {"id": c.id, "doc_id": c.doc_id, "source": c.source, "start": c.start, "end": c.end, "text": c.text,
            "sentences": list(c.sentences), "header": c.header}


def _embedded_of(row_batch: dict, dim: int) -> Embedded:
    arts, chunks, cvs, keys, svs = [], [], [], [], []
    for a_js, c_js, cv, s_js, sv in zip(row_batch["article"], row_batch["chunks"], row_batch["chunk_vectors"],
                                        row_batch["sentences"], row_batch["sentence_vectors"]):
        a = Article.from_json(json.loads(str(a_js)))
        arts.append(a)
        chunks += [Chunk(**{**d, "sentences": tuple(d["sentences"])}) for d in json.loads(str(c_js))]
        cvs.append(np.frombuffer(bytes(cv), np.float32).reshape(-1, dim))
        keys += [(a.doc_id, int(i)) for i in json.loads(str(s_js))]
        svs.append(np.frombuffer(bytes(sv), np.float32).reshape(-1, dim))
    return Embedded(arts, chunks, np.concatenate(cvs) if cvs else np.zeros((0, dim), np.float32), keys,
                    np.concatenate(svs) if svs else np.zeros((0, dim), np.float32))


def ray_embed(embedder: Embedder, settings: ChunkSettings, workers: int | None = None,
              batch_articles: int | None = None, num_cpus: int | None = None) -> EmbedFn:
    """An ``embed`` for the stores' ``update``: the articles go through ``map_batches`` on an
    actor pool of ``workers`` encoders (default ``RAG_RAY_WORKERS``); batches come back as they
    finish, and the store writes each one. ``progress(done, total)`` counts articles."""
    spec = _embedder_spec(embedder)
    workers = workers or C.ray_workers()
    batch_articles = batch_articles or C.RAY_BATCH_ARTICLES

    def run(articles: list[Article], progress: Progress | None = None) -> Iterator[Embedded]:
        if not articles:
            return
        ray = ensure_ray(num_cpus)
        items = [{"article": json.dumps(a.to_json(), ensure_ascii=False)} for a in articles]
        ds = ray.data.from_items(items).map_batches(
            _EmbedWorker, fn_constructor_args=(spec, settings), compute=ray.data.ActorPoolStrategy(size=workers), num_cpus=1,
            batch_size=batch_articles, batch_format="numpy", max_task_retries=RAY_TASK_RETRIES)
        done = 0
        for b in ds.iter_batches(batch_size=batch_articles, batch_format="numpy"):
            e = _embedded_of(b, embedder.dim)
            done += len(e.articles)
            if progress:
                progress(done, len(articles))
            yield e

    return run
