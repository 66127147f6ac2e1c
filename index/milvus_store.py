"""The index in Milvus: the same chunks, sentences and articles as the FAISS directory, in three
collections, with the same update rules (content hashes decide; added/updated/skipped/deleted
counts) and a manifest that refuses a mismatch.

``uri`` is a file path (Milvus Lite, in this process) or ``http://host:19530`` (a Milvus
standalone server or cluster); the code is the same. Collections, for a name ``P``:

* ``P_chunks``: primary key ``cid`` (63 bits of the chunk's content id), ``chunk_id``,
  ``doc_id``, ``source``, ``title``, ``date`` (``""`` when undated), ``start``/``end`` (char
  offsets), ``text``, ``header``, ``sentences`` (JSON list of sentence indices), ``vector``
  (dense, inner product), ``terms`` (the text through the project's analyzer: stems without stop
  words) and ``sparse``, filled by Milvus's own ``BM25`` function from ``terms`` (so both
  backends score the same stems, with bm25s's k1 and b).
* ``P_sentences``: ``sid`` (``doc_id:index``), ``doc_id``, ``source``, ``date``,
  ``sent_index``, ``start``/``end``, ``vector``.
* ``P_articles``: the article JSON (text, metadata, sentence spans) in parts of at most
  ``ARTICLE_PART_CHARS``, keyed ``doc_id:part``, with ``seq`` (the update that wrote it). Milvus
  wants a vector field in every collection: ``placeholder`` is a 2-dim zero vector.

The manifest is a property of ``P_chunks`` (``MANIFEST_PROPERTY``). Writes go in this order:
new rows (chunks, sentences, then the article rows), then deletions of replaced and pruned
articles, then the manifest. Milvus has no transaction across collections; a crash leaves
whole articles of the new version plus the old rows, and the next update carries on from the
rows present (an article counts once its article rows are in; of two rows for one file name
the newest ``seq`` wins and the other is deleted)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from index.chunking import ChunkSettings
from index.embed import Embedder
from index.ingest import Corpus
from index.lexical import bm25_terms
from index.milvus_index import MilvusIndex, quote
from index.update import EmbedFn, Embedded, UpdateReport, chunk_check, local_embed, plan_update
from rag.errors import IndexCorruptError, IndexMismatchError, IndexMissingError, RagError
from rag.types import Article, Chunk

FORMAT_VERSION = 1
MANIFEST_PROPERTY = "newsrag.manifest"
ARTICLE_PART_CHARS = 16_000  # <= 64,000 UTF-8 bytes: under Milvus's VARCHAR limit of 65,535
MAX_VARCHAR = 65_535
WRITE_ROWS = 1_000  # rows per insert/upsert call
DELETE_IDS = 500  # doc_ids per delete expression
READ_BATCH = 4_000  # rows per query when reading a collection
BM25_K1, BM25_B = 1.5, 0.75  # bm25s's defaults, so both backends rank alike
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,200}$")


def is_lite(uri: str) -> bool:
    return "://" not in uri


def chunk_pk(chunk: Chunk) -> int:
    """The chunk's primary key: its 64-bit content id without the top bit (Milvus INT64)."""
    return int(chunk.id, 16) >> 1


class MilvusStore:
    """Builds, updates and loads the index in Milvus. The constructor only checks arguments;
    the client connects on first use."""

    def __init__(self, uri: str | Path, embedder: Embedder, settings: ChunkSettings = ChunkSettings(),
                 collection: str = "newsrag"):
        if not _NAME.match(collection):
            raise RagError(f"Milvus collection name {collection!r} must be letters, digits and _, not starting with a digit")
        if settings.max_tokens > embedder.max_tokens:
            raise RagError(f"max_tokens {settings.max_tokens} exceeds the model's window of {embedder.max_tokens}")
        self.uri = str(uri)
        self.embedder = embedder
        self.settings = settings
        self.collection = collection
        self.names = {role: f"{collection}_{role}" for role in ("chunks", "sentences", "articles")}
        self._client = None

    @property
    def path(self) -> str:
        """Where the index lives, for messages (the URI and the collection)."""
        return f"{self.uri} (collections {self.collection}_*)"

    @property
    def client(self):
        if self._client is None:
            try:
                from pymilvus import MilvusClient
            except ImportError as e:
                raise RagError("the Milvus backend needs pymilvus and milvus-lite: pip install -e .[scale]") from e
            if is_lite(self.uri):
                Path(self.uri).parent.mkdir(parents=True, exist_ok=True)
            try:
                self._client = MilvusClient(self.uri)
            except Exception as e:  # the client raises its own and grpc's errors
                raise RagError(f"cannot reach Milvus at {self.uri} ({e})") from e
        return self._client

    def _rebuild_hint(self) -> str:
        return f"rebuild it with: rag index --backend milvus --milvus-uri {self.uri} --rebuild [PATH ...]"

    # ---------- manifest ----------
    def check_writable(self) -> None:
        """Nothing to check here: the Milvus server (or Milvus Lite) reports its own access."""

    def exists(self) -> bool:
        return self._manifest_or_none() is not None

    def _manifest_or_none(self) -> dict | None:
        c = self.client
        if not c.has_collection(self.names["chunks"]):
            return None
        raw = c.describe_collection(self.names["chunks"]).get("properties", {}).get(MANIFEST_PROPERTY)
        if raw is None:
            return None
        try:
            m = json.loads(raw)
            if not isinstance(m, dict):
                raise ValueError("not an object")
        except ValueError as e:
            raise IndexCorruptError(f"the manifest of {self.path} is unreadable ({e}); {self._rebuild_hint()}") from e
        return m

    def read_manifest(self) -> dict:
        m = self._manifest_or_none()
        if m is None:
            raise IndexMissingError(
                f"no index at {self.path}; build it with: rag index --backend milvus --milvus-uri {self.uri} [PATH ...]")
        return m

    def _expected(self) -> dict:
        return {
            "format_version": FORMAT_VERSION,
            "embedding_model": self.embedder.name,
            "dim": self.embedder.dim,
            "chunking": {"target_tokens": self.settings.target_tokens, "max_tokens": self.settings.max_tokens,
                         "overlap_sentences": self.settings.overlap_sentences},
        }

    def check_manifest(self, manifest: dict) -> None:
        diffs = [f"{k}: index has {manifest.get(k)!r}, this program uses {v!r}"
                 for k, v in self._expected().items() if manifest.get(k) != v]
        if diffs:
            raise IndexMismatchError(
                f"the index at {self.path} does not match this configuration ({'; '.join(diffs)}); {self._rebuild_hint()}")

    def _write_manifest(self, corpus_hash: str | None) -> dict:
        counts = {role: self._count(name) for role, name in self.names.items()}
        manifest = {
            **self._expected(),
            "backend": "milvus",
            "embedding_model_package_version": getattr(self.embedder, "version", "unknown"),
            "metric": "inner_product",
            "normalized": True,
            "bm25": {"k1": BM25_K1, "b": BM25_B, "analyzer": "index.lexical"},
            "corpus_hash": corpus_hash,
            "counts": {"documents": self._count(self.names["articles"], "part == 0"), "chunks": counts["chunks"],
                       "sentences": counts["sentences"]},
            "libraries": _library_versions(),
        }
        self.client.alter_collection_properties(self.names["chunks"], properties={MANIFEST_PROPERTY: json.dumps(manifest)})
        return manifest

    def _count(self, name: str, expr: str = "") -> int:
        rows = self.client.query(name, filter=expr, output_fields=["count(*)"])
        return int(rows[0]["count(*)"]) if rows else 0

    def _ensure_loaded(self) -> None:
        """Collections are searchable only once loaded (a new process finds them released)."""
        from pymilvus.client.types import LoadState

        for name in self.names.values():
            if self.client.has_collection(name) and self.client.get_load_state(name).get("state") != LoadState.Loaded:
                self.client.load_collection(name)

    # ---------- reading ----------
    def load(self) -> MilvusIndex:
        manifest = self.read_manifest()
        self.check_manifest(manifest)
        self._ensure_loaded()
        articles = self._read_articles()
        chunks: dict[int, Chunk] = {}
        fields = ["cid", "chunk_id", "doc_id", "source", "start", "end", "text", "header", "sentences"]
        for r in self._rows("chunks", fields):
            if r["doc_id"] in articles:
                chunks[int(r["cid"])] = Chunk(r["chunk_id"], r["doc_id"], r["source"], int(r["start"]), int(r["end"]),
                                              r["text"], tuple(json.loads(r["sentences"])), r["header"])
        return MilvusIndex(self.client, self.names, manifest, list(articles.values()), chunks, self.uri)

    def _rows(self, role: str, fields: list[str], expr: str = "") -> Iterator[dict]:
        """Every row of a collection matching ``expr``, in queries of about ``READ_BATCH / 2``
        rows: by ranges of the ``doc_id`` prefix (content hashes, so the ranges are even).
        (Milvus Lite has no query iterator, and a query's limit does not page in key order.)"""
        name = self.names[role]
        total = self._count(name, expr)
        depth = 0
        while total / 16**depth > READ_BATCH / 2 and depth < 6:
            depth += 1
        prefixes = [""] if depth == 0 else [format(i, f"0{depth}x") for i in range(16**depth)]
        for n, lo in enumerate(prefixes):
            rng = []
            if lo:
                rng.append(f"doc_id >= {quote(lo)}")
                if n + 1 < len(prefixes):
                    rng.append(f"doc_id < {quote(prefixes[n + 1])}")
            where = " and ".join([f"({expr})"] * bool(expr) + rng) or 'doc_id != ""'
            yield from self.client.query(name, filter=where, output_fields=fields)

    def _present(self) -> dict[str, tuple[str, int]]:
        """doc_id -> (file name, seq) of every article with rows."""
        return {r["doc_id"]: (r["source"], int(r["seq"]))
                for r in self._rows("articles", ["doc_id", "source", "seq"], "part == 0")}

    def sources(self) -> list[str]:
        """The indexed file names, sorted."""
        self.read_manifest()
        return sorted(source for source, _ in self._present().values())

    def _read_articles(self) -> dict[str, Article]:
        parts: dict[str, dict[int, str]] = {}
        total: dict[str, int] = {}
        for r in self._rows("articles", ["doc_id", "part", "parts", "data"]):
            parts.setdefault(r["doc_id"], {})[int(r["part"])] = r["data"]
            total[r["doc_id"]] = int(r["parts"])
        out = {}
        for doc_id, ps in parts.items():
            if len(ps) != total[doc_id]:
                continue  # an article whose write was cut short: the next update writes it again
            try:
                art = Article.from_json(json.loads("".join(ps[i] for i in range(total[doc_id]))))
            except (ValueError, KeyError, TypeError) as e:
                raise IndexCorruptError(f"article {doc_id} in {self.path} is unreadable ({e}); {self._rebuild_hint()}") from e
            out[doc_id] = art
        return _newest_per_source(out, self._present())

    # ---------- writing ----------
    def update(self, corpus: Corpus, prune: bool = False, rebuild: bool = False,
               progress: Callable[[int, int], None] | None = None, embed: EmbedFn | None = None,
               on_wait: Callable[[str], None] | None = None) -> UpdateReport:
        """Make the collections reflect ``corpus`` (see ``index.update.plan_update``). Each batch
        of embedded articles is written as it arrives, so an interrupted run keeps what it wrote
        and the next run embeds only the rest. ``on_wait`` is for the FAISS store's writer lock file;
        this store takes no lock: writes are upserts and deletes by doc_id on the server."""
        if rebuild:
            self.drop()
        manifest = self._manifest_or_none()
        if manifest is not None:
            self.check_manifest(manifest)
        self._create()
        present = self._present()
        stale = _stale_rows(present)
        plan = plan_update(corpus, {d: s for d, (s, _) in present.items() if d not in stale}, prune,
                           check=chunk_check(self.embedder, self.settings))
        report = plan.report
        if not report.changed and not stale and manifest is not None and manifest.get("corpus_hash") == _corpus_hash(present):
            return report
        re_added = {a.doc_id for a in plan.to_embed}
        remaining = {d for d in present if d not in stale} - set(plan.to_remove) | re_added
        if not remaining:
            raise RagError("the index would hold no article; give paths to index, or drop --prune")
        seq = time.time_ns()
        for batch in (embed or local_embed(self.embedder, self.settings))(plan.to_embed, progress):
            report.chunks_embedded += len(batch.chunks)
            self.write_batch(batch, seq)
        gone = [d for d in list(stale) + plan.to_remove if d not in re_added]
        self._delete_docs(gone)
        self._flush()
        self._write_manifest(_corpus_hash(self._present()))
        return report

    def _flush(self) -> None:
        """Seal what was written into indexed segments (Milvus Lite otherwise scans unsealed
        rows one by one at every search: 2,000 vectors took 180 ms a search unsealed, 27 ms
        sealed)."""
        for name in self.names.values():
            self.client.flush(name)

    def write_batch(self, batch: Embedded, seq: int) -> None:
        """Upsert one batch: its chunks and sentences, then its articles (an article is present
        only once all its rows are written)."""
        by_doc = {a.doc_id: a for a in batch.articles}
        terms = bm25_terms([c.embed_text for c in batch.chunks]) if batch.chunks else []
        rows = [_chunk_row(c, by_doc[c.doc_id], v, t) for c, v, t in zip(batch.chunks, batch.chunk_vectors, terms)]
        self._upsert("chunks", rows)
        rows = []
        for (doc_id, i), v in zip(batch.sentence_keys, batch.sentence_vectors):
            a, sp = by_doc[doc_id], by_doc[doc_id].sentences[i]
            rows.append({"sid": f"{doc_id}:{i}", "doc_id": doc_id, "source": a.source, "date": a.date or "",
                         "sent_index": i, "start": sp.start, "end": sp.end, "vector": _floats(v)})
        self._upsert("sentences", rows)
        self._upsert("articles", [row for a in batch.articles for row in _article_rows(a, seq)])

    def _upsert(self, role: str, rows: list[dict]) -> None:
        for b in range(0, len(rows), WRITE_ROWS):
            self.client.upsert(self.names[role], rows[b : b + WRITE_ROWS])

    def _delete_docs(self, doc_ids: list[str]) -> None:
        for b in range(0, len(doc_ids), DELETE_IDS):
            expr = f"doc_id in [{', '.join(quote(d) for d in doc_ids[b : b + DELETE_IDS])}]"
            for role in ("chunks", "sentences", "articles"):
                self.client.delete(self.names[role], filter=expr)

    def import_index(self, index) -> UpdateReport:
        """Copy a loaded FAISS ``index.store.Index`` into these collections without embedding
        again (its stored chunk and sentence vectors are written as they are)."""
        manifest = self._manifest_or_none()
        if manifest is not None:
            self.check_manifest(manifest)
        self._create()
        present = self._present()
        report = UpdateReport()
        seq = time.time_ns()
        for art in sorted(index.articles.values(), key=lambda a: a.source):
            if present.get(art.doc_id, (None,))[0] == art.source:
                report.skipped.append(art.source)
                continue
            cids = index.chunks_by_doc.get(art.doc_id, [])
            keys = list(range(len(art.sentences)))
            batch = Embedded([art], [index.chunks[c] for c in cids],
                             index.chunk_index.reconstruct(np.array(cids, np.int64)) if cids else np.zeros((0, index.dim), np.float32),
                             [(art.doc_id, i) for i in keys], index.sentence_vectors(art.doc_id, keys))
            self.write_batch(batch, seq)
            report.added.append(art.source)
            report.chunks_embedded += len(cids)
        self._flush()
        self._write_manifest(_corpus_hash(self._present()))
        return report

    def drop(self) -> None:
        for name in self.names.values():
            if self.client.has_collection(name):
                self.client.drop_collection(name)

    def _create(self) -> None:
        from index import milvus_schema

        c = self.client
        for role, name in self.names.items():
            if not c.has_collection(name):
                schema, params = milvus_schema.build(c, role, self.embedder.dim, (BM25_K1, BM25_B))
                c.create_collection(name, schema=schema, consistency_level="Strong")
                # sync=False: pymilvus would wait through a call Milvus Lite does not implement;
                # loading the collection (below) waits for the indexes anyway
                c.create_index(name, params, sync=False)
        self._ensure_loaded()
        if self._manifest_or_none() is None:  # a build in progress is checked like a finished one
            self._write_manifest(None)

    def stats(self) -> dict:
        m = self.read_manifest()  # the counts are in the manifest: nothing to load
        size = Path(self.uri).stat().st_size if is_lite(self.uri) and Path(self.uri).is_file() else None
        if is_lite(self.uri) and Path(self.uri).is_dir():
            size = sum(p.stat().st_size for p in Path(self.uri).rglob("*") if p.is_file())
        return {
            "index_dir": self.path,
            "documents": m["counts"]["documents"],
            "chunks": m["counts"]["chunks"],
            "sentences": m["counts"]["sentences"],
            "model": m["embedding_model"],
            "dim": m["dim"],
            "index_type": "Milvus " + ("Lite" if is_lite(self.uri) else "server"),
            "on_disk_bytes": size,
        }


def _floats(v) -> list[float]:
    return np.asarray(v, np.float32).tolist()


def _clip(s: str, limit: int = 1024) -> str:
    """``s`` cut to at most ``limit`` UTF-8 bytes (metadata copies; the article keeps the whole)."""
    b = s.encode("utf-8")
    return s if len(b) <= limit else b[:limit].decode("utf-8", "ignore")


def _chunk_row(c: Chunk, a: Article, v, terms: list[str]) -> dict:
    for what, s in (("text", c.text), ("header", c.header)):
        if len(s.encode("utf-8")) > MAX_VARCHAR:
            raise RagError(f"chunk {c.id} of {c.source}: its {what} exceeds Milvus's {MAX_VARCHAR} bytes")
    return {
        "cid": chunk_pk(c), "chunk_id": c.id, "doc_id": c.doc_id, "source": _clip(c.source), "title": _clip(a.title),
        "date": a.date or "", "start": c.start, "end": c.end, "text": c.text, "header": c.header,
        "sentences": json.dumps(list(c.sentences)), "terms": _clip(" ".join(terms), MAX_VARCHAR), "vector": _floats(v),
    }


def _article_rows(a: Article, seq: int) -> list[dict]:
    data = json.dumps(a.to_json(), ensure_ascii=False)
    pieces = [data[i : i + ARTICLE_PART_CHARS] for i in range(0, len(data), ARTICLE_PART_CHARS)]
    return [{"part_id": f"{a.doc_id}:{n}", "doc_id": a.doc_id, "source": _clip(a.source), "seq": seq, "part": n,
             "parts": len(pieces), "data": p, "placeholder": [0.0, 0.0]} for n, p in enumerate(pieces)]


def _stale_rows(present: dict[str, tuple[str, int]]) -> set[str]:
    """doc_ids left by an interrupted update: an older article under a file name that a newer
    one took."""
    newest: dict[str, tuple[int, str]] = {}
    for d, (source, seq) in present.items():
        if source not in newest or seq > newest[source][0]:
            newest[source] = (seq, d)
    keep = {d for _, d in newest.values()}
    return set(present) - keep


def _newest_per_source(articles: dict[str, Article], present: dict[str, tuple[str, int]]) -> dict[str, Article]:
    stale = _stale_rows(present)
    return {d: a for d, a in articles.items() if d not in stale}


def _corpus_hash(present: dict[str, tuple[str, int]]) -> str:
    """``index.store.corpus_hash`` of the articles present (the same value for the same corpus)."""
    from types import SimpleNamespace

    from index.store import corpus_hash

    stale = _stale_rows(present)
    return corpus_hash([SimpleNamespace(doc_id=d, source=s) for d, (s, _) in present.items() if d not in stale])


def _library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("pymilvus", "milvus-lite", "sentence-transformers", "numpy"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out
