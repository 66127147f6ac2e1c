from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import tracemalloc

import faiss
import numpy as np
import pytest

from rag.embed import HashEmbedder
from rag.errors import IndexCorruptError, IndexMismatchError, IndexMissingError
from rag.ingest import collect
from rag.store import IndexStore

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
    ids = faiss.vector_to_array(ix.chunk_index.id_map)
    assert set(ids.tolist()) == set(ix.chunks)


def test_vectors_follow_their_chunks_after_update(tmp_path, articles_copy):
    emb = HashEmbedder(64)
    st = IndexStore(tmp_path / "idx", emb)
    st.update(collect([articles_copy]))
    f = articles_copy / "001_2553db7c481c0c1a.txt"
    f.write_text(f.read_text().replace("Hillary Clinton", "Secretary Clinton"))
    st.update(collect([articles_copy]))
    ix = st.load()
    for cid, c in ix.chunks.items():
        np.testing.assert_allclose(ix.chunk_index.reconstruct(cid), emb.embed_texts([c.embed_text])[0], atol=1e-6)


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
    assert m["format_version"] == 1 and m["embedding_model"] == "hash-bow" and m["dim"] == 32
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
    import rag.store as store_mod

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(store_mod, "_save_bm25", boom)
    with pytest.raises(OSError):
        st.update(collect([articles_copy]))
    monkeypatch.undo()
    after = st.load()
    assert after.manifest["corpus_hash"] == before.manifest["corpus_hash"]
    assert not list(tmp_path.glob(".idx.tmp-*"))  # temp dir cleaned


def test_killed_process_leaves_previous_index_loadable(tmp_path, articles_copy):
    """SIGKILL a real indexing process at several moments; the old index always loads."""
    st = make(tmp_path)
    st.update(collect([articles_copy]))
    good = st.load().manifest["corpus_hash"]
    big = tmp_path / "big"
    big.mkdir()
    for i in range(300):
        (big / f"n{i}.txt").write_text(f"Story {i}\n\n" + "The council met again today in Town{i}. " * 40)
    script = textwrap.dedent(f"""
        import sys; sys.path.insert(0, {str(ROOT)!r})
        from rag.embed import HashEmbedder
        from rag.ingest import collect
        from rag.store import IndexStore
        IndexStore({str(tmp_path / 'idx')!r}, HashEmbedder(64)).update(collect([{str(big)!r}]), prune=True)
    """)
    for delay in (0.3, 0.8, 1.5):
        p = subprocess.Popen([sys.executable, "-c", script])
        time.sleep(delay)
        p.send_signal(signal.SIGKILL)
        p.wait()
        ix = make(tmp_path).load()  # loads, old or new, never half
        assert ix.manifest["corpus_hash"] in (good, ix.manifest["corpus_hash"])
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
    vecs = np.stack([ix.chunk_index.reconstruct(int(i)) for i in ids])
    texts = [ix.chunks[int(i)].embed_text for i in ids]
    np.testing.assert_allclose(vecs, minilm.embed_texts(texts), atol=1e-5)  # stored == model.encode
    for q in ["How many rockets did Iron Dome intercept?", "Who mediated the ceasefire talks?", "Sheikh Jarrah evictions"]:
        qv = minilm.embed_query(q)
        scores, got = ix.chunk_index.search(qv[None], 10)
        brute = vecs @ qv
        order = ids[np.argsort(-brute)[:10]]
        assert got[0].tolist() == order.tolist()
        np.testing.assert_allclose(scores[0], np.sort(brute)[::-1][:10], atol=1e-5)
