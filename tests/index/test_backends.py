"""One contract for every storage backend: FAISS + bm25s in a directory, and Milvus (Milvus Lite
in this process). Index, re-index counts, update, delete, filters, ask with citations, manifest
mismatch; and the two backends agree with each other on the same corpus."""

from __future__ import annotations

import importlib.util
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

from index.embed import HashEmbedder
from index.ingest import collect
from rag.errors import IndexMismatchError, IndexMissingError

HAVE_MILVUS = bool(importlib.util.find_spec("pymilvus") and importlib.util.find_spec("milvus_lite"))
NO_MILVUS = "pymilvus and milvus-lite are not installed (pip install -e .[scale])"
BACKENDS = ["faiss", pytest.param("milvus", marks=pytest.mark.skipif(not HAVE_MILVUS, reason=NO_MILVUS))]
CHANGED = "002_68a0928ee0260f57.txt"
GONE = "000_1ac2ec0afcdbae9b.txt"


@pytest.fixture
def milvus_uri():
    """A Milvus Lite file under a short path (Milvus Lite talks over a unix socket, whose path
    length is limited)."""
    d = tempfile.mkdtemp(prefix="rgm", dir="/tmp")
    yield f"{d}/m.db"
    shutil.rmtree(d, ignore_errors=True)


def make_store(backend: str, tmp_path: Path, uri: str, embedder=None, name: str = "idx"):
    from index.backends import open_store

    return open_store(embedder or HashEmbedder(), tmp_path / name, backend, uri)


def make_pipeline(backend: str, tmp_path: Path, uri: str, name: str = "idx"):
    from rag.pipeline import RagPipeline

    return RagPipeline(index_dir=tmp_path / name, embedder=HashEmbedder(), entities=False, backend=backend,
                       milvus_uri=uri)


def counts(r) -> tuple[int, int, int, int]:
    return len(r.added), len(r.updated), len(r.skipped), len(r.deleted)


@pytest.mark.parametrize("backend", BACKENDS)
def test_index_then_reindex_counts(backend, tmp_path, articles_copy, milvus_uri):
    st = make_store(backend, tmp_path, milvus_uri)
    assert not st.exists()
    r = st.update(collect([articles_copy]))
    assert counts(r) == (5, 0, 0, 0) and r.chunks_embedded > 0
    r = st.update(collect([articles_copy]))
    assert counts(r) == (0, 0, 5, 0) and r.chunks_embedded == 0
    ix = st.load()
    assert sorted(ix.by_source) == sorted(p.name for p in articles_copy.glob("*.txt"))
    for c in ix.chunks.values():
        assert ix.article(c.doc_id).text[c.start : c.end] == c.text
    s = st.stats()
    assert (s["documents"], s["chunks"]) == (5, len(ix.chunks))
    assert s["sentences"] == sum(len(a.sentences) for a in ix.articles.values())


@pytest.mark.parametrize("backend", BACKENDS)
def test_update_and_delete(backend, tmp_path, articles_copy, milvus_uri):
    st = make_store(backend, tmp_path, milvus_uri)
    st.update(collect([articles_copy]))
    f = articles_copy / CHANGED
    f.write_text(f.read_text() + "\nA new closing sentence about Zanzibar.\n")
    (articles_copy / GONE).unlink()
    r = st.update(collect([articles_copy]))
    assert (r.added, r.updated, len(r.skipped), r.deleted) == ([], [CHANGED], 3, [])
    ix = st.load()
    assert GONE in ix.by_source  # without prune: kept
    assert any("Zanzibar" in c.text for c in ix.chunks.values())
    assert sum(c.source == CHANGED for c in ix.chunks.values()) == len(ix.chunks_by_doc[ix.by_source[CHANGED]])
    r = st.update(collect([articles_copy]), prune=True)
    assert r.deleted == [GONE]
    ix = st.load()
    assert GONE not in ix.by_source and all(c.source != GONE for c in ix.chunks.values())
    assert st.stats()["documents"] == 4
    # the replaced version left nothing behind: every chunk and sentence belongs to a live article
    qv = HashEmbedder().embed_query("Zanzibar closing sentence")
    assert {d for d, _, _ in ix.search_sentences(qv, 500)} <= set(ix.articles)
    assert {cid for cid, _ in ix.search_chunks(qv, 500)} == set(ix.chunks)


@pytest.mark.parametrize("backend", BACKENDS)
def test_manifest_mismatch_is_refused_with_the_rebuild_command(backend, tmp_path, articles_copy, milvus_uri):
    make_store(backend, tmp_path, milvus_uri, HashEmbedder(64)).update(collect([articles_copy]))
    other = make_store(backend, tmp_path, milvus_uri, HashEmbedder(32))
    with pytest.raises(IndexMismatchError, match=r"dim: index has 64, this program uses 32.*--rebuild"):
        other.load()
    with pytest.raises(IndexMismatchError):
        other.update(collect([articles_copy]))
    r = other.update(collect([articles_copy]), rebuild=True)  # the command the message names
    assert counts(r) == (5, 0, 0, 0) and other.load().dim == 32


@pytest.mark.parametrize("backend", BACKENDS)
def test_missing_index_says_how_to_build(backend, tmp_path, milvus_uri):
    with pytest.raises(IndexMissingError, match="rag index"):
        make_store(backend, tmp_path, milvus_uri).load()


@pytest.mark.parametrize("backend", BACKENDS)
def test_filters_restrict_every_passage(backend, tmp_path, articles_copy, milvus_uri):
    p = make_pipeline(backend, tmp_path, milvus_uri)
    p.index_paths([articles_copy])
    dated = sorted(a.date for a in p.index.articles.values() if a.date)
    assert len(dated) >= 2
    since = dated[-1]
    r = p.retrieve("Where were rockets fired?", since=since)
    assert r.passages and all((p.index.articles[x.doc_id].date or "") >= since for x in r.passages)
    r = p.retrieve("Where were rockets fired?", until=dated[0])
    assert all((p.index.articles[x.doc_id].date or "9") <= dated[0] for x in r.passages)
    one = sorted(p.index.by_source)[1]
    r = p.retrieve("Where were rockets fired?", sources=[one], k=50)
    assert r.passages and {x.source for x in r.passages} == {one}
    # every chunk of that article is reachable: a filtered search returns k results when k exist
    assert len(r.passages) == len(p.index.chunks_by_doc[p.index.by_source[one]])
    assert p.retrieve("Where were rockets fired?", since="2030-01-01").passages == ()


@pytest.mark.parametrize("backend", BACKENDS)
def test_ask_cites_quotes_that_are_article_text(backend, tmp_path, articles_copy, milvus_uri):
    from rag.answering.model import CONFIDENCE_FEATURES, Answerer
    from rag.retrieval.scoring import FEATURES, LinearScorer

    p = make_pipeline(backend, tmp_path, milvus_uri)
    p.index_paths([articles_copy])
    n, m = len(FEATURES), len(CONFIDENCE_FEATURES)
    coef = np.array([1.0 if f in ("dense", "lexical") else 0.0 for f in FEATURES], np.float32)
    cal = np.zeros(m, np.float32)
    cal[0] = 1.0
    p._answerer = Answerer(LinearScorer(np.zeros(n, np.float32), np.ones(n, np.float32), coef, 0.0),
                           LinearScorer(np.zeros(m, np.float32), np.ones(m, np.float32), cal, 0.0, CONFIDENCE_FEATURES), 0.0)
    ans = p.ask("How many rockets were fired at Tel Aviv?")
    assert not ans.abstained and ans.citations
    for c in ans.citations:
        assert p.index.articles[c.doc_id].text[c.start : c.end] == c.quote


@pytest.mark.skipif(not HAVE_MILVUS, reason=NO_MILVUS)
def test_milvus_first_stage_equals_faiss(tmp_path, articles_copy, milvus_uri):
    """Same corpus, same encoder: the three first-stage lists hold the same scores rank by rank
    on both backends (dense search is exact on both at this size; BM25 runs on the same stems
    with the same k1 and b), filtered or not. Ids are compared through their scores: the fake
    encoder gives many equal cosines, which two engines order by their last float bits."""
    from rag.question.analysis import analyze, core_text
    from rag.retrieval.search import Filters, _bm25_terms

    pf = make_pipeline("faiss", tmp_path, milvus_uri)
    pm = make_pipeline("milvus", tmp_path, milvus_uri)
    for p in (pf, pm):
        p.index_paths([articles_copy])
    fx, mx = pf.index, pm.index
    one = sorted(fx.by_source)[2]
    where = Filters(sources=(one,))
    for q in ["How many rockets were fired at Tel Aviv?", "Who is the defense minister?", "ceasefire talks Egypt"]:
        qa = analyze(q)
        qv, terms = pf.embedder.embed_query(core_text(qa)), _bm25_terms(qa)
        for docs, w in ((None, None), (frozenset({fx.by_source[one]}), where)):
            for name, f_hits, m_hits in (
                ("chunks", fx.search_chunks(qv, 30, docs, w), mx.search_chunks(qv, 30, docs, w)),
                ("sentences", fx.search_sentences(qv, 30, docs, w), mx.search_sentences(qv, 30, docs, w)),
            ):
                # the top 20 of 30 (the fake gives some sentences a zero vector, which Milvus's
                # graph index may not reach; they only ever score 0 at the tail)
                f_hits, m_hits = f_hits[:20], m_hits[:20]
                np.testing.assert_allclose([h[-1] for h in f_hits], [h[-1] for h in m_hits], atol=1e-5, err_msg=name)
                f_ids = {fx.chunks[h[0]].id if name == "chunks" else h[:2]: h[-1] for h in f_hits}
                m_ids = {mx.chunks[h[0]].id if name == "chunks" else h[:2]: h[-1] for h in m_hits}
                assert all(abs(f_ids[k] - m_ids[k]) < 1e-5 for k in set(f_ids) & set(m_ids))
                assert len(set(f_ids) ^ set(m_ids)) <= 2 * sum(abs(s - f_hits[-1][-1]) < 1e-5 for s in f_ids.values())
            f_bm = [fx.chunks[c].id for c in fx.search_bm25(terms, 30, docs, w)]
            m_bm = [mx.chunks[c].id for c in mx.search_bm25(terms, 30, docs, w)]
            assert f_bm[:5] == m_bm[:5] and len(f_bm) == len(m_bm), q
        rf, rm = pf.retrieve(q), pm.retrieve(q)
        assert [(x.doc_id, x.start, x.end) for x in rf.passages] == [(x.doc_id, x.start, x.end) for x in rm.passages], q


@pytest.mark.skipif(not HAVE_MILVUS, reason=NO_MILVUS)
def test_milvus_hybrid_search_is_the_chains_fusion_of_dense_and_bm25(tmp_path, articles_copy, milvus_uri):
    from rag import settings as C
    from rag.retrieval.search import _rrf

    st = make_store("milvus", tmp_path, milvus_uri)
    st.update(collect([articles_copy]))
    ix = st.load()
    qv, terms = HashEmbedder().embed_query("rockets fired at Tel Aviv"), ["rocket", "fire", "tel", "aviv"]
    hybrid = ix.hybrid_chunks(qv, terms, 20, C.SEARCH.rrf_k)
    fused = _rrf([[c for c, _ in ix.search_chunks(qv, 20)], ix.search_bm25(terms, 20)])
    assert [c for c, _ in hybrid] and {c: round(s, 5) for c, s in hybrid} == {
        c: round(s, 5) for c, s in sorted(fused.items(), key=lambda kv: -kv[1])[:20]}


@pytest.mark.skipif(not HAVE_MILVUS, reason=NO_MILVUS)
def test_migrate_copies_the_faiss_index_with_its_vectors(tmp_path, articles_copy, milvus_uri):
    faiss_store = make_store("faiss", tmp_path, milvus_uri)
    faiss_store.update(collect([articles_copy]))
    fx = faiss_store.load()
    target = make_store("milvus", tmp_path, milvus_uri)
    r = target.import_index(fx)
    assert len(r.added) == 5 and len(target.import_index(fx).skipped) == 5
    mx = target.load()
    assert sorted(c.id for c in mx.chunks.values()) == sorted(c.id for c in fx.chunks.values())
    doc = next(iter(fx.articles))
    idx = list(range(len(fx.articles[doc].sentences)))
    np.testing.assert_allclose(mx.sentence_vectors(doc, idx), fx.sentence_vectors(doc, idx), atol=1e-6)
    qv = HashEmbedder().embed_query("rockets")
    assert [fx.chunks[c].id for c, _ in fx.search_chunks(qv, 10)] == [mx.chunks[c].id for c, _ in mx.search_chunks(qv, 10)]
    # the migrated index is up to date: indexing the same files changes nothing
    assert counts(target.update(collect([articles_copy]))) == (0, 0, 5, 0)


@pytest.mark.skipif(not HAVE_MILVUS, reason=NO_MILVUS)
def test_milvus_resumes_an_interrupted_update(tmp_path, articles_copy, milvus_uri):
    """A run that dies after its first batch keeps that batch; the next run embeds the rest."""
    from index.update import embed_articles

    st = make_store("milvus", tmp_path, milvus_uri)
    emb = HashEmbedder()

    def dies_after_two(articles, progress=None):
        yield embed_articles(emb, st.settings, articles[:2])
        raise RuntimeError("worker lost")

    with pytest.raises(RuntimeError):
        st.update(collect([articles_copy]), embed=dies_after_two)
    r = st.update(collect([articles_copy]))
    assert counts(r) == (3, 0, 2, 0)
    assert st.stats()["documents"] == 5 and st.load().by_source.keys() == {p.name for p in articles_copy.glob("*.txt")}


@pytest.mark.skipif(not HAVE_MILVUS, reason=NO_MILVUS)
def test_milvus_reads_collections_page_by_page(tmp_path, articles_copy, milvus_uri, monkeypatch):
    import index.milvus_store as ms

    st = make_store("milvus", tmp_path, milvus_uri)
    st.update(collect([articles_copy]))
    whole = st.load()
    monkeypatch.setattr(ms, "READ_BATCH", 7)  # pages smaller than every collection
    paged = st.load()
    assert paged.chunks == whole.chunks and paged.articles == whole.articles
    assert len(list(st._rows("sentences", ["doc_id"]))) == st.stats()["sentences"]


@pytest.mark.skipif(not HAVE_MILVUS, reason=NO_MILVUS)
def test_milvus_loads_collections_a_new_process_finds_released(tmp_path, articles_copy, milvus_uri):
    st = make_store("milvus", tmp_path, milvus_uri)
    st.update(collect([articles_copy]))
    for name in st.names.values():  # what a new process finds: collections on disk, not loaded
        st.client.release_collection(name)
    ix = make_store("milvus", tmp_path, milvus_uri).load()
    assert len(ix.chunks) == st.stats()["chunks"] and ix.search_chunks(HashEmbedder().embed_query("rockets"), 3)


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_MILVUS, reason=NO_MILVUS)
def test_cli_on_milvus_index_stats_ask_and_eval_leaves_no_temporary_collections(tmp_path, milvus_uri):
    """The real model through `rag` on Milvus Lite; an eval over --corpus indexes into temporary
    collections and drops them afterwards."""
    import json
    import subprocess
    import sys

    from conftest import ARTICLES, ROOT

    def rag(*args):
        cmd = [sys.executable, "-m", "rag.cli", *map(str, args), "--backend", "milvus", "--milvus-uri", milvus_uri]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)

    d = tmp_path / "index"
    r = rag("index", ARTICLES, "--index-dir", d)
    assert r.returncode == 0 and "added 5, updated 0, skipped 0, deleted 0" in r.stdout, r.stderr
    r = rag("stats", "--index-dir", d, "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["documents"] == 5, r.stderr
    r = rag("ask", "How many rockets were fired at Tel Aviv?", "--index-dir", d, "--json")
    ans = json.loads(r.stdout)
    texts = {p["source"]: p for p in ans["passages"]}
    assert r.returncode == 0 and texts, r.stderr
    r = rag("eval", "--corpus", ARTICLES, "--every", 20, "--no-baseline", "--out", tmp_path / "run")
    assert r.returncode == 0, r.stderr
    from pymilvus import MilvusClient

    left = MilvusClient(milvus_uri).list_collections()
    assert sorted(left) == sorted(f"newsrag_{tmp_path.name}_index_{role}" for role in ("chunks", "sentences", "articles"))
