"""Milvus Lite against FAISS HNSW on the same chunk vectors, and end-to-end ``ask`` on each
backend.

Run::

    .venv/bin/python bench/milvus.py [--n 200000] [--queries 300] [--ask 60] [--skip-vectors]

Vectors: the real all-MiniLM-L6-v2 chunk vectors of the bundled + BBC index
(``bench/out/index-bundled-bbc``, built by bench/query.py or bench/memory.py), replicated to
``--n`` with noise exactly as bench/scale.py does (``make_base``); queries are real sentence
vectors of the same index plus a noised copy of each (``make_queries``). Both engines build
HNSW (M=32, efConstruction 40) and search with the efSearch the FAISS store uses at that size
(``index.vector_index.ef_search_for``). Measured: build time (Milvus: insert + index + load),
single-query latency p50/p95 (one thread for FAISS, as the store searches), recall@10 against
exact search, process RSS growth (Milvus Lite runs inside this process) and disk, and filtered
search at 1%, 10% and 50% selectivity (FAISS: ``allowed_ids`` inside the search; Milvus: a
filter expression on an INT64 field).

``--ask N``: the first N questions of eval/data/qa.jsonl through ``RagPipeline.ask`` on the
bundled + BBC index, FAISS directory against the same index copied into Milvus Lite with
``MilvusStore.import_index`` (the same vectors). Results: ``bench/out/milvus_<n>.json``."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import scale  # noqa: E402  (sets OMP_WAIT_POLICY before faiss loads)

import faiss  # noqa: E402

from index import vector_index as vi  # noqa: E402

K = 10
SELECTIVITY = (0.01, 0.10, 0.50)
INSERT_ROWS = 5_000


def real_vectors(n_queries: int) -> tuple[np.ndarray, np.ndarray]:
    """(chunk vectors, query sentence vectors) of the cached bundled + BBC index."""
    from index.embed import MiniLMEmbedder
    from index.store import IndexStore

    if not (common.BBC_INDEX / "manifest.json").exists():
        raise SystemExit(f"{common.BBC_INDEX} is missing: run bench/query.py once to build it")
    ix = IndexStore(common.BBC_INDEX, MiniLMEmbedder()).load()
    chunks = ix.chunk_index.reconstruct(ix.chunk_index.ids())
    keys = ix.sentence_index.ids()
    pick = np.sort(np.random.default_rng(scale.SEED).choice(keys, size=min(n_queries, len(keys)), replace=False))
    return chunks, ix.sentence_index.reconstruct(pick)


def exact(xb: np.ndarray, xq: np.ndarray, allowed: np.ndarray | None = None) -> np.ndarray:
    faiss.omp_set_num_threads(scale.N_CORES)
    if allowed is None:
        return faiss.knn(xq, xb, K, faiss.METRIC_INNER_PRODUCT)[1]
    _, pos = faiss.knn(xq, np.ascontiguousarray(xb[allowed]), K, faiss.METRIC_INNER_PRODUCT)
    return allowed[pos]


def timed(fn, queries: np.ndarray) -> tuple[dict, np.ndarray]:
    wall, got = [], []
    for q in queries:
        t0 = time.perf_counter()
        ids = fn(q)
        wall.append((time.perf_counter() - t0) * 1000)
        got.append(np.pad(np.asarray(ids, np.int64)[:K], (0, max(0, K - len(ids))), constant_values=-1))
    return {"p50_ms": float(np.percentile(wall, 50)), "p95_ms": float(np.percentile(wall, 95))}, np.stack(got)


def disk_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def bench_faiss(xb: np.ndarray, xq: np.ndarray, truth: dict, ef: int) -> list[dict]:
    rss0 = scale.rss_bytes()
    faiss.omp_set_num_threads(scale.N_CORES)
    t0 = time.perf_counter()
    vx = vi.VectorIndex(scale.DIM, vi.HNSW_TYPE, ef_search=ef)
    vx.add(xb, np.arange(len(xb), dtype=np.int64))
    build = time.perf_counter() - t0
    rss = scale.rss_bytes() - rss0
    disk = scale.serialized_bytes(vx.index)
    faiss.omp_set_num_threads(1)
    rows = []
    for sel in (None, *SELECTIVITY):
        allowed = None if sel is None else truth[sel][0]
        lat, got = timed(lambda q: vx.search(q[None, :], K, allowed_ids=allowed)[1][0], xq)
        rows.append({"engine": "FAISS HNSW32", "selectivity": sel, **lat,
                     "recall@10": scale.recall_at_k(got, truth[sel][1])})
    rows[0].update(build_s=build, rss_bytes=rss, disk_bytes=disk)
    return rows


def bench_milvus(xb: np.ndarray, xq: np.ndarray, truth: dict, ef: int, where: Path) -> list[dict]:
    from pymilvus import DataType, MilvusClient

    if where.exists():
        shutil.rmtree(where)
    where.mkdir(parents=True)
    rss0 = scale.rss_bytes()
    c = MilvusClient(str(where / "bench.db"))
    s = c.create_schema(auto_id=False, enable_dynamic_field=False)
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("bucket", DataType.INT64)  # id % 100: "bucket < 10" keeps 10%
    s.add_field("v", DataType.FLOAT_VECTOR, dim=scale.DIM)
    c.create_collection("bench", schema=s)
    ip = c.prepare_index_params()
    ip.add_index(field_name="v", index_type="HNSW", metric_type="IP",
                 params={"M": vi.HNSW_M, "efConstruction": vi.EF_CONSTRUCTION})
    t0 = time.perf_counter()
    c.create_index("bench", ip, sync=False)
    for b in range(0, len(xb), INSERT_ROWS):
        blk = xb[b : b + INSERT_ROWS]
        c.insert("bench", [{"id": b + i, "bucket": (b + i) % 100, "v": v} for i, v in enumerate(blk.tolist())])
    c.flush("bench")  # seal into indexed segments (unsealed rows are scanned one by one)
    c.load_collection("bench")  # waits for the index
    build = time.perf_counter() - t0
    rss = scale.rss_bytes() - rss0
    rows = []
    for sel in (None, *SELECTIVITY):
        expr = "" if sel is None else f"bucket < {int(sel * 100)}"

        def one(q, expr=expr):
            res = c.search("bench", data=[q.tolist()], anns_field="v", limit=K, filter=expr, output_fields=["id"],
                           search_params={"metric_type": "IP", "params": {"ef": max(ef, K)}})
            return [h["id"] for h in res[0]]

        lat, got = timed(one, xq)
        rows.append({"engine": "Milvus Lite HNSW", "selectivity": sel, **lat,
                     "recall@10": scale.recall_at_k(got, truth[sel][1])})
    rows[0].update(build_s=build, rss_bytes=rss, disk_bytes=disk_bytes(where))
    c.close()
    return rows


def bench_ask(n_questions: int, out: Path) -> list[dict]:
    """End-to-end ``ask`` p50 on the bundled + BBC index, FAISS and Milvus Lite."""
    from index.embed import MiniLMEmbedder
    from rag.pipeline import RagPipeline

    emb = MiniLMEmbedder()
    questions = common.load_questions(n_questions)
    pf = RagPipeline(index_dir=common.BBC_INDEX, embedder=emb, backend="faiss")
    uri = out / "milvus-ask" / "m.db"
    if uri.parent.exists():
        shutil.rmtree(uri.parent)
    pm = RagPipeline(index_dir=common.BBC_INDEX, embedder=emb, backend="milvus", milvus_uri=str(uri))
    t0 = time.perf_counter()
    pm.store.import_index(pf.index)
    copy_s = time.perf_counter() - t0
    rows = []
    for name, p in (("faiss", pf), ("milvus", pm)):
        p.warm_up()
        p.ask(questions[0])
        wall, answers = [], []
        for q in questions:
            t = time.perf_counter()
            a = p.ask(q)
            wall.append((time.perf_counter() - t) * 1000)
            answers.append((a.abstained, tuple((c.doc_id, c.start, c.end) for c in a.citations)))
        rows.append({"backend": name, "questions": len(questions), "p50_ms": float(np.percentile(wall, 50)),
                     "p95_ms": float(np.percentile(wall, 95)), "answers": answers})
    same = sum(a == b for a, b in zip(rows[0]["answers"], rows[1]["answers"]))
    for r in rows:
        r.pop("answers")
    rows[1].update(same_answer_as_faiss=same, migrate_s=copy_s)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=200_000, help="chunk vectors (default %(default)s)")
    ap.add_argument("--queries", type=int, default=300, help="real query vectors (plus as many noised)")
    ap.add_argument("--ask", type=int, default=0, help="also time this many questions end to end on each backend")
    ap.add_argument("--skip-vectors", action="store_true", help="only the end-to-end ask")
    ap.add_argument("--out", type=Path, default=common.OUT)
    args = ap.parse_args(argv)
    print(common.machine_header(f"Milvus Lite vs FAISS HNSW, {args.n:,} vectors"), flush=True)
    result: dict = {"n": args.n}
    if not args.skip_vectors:
        base, held = real_vectors(args.queries)
        xb = scale.make_base(base, args.n)
        xq = scale.make_queries(held)
        buckets = np.arange(args.n) % 100
        truth = {None: (None, exact(xb, xq))}
        for sel in SELECTIVITY:
            allowed = np.flatnonzero(buckets < int(sel * 100)).astype(np.int64)
            truth[sel] = (allowed, exact(xb, xq, allowed))
        ef = vi.ef_search_for(args.n)
        print(f"{len(base):,} real chunk vectors -> {args.n:,}; {len(xq):,} queries; efSearch {ef}", flush=True)
        rows = bench_faiss(xb, xq, truth, ef)
        rows += bench_milvus(xb, xq, truth, ef, args.out / "milvus-bench")
        result["vectors"] = rows
        print(common.table(
            ["engine", "filter", "build s", "p50 ms", "p95 ms", "recall@10", "RSS MiB", "disk MiB"],
            [[r["engine"], "none" if r["selectivity"] is None else f"{r['selectivity']:.0%}", r.get("build_s"),
              r["p50_ms"], r["p95_ms"], r["recall@10"],
              r["rss_bytes"] / 2**20 if "rss_bytes" in r else None,
              r["disk_bytes"] / 2**20 if "disk_bytes" in r else None] for r in rows]), flush=True)
        f, m = rows[0], rows[len(rows) // 2]
        print(f"Milvus/FAISS: build {m['build_s'] / f['build_s']:.2f}x, p50 {m['p50_ms'] / f['p50_ms']:.2f}x", flush=True)
    if args.ask:
        result["ask"] = bench_ask(args.ask, args.out)
        print(common.table(["backend", "questions", "p50 ms", "p95 ms", "same answer", "migrate s"],
                           [[r["backend"], r["questions"], r["p50_ms"], r["p95_ms"], r.get("same_answer_as_faiss"),
                             r.get("migrate_s")] for r in result["ask"]]), flush=True)
    common.write_json(args.out / f"milvus_{args.n}.json", result)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.exit(main())
