"""Indexing while the chat answers: an upload is embedded and written without the readers'
lock, and questions are answered from the current version until the new one is swapped in."""

from __future__ import annotations

import threading
import time

from index.embed import HashEmbedder
from rag.pipeline import RagPipeline


class SlowEmbedder(HashEmbedder):
    """The hashing embedder with a pause in every indexing call: a wide window for a question."""

    def __init__(self, dim: int = 64):
        super().__init__(dim)
        self.pause = 0.0
        self.started = threading.Event()

    def embed_chunks(self, texts, spans, progress=None):
        self.started.set()
        time.sleep(self.pause)
        return super().embed_chunks(texts, spans, progress)


def big_article(path, n_bytes: int = 1_000_000):
    para = "The Zubrovka ferry company ordered a new vessel for the northern route on Friday. "
    path.write_text("Ferry order in Zubrovka\n\n" + (para * (n_bytes // len(para))) + "\n", encoding="utf-8")
    return path


def test_a_question_is_answered_while_a_large_upload_is_indexed(tmp_path, tiny_corpus):
    emb = SlowEmbedder()
    p = RagPipeline(index_dir=tmp_path / "idx", embedder=emb, entities=False)
    p.index_paths([tiny_corpus])
    p.ask("Where were the cranes built?")  # loaded, speller built
    emb.pause = 4.0
    up = tmp_path / "uploads"
    up.mkdir()
    big_article(up / "ferry.txt")
    done = {}
    t = threading.Thread(target=lambda: done.setdefault("report", p.index_paths([up])))
    t.start()
    assert emb.started.wait(60)
    t0 = time.perf_counter()
    ans = p.ask("Where were the cranes built?")
    took = time.perf_counter() - t0
    still_indexing = t.is_alive()
    t.join(120)
    assert took < 1.0, f"the question waited {took:.1f} s for the upload"
    assert still_indexing, "the upload finished before the question: the window was not tested"
    assert "Rotterdam" in ans.answer and all(c.source != "ferry.txt" for c in ans.citations)
    assert done["report"].added == ["ferry.txt"]
    assert "ferry.txt" in p.index.by_source  # the new version is in use afterwards
    assert p.retrieve("Who ordered a new vessel for the ferry route?").passages[0].source == "ferry.txt"
