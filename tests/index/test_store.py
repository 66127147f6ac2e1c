from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import tracemalloc

import faiss
import numpy as np
import pytest

from index.embed import HashEmbedder
from rag.errors import IndexCorruptError, IndexMismatchError, IndexMissingError, RagError
from index.ingest import collect
from index.store import IndexStore, corpus_hash

from conftest import ARTICLES, ROOT


def make(tmp_path, dim=64):
    return IndexStore(tmp_path / "idx", HashEmbedder(dim))


def test_build_then_idempotent(tmp_path, articles_copy):
    st = make(tmp_path)
    r = st.update(collect([articles_copy]))
    assert (len(r.added), len(r.updated), len(r.skipped), len(r.deleted)) == (5, 0, 0, 0)
    before = {p.name: p.read_bytes() for p in (tmp_path / "idx").iterdir() if p.is_file()}
    r = st.update(collect([articles_copy]))
    assert (len(r.added), len(r.updated), len(r.skipped), len(r.deleted)) == (0, 0, 5, 0)
    assert r.chunks_embedded == 0
    after = {p.name: p.read_bytes() for p in (tmp_path / "idx").iterdir() if p.is_file()}
    assert before == after  # nothing rewritten


def test_update_and_prune(tmp_path, articles_copy):
    st = make(tmp_path)
    st.update(collect([articles_copy]))
    f = articles_copy / "002_68a0928ee0260f57.txt"
    f.write_text(f.read_text() + "\nA new closing sentence about Zanzibar.\n")
    (articles_copy / "000_1ac2ec0afcdbae9b.txt").unlink()
    r = st.update(collect([articles_copy]))
    assert (r.added, r.updated, len(r.skipped), r.deleted) == ([], ["002_68a0928ee0260f57.txt"], 3, [])
    ix = st.load()
    assert "000_1ac2ec0afcdbae9b.txt" in ix.by_source  # no --prune: kept
    assert any("Zanzibar" in c.text for c in ix.chunks.values())
    r = st.update(collect([articles_copy]), prune=True)
    assert r.deleted == ["000_1ac2ec0afcdbae9b.txt"]
    ix = st.load()
    assert sorted(ix.by_source) == sorted(p.name for p in articles_copy.glob("*.txt"))
    assert ix.chunk_index.ntotal == len(ix.chunks)
    n_sent = sum(len(a.sentences) for a in ix.articles.values())
    assert ix.sentence_index.ntotal == n_sent
    # ids map back to chunks: every FAISS id is a known chunk
    assert set(ix.chunk_index.ids().tolist()) == set(ix.chunks)


def test_vectors_follow_their_chunks_after_update(tmp_path, articles_copy):
    emb = HashEmbedder(64)
    st = IndexStore(tmp_path / "idx", emb)
    st.update(collect([articles_copy]))
    f = articles_copy / "001_2553db7c481c0c1a.txt"
    f.write_text(f.read_text().replace("Hillary Clinton", "Secretary Clinton"))
    st.update(collect([articles_copy]))
    ix = st.load()
    for cid, c in ix.chunks.items():
        np.testing.assert_allclose(ix.chunk_index.reconstruct([cid])[0], emb.embed_texts([c.embed_text])[0], atol=1e-6)


def test_duplicate_under_new_name_is_reported(tmp_path, articles_copy):
    st = make(tmp_path)
    st.update(collect([articles_copy]))
    other = tmp_path / "other"
    other.mkdir()
    (other / "copy.txt").write_bytes((articles_copy / "003_95e71b640879a191.txt").read_bytes())
    r = st.update(collect([other]))
    assert r.duplicates == [("copy.txt", "003_95e71b640879a191.txt")]
    assert "copy.txt" not in st.load().by_source


def test_manifest_records_what_was_built(tmp_path, articles_copy):
    st = make(tmp_path, dim=32)
    st.update(collect([articles_copy]))
    m = json.loads((tmp_path / "idx" / "manifest.json").read_text())
    assert m["format_version"] == 3 and m["embedding_model"] == "hash-bow" and m["dim"] == 32
    n_sent = sum(len(a.sentences) for a in st.load().articles.values())
    assert m["vector_indexes"] == {
        "chunks.faiss": {"type": "Flat", "vectors": m["counts"]["chunks"], "tombstones": 0, "ef_search": None,
                         "files": ["chunks.faiss"]},
        "sentences.faiss": {"type": "Flat", "vectors": n_sent, "tombstones": 0, "ef_search": None,
                            "files": ["sentences.faiss"]},
    }
    files = {p.relative_to(tmp_path / "idx").as_posix() for p in (tmp_path / "idx").rglob("*") if p.is_file()}
    assert set(m["checksums"]) == files - {"manifest.json"}  # every file written is checked
    assert m["metric"] == "inner_product" and m["normalized"] is True
    assert m["counts"]["documents"] == 5 and m["counts"]["chunks"] > 5
    assert len(m["corpus_hash"]) == 16 and "faiss-cpu" in m["libraries"]
    assert not list((tmp_path / "idx").rglob("*.pkl")) and not list((tmp_path / "idx").rglob("*.pickle"))


def test_mismatch_says_what_differs_and_how_to_rebuild(tmp_path, articles_copy):
    make(tmp_path, dim=32).update(collect([articles_copy]))
    with pytest.raises(IndexMismatchError, match=r"dim: index has 32, this program uses 64.*rag index --index-dir .* --rebuild"):
        make(tmp_path, dim=64).load()


def test_missing_index(tmp_path):
    with pytest.raises(IndexMissingError, match="rag index --index-dir"):
        make(tmp_path).load()


@pytest.mark.parametrize("victim", ["manifest.json", "chunks.faiss", "chunks.jsonl", "articles.jsonl", "bm25/vocab.index.json"])
@pytest.mark.parametrize("damage", ["truncate", "edit"])
def test_damaged_files_are_refused(tmp_path, articles_copy, victim, damage):
    st = make(tmp_path)
    st.update(collect([articles_copy]))
    f = tmp_path / "idx" / victim
    data = f.read_bytes()
    f.write_bytes(data[: len(data) // 2] if damage == "truncate" else data.replace(b"a", b"b", 1) + b" ")
    with pytest.raises(IndexCorruptError, match="rebuild"):
        st.load()


def test_crash_during_write_keeps_old_index(tmp_path, articles_copy, monkeypatch):
    st = make(tmp_path)
    st.update(collect([articles_copy]))
    before = st.load()
    f = articles_copy / "004_f3772e32fd93a989.txt"
    f.write_text(f.read_text() + "\nAn update that will never land.\n")
    import index.store as store_mod

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(store_mod, "_save_bm25", boom)
    with pytest.raises(OSError):
        st.update(collect([articles_copy]))
    monkeypatch.undo()
    after = st.load()
    assert after.manifest["corpus_hash"] == before.manifest["corpus_hash"]
    assert not list(tmp_path.glob(".idx.build-*"))  # temp dir cleaned


def test_killed_process_leaves_previous_index_loadable(tmp_path, articles_copy):
    """SIGKILL a real indexing process at several moments; the old index always loads."""
    st = make(tmp_path)
    st.update(collect([articles_copy]))
    good = st.load().manifest["corpus_hash"]
    big = tmp_path / "big"
    big.mkdir()
    for i in range(300):
        (big / f"n{i}.txt").write_text(f"Story {i}\n\n" + "The council met again today in Town{i}. " * 40)
    new = corpus_hash(collect([big]).articles)  # what the killed run would have written (it prunes)
    script = textwrap.dedent(f"""
        import sys; sys.path.insert(0, {str(ROOT)!r})
        from index.embed import HashEmbedder
        from index.ingest import collect
        from index.store import IndexStore
        IndexStore({str(tmp_path / 'idx')!r}, HashEmbedder(64)).update(collect([{str(big)!r}]), prune=True)
    """)
    for delay in (0.3, 0.8, 1.5):
        p = subprocess.Popen([sys.executable, "-c", script])
        time.sleep(delay)
        p.send_signal(signal.SIGKILL)
        p.wait()
        ix = make(tmp_path).load()  # loads, old or new, never half
        assert ix.manifest["corpus_hash"] in (good, new)
        assert ix.chunk_index.ntotal == len(ix.chunks)
        if ix.manifest["corpus_hash"] != good:
            break


@pytest.mark.slow
def test_ten_megabyte_article_in_bounded_memory(tmp_path):
    d = tmp_path / "big"
    d.mkdir()
    para = "Rockets were fired at the town of Sderot on Tuesday, officials said. " * 20
    n = 10_000_000 // (len(para) + 10)
    text = "A very long article\n\n" + "".join(f"{para}Report {i}.\n\n" for i in range(n))
    (d / "big.txt").write_text(text)
    assert os.path.getsize(d / "big.txt") > 9_900_000
    tracemalloc.start()
    r = IndexStore(tmp_path / "idx", HashEmbedder(16)).update(collect([d]))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert r.added == ["big.txt"] and r.chunks_embedded > 5_000
    assert peak < 60 * len(text)  # linear in the text, no quadratic blow-up


def test_faiss_matches_bruteforce_cosine_on_minilm(bundled_index_dir, minilm):
    st = IndexStore(bundled_index_dir, minilm)
    ix = st.load()
    ids = np.array(sorted(ix.chunks), dtype=np.int64)
    vecs = ix.chunk_index.reconstruct(ids)
    texts = [ix.chunks[int(i)].embed_text for i in ids]
    np.testing.assert_allclose(vecs, minilm.embed_texts(texts), atol=1e-5)  # stored == model.encode
    for q in ["How many rockets did Iron Dome intercept?", "Who mediated the ceasefire talks?", "Sheikh Jarrah evictions"]:
        qv = minilm.embed_query(q)
        scores, got = ix.chunk_index.search(qv[None], 10)
        brute = vecs @ qv
        order = ids[np.argsort(-brute)[:10]]
        assert got[0].tolist() == order.tolist()
        np.testing.assert_allclose(scores[0], np.sort(brute)[::-1][:10], atol=1e-5)


def test_old_format_is_refused_with_the_rebuild_hint(tmp_path, articles_copy):
    """A format-1 index (plain IDMap2,Flat files, no ``vector_indexes``) is not read: loading and
    an incremental update both say how to rebuild; ``--rebuild`` works."""
    st = make(tmp_path)
    st.update(collect([articles_copy]))
    mf = tmp_path / "idx" / "manifest.json"
    m = json.loads(mf.read_text())
    m["format_version"] = 1
    m["index_type"] = "IDMap2,Flat"
    del m["vector_indexes"]
    mf.write_text(json.dumps(m))
    hint = r"format_version: index has 1, this program uses 3.*rag index --index-dir .* --rebuild"
    with pytest.raises(IndexMismatchError, match=hint):
        st.load()
    with pytest.raises(IndexMismatchError, match=hint):
        st.update(collect([articles_copy]))
    assert st.stats()["index_type"] == "IDMap2,Flat"  # stats still reads the old manifest
    r = st.update(collect([articles_copy]), rebuild=True)
    assert len(r.added) == 5 and st.load().manifest["format_version"] == 3


def test_manifest_must_match_the_vector_files(tmp_path, articles_copy):
    st = make(tmp_path)
    st.update(collect([articles_copy]))
    mf = tmp_path / "idx" / "manifest.json"
    m = json.loads(mf.read_text())
    m["vector_indexes"]["sentences.faiss"]["type"] = "HNSW32"
    mf.write_text(json.dumps(m))
    with pytest.raises(IndexCorruptError, match="sentences.faiss: manifest says HNSW32.*rebuild"):
        st.load()
    del m["vector_indexes"]
    mf.write_text(json.dumps(m))
    with pytest.raises(IndexCorruptError, match="vector indexes.*rebuild"):
        st.load()


# ---------------------------------------------------------------- HNSW inside the store
# index.vector_index switches to HNSW at FLAT_MAX live vectors (30,000); the tests lower it to
# SMALL_FLAT_MAX so that the bundled articles plus SYNTHETIC bulletins (~240 chunks, ~1,440
# sentences with HashEmbedder) cross it.
SMALL_FLAT_MAX = 200
SYNTHETIC = 30


def write_bulletins(d, n=SYNTHETIC, sentences=40):
    """Synthetic articles whose words are unique to each one (exact math with HashEmbedder)."""
    d.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        body = " ".join(
            f"Officials in Town{i} counted {j} crates of item{i}x{j} beside the river Ril{i}y{j} on day {j}."
            for j in range(sentences)
        )
        (d / f"bulletin_{i:02d}.txt").write_text(f"Bulletin {i} from Town{i}\n\n{body}\n")
    return d


@pytest.fixture
def small_flat_max(monkeypatch):
    import index.vector_index as vi

    monkeypatch.setattr(vi, "FLAT_MAX", SMALL_FLAT_MAX)
    return SMALL_FLAT_MAX


@pytest.fixture
def hnsw_corpus(tmp_path, articles_copy):
    return [articles_copy, write_bulletins(tmp_path / "bulletins")]


def brute_scores(vix, qv, k, allowed=None):
    """Brute-force top-k scores over the live vectors of a VectorIndex (optionally only
    ``allowed``); scores, not ids, because the bulletins' bag-of-words vectors tie."""
    ids = vix.ids()
    if allowed is not None:
        ids = ids[np.isin(ids, allowed)]
    return np.sort(vix.reconstruct(ids) @ qv)[::-1][:k]


def check_scores(vix, qv, got):
    """Returned scores are the stored vectors' inner products, best first."""
    ids = [i for i, _ in got]
    scores = np.array([s for _, s in got])
    np.testing.assert_allclose(scores, vix.reconstruct(ids) @ qv, atol=1e-5)
    assert np.all(np.diff(scores) <= 1e-6)


def chunk_ids_of(ix, source):
    return [cid for cid, c in ix.chunks.items() if c.source == source]


def sentence_keys_of(ix, source):
    from index.store import sentence_key

    d = ix.by_source[source]
    return [sentence_key(ix.doc_seq[d], i) for i in range(len(ix.articles[d].sentences))]


def test_store_past_the_threshold_builds_hnsw_and_round_trips(tmp_path, articles_copy, small_flat_max, hnsw_corpus):
    from index.first_stage import faiss_search as _faiss_search
    from index.store import sentence_key

    emb = HashEmbedder(64)
    st = IndexStore(tmp_path / "idx", emb)
    # small: exact Flat
    small = tmp_path / "small"
    small.mkdir()
    for name in ("000_1ac2ec0afcdbae9b.txt", "001_2553db7c481c0c1a.txt"):
        (small / name).write_bytes((articles_copy / name).read_bytes())
    st.update(collect([small]))
    ix = st.load()
    assert (ix.chunk_index.index_type, ix.sentence_index.index_type) == ("Flat", "Flat")
    # an incremental update past FLAT_MAX switches both files to HNSW32
    r = st.update(collect(hnsw_corpus))
    assert len(r.added) == 3 + SYNTHETIC and r.skipped == ["000_1ac2ec0afcdbae9b.txt", "001_2553db7c481c0c1a.txt"]
    m = json.loads((tmp_path / "idx" / "manifest.json").read_text())
    ix = st.load()
    n_sent = sum(len(a.sentences) for a in ix.articles.values())
    assert len(ix.chunks) > SMALL_FLAT_MAX and n_sent > SMALL_FLAT_MAX
    assert m["vector_indexes"]["chunks.faiss"] == {
        "type": "HNSW32", "vectors": len(ix.chunks), "tombstones": 0, "ef_search": 128, "files": ["chunks.faiss"]
    }
    assert m["vector_indexes"]["sentences.faiss"] == {
        "type": "HNSW32", "vectors": n_sent, "tombstones": 0, "ef_search": 128, "files": ["sentences.faiss"]
    }
    assert st.stats()["index_type"] == "chunks HNSW32, sentences HNSW32"
    # loaded back as HNSW, ids intact, stored vectors = the embedder's
    assert (ix.chunk_index.index_type, ix.sentence_index.index_type) == ("HNSW32", "HNSW32")
    assert set(ix.chunk_index.ids().tolist()) == set(ix.chunks)
    assert ix.sentence_index.ntotal == n_sent
    cids = sorted(ix.chunks)
    np.testing.assert_allclose(
        ix.chunk_index.reconstruct(cids), emb.embed_texts([ix.chunks[c].embed_text for c in cids]), atol=1e-6
    )
    # searches: a chunk's own text finds it first; top-10 agrees with brute force
    exact = 0
    for cid in cids[::7]:
        qv = emb.embed_query(ix.chunks[cid].embed_text)
        got = _faiss_search(ix.chunk_index, qv, 10, None)
        assert got[0][0] == cid and got[0][1] == pytest.approx(1.0, abs=1e-5)
        assert len(got) == 10
        check_scores(ix.chunk_index, qv, got)
        exact += np.allclose([s for _, s in got], brute_scores(ix.chunk_index, qv, 10), atol=1e-5)
    assert exact >= 0.9 * len(cids[::7])  # approximate, but a graph this small is (nearly) exact
    # sentence search and the retriever's sentence vectors
    d = ix.by_source["bulletin_05.txt"]
    art = ix.articles[d]
    sp = art.sentences[3]
    qv = emb.embed_query(art.text[sp.start : sp.end])
    got = _faiss_search(ix.sentence_index, qv, 5, None)
    assert got[0][0] == sentence_key(ix.doc_seq[d], 3)
    np.testing.assert_allclose(ix.sentence_vectors(d, [3])[0], qv, atol=1e-6)
    # a second load answers the same
    again = st.load()
    assert _faiss_search(again.sentence_index, qv, 5, None) == got


def test_hnsw_store_update_and_prune_leave_no_stale_vectors(tmp_path, small_flat_max, hnsw_corpus):
    from index.first_stage import faiss_search as _faiss_search

    emb = HashEmbedder(64)
    st = IndexStore(tmp_path / "idx", emb)
    st.update(collect(hnsw_corpus))
    ix = st.load()
    assert ix.chunk_index.index_type == "HNSW32"
    changed, gone = "bulletin_04.txt", "bulletin_09.txt"
    old_chunks = {s: chunk_ids_of(ix, s) for s in (changed, gone)}
    old_keys = {s: sentence_keys_of(ix, s) for s in (changed, gone)}
    gone_text = ix.chunks[old_chunks[gone][0]].embed_text
    bulletins = hnsw_corpus[1]
    f = bulletins / changed
    f.write_text(f.read_text().replace("crates", "barrels"))
    (bulletins / gone).unlink()

    r = st.update(collect(hnsw_corpus), prune=True)
    assert (r.updated, r.deleted) == ([changed], [gone])
    ix = st.load()
    m = ix.manifest["vector_indexes"]
    # a few percent removed: HNSW keeps them as tombstones in the file, recorded in the manifest
    for name, vix in (("chunks.faiss", ix.chunk_index), ("sentences.faiss", ix.sentence_index)):
        assert vix.index_type == "HNSW32" and vix.tombstones > 0
        assert m[name]["type"] == "HNSW32" and m[name]["tombstones"] == vix.tombstones
        assert m[name]["vectors"] == vix.ntotal
    assert set(ix.chunk_index.ids().tolist()) == set(ix.chunks)
    stale_chunks = set(old_chunks[changed] + old_chunks[gone])
    stale_keys = set(old_keys[changed] + old_keys[gone])
    assert not stale_chunks & set(ix.chunks)
    # a search for everything returns exactly the live vectors: no tombstone comes back
    qv = emb.embed_query(gone_text)
    everything = _faiss_search(ix.chunk_index, qv, 100_000, None)
    assert sorted(i for i, _ in everything) == sorted(ix.chunks)
    live_keys = {k for s in ix.by_source for k in sentence_keys_of(ix, s)}
    all_sents = _faiss_search(ix.sentence_index, qv, 100_000, None)
    assert {k for k, _ in all_sents} == live_keys and len(all_sents) == len(live_keys)
    assert not stale_keys & live_keys  # the updated article got a new sequence number
    # the deleted article's own text no longer finds it; the changed one finds its new text
    top = _faiss_search(ix.chunk_index, qv, 10, None)
    assert all(ix.chunks[i].source != gone for i, _ in top) and not stale_chunks & {i for i, _ in top}
    assert top[0][1] < 0.99
    new_cid = chunk_ids_of(ix, changed)[0]
    got = _faiss_search(ix.chunk_index, emb.embed_query(ix.chunks[new_cid].embed_text), 5, None)
    assert got[0][0] == new_cid
    # filters that name removed ids never return them
    allowed = np.array(sorted(stale_chunks | set(chunk_ids_of(ix, changed))), dtype=np.int64)
    got = _faiss_search(ix.chunk_index, qv, 5, allowed)
    assert len(got) == 5 and {i for i, _ in got} <= set(chunk_ids_of(ix, changed))

    # removing most articles: past the tombstone share the index rebuilds, below FLAT_MAX * 0.8 as Flat
    for p in sorted(bulletins.glob("*.txt"))[3:]:
        p.unlink()
    st.update(collect(hnsw_corpus), prune=True)
    ix = st.load()
    assert len(ix.chunks) < 0.8 * SMALL_FLAT_MAX
    assert (ix.chunk_index.index_type, ix.chunk_index.tombstones) == ("Flat", 0)
    assert ix.manifest["vector_indexes"]["chunks.faiss"]["type"] == "Flat"
    assert sorted(i for i, _ in _faiss_search(ix.chunk_index, qv, 100_000, None)) == sorted(ix.chunks)


@pytest.mark.parametrize("flat_max", [None, SMALL_FLAT_MAX], ids=["flat", "hnsw"])
@pytest.mark.parametrize("walk", [False, True], ids=["exact-candidates", "graph-walk"])
def test_filtered_search_in_store_returns_only_allowed(tmp_path, monkeypatch, hnsw_corpus, flat_max, walk):
    import index.vector_index as vi
    from index import first_stage
    from index.first_stage import faiss_search as _faiss_search

    if flat_max:
        monkeypatch.setattr(vi, "FLAT_MAX", flat_max)
    if walk:  # small candidate sets are normally scored exactly; force the filtered HNSW walk
        monkeypatch.setattr(vi, "EXACT_FILTER_MAX", 0)
        monkeypatch.setattr(vi, "EXACT_PER_EF", 0)
    emb = HashEmbedder(64)
    st = IndexStore(tmp_path / "idx", emb)
    st.update(collect(hnsw_corpus))
    ix = st.load()
    assert ix.chunk_index.index_type == ("HNSW32" if flat_max else "Flat")
    docs = frozenset(ix.by_source[s] for s in ("bulletin_02.txt", "003_95e71b640879a191.txt"))
    chunk_allowed, sent_allowed = first_stage.chunk_ids_of(ix, docs), first_stage.sentence_keys_of(ix, docs)
    # questions from articles outside the filter: the allowed ids are not the nearest ones
    for source in ("bulletin_20.txt", "000_1ac2ec0afcdbae9b.txt", "bulletin_02.txt"):
        qv = emb.embed_query(ix.chunks[chunk_ids_of(ix, source)[0]].embed_text)
        for vix, allowed in ((ix.chunk_index, chunk_allowed), (ix.sentence_index, sent_allowed)):
            for k in (5, 30, len(allowed) + 10):
                got = _faiss_search(vix, qv, k, allowed)
                ids = [i for i, _ in got]
                assert set(ids) <= set(allowed.tolist())
                assert len(ids) == min(k, len(allowed)) == len(set(ids))
                check_scores(vix, qv, got)
                if not walk or k >= len(allowed):  # exact: the best allowed scores
                    np.testing.assert_allclose([s for _, s in got], brute_scores(vix, qv, k, allowed), atol=1e-5)
    # an empty filter returns nothing
    assert _faiss_search(ix.chunk_index, qv, 5, np.zeros(0, dtype=np.int64)) == []


def test_building_after_a_query_uses_every_core(tmp_path, articles_copy):
    from index.first_stage import faiss_search as _faiss_search

    store = IndexStore(tmp_path / "ix", HashEmbedder())
    store.update(collect([articles_copy]))
    idx = store.load()
    _faiss_search(idx.chunk_index, HashEmbedder().embed_query("rockets"), 3, None)
    assert faiss.omp_get_max_threads() == 1  # a query searches on one thread
    (articles_copy / "new.txt").write_text("A new article\n\nRockets were fired on Monday.\n", encoding="utf-8")
    store.update(collect([articles_copy]))
    assert faiss.omp_get_max_threads() == (os.cpu_count() or 1)


def test_recovery_never_touches_a_directory_that_is_not_an_index(tmp_path):
    """A user's folder at DIR with a sibling DIR.old: reading it changes nothing (it is not an
    index), and a write refuses rather than delete the sibling."""
    victim, sibling = tmp_path / "victim", tmp_path / "victim.old"
    (victim / "sub").mkdir(parents=True)
    sibling.mkdir()
    (victim / "thesis.txt").write_text("draft")
    (sibling / "thesis.txt").write_text("old")
    st = IndexStore(victim, HashEmbedder(64))
    with pytest.raises(IndexMissingError):
        st.read_manifest()
    assert not st.exists()
    assert (victim / "thesis.txt").read_text() == "draft" and (victim / "sub").is_dir()
    assert (sibling / "thesis.txt").read_text() == "old"
    with pytest.raises(RagError, match="not an index this program wrote"):
        st.update(collect([ARTICLES]))
    assert (sibling / "thesis.txt").read_text() == "old" and (victim / "thesis.txt").read_text() == "draft"


def test_a_crash_between_the_renames_loses_nothing(tmp_path, articles_copy):
    st = make(tmp_path)
    st.update(collect([articles_copy]))
    idx, old = tmp_path / "idx", tmp_path / "idx.old"
    # window 1: the index was moved to .old and the new one not yet in place -> the old one is read
    os.replace(idx, old)
    assert st.exists() and len(st.load().articles) == 5 and not old.exists()
    # window 2: the new index is in place, a foreign file still sits in .old -> the next write keeps it
    shutil.copytree(idx, old)
    (old / "notes.txt").write_text("mine")
    st.update(collect([articles_copy]), rebuild=True)
    assert (idx / "notes.txt").read_text() == "mine" and not old.exists()
