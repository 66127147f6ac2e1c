"""The on-disk index: a directory with FAISS files, JSON Lines and a manifest. No pickle.

Layout::

    manifest.json    format version, model, dim, metric, corpus hash, counts, checksums
    articles.jsonl   one Article per line (original text, metadata, sentence spans)
    chunks.jsonl     one Chunk per line, with its FAISS id
    chunks.faiss     chunk vectors (inner product on normalised vectors = cosine)
    sentences.faiss  sentence vectors from the same encoder pass, FAISS id = position key
    bm25/            bm25s index over chunk texts (numpy arrays saved without pickle, JSON vocab)

Both FAISS files are ``index.vector_index.VectorIndex`` indexes: exact ``Flat`` below
``FLAT_MAX`` live vectors, ``HNSW32`` from there on, switched by size as articles are added or
removed (HNSW deletions are tombstones inside the file until a rebuild). The manifest's
``vector_indexes`` records, per file, the type, live vectors, tombstones and every file its
``save`` wrote; all of them are in ``checksums``.

Every write holds the writers' lock, builds the whole directory under a temporary name beside
the target and swaps it in with renames (``index.directory``), so a crash leaves the previous
index whole and two writers never start from the same version."""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from index import directory, first_stage
from index import manifest as manifest_info
from index.chunking import ChunkSettings, chunk_header
from index.embed import Embedder
from index.lexical import bm25_tokenize
from rag.errors import IndexCorruptError, IndexMismatchError, IndexMissingError, RagError
from index.ingest import Corpus
from index.update import EmbedFn, UpdateReport, chunk_check, local_embed, plan_update
from rag.types import Article, Chunk, content_hash

FORMAT_VERSION = 3  # 2: VectorIndex files (Flat or HNSW by size); 3: BM25 over index.lexical (Snowball stems)
MANIFEST_KEYS = ("format_version", "embedding_model", "dim", "chunking", "corpus_hash", "counts", "doc_seq", "checksums")
VECTOR_FILES = ("chunks.faiss", "sentences.faiss")
BM25_DIR = "bm25"


def _rebuild_hint(path: Path) -> str:
    return f"rebuild it with: rag index --index-dir {path} --rebuild [PATH ...]"


def sentence_key(doc_seq: int, sent_index: int) -> int:
    """FAISS id of a sentence: article sequence number in the high bits, sentence index low."""
    return (doc_seq << 24) | sent_index


def corpus_hash(articles) -> str:
    return content_hash(*sorted(f"{a.source}:{a.doc_id}" for a in articles))


class Index(first_stage.IndexContents):
    """A loaded index: articles, chunks (by FAISS id), the two ``VectorIndex`` indexes and BM25,
    in memory."""

    def __init__(self, path: Path, manifest: dict, articles: list[Article], chunks: dict[int, Chunk],
                 doc_seq: dict[str, int], chunk_index, sentence_index, bm25=None, bm25_ids=None):
        super().__init__(path, manifest, articles, chunks)
        self.doc_seq = doc_seq  # doc_id -> sequence number used in sentence keys
        self.chunk_index = chunk_index
        self.sentence_index = sentence_index
        self.bm25 = bm25
        self.bm25_ids = bm25_ids or []
        self._seq_doc_cache: dict[int, str] | None = None

    def sentence_vectors(self, doc_id: str, sent_indices: list[int]) -> np.ndarray:
        seq = self.doc_seq[doc_id]
        keys = np.array([sentence_key(seq, i) for i in sent_indices], dtype=np.int64)
        return self.sentence_index.reconstruct(keys)

    # the first stage (index.first_stage.SearchIndex); ``where`` is already in ``docs`` here
    def search_chunks(self, qv: np.ndarray, n: int, docs: frozenset[str] | None = None, where=None):
        allowed = None if docs is None else first_stage.chunk_ids_of(self, docs)
        return first_stage.faiss_search(self.chunk_index, qv, n, allowed)

    def search_bm25(self, terms: list[str], n: int, docs: frozenset[str] | None = None, where=None) -> list[int]:
        mask = None if docs is None else first_stage.bm25_mask_of(self, docs)
        return first_stage.bm25_search(self, terms, n, mask)

    def search_sentences(self, qv: np.ndarray, n: int, docs: frozenset[str] | None = None, where=None):
        allowed = None if docs is None else first_stage.sentence_keys_of(self, docs)
        seq_doc = self._seq_doc()
        return [(seq_doc[key >> 24], key & ((1 << 24) - 1), s)
                for key, s in first_stage.faiss_search(self.sentence_index, qv, n, allowed)]

    def _seq_doc(self) -> dict[int, str]:
        if self._seq_doc_cache is None:
            self._seq_doc_cache = {s: d for d, s in self.doc_seq.items()}
        return self._seq_doc_cache


class IndexStore:
    """Builds, updates and loads the index directory. The constructor only checks arguments."""

    def __init__(self, path: Path | str, embedder: Embedder, settings: ChunkSettings = ChunkSettings()):
        self.path = Path(path)
        self.embedder = embedder
        self.settings = settings
        if settings.max_tokens > embedder.max_tokens:
            raise RagError(
                f"max_tokens {settings.max_tokens} exceeds the model's window of {embedder.max_tokens}"
            )

    # ---------- reading ----------
    def check_writable(self) -> None:
        """Fail before any work when the index directory cannot be written."""
        directory.check_writable(self.path)

    def exists(self) -> bool:
        self._recover()
        return (self.path / "manifest.json").exists()

    def _recover(self) -> None:
        directory.recover(self.path)

    def read_manifest(self) -> dict:
        if not self.exists():
            raise IndexMissingError(
                f"no index at {self.path}; build it with: rag index --index-dir {self.path} [PATH ...]"
            )
        try:
            manifest = json.loads((self.path / "manifest.json").read_text(encoding="utf-8"))
            if not isinstance(manifest, dict):
                raise ValueError("not an object")
            missing = [k for k in MANIFEST_KEYS if k not in manifest]
            if missing:
                raise ValueError(f"missing {', '.join(missing)}")
        except (OSError, ValueError) as e:
            raise IndexCorruptError(f"{self.path}/manifest.json is unreadable ({e}); {_rebuild_hint(self.path)}") from e
        return manifest

    def check_manifest(self, manifest: dict) -> None:
        version = manifest.get("format_version")
        if isinstance(version, int) and version > FORMAT_VERSION:
            raise IndexMismatchError(
                f"the index at {self.path} has format {version}, written by a newer version of this "
                f"program (this one reads format {FORMAT_VERSION}); upgrade the program to read it"
            )
        expected = {
            "format_version": FORMAT_VERSION,
            "embedding_model": self.embedder.name,
            "dim": self.embedder.dim,
            "chunking": manifest_info.settings_json(self.settings),
        }
        diffs = [
            f"{k}: index has {manifest.get(k)!r}, this program uses {v!r}"
            for k, v in expected.items()
            if manifest.get(k) != v
        ]
        if diffs:
            raise IndexMismatchError(
                f"the index at {self.path} does not match this configuration ({'; '.join(diffs)}); "
                + _rebuild_hint(self.path)
            )

    def load(self) -> Index:
        """The index as written by the last complete write. A writer's swap between reading the
        manifest and the files makes them disagree: then the read starts again."""
        for attempt in range(3):
            stamp = self._manifest_stamp()
            try:
                return self._load_once()
            except IndexCorruptError:
                if attempt == 2 or self._manifest_stamp() == stamp:
                    raise

    def _manifest_stamp(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.path / "manifest.json")
        except OSError:
            return None
        return st.st_ino, st.st_mtime_ns

    def _load_once(self) -> Index:
        manifest = self.read_manifest()
        self.check_manifest(manifest)
        from index.vector_index import VectorIndex

        vec_meta = manifest.get("vector_indexes")
        checksums = manifest.get("checksums", {})
        if (
            not isinstance(vec_meta, dict)
            or sorted(vec_meta) != sorted(VECTOR_FILES)
            or any(
                not isinstance(m, dict) or not m.get("files") or any(f not in checksums for f in m["files"])
                for m in vec_meta.values()
            )
        ):
            raise IndexCorruptError(
                f"{self.path}/manifest.json does not describe its vector indexes; {_rebuild_hint(self.path)}"
            )
        for name, digest in manifest.get("checksums", {}).items():
            f = self.path / name
            if not f.exists():
                raise IndexCorruptError(f"{f} is missing; {_rebuild_hint(self.path)}")
            if directory.sha256(f) != digest:
                raise IndexCorruptError(
                    f"{f} was changed or truncated after it was written (checksum differs); {_rebuild_hint(self.path)}"
                )
        try:
            articles = [Article.from_json(json.loads(l)) for l in _lines(self.path / "articles.jsonl")]
            chunks: dict[int, Chunk] = {}
            for line in _lines(self.path / "chunks.jsonl"):
                d = json.loads(line)
                cid = int(d.pop("faiss_id"))
                chunks[cid] = Chunk.from_json(d)
            doc_seq = {d: int(s) for d, s in manifest["doc_seq"].items()}
            chunk_index = VectorIndex.load(self.path / "chunks.faiss")
            sentence_index = VectorIndex.load(self.path / "sentences.faiss")
            bm25, bm25_ids = _load_bm25(self.path / BM25_DIR)
        except (OSError, ValueError, KeyError, TypeError, RuntimeError, MemoryError) as e:
            # a hostile or damaged FAISS header can ask for more memory than there is
            raise IndexCorruptError(f"the index at {self.path} is unreadable ({e}); {_rebuild_hint(self.path)}") from e
        for name, vix in (("chunks.faiss", chunk_index), ("sentences.faiss", sentence_index)):
            want = vec_meta[name]
            got = manifest_info.vector_meta(vix, want["files"])
            if vix.dim != self.embedder.dim or any(got[k] != want.get(k) for k in ("type", "vectors", "tombstones")):
                raise IndexCorruptError(
                    f"the index at {self.path} is inconsistent ({name}: manifest says "
                    f"{want.get('type')} with {want.get('vectors')} vectors, the file holds {vix!r}); "
                    + _rebuild_hint(self.path)
                )
        if chunk_index.ntotal != len(chunks):
            raise IndexCorruptError(
                f"the index at {self.path} is inconsistent ({chunk_index.ntotal} vectors, {len(chunks)} chunks); "
                + _rebuild_hint(self.path)
            )
        return Index(self.path, manifest, articles, chunks, doc_seq, chunk_index, sentence_index, bm25, bm25_ids)

    # ---------- writing ----------
    def update(
        self,
        corpus: Corpus,
        prune: bool = False,
        rebuild: bool = False,
        progress: Callable[[int, int], None] | None = None,
        on_wait: Callable[[str], None] | None = None,
        embed: EmbedFn | None = None,
    ) -> UpdateReport:
        """Make the index reflect ``corpus``: unchanged articles (same file name, same content
        hash) are skipped, changed ones re-embedded, new ones added; with ``prune`` articles not
        in the corpus are deleted. Idempotent; writes atomically. The destination is checked
        before any work; the writers' lock is held from before the current version is read until
        the new one is in place (``on_wait`` hears when another writer holds it). An article
        that cannot be chunked is skipped and reported in ``unreadable``.

        Vector indexes pick their type by size (``VectorIndex``): Flat while small, HNSW32 past
        ``FLAT_MAX`` live vectors; removed articles are HNSW tombstones until a rebuild."""
        self.check_writable()
        with directory.writer_lock(self.path, on_wait=on_wait):
            directory.remove_stale_builds(self.path)
            return self._update_locked(corpus, prune, rebuild, progress, embed)

    def _update_locked(self, corpus: Corpus, prune: bool, rebuild: bool, progress, embed: EmbedFn | None) -> UpdateReport:
        import faiss

        from index.vector_index import VectorIndex

        # a query sets FAISS to one thread for the process (rag/retrieval/search.py); building uses every core
        faiss.omp_set_num_threads(os.cpu_count() or 1)
        old = None if rebuild or not self.exists() else self.load()
        if old is not None:
            articles = dict(old.articles)
            chunks = dict(old.chunks)
            doc_seq = dict(old.doc_seq)
            chunk_index = old.chunk_index
            sentence_index = old.sentence_index
            next_chunk_id = max(chunks, default=-1) + 1
            next_seq = max(doc_seq.values(), default=-1) + 1
        else:
            articles, chunks, doc_seq = {}, {}, {}
            chunk_index = VectorIndex(self.embedder.dim)
            sentence_index = VectorIndex(self.embedder.dim)
            next_chunk_id = 0
            next_seq = 0

        plan = plan_update(corpus, {d: a.source for d, a in articles.items()}, prune,
                           check=chunk_check(self.embedder, self.settings))
        report = plan.report
        for doc_id in plan.to_remove:
            ids = [cid for cid, c in chunks.items() if c.doc_id == doc_id]
            for cid in ids:
                del chunks[cid]
            if ids:
                chunk_index.remove(np.array(ids, dtype=np.int64))
            seq = doc_seq.pop(doc_id)
            art = articles.pop(doc_id)
            keys = [sentence_key(seq, i) for i in range(len(art.sentences))]
            if keys:
                sentence_index.remove(np.array(keys, dtype=np.int64))
        if not report.changed and old is not None:
            return report
        for art in plan.to_embed:
            articles[art.doc_id] = art
            doc_seq[art.doc_id] = next_seq
            next_seq += 1
        for batch in (embed or local_embed(self.embedder, self.settings))(plan.to_embed, progress):
            report.chunks_embedded += len(batch.chunks)
            if batch.chunks:
                ids = np.arange(next_chunk_id, next_chunk_id + len(batch.chunks), dtype=np.int64)
                next_chunk_id += len(batch.chunks)
                chunk_index.add(batch.chunk_vectors, ids)
                for cid, c in zip(ids, batch.chunks):
                    chunks[int(cid)] = c
            if batch.sentence_keys:
                keys = np.array([sentence_key(doc_seq[d], i) for d, i in batch.sentence_keys], dtype=np.int64)
                sentence_index.add(batch.sentence_vectors, keys)
        if not articles:
            raise RagError("the index would hold no article; give paths to index, or drop --prune")
        self._write(articles, chunks, doc_seq, chunk_index, sentence_index)
        return report

    def _write(self, articles, chunks, doc_seq, chunk_index, sentence_index) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = directory.new_build_dir(self.path)
        try:
            with open(tmp / "articles.jsonl", "w", encoding="utf-8") as f:
                for a in sorted(articles.values(), key=lambda a: a.source):
                    f.write(json.dumps(a.to_json(), ensure_ascii=False) + "\n")
            order = sorted(chunks, key=lambda cid: (chunks[cid].source, chunks[cid].start))
            with open(tmp / "chunks.jsonl", "w", encoding="utf-8") as f:
                for cid in order:
                    f.write(json.dumps({"faiss_id": cid, **chunks[cid].to_json()}, ensure_ascii=False) + "\n")
            vector_indexes = {}
            for name, vix in (("chunks.faiss", chunk_index), ("sentences.faiss", sentence_index)):
                written = [Path(p).relative_to(tmp).as_posix() for p in vix.save(tmp / name)]
                vector_indexes[name] = manifest_info.vector_meta(vix, written)
            _save_bm25(tmp / BM25_DIR, [chunks[cid] for cid in order], order)
            manifest = {
                "format_version": FORMAT_VERSION,
                "embedding_model": self.embedder.name,
                "embedding_model_package_version": getattr(self.embedder, "version", "unknown"),
                "dim": self.embedder.dim,
                "metric": "inner_product",
                "normalized": True,
                "vector_indexes": vector_indexes,
                "chunking": manifest_info.settings_json(self.settings),
                "corpus_hash": corpus_hash(articles.values()),
                "counts": {
                    "documents": len(articles),
                    "chunks": len(chunks),
                    "sentences": int(sentence_index.ntotal),
                },
                "doc_seq": doc_seq,
                "libraries": manifest_info.library_versions(),
                "python": sys.version.split()[0],
                # every file written (the vector indexes' side files, if any, included)
                "checksums": {
                    p.relative_to(tmp).as_posix(): directory.sha256(p)
                    for p in sorted(tmp.rglob("*"))
                    if p.is_file() and p.name != directory.BUILD_MARK
                },
            }
            (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
            directory.fsync_tree(tmp)
            directory.swap(self.path, tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def sources(self) -> list[str]:
        """The indexed file names, sorted (read from articles.jsonl without loading vectors)."""
        self.read_manifest()
        return sorted(json.loads(line)["source"] for line in _lines(self.path / "articles.jsonl"))

    def stats(self) -> dict:
        m = self.read_manifest()
        size = sum(p.stat().st_size for p in self.path.rglob("*") if p.is_file())
        return {
            "index_dir": str(self.path),
            "documents": m["counts"]["documents"],
            "chunks": m["counts"]["chunks"],
            "sentences": m["counts"]["sentences"],
            "model": m["embedding_model"],
            "dim": m["dim"],
            "index_type": manifest_info.index_type_summary(m),
            "on_disk_bytes": size,
        }


def _lines(path: Path):
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield line


def _save_bm25(path: Path, chunks: list[Chunk], ids: list[int]) -> None:
    import logging

    import bm25s

    logging.getLogger("bm25s").setLevel(logging.WARNING)

    retriever = bm25s.BM25()
    retriever.index(bm25_tokenize([c.embed_text for c in chunks]), show_progress=False)
    retriever.save(str(path), show_progress=False)
    (path / "faiss_ids.json").write_text(json.dumps([int(i) for i in ids]), encoding="utf-8")


def _load_bm25(path: Path):
    import bm25s

    retriever = bm25s.BM25.load(str(path), mmap=False)
    ids = json.loads((path / "faiss_ids.json").read_text(encoding="utf-8"))
    return retriever, ids


__all__ = ["IndexStore", "Index", "UpdateReport", "chunk_header"]
