"""The index directory as a place: one writer at a time, the destination checked before any
work, stale builds of a killed writer removed, recovery only under the writers' lock."""

from __future__ import annotations

from dataclasses import replace

import json
import os
import struct
import threading
import time

import pytest

from rag import settings as C
from index import directory
from index.embed import HashEmbedder
from index.ingest import collect
from index.store import IndexStore
from rag.errors import BadInputError, IndexBusyError, IndexCorruptError, IndexMismatchError


class SlowEmbedder(HashEmbedder):
    """The hashing embedder, with a pause in every embedding call and a count of them."""

    def __init__(self, pause: float = 0.0, dim: int = 64):
        super().__init__(dim)
        self.pause = pause
        self.calls = 0
        self.started = threading.Event()

    def embed_chunks(self, texts, spans, progress=None):
        self.calls += 1
        self.started.set()
        time.sleep(self.pause)
        return super().embed_chunks(texts, spans, progress)


def write_articles(d, prefix: str, n: int):
    d.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (d / f"{prefix}{i:03d}.txt").write_text(
            f"Story {prefix} {i}\n\nThe {prefix} council number {i} met in Sderot on Monday to vote.\n",
            encoding="utf-8",
        )
    return d


def test_two_concurrent_writers_index_the_union(tmp_path):
    """Both start from an empty index; before the lock the second swap erased the first's articles."""
    a = write_articles(tmp_path / "a", "alpha", 20)
    b = write_articles(tmp_path / "b", "beta", 15)
    waits: list[str] = []
    reports = {}

    def run(name, folder, pause):
        st = IndexStore(tmp_path / "idx", SlowEmbedder(pause))
        reports[name] = st.update(collect([folder]), on_wait=waits.append)

    t1 = threading.Thread(target=run, args=("a", a, 1.0))
    t1.start()
    time.sleep(0.3)  # the first writer is embedding
    t2 = threading.Thread(target=run, args=("b", b, 0.0))
    t2.start()
    t1.join(60)
    t2.join(60)
    assert len(reports["a"].added) == 20 and len(reports["b"].added) == 15
    ix = IndexStore(tmp_path / "idx", HashEmbedder()).load()
    assert len(ix.articles) == 35
    assert waits and "waiting for another writer" in waits[0] and str(tmp_path / "idx") in waits[0]
    assert not (tmp_path / "idx" / ".idx.lock").exists()  # the lock file is beside the index
    assert directory.lock_path(tmp_path / "idx").parent == tmp_path


def test_a_second_writer_gives_up_clearly_after_its_timeout(tmp_path):
    idx = tmp_path / "idx"
    with directory.writer_lock(idx):
        heard = []
        with pytest.raises(IndexBusyError, match="another program has been writing"):
            with directory.writer_lock(idx, timeout=0.3, on_wait=heard.append):
                pass
        assert heard == [f"waiting for another writer of {idx}…"]
    with directory.writer_lock(idx, timeout=0.3):  # free again
        pass


@pytest.mark.parametrize("kind", ["regular-file", "under-proc", "parent-is-file"])
def test_unusable_index_dir_fails_before_any_embedding(tmp_path, kind):
    src = write_articles(tmp_path / "src", "s", 2)
    target = {
        "regular-file": tmp_path / "file",
        "under-proc": tmp_path.joinpath("/proc/newsrag-test/idx"),
        "parent-is-file": tmp_path / "file" / "idx",
    }[kind]
    (tmp_path / "file").write_text("not an index")
    emb = SlowEmbedder()
    with pytest.raises(BadInputError, match="choose another --index-dir"):
        IndexStore(target, emb).update(collect([src]))
    assert emb.calls == 0


def test_read_only_parent_fails_before_any_embedding(tmp_path):
    """Run without the power to ignore permissions (root has it): setpriv drops it."""
    import subprocess
    import sys

    from conftest import ROOT, as_unprivileged

    src = write_articles(tmp_path / "src", "s", 2)
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    code = (
        "import sys; from index.embed import HashEmbedder; from index.ingest import collect; "
        "from index.store import IndexStore; from rag.errors import BadInputError\n"
        "try:\n    IndexStore(sys.argv[2], HashEmbedder()).update(collect([sys.argv[1]]))\n"
        "except BadInputError as e:\n    print(e)"
    )
    cmd = as_unprivileged([sys.executable, "-c", code, str(src), str(ro / "idx")])
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=120)
    finally:
        ro.chmod(0o755)
    assert r.returncode == 0, r.stderr
    assert "not writable" in r.stdout and "choose another --index-dir" in r.stdout
    assert list(ro.iterdir()) == []


def test_stale_builds_of_a_killed_writer_are_removed_on_the_next_write(tmp_path):
    src = write_articles(tmp_path / "src", "s", 2)
    idx = tmp_path / "idx"
    stale = directory.new_build_dir(idx)  # what a kill during a build leaves
    (stale / "chunks.jsonl").write_text("half")
    mine = tmp_path / ".idx.build-notes"  # the pattern, without the store's mark: not ours
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    IndexStore(idx, HashEmbedder()).update(collect([src]))
    assert not stale.exists()
    assert (mine / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".idx.build")) == [".idx.build-notes"]
    assert not any(p.name == directory.BUILD_MARK for p in idx.rglob("*"))  # the mark goes before the swap


def test_a_reader_does_not_undo_a_swap_under_way(tmp_path, monkeypatch):
    """Between the swap's two renames only ``idx.old`` exists; a reader must not rename it back
    while the writer holds the lock (the writer's second rename would then fail)."""
    src = write_articles(tmp_path / "src", "s", 2)
    idx = tmp_path / "idx"
    IndexStore(idx, HashEmbedder()).update(collect([src]))
    monkeypatch.setattr("rag.settings.WRITERS", replace(C.WRITERS, reader_recovery_wait_s=0.2))
    with directory.writer_lock(idx):
        os.replace(idx, directory.old_path(idx))  # the writer's first rename
        assert not IndexStore(idx, HashEmbedder()).exists()
        assert directory.old_path(idx).exists() and not idx.exists()
        os.replace(directory.old_path(idx), idx)
    assert IndexStore(idx, HashEmbedder()).exists()


def test_hostile_faiss_header_is_an_unreadable_index(tmp_path):
    """A header that asks for 512 GB raised MemoryError, reported as 'unexpected MemoryError'."""
    src = write_articles(tmp_path / "src", "s", 2)
    idx = tmp_path / "idx"
    st = IndexStore(idx, HashEmbedder())
    st.update(collect([src]))
    raw = bytearray((idx / "chunks.faiss").read_bytes())
    at = raw.index(b"IxFI") + 4 + 4 + 8 + 8 + 8 + 1 + 4  # d, ntotal, 2 dummies, is_trained, metric
    raw[at : at + 8] = struct.pack("<q", 1 << 37)  # number of floats that follow
    (idx / "chunks.faiss").write_bytes(bytes(raw))
    m = json.loads((idx / "manifest.json").read_text())
    m["checksums"]["chunks.faiss"] = directory.sha256(idx / "chunks.faiss")  # a consistent forgery
    (idx / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(IndexCorruptError, match="--rebuild"):
        st.load()


def test_a_newer_format_asks_for_a_newer_program(tmp_path):
    src = write_articles(tmp_path / "src", "s", 2)
    idx = tmp_path / "idx"
    st = IndexStore(idx, HashEmbedder())
    st.update(collect([src]))
    m = json.loads((idx / "manifest.json").read_text())
    m["format_version"] += 1
    (idx / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(IndexMismatchError, match="upgrade the program") as e:
        st.load()
    assert "--rebuild" not in str(e.value)


def test_an_article_that_cannot_be_chunked_is_skipped_not_the_batch(tmp_path):
    src = write_articles(tmp_path / "src", "s", 3)
    (src / "long-title.txt").write_text("word " * 2000 + "\n\nThe council met on Monday.\n")
    st = IndexStore(tmp_path / "idx", HashEmbedder())
    r = st.update(collect([src]))
    assert len(r.added) == 3 and "long-title.txt" not in r.added
    assert [(s, "too long for a title" in why) for s, why in r.unreadable] == [("long-title.txt", True)]
    assert len(st.load().articles) == 3


def test_a_reader_during_a_swap_reads_the_new_version_not_a_false_damage(tmp_path, monkeypatch):
    """The manifest is read from one version, the files from the next: that is a swap, not a
    damaged index, and the read starts again."""
    a = write_articles(tmp_path / "a", "alpha", 2)
    b = write_articles(tmp_path / "b", "beta", 2)
    idx = tmp_path / "idx"
    st = IndexStore(idx, HashEmbedder())
    st.update(collect([a]))
    real = st.read_manifest
    swapped = []

    def read_then_swap():
        m = real()
        if not swapped:  # another writer swaps right after this reader read the manifest
            swapped.append(True)
            IndexStore(idx, HashEmbedder()).update(collect([b]))
        return m

    monkeypatch.setattr(st, "read_manifest", read_then_swap)
    assert len(st.load().articles) == 4
