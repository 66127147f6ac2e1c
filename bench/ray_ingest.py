"""Ingest throughput on Ray Data (1 and 2 encoder workers) against the single process.

Run::

    .venv/bin/python bench/ray_ingest.py [--articles 200]

The same BBC articles (an evenly spaced sample of the staged files, bench/common.py) are chunked
and embedded with all-MiniLM-L6-v2 three ways: ``index.update.embed_articles`` in this process
(torch on every core), and ``index.ray_ingest.ray_embed`` on local Ray with 1 and 2 workers
(one CPU and one model each). Reading/cleaning is not timed (it is ~1% of the work). Ray's start
and each worker's model load are reported apart from the steady throughput. Results:
``bench/out/ray_ingest.json``."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--articles", type=int, default=200)
    ap.add_argument("--out", type=Path, default=common.OUT)
    args = ap.parse_args(argv)
    import torch

    from index.chunking import ChunkSettings
    from index.embed import MiniLMEmbedder
    from index.ingest import collect
    from index.ray_ingest import ensure_ray, ray_embed
    from index.update import embed_articles

    print(common.machine_header(f"Ray ingest, {args.articles} BBC articles"), flush=True)
    articles = collect(common.bbc_files(args.articles)).articles
    settings = ChunkSettings()
    emb = MiniLMEmbedder()
    emb.warm_up()
    rows = []
    t0 = time.perf_counter()
    e = embed_articles(emb, settings, articles)
    single = time.perf_counter() - t0
    n_chunks = len(e.chunks)
    rows.append({"run": f"single process (torch, {torch.get_num_threads()} threads)", "workers": 0,
                 "seconds": single, "chunks_per_s": n_chunks / single})
    t0 = time.perf_counter()
    ray = ensure_ray()
    start = time.perf_counter() - t0
    for workers in (1, 2):
        t0 = time.perf_counter()
        got = sum(len(b.chunks) for b in ray_embed(emb, settings, workers=workers)(articles))
        secs = time.perf_counter() - t0
        assert got == n_chunks, (got, n_chunks)
        rows.append({"run": f"Ray, {workers} worker(s)", "workers": workers, "seconds": secs,
                     "chunks_per_s": n_chunks / secs})
    ray.shutdown()
    for r in rows:
        r["vs_single"] = r["chunks_per_s"] / rows[0]["chunks_per_s"]
    print(f"{len(articles)} articles, {n_chunks} chunks; Ray start {start:.1f} s (not in the rows)")
    print(common.table(["run", "seconds", "chunks/s", "x single"],
                       [[r["run"], r["seconds"], r["chunks_per_s"], r["vs_single"]] for r in rows]), flush=True)
    common.write_json(args.out / "ray_ingest.json", {"articles": len(articles), "chunks": n_chunks,
                                                     "ray_start_s": start, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
