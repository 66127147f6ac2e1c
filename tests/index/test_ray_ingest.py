"""Ingest on Ray (local Ray, 2 CPUs, two encoder workers) builds the index the single process
builds: the same chunk ids, and chunk and sentence vectors equal within 1e-5."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from index.ingest import collect
from index.store import IndexStore

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not importlib.util.find_spec("ray"), reason="Ray is not installed (pip install -e .[scale])"),
]


@pytest.fixture
def local_ray():
    from index.ray_ingest import ensure_ray

    ray = ensure_ray(num_cpus=2)
    yield ray
    ray.shutdown()


def test_ray_ingest_equals_the_single_process_index(tmp_path, articles_copy, minilm, local_ray):
    from index.ray_ingest import ray_collect, ray_embed

    single = IndexStore(tmp_path / "single", minilm)
    single.update(collect([articles_copy]))
    on_ray = IndexStore(tmp_path / "ray", minilm)
    corpus = ray_collect([articles_copy])
    assert [a.doc_id for a in corpus.articles] == [a.doc_id for a in collect([articles_copy]).articles]
    r = on_ray.update(corpus, embed=ray_embed(minilm, on_ray.settings, workers=2, batch_articles=2))
    assert len(r.added) == 5
    a, b = single.load(), on_ray.load()
    ids_a = {c.id: cid for cid, c in a.chunks.items()}
    ids_b = {c.id: cid for cid, c in b.chunks.items()}
    assert ids_a.keys() == ids_b.keys()
    order = sorted(ids_a)
    va = a.chunk_index.reconstruct(np.array([ids_a[i] for i in order]))
    vb = b.chunk_index.reconstruct(np.array([ids_b[i] for i in order]))
    np.testing.assert_allclose(va, vb, atol=1e-5)
    for doc_id, art in a.articles.items():
        idx = list(range(len(art.sentences)))
        np.testing.assert_allclose(a.sentence_vectors(doc_id, idx), b.sentence_vectors(doc_id, idx), atol=1e-5)
    # re-running on Ray embeds nothing: content hashes decide
    again = on_ray.update(ray_collect([articles_copy]), embed=ray_embed(minilm, on_ray.settings, workers=2))
    assert (len(again.skipped), again.chunks_embedded) == (5, 0)


def test_rag_index_ray_flag_reads_on_ray_and_skips_what_is_indexed(tmp_path, articles_copy, minilm, local_ray, capsys):
    from rag.cli import main

    IndexStore(tmp_path / "idx", minilm).update(collect([articles_copy]))
    assert main(["index", str(articles_copy), "--index-dir", str(tmp_path / "idx"), "--ray"]) == 0
    assert "added 0, updated 0, skipped 5, deleted 0" in capsys.readouterr().out
