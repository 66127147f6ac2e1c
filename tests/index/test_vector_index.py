"""index.vector_index: exact values for Flat, recall for HNSW, and add/remove/filter/save/load
round trips for every supported type, on small clustered random data (fast)."""

from __future__ import annotations

import faiss
import numpy as np
import pytest

from index import vector_index as vi
from index.vector_index import VectorIndex, choose_index_type

DIM = vi.DIM
TYPES = ["Flat", "HNSW32", "IVF16,Flat", "IVF16,PQ16x4"]


def normalize(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def clustered(n: int, seed: int = 0, clusters: int = 40, rank: int = 16, noise: float = 0.5) -> np.ndarray:
    """Random but clustered unit vectors, shaped like sentence embeddings: a cluster centre,
    plus a spread along a shared low-rank subspace, plus isotropic noise (nearest-neighbour
    cosines ~0.7, top-10 ~0.6)."""
    rng = np.random.default_rng(seed)
    basis = normalize(rng.standard_normal((rank, DIM)))
    centres = normalize(rng.standard_normal((clusters, DIM)))
    z = rng.standard_normal((n, rank)) / np.sqrt(rank)
    x = centres[rng.integers(0, clusters, n)] + z @ basis + noise / np.sqrt(DIM) * rng.standard_normal((n, DIM))
    return normalize(x)


def exact(xb: np.ndarray, ids: np.ndarray, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    s = q @ xb.T
    top = np.argsort(-s, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(s, top, 1), ids[top]


def recall(got: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(g) & set(t)) / len(t) for g, t in zip(got, truth)]))


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Small indexes: OpenMP fan-out only costs time here (and thrashes on a busy machine)."""
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(before)


@pytest.fixture(scope="module")
def data():
    a = clustered(3050, seed=1)
    xb, q = a[:3000], a[3000:]  # queries: held out from the same distribution
    ids = np.arange(3000, dtype=np.int64) * 7 + 1_000_000_000_000  # sparse, large int64 ids
    return xb, ids, q


@pytest.fixture(scope="module")
def built(data):
    xb, ids, _ = data
    out = {}
    for t in TYPES:
        idx = VectorIndex(index_type=t)
        idx.add(xb, ids)
        out[t] = idx
    return out


def fresh(t: str, xb, ids) -> VectorIndex:
    idx = VectorIndex(index_type=t)
    idx.add(xb, ids)
    return idx


# ---------------------------------------------------------------- type choice
def test_choose_index_type_thresholds():
    assert choose_index_type(0) == "Flat"
    assert choose_index_type(vi.FLAT_MAX - 1) == "Flat"
    assert choose_index_type(vi.FLAT_MAX) == vi.HNSW_TYPE == "HNSW32"
    assert choose_index_type(10_000_000) == "HNSW32"
    with pytest.raises(ValueError):
        choose_index_type(-1)


def test_ef_search_grows_with_size():
    assert vi.ef_search_for(0) == vi.ef_search_for(100_000) == vi.EF_SEARCH == 128
    assert vi.ef_search_for(1_000_000) == 512
    assert vi.ef_search_for(100_000_000) == vi.EF_SEARCH_MAX
    sizes = [100_000, 200_000, 500_000, 1_000_000, 3_000_000]
    assert [vi.ef_search_for(n) for n in sizes] == sorted(vi.ef_search_for(n) for n in sizes)
    idx = VectorIndex(index_type="HNSW32")
    assert idx.current_ef_search() == 128
    idx.ef_search = 40  # pinned
    assert idx.current_ef_search() == 40


def test_unsupported_type_rejected():
    with pytest.raises(ValueError):
        VectorIndex(index_type="LSH")


# ---------------------------------------------------------------- exactness and recall
def test_flat_is_exact(built, data):
    xb, ids, q = data
    d, i = built["Flat"].search(q, 10)
    ed, ei = exact(xb, ids, q, 10)
    np.testing.assert_array_equal(i, ei)
    np.testing.assert_allclose(d, ed, rtol=0, atol=1e-5)
    # single vector query, k larger than the index
    small = fresh("Flat", xb[:5], ids[:5])
    d, i = small.search(q[0], 8)
    ed, ei = exact(xb[:5], ids[:5], q[:1], 5)
    np.testing.assert_array_equal(i[0, :5], ei[0])
    assert (i[0, 5:] == -1).all() and np.isneginf(d[0, 5:]).all()


def test_hnsw_recall_at_10(built, data):
    xb, ids, q = data
    _, i = built["HNSW32"].search(q, 10)
    _, ei = exact(xb, ids, q, 10)
    assert recall(i, ei) >= 0.95


def test_ivf_flat_recall_at_10(built, data):
    xb, ids, q = data
    _, i = built["IVF16,Flat"].search(q, 10)
    _, ei = exact(xb, ids, q, 10)
    assert recall(i, ei) >= 0.9


# ---------------------------------------------------------------- round trips for every type
@pytest.mark.parametrize("t", TYPES)
def test_reconstruct(built, data, t):
    xb, ids, _ = data
    got = built[t].reconstruct(ids[[5, 0, 2999]])
    tol = 0.2 if "PQ" in t else 1e-6  # PQ stores codes, not the vectors
    np.testing.assert_allclose(got, xb[[5, 0, 2999]], atol=tol)
    with pytest.raises(KeyError):
        built[t].reconstruct([123])


@pytest.mark.parametrize("t", TYPES)
def test_add_remove_readd(data, t):
    xb, ids, q = data
    idx = fresh(t, xb, ids)
    assert idx.ntotal == 3000
    with pytest.raises(ValueError):
        idx.add(xb[:2], ids[:2])  # ids already present
    with pytest.raises(ValueError):
        idx.add(xb[:2], [1, 1])  # duplicate in the batch
    with pytest.raises(ValueError):
        idx.add(xb[:1], [-5])
    # remove the exact top-3 of query 0 (plus an absent id): they must never come back
    _, ei = exact(xb, ids, q[:1], 3)
    gone = ei[0]
    assert idx.remove(np.append(gone, 42)) == 3
    assert idx.ntotal == 2997
    assert not idx.contains(gone).any()
    _, i = idx.search(q[:1], 10)
    assert not set(gone) & set(i[0].tolist())
    assert (i >= 0).all()
    with pytest.raises(KeyError):
        idx.reconstruct(gone[:1])
    # update = remove + add under the same id
    pos = np.searchsorted(ids, gone)
    idx.add(xb[pos], gone)
    assert idx.ntotal == 3000
    _, i = idx.search(xb[pos[0]], 10)
    assert gone[0] in i[0, : 1 if "PQ" not in t else 10]  # PQ scores are approximate
    # the incrementally kept id bookkeeping equals a fresh one, and removes the right entries
    np.testing.assert_array_equal(idx.ids(), ids)
    idx._live_cache = None
    np.testing.assert_array_equal(idx.ids(), ids)
    assert idx.remove(gone[1:2]) == 1
    assert idx.ntotal == 2999 and not idx.contains(gone[1:2])[0] and idx.contains(gone[[0, 2]]).all()
    _, i = idx.search(xb[pos[1]], 10)
    assert gone[1] not in i[0] and (i >= 0).all()


@pytest.mark.parametrize("t", TYPES)
def test_filter_inside_search(built, data, t):
    xb, ids, q = data
    rng = np.random.default_rng(3)
    for n_allowed in (3, 10, 25, 1500):
        allowed = rng.choice(ids, n_allowed, replace=False)
        allowed_with_absent = np.concatenate([allowed, allowed[:3], [1, 2, 3]])  # unsorted, duplicates
        d, i = built[t].search(q[:5], 10, allowed_ids=allowed_with_absent)
        want = min(10, n_allowed)
        assert (i[:, :want] >= 0).all(), "fewer than k results although k allowed ids exist"
        assert (i[:, want:] == -1).all()
        assert set(i[:, :want].ravel().tolist()) <= set(allowed.tolist())
        if t == "Flat":
            pos = np.searchsorted(ids, np.sort(allowed))
            ed, ei = exact(xb[pos], ids[pos], q[:5], want)
            np.testing.assert_array_equal(i[:, :want], ei)
            np.testing.assert_allclose(d[:, :want], ed, atol=1e-5)
    d, i = built[t].search(q[:2], 10, allowed_ids=np.array([], dtype=np.int64))
    assert (i == -1).all()


@pytest.mark.parametrize("t", ["Flat", "HNSW32"])
@pytest.mark.parametrize("dense", [True, False])
def test_filter_paths_dense_and_sparse_ids(data, t, dense, monkeypatch):
    """Dense ids use a lookup table (large allowed sets become a bitmap without sorting),
    sparse ids a binary search; small blocks exercise the blocked loops."""
    xb, ids, q = data
    monkeypatch.setattr(vi, "_BLOCK", 256)
    monkeypatch.setattr(vi, "_MASK_MIN", 256)
    ids = np.arange(3000, dtype=np.int64) if dense else ids
    idx = fresh(t, xb, ids)
    idx.remove(ids[:5])  # HNSW: tombstones must stay out of every candidate set
    rng = np.random.default_rng(7)
    for n_allowed in (10, 1500, 2995):
        allowed = rng.choice(ids[5:], n_allowed, replace=False)
        allowed = np.concatenate([allowed, ids[:5], allowed[:4]])  # plus removed ids, duplicates
        d, i = idx.search(q[:8], 10, allowed_ids=allowed)
        pos = np.searchsorted(ids, np.unique(allowed[:n_allowed]))
        ed, ei = exact(xb[pos], ids[pos], q[:8], 10)
        assert (i >= 0).all() and set(i.ravel().tolist()) <= set(allowed[:n_allowed].tolist())
        if t == "Flat" or n_allowed <= vi.EXACT_FILTER_MAX:  # exact paths
            np.testing.assert_array_equal(i, ei)
            np.testing.assert_allclose(d, ed, atol=1e-5)
        else:
            assert recall(i, ei) >= 0.95


@pytest.mark.parametrize("t", ["HNSW32", "IVF16,Flat"])
def test_selective_filter_through_the_index_still_returns_k(built, data, t, monkeypatch):
    """Force the in-index selector path (no exact shortcut) with a very selective filter: rows
    the approximate search leaves short are completed, so k results come back."""
    xb, ids, q = data
    monkeypatch.setattr(vi, "EXACT_FILTER_MAX", 0)
    monkeypatch.setattr(vi, "EXACT_PER_EF", 0)
    allowed = np.random.default_rng(4).choice(ids, 12, replace=False)
    d, i = built[t].search(q, 10, allowed_ids=allowed)
    assert (i >= 0).all()
    assert set(i.ravel().tolist()) <= set(allowed.tolist())
    pos = np.searchsorted(ids, np.sort(allowed))
    _, ei = exact(xb[pos], ids[pos], q, 10)
    assert recall(i, ei) >= 0.95


@pytest.mark.parametrize("t", TYPES)
def test_save_load_round_trip(built, data, t, tmp_path):
    xb, ids, q = data
    idx = fresh(t, xb, ids) if t == "HNSW32" else built[t]
    if t == "HNSW32":
        idx.remove(ids[:10])  # tombstones must survive the file
    f = tmp_path / "x.faiss"
    assert idx.save(f) == [f]  # the files written, for the store's manifest and checksums
    assert sorted(tmp_path.iterdir()) == [f]  # no side file: tombstones live in the id map
    back = VectorIndex.load(f)
    assert back.index_type == idx.index_type
    assert back.ntotal == idx.ntotal and back.tombstones == idx.tombstones
    np.testing.assert_array_equal(back.ids(), idx.ids())
    d0, i0 = idx.search(q, 10)
    d1, i1 = back.search(q, 10)
    np.testing.assert_array_equal(i0, i1)
    np.testing.assert_allclose(d0, d1)
    np.testing.assert_array_equal(back.reconstruct(ids[10:20]), idx.reconstruct(ids[10:20]))
    np.testing.assert_array_equal(back.reconstruct_batch(ids[10:20]), idx.reconstruct(ids[10:20]))
    allowed = ids[100:400]
    np.testing.assert_array_equal(back.search(q, 10, allowed)[1], idx.search(q, 10, allowed)[1])
    assert f.read_bytes()[:4] != b"\x80\x04\x95"[:4]  # a FAISS file, not a pickle


# ---------------------------------------------------------------- tombstones and type switching
def test_hnsw_tombstones_then_rebuild(data):
    xb, ids, q = data
    idx = fresh("HNSW32", xb, ids)
    n_rm = int(vi.TOMBSTONE_REBUILD_FRACTION * 3000) - 10
    idx.remove(ids[:n_rm])
    assert idx.tombstones == n_rm and idx.ntotal == 3000 - n_rm
    assert idx.index.ntotal == 3000  # still in the graph
    _, i = idx.search(q, 10)
    assert (i >= 0).all() and not np.isin(i, ids[:n_rm]).any()
    _, ei = exact(xb[n_rm:], ids[n_rm:], q, 10)
    assert recall(i, ei) >= 0.95
    idx.remove(ids[n_rm : n_rm + 20])  # past the fraction: rebuilt from its own vectors
    assert idx.tombstones == 0 and idx.index.ntotal == idx.ntotal == 3000 - n_rm - 20
    np.testing.assert_array_equal(idx.reconstruct(ids[-3:]), xb[-3:])
    _, i = idx.search(q, 10)
    _, ei = exact(xb[n_rm + 20 :], ids[n_rm + 20 :], q, 10)
    assert recall(i, ei) >= 0.95


def test_auto_switches_type_with_size(data, monkeypatch):
    xb, ids, q = data
    monkeypatch.setattr(vi, "FLAT_MAX", 1000)
    monkeypatch.setattr(vi, "TOMBSTONE_REBUILD_FRACTION", 0.2)
    idx = VectorIndex()  # auto
    idx.add(xb[:900], ids[:900])
    assert idx.index_type == "Flat"
    idx.add(xb[900:1200], ids[900:1200])
    assert idx.index_type == "HNSW32" and idx.ntotal == 1200
    np.testing.assert_array_equal(idx.reconstruct(ids[[0, 950, 1199]]), xb[[0, 950, 1199]])
    _, i = idx.search(q, 10)
    _, ei = exact(xb[:1200], ids[:1200], q, 10)
    assert recall(i, ei) >= 0.95
    idx.remove(ids[:200])  # 1000 live, 200 tombstones (< 20% of 1200): stays as it is
    assert idx.index_type == "HNSW32" and idx.tombstones == 200 and idx.ntotal == 1000
    idx.remove(ids[200:260])  # 260 tombstones > 20%: rebuilt; 940 live >= 1000 * 0.8: still HNSW
    assert idx.index_type == "HNSW32" and idx.tombstones == 0 and idx.ntotal == 940
    idx.remove(ids[260:450])  # 190 > 20% of 940: rebuilt; 750 live < 800: back to exact Flat
    assert idx.index_type == "Flat" and idx.ntotal == 750 and idx.tombstones == 0
    _, i = idx.search(q, 10)
    _, ei = exact(xb[450:1200], ids[450:1200], q, 10)
    np.testing.assert_array_equal(i, ei)


def test_empty_index():
    idx = VectorIndex()
    d, i = idx.search(np.ones(DIM, np.float32) / np.sqrt(DIM), 5)
    assert (i == -1).all() and np.isneginf(d).all()
    assert idx.ntotal == 0 and idx.remove([1, 2]) == 0
