"""A FAISS vector index with int64 ids, filtered search, updates and a size-driven index type.

Inner product on L2-normalised 384-dim vectors (= cosine). The index type follows the number of
live vectors (``choose_index_type``); the numbers behind the thresholds are in
``docs/benchmarks.md`` ("Scale: index choice"), produced by ``bench/scale.py``:

* below ``FLAT_MAX`` vectors: ``"Flat"``: exact, no build cost, real removal. Its single-query
  time grows linearly, 0.10-0.16 ms of CPU per 1,000 vectors (1 thread; a memory-bound scan of
  1.5 KB per vector; the spread is the shared machine's load), so it passes
  ``LATENCY_BUDGET_MS`` (5 ms CPU, ~10 ms wall on the shared 2-core machine) between 30,000 and
  50,000 vectors: 2.3-4.1 ms at 25k, 5.1-8.0 ms at 50k, 92-108 ms at 1M;
* from ``FLAT_MAX`` on: ``"HNSW32"`` (M=32, efConstruction ``EF_CONSTRUCTION``, efSearch by
  size, ``ef_search_for``): 0.6-0.8 ms per query at 100k (efSearch 128, recall@10 0.988 against
  exact) and 1.7-2.4 ms at 1M (efSearch 512, recall@10 0.962), in the memory of the raw vectors
  plus the graph (1.18x Flat). IVF-Flat needs 4-5x the time of HNSW for less recall, and IVF-PQ
  (48 bytes a vector) tops out at recall@10 0.61 (100k) / 0.43 (1M) without re-ranking.

The store sees one class, ``VectorIndex``:

* ids are external int64 (>= 0). ``Flat`` and ``HNSW`` sit in an ``IndexIDMap2`` (so
  ``reconstruct`` by id works); ``IVF`` types keep the ids natively with a hash-table direct map;
* ``search(..., allowed_ids=...)`` applies the filter inside the FAISS search: Flat and HNSW
  search their inner index with ``SearchParameters``/``SearchParametersHNSW(sel=...)`` and an
  ``IDSelectorBitmap`` over internal positions (O(1) per visited vector; tombstones are simply
  not in it), IVF with an ``IDSelectorBatch`` of ids. For HNSW, efSearch grows as the allowed
  share shrinks (``FILTER_EF_*``), and candidate sets small enough to score exactly faster
  than that walk are scored exactly from the stored vectors. A row that an approximate
  search still leaves short of ``k`` is retried with 4x efSearch/nprobe, then exactly, so a
  row always holds ``min(k, live allowed ids)`` results;
* HNSW cannot remove: ``remove`` turns entries into tombstones (their id-map entry becomes
  ``TOMBSTONE``, so they stay in the graph for navigation but every search excludes them through
  its selector; they are written with the index, no side file). When tombstones pass
  ``TOMBSTONE_REBUILD_FRACTION`` of the stored vectors the index is rebuilt from its own stored
  vectors (no second copy of the vectors is kept: that would double memory);
* when the live count crosses ``FLAT_MAX`` (or falls below ``FLAT_MAX * SHRINK_HYSTERESIS`` at a
  rebuild) the index rebuilds itself as the type ``choose_index_type`` names. A rebuild holds the
  old and new index at once (about 2x memory for its duration).

Concurrency: searches may run in parallel threads; ``add``/``remove``/``rebuild`` need
exclusive access (the caller's lock).

Threads: this module does not change FAISS's OpenMP thread count. Builds use all cores; for
single queries set ``faiss.omp_set_num_threads(1)`` (measured: an exact scan with 2 threads
takes 2-4x the wall time of 1 thread on the shared machine; HNSW queries do not parallelise).

Persistence is ``faiss.write_index``/``faiss.read_index`` only (no pickle); efSearch/nprobe
travel inside the FAISS file."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

import faiss

DIM = 384
METRIC = faiss.METRIC_INNER_PRODUCT

# ---- thresholds (measured by bench/scale.py; see docs/benchmarks.md "Scale: index choice") ----
LATENCY_BUDGET_MS = 5.0  # single-query p50 CPU budget of the vector search (~10 ms wall on the shared box)
FLAT_MAX = 30_000  # from this many live vectors on, an HNSW graph replaces exact Flat search
SHRINK_HYSTERESIS = 0.8  # an approximate index goes back to Flat only below FLAT_MAX * this
HNSW_M = 32
HNSW_TYPE = f"HNSW{HNSW_M}"
EF_CONSTRUCTION = 40  # faiss default (one-off check at 50k: 20 builds 2x faster, -1.3 points recall@10)
EF_SEARCH = 128  # efSearch up to EF_SEARCH_REF_N vectors: recall@10 0.988 at 100k ...
EF_SEARCH_REF_N = 100_000
EF_SEARCH_GROWTH = 0.6  # ... then growing as n**0.6: 512 at 1M, where 128 gives only 0.855 and 512 0.962
EF_SEARCH_MAX = 1024  # (1M: 1024 -> recall@10 0.982 at 4.6 ms)
TOMBSTONE_REBUILD_FRACTION = 0.15  # rebuild HNSW past this deleted share: dead weight <= 1/0.85 = 1.18x
NPROBE = 32  # for IVF types (not chosen automatically)
IVF_TRAIN_PER_LIST = 64  # k-means training sample: this many vectors per IVF list ...
IVF_TRAIN_MIN = 10_000  # ... and at least this many (PQ's 256 centroids per sub-quantizer want 9,984)
# filtered search: a graph walk restricted to a small share of the vectors needs a larger
# efSearch for the same recall, and a small candidate set is cheaper to score exactly (~0.7 us
# per candidate) than a walk (~7 us per efSearch unit)
FILTER_EF_FRACTION = 0.2  # below this allowed share, efSearch grows as FILTER_EF_FRACTION / share ...
FILTER_EF_MAX_SCALE = 8  # ... by at most this factor ...
FILTER_EF_MAX = 1024  # ... and to at most this (1M, 5% allowed: efSearch 2048 took 20 ms)
EXACT_PER_EF = 10  # score exactly when candidates <= EXACT_PER_EF * the efSearch the walk would use
EXACT_FILTER_MAX = 2048  # ... and always up to this many (IVF too)
EF_CAP = 4096  # upper bound of a retry's efSearch (4x) when a filtered walk came back short

TOMBSTONE = -1  # id-map value of a deleted HNSW entry
_BLOCK = 65_536  # vectors per batch when rebuilding or scanning exactly
_MASK_MIN = 4096  # larger allowed sets (dense ids) become a mask directly: sorting them cost ~7 ms at 50k
_MAX_ID = np.iinfo(np.int64).max

_TYPES = re.compile(r"^(Flat|HNSW\d+(,Flat)?|IVF\d+,(Flat|PQ\d+(x\d+)?))$")


def choose_index_type(n: int) -> str:
    """FAISS ``index_factory`` string for an index of ``n`` live vectors: exact ``"Flat"`` below
    ``FLAT_MAX``, ``"HNSW32"`` from there on."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    return "Flat" if n < FLAT_MAX else HNSW_TYPE


def ef_search_for(n: int) -> int:
    """HNSW efSearch for ``n`` live vectors: ``EF_SEARCH`` up to ``EF_SEARCH_REF_N``, then
    growing as ``n ** EF_SEARCH_GROWTH`` (rounded up to a multiple of 32), at most
    ``EF_SEARCH_MAX``. Measured points: 100k/128 -> recall@10 0.988, 1M/512 -> 0.962."""
    if n <= EF_SEARCH_REF_N:
        return EF_SEARCH
    ef = EF_SEARCH * (n / EF_SEARCH_REF_N) ** EF_SEARCH_GROWTH
    return int(min(EF_SEARCH_MAX, 32 * math.ceil(ef / 32)))


def _kind(index_type: str) -> str:
    if not _TYPES.match(index_type):
        raise ValueError(
            f"unsupported index type {index_type!r}: use 'Flat', 'HNSW<M>', 'IVF<n>,Flat' or 'IVF<n>,PQ<m>[x<bits>]'"
        )
    return "hnsw" if index_type.startswith("HNSW") else "ivf" if index_type.startswith("IVF") else "flat"


def _describe(index, where: object = "index") -> tuple[str, str]:
    """(canonical type string, kind) of a FAISS index built by this module."""
    if isinstance(index, faiss.IndexIDMap2):
        inner = faiss.downcast_index(index.index)
        if isinstance(inner, faiss.IndexHNSWFlat):
            return f"HNSW{inner.hnsw.nb_neighbors(1)}", "hnsw"
        if isinstance(inner, faiss.IndexFlat):
            return "Flat", "flat"
        raise ValueError(f"{where}: unsupported inner index {type(inner).__name__}")
    if isinstance(index, faiss.IndexIVFFlat):
        return f"IVF{index.nlist},Flat", "ivf"
    if isinstance(index, faiss.IndexIVFPQ):
        return f"IVF{index.nlist},PQ{index.pq.M}x{index.pq.nbits}", "ivf"
    raise ValueError(f"{where}: not a VectorIndex index ({type(index).__name__})")


def _train_size(ivf_index) -> int:
    return max(IVF_TRAIN_MIN, IVF_TRAIN_PER_LIST * faiss.extract_index_ivf(ivf_index).nlist)


def _sample(x: np.ndarray, n: int) -> np.ndarray:
    if len(x) <= n:
        return x
    return x[np.sort(np.random.default_rng(0).choice(len(x), size=n, replace=False))]


def _as_vectors(x, dim: int) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or x.shape[1] != dim:
        raise ValueError(f"expected vectors of shape (n, {dim}), got {x.shape}")
    return x


def _as_ids(ids) -> np.ndarray:
    ids = np.ascontiguousarray(np.asarray(ids).reshape(-1), dtype=np.int64)
    if ids.size and ids.min() < 0:
        raise ValueError("ids must be >= 0")
    return ids


class VectorIndex:
    """A FAISS inner-product index over int64 ids; see the module docstring.

    ``index_type=None`` (the default) lets the index pick and switch its type by size."""

    def __init__(
        self,
        dim: int = DIM,
        index_type: str | None = None,
        *,
        ef_search: int | None = None,
        nprobe: int = NPROBE,
        ef_construction: int = EF_CONSTRUCTION,
    ) -> None:
        self.dim = int(dim)
        self.auto = index_type is None
        self.ef_search = ef_search  # None: by size (ef_search_for), else pinned
        self.nprobe = int(nprobe)
        self.ef_construction = int(ef_construction)
        self.index = self._new_faiss_index(index_type or choose_index_type(0))
        self.index_type, self.kind = _describe(self.index)
        self._dead = 0  # tombstones (HNSW only)
        self._live_cache: tuple[np.ndarray, np.ndarray] | None = None  # sorted ids, their positions
        self._lookup_cache: tuple[object, np.ndarray | None] = (None, None)  # dense id -> position

    # ------------------------------------------------------------------ construction
    def _new_faiss_index(self, index_type: str):
        kind = _kind(index_type)
        if kind == "ivf":
            index = faiss.index_factory(self.dim, index_type, METRIC)
            index.set_direct_map_type(faiss.DirectMap.Hashtable)
            index.nprobe = self.nprobe
            if isinstance(index, faiss.IndexIVFPQ):
                # polysemous training (on by default) only serves Hamming-filtered search, which
                # is not used here, and takes minutes (measured: 200 s for 3,000 vectors, PQx8)
                index.do_polysemous_training = False
                # PQ k-means runs on 8-dim sub-vectors, where BLAS is slow: 64 points per
                # centroid and 10 iterations (instead of 256 and 25) keep training to seconds
                index.pq.cp.max_points_per_centroid = 64
                index.pq.cp.niter = 10
            return index
        index = faiss.index_factory(self.dim, "IDMap2," + index_type, METRIC)
        if kind == "hnsw":
            inner = faiss.downcast_index(index.index)
            inner.hnsw.efConstruction = self.ef_construction
            inner.hnsw.efSearch = self.ef_search or EF_SEARCH  # informational: searches pass their own
        return index

    @property
    def ntotal(self) -> int:
        """Live vectors (tombstones excluded)."""
        return int(self.index.ntotal) - self._dead

    def current_ef_search(self) -> int:
        """The efSearch unfiltered HNSW searches use now (pinned, or by the live count)."""
        return int(self.ef_search) if self.ef_search is not None else ef_search_for(self.ntotal)

    @property
    def tombstones(self) -> int:
        return self._dead

    def _id_map(self) -> np.ndarray:
        """Internal position -> external id, as a view on FAISS's memory (Flat/HNSW only).
        Valid until the index changes."""
        m = self.index.id_map
        if m.size() == 0:
            return np.zeros(0, dtype=np.int64)
        return faiss.rev_swig_ptr(m.data(), m.size())

    def _live(self) -> tuple[np.ndarray, np.ndarray]:
        """(sorted live ids, their internal positions; for IVF the positions are the ids)."""
        if self._live_cache is None:
            if self.kind == "ivf":
                ids = self._ivf_ids()
                ids.sort()
                self._live_cache = (ids, ids)
            else:
                idm = self._id_map()
                pos = np.flatnonzero(idm != TOMBSTONE) if self._dead else np.arange(idm.size)
                ext = idm[pos]
                order = np.argsort(ext, kind="stable")
                self._live_cache = (ext[order], pos[order])
        return self._live_cache

    def _lookup(self) -> np.ndarray | None:
        """Dense id -> position table (-1: absent), when the ids are dense enough for it to cost
        at most ~4 int64 per live vector (e.g. sequential chunk ids); None otherwise."""
        live = self._live()
        key, table = self._lookup_cache
        if key is not live:
            ids, pos = live
            table = None
            if ids.size and ids[-1] < 4 * ids.size + 1024:
                table = np.full(int(ids[-1]) + 1, -1, dtype=np.int64)
                table[ids] = pos
            self._lookup_cache = (live, table)
        return table

    def _ivf_ids(self) -> np.ndarray:
        ivf = faiss.extract_index_ivf(self.index)
        invlists = ivf.invlists
        parts = []
        for lst in range(ivf.nlist):
            n = invlists.list_size(lst)
            if n:
                parts.append(faiss.rev_swig_ptr(invlists.get_ids(lst), n).copy())
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def ids(self) -> np.ndarray:
        """Sorted live ids."""
        return self._live()[0].copy()

    def contains(self, ids) -> np.ndarray:
        """Boolean mask: which of ``ids`` are live in the index."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        live = self._live()[0]
        if live.size == 0:
            return np.zeros(ids.shape, dtype=bool)
        at = np.minimum(np.searchsorted(live, ids), live.size - 1)
        return live[at] == ids

    # ------------------------------------------------------------------ updates
    def add(self, vectors, ids) -> None:
        """Add vectors (normalised float32, shape (n, dim)) under new, distinct ids >= 0.
        May rebuild the index as another type when the live count crosses ``FLAT_MAX``."""
        x = _as_vectors(vectors, self.dim)
        ids = _as_ids(ids)
        if len(ids) != len(x):
            raise ValueError(f"{len(x)} vectors but {len(ids)} ids")
        if len(ids) == 0:
            return
        if np.unique(ids).size != ids.size:
            raise ValueError("duplicate ids in one add")
        present = self.contains(ids)
        if present.any():
            raise ValueError(f"ids already in the index (remove them first): {ids[present][:10].tolist()}")
        if self.auto:  # switch type before adding, so a bulk load builds the target directly
            target = self._target_type(self.ntotal + len(ids))
            if target != self.index_type:
                self.rebuild(target)
        if self.kind == "ivf" and not self.index.is_trained:
            self.index.train(_sample(x, _train_size(self.index)))
        first = int(self.index.ntotal)
        self.index.add_with_ids(x, ids)
        if self._live_cache is not None:  # merge in O(n) instead of re-sorting everything
            live, pos = self._live_cache
            order = np.argsort(ids, kind="stable")
            new_ids = ids[order]
            new_pos = new_ids if self.kind == "ivf" else first + order.astype(np.int64)
            at = np.searchsorted(live, new_ids)
            live = np.insert(live, at, new_ids)
            self._live_cache = (live, live if self.kind == "ivf" else np.insert(pos, at, new_pos))

    def _target_type(self, n: int) -> str:
        target = choose_index_type(n)
        if self.kind != "flat" and target == "Flat" and n >= FLAT_MAX * SHRINK_HYSTERESIS:
            return self.index_type  # no flip-flopping just below the threshold
        return target

    def remove(self, ids) -> int:
        """Remove ids (absent ones are ignored); returns how many were removed. HNSW entries
        become tombstones; past ``TOMBSTONE_REBUILD_FRACTION`` the index is rebuilt."""
        ids = np.unique(_as_ids(ids))
        if ids.size == 0 or self.ntotal == 0:
            return 0
        live, pos = self._live()
        at = np.minimum(np.searchsorted(live, ids), live.size - 1)
        hit = live[at] == ids
        if not hit.any():
            return 0
        if self.kind == "hnsw":
            idm = self._id_map()
            idm[pos[at[hit]]] = TOMBSTONE
            self.index.construct_rev_map()
            self._dead += int(hit.sum())
            removed = int(hit.sum())
            self._live_cache = (np.delete(live, at[hit]), np.delete(pos, at[hit]))
            if self._dead > TOMBSTONE_REBUILD_FRACTION * self.index.ntotal:
                self.rebuild()
            return removed
        gone = ids[hit]
        # IVF's hash-table direct map only removes through an IDSelectorArray
        sel = faiss.IDSelectorArray(gone) if self.kind == "ivf" else faiss.IDSelectorBatch(gone)
        removed = int(self.index.remove_ids(sel))
        self._live_cache = None
        if self.auto and self._target_type(self.ntotal) != self.index_type:
            self.rebuild()
        return removed

    def _live_blocks(self):
        """Yield (vectors, ids) of live entries in blocks, from the index's own storage."""
        if self.kind == "ivf":
            ids = self._live()[0]
            for b in range(0, ids.size, _BLOCK):
                blk = ids[b : b + _BLOCK]
                yield self.index.reconstruct_batch(blk), blk
            return
        n = int(self.index.ntotal)
        storage = self.index.index
        if self.kind == "hnsw":
            storage = faiss.downcast_index(self.index.index).storage
        storage = faiss.downcast_index(storage)
        for b in range(0, n, _BLOCK):
            e = min(n, b + _BLOCK)
            blk_ids = self._id_map()[b:e].copy()
            vecs = storage.reconstruct_n(b, e - b)
            keep = blk_ids != TOMBSTONE
            if keep.any():
                yield vecs[keep], blk_ids[keep]

    def rebuild(self, index_type: str | None = None) -> None:
        """Rebuild from the stored vectors, dropping tombstones. ``index_type`` defaults to the
        size-chosen type (auto) or the current one. Peak memory: old + new index."""
        if index_type is None:
            index_type = self._target_type(self.ntotal) if self.auto else self.index_type
        kind = _kind(index_type)
        new = self._new_faiss_index(index_type)
        if kind == "ivf" and self.ntotal:
            new.train(self._training_sample(new))
        for vecs, ids in self._live_blocks():
            new.add_with_ids(np.ascontiguousarray(vecs), ids)
        self.index = new
        self.index_type, self.kind = _describe(new)
        self._dead = 0
        self._live_cache = None

    def _training_sample(self, ivf_index) -> np.ndarray:
        want = _train_size(ivf_index)
        ids = self._live()[0]
        if ids.size > want:
            ids = np.sort(np.random.default_rng(0).choice(ids, size=want, replace=False))
        return self.reconstruct(ids)

    # ------------------------------------------------------------------ reading
    def reconstruct(self, ids) -> np.ndarray:
        """The stored vectors of ``ids`` (exact for Flat/HNSW/IVF-Flat, decoded for PQ).
        Raises KeyError for ids that are not live."""
        ids = _as_ids(ids)
        if ids.size == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        missing = ~self.contains(ids)
        if missing.any():
            raise KeyError(f"ids not in the index: {ids[missing][:10].tolist()}")
        return self.index.reconstruct_batch(ids)

    reconstruct_batch = reconstruct  # the FAISS name, for callers written against a bare faiss index

    def _effort(self, scale: float = 1.0) -> int:
        """efSearch (HNSW) or nprobe (IVF) for a search ``scale`` times as wide as an unfiltered
        one; a selectivity scale stops at ``FILTER_EF_MAX``/nlist, a retry (x4) at ``EF_CAP``."""
        if self.kind == "ivf":
            return min(faiss.extract_index_ivf(self.index).nlist, int(self.nprobe * scale))
        ef = self.current_ef_search()
        return max(ef, min(FILTER_EF_MAX, int(ef * scale)))

    def _params(self, sel, effort: int):
        if self.kind == "hnsw":
            return faiss.SearchParametersHNSW(sel=sel, efSearch=min(EF_CAP, effort))
        if self.kind == "ivf":
            return faiss.SearchParametersIVF(sel=sel, nprobe=min(faiss.extract_index_ivf(self.index).nlist, effort))
        return faiss.SearchParameters(sel=sel) if sel is not None else None

    def _storage(self) -> np.ndarray:
        """(stored vectors, dim) view on FAISS's memory by internal position (Flat/HNSW).
        Valid until the index changes."""
        inner = faiss.downcast_index(self.index.index)
        flat = faiss.downcast_index(inner.storage) if self.kind == "hnsw" else inner
        n = int(flat.ntotal)
        if n == 0:
            return np.zeros((0, self.dim), np.float32)
        return faiss.rev_swig_ptr(flat.get_xb(), n * self.dim).reshape(n, self.dim)

    def _candidates(self, allowed_ids) -> tuple[np.ndarray | None, np.ndarray | None, int]:
        """Live candidates among ``allowed_ids``: (distinct sorted positions or None, boolean
        mask over positions or None, count). Positions are internal for Flat/HNSW, ids for IVF.
        Allowed sets over dense ids larger than ``_MASK_MIN`` come back as a mask only (O(n),
        no sorting)."""
        a = _as_ids(allowed_ids)
        table = self._lookup()
        if table is not None:
            p = table[a[a < table.size]]
            p = p[p >= 0]
            if self.kind != "ivf" and p.size > _MASK_MIN:
                mask = np.zeros(int(self.index.ntotal), dtype=bool)
                mask[p] = True
                return None, mask, int(np.count_nonzero(mask))
            p = np.unique(p)
            return p, None, int(p.size)
        live, pos = self._live()
        if live.size == 0 or a.size == 0:
            return np.zeros(0, np.int64), None, 0
        a = np.unique(a)
        at = np.minimum(np.searchsorted(live, a), live.size - 1)
        p = np.sort(pos[at[live[at] == a]])
        return p, None, int(p.size)

    def search(self, query_vectors, k: int, allowed_ids: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` by inner product: (scores float32 (nq, k), ids int64 (nq, k)), best first.
        With ``allowed_ids`` only those ids are candidates: the filter runs inside the FAISS
        search (an ``IDSelectorBitmap`` over internal positions for Flat/HNSW, an
        ``IDSelectorBatch`` of ids for IVF). Rows hold ``min(k, live candidates)`` results,
        padded with score -inf and id -1."""
        q = _as_vectors(query_vectors, self.dim)
        k = int(k)
        if k <= 0:
            raise ValueError("k must be >= 1")
        nq = len(q)
        if allowed_ids is None and self.kind == "flat":
            # the common case, kept lean: exact and complete, FAISS pads with id -1
            d, i = self.index.search(q, k)
            d[i < 0] = -np.inf
            return d, i
        cand = mask = None
        if allowed_ids is None:
            n_cand = self.ntotal
        else:
            cand, mask, n_cand = self._candidates(allowed_ids)
        if n_cand == 0:
            return np.full((nq, k), -np.inf, np.float32), np.full((nq, k), -1, np.int64)
        filtered = allowed_ids is not None
        effort = self._effort() if self.kind != "flat" else 0
        if filtered and self.kind != "flat":
            share = n_cand / max(1, self.ntotal)
            effort = self._effort(min(FILTER_EF_MAX_SCALE, max(1.0, FILTER_EF_FRACTION / share)))
            walk = effort if self.kind == "hnsw" else 0
            if n_cand <= max(EXACT_FILTER_MAX, EXACT_PER_EF * walk):
                return self._exact(q, k, cand if cand is not None else np.flatnonzero(mask))
        if not filtered:
            # through the id map; tombstones carry id -1, outside the range
            target = self.index
            sel = faiss.IDSelectorRange(0, _MAX_ID) if self._dead else None
        elif self.kind == "ivf":
            target, sel = self.index, faiss.IDSelectorBatch(cand)
        else:
            # the inner index, with a bitmap over internal positions: O(1) per visited vector
            target = self.index.index
            if mask is None:
                mask = np.zeros(int(self.index.ntotal), dtype=bool)
                mask[cand] = True
            bitmap = np.packbits(mask, bitorder="little")
            sel = faiss.IDSelectorBitmap(bitmap)
        d, i = target.search(q, k, params=self._params(sel, effort))
        want = min(k, n_cand)
        short = np.flatnonzero((i[:, :want] < 0).any(axis=1))
        if short.size and self.kind != "flat":
            d2, i2 = target.search(q[short], k, params=self._params(sel, effort * 4))
            d[short], i[short] = d2, i2
            short = short[(i2[:, :want] < 0).any(axis=1)]
        if filtered and self.kind != "ivf":
            idm = self._id_map()
            i = np.where(i >= 0, idm[np.maximum(i, 0)], -1)
        if short.size:  # still short: exact over the candidates
            if not filtered:
                cand = np.sort(self._live()[1])
            elif cand is None:
                cand = np.flatnonzero(mask)
            d[short], i[short] = self._exact(q[short], k, cand)
        d[i < 0] = -np.inf
        return d, i

    def _exact(self, q: np.ndarray, k: int, cand: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-k of ``q`` over ``cand`` (sorted internal positions for Flat/HNSW, ids for
        IVF), scored from the stored vectors."""
        nq = len(q)
        best_d = np.full((nq, k), -np.inf, np.float32)
        best_i = np.full((nq, k), -1, np.int64)
        ivf = self.kind == "ivf"
        for b in range(0, cand.size, _BLOCK):
            blk = cand[b : b + _BLOCK]
            if ivf:
                vecs, blk_ids = self.index.reconstruct_batch(blk), blk
            else:
                vecs, blk_ids = self._storage()[blk], self._id_map()[blk]
            kk = min(k, len(blk))
            # faiss's scan, not numpy's matmul: single-threaded under omp_set_num_threads(1)
            # (BLAS thread wake-ups cost milliseconds on a busy machine)
            s, pos = faiss.knn(q, np.ascontiguousarray(vecs), kk, faiss.METRIC_INNER_PRODUCT)
            d = np.concatenate([best_d, s], axis=1)
            i = np.concatenate([best_i, blk_ids[pos]], axis=1)
            top = np.argpartition(-d, k - 1, axis=1)[:, :k]  # d has > k columns
            best_d = np.take_along_axis(d, top, axis=1)
            best_i = np.take_along_axis(i, top, axis=1)
        order = np.argsort(-best_d, axis=1, kind="stable")
        return np.take_along_axis(best_d, order, 1), np.take_along_axis(best_i, order, 1)

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> list[Path]:
        """Write the FAISS index to ``path``: vectors, ids, tombstones, nprobe, and the efSearch
        in effect (for plain FAISS readers; ``load`` sizes efSearch again unless pinned).
        Returns the files written (only ``path``: there is no side file), for manifests and
        checksums."""
        if self.kind == "hnsw":
            faiss.downcast_index(self.index.index).hnsw.efSearch = self.current_ef_search()
        elif self.kind == "ivf":
            self.index.nprobe = self.nprobe
        faiss.write_index(self.index, str(path))
        return [Path(path)]

    @classmethod
    def load(cls, path: str | Path, *, auto: bool = True, ef_search: int | None = None) -> VectorIndex:
        """Read an index written by ``save``. ``auto`` lets it keep switching type by size;
        ``ef_search`` pins HNSW's efSearch (default: by size, ``ef_search_for``)."""
        index = faiss.read_index(str(path))
        self = cls.__new__(cls)
        self.auto = auto
        self._live_cache = None
        self._lookup_cache = (None, None)
        self._dead = 0
        self.ef_construction = EF_CONSTRUCTION
        self.ef_search, self.nprobe = ef_search, NPROBE
        self.dim = int(index.d)
        self.index = index
        self.index_type, self.kind = _describe(index, path)
        if self.kind == "hnsw":
            hnsw = faiss.downcast_index(index.index).hnsw
            self.ef_construction = int(hnsw.efConstruction)
            self._dead = int((self._id_map() == TOMBSTONE).sum())
        elif self.kind == "ivf":
            self.nprobe = int(index.nprobe)
            index.set_direct_map_type(faiss.DirectMap.Hashtable)
        if index.metric_type != METRIC:
            raise ValueError(f"{path}: metric is not inner product")
        return self

    def __repr__(self) -> str:
        return f"VectorIndex({self.index_type}, ntotal={self.ntotal}, tombstones={self._dead}, auto={self.auto})"
