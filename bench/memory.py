"""Peak memory (resident set size) of indexing and of serving, each in a fresh child process.

Run::

    .venv/bin/python bench/memory.py                    # bundled 5 + all 2,225 BBC articles
    .venv/bin/python bench/memory.py --limit 100        # quick
    .venv/bin/python bench/memory.py --no-langchain-index   # skip the slow LangChain indexing child

Each child reports ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` (peak RSS of that process) at
its end, and its current RSS (``VmRSS``) after each step. Children:

* model only (the floor of every process here): import torch, load MiniLM, embed one query;
* project indexing: ``collect`` + ``IndexStore.update`` of bundled + BBC into a fresh directory
  (the cached bench/out/index-bundled-bbc when it is missing or stale, so bench/query.py can
  reuse it; else a temporary directory);
* LangChain indexing (baseline): 1000/200 splitter + ``FaissVectorStore`` over the same
  articles, embedding everything (the vectors are then saved for the serving child and
  bench/query.py);
* project serving: ``RagPipeline`` on the bundled + BBC index, ``warm_up()``, then 50 questions
  of eval/data/qa.jsonl through ``ask``;
* LangChain serving (baseline): the same store built from cached vectors (like
  ``FAISS.load_local``) and 50 ``similarity_search`` calls.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

N_QUESTIONS = 50


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


# ---------------------------------------------------------------------------------------------
# children
# ---------------------------------------------------------------------------------------------
def child(mode: str, params: dict) -> dict:
    t0 = time.perf_counter()
    marks = [("start", rss_mb())]
    limit = params["limit"]
    if mode == "model":
        from index.embed import MiniLMEmbedder

        e = MiniLMEmbedder()
        e.model
        marks.append(("model loaded", rss_mb()))
        e.embed_query("How many rockets were fired?")
        marks.append(("one query embedded", rss_mb()))
    elif mode == "project-index":
        from index.embed import MiniLMEmbedder
        from index.ingest import collect
        from index.store import IndexStore

        e = MiniLMEmbedder()
        e.warm_up()
        marks.append(("model loaded", rss_mb()))
        corpus = collect(common.corpus_paths(limit))
        marks.append((f"{len(corpus.articles)} articles read", rss_mb()))
        target = Path(params["index_dir"])
        store = IndexStore(target, e)
        report = store.update(corpus, prune=True, rebuild=True)
        marks.append((f"{report.chunks_embedded} chunks indexed", rss_mb()))
    elif mode == "langchain-index":
        from index.embed import MiniLMEmbedder

        e = MiniLMEmbedder()
        e.warm_up()
        marks.append(("model loaded", rss_mb()))
        articles = _articles(limit)
        marks.append((f"{len(articles)} articles read", rss_mb()))
        store, n, _ = common.langchain_store(articles, e, cache="refresh")  # embeds all; saves for reuse
        marks.append((f"{n} chunks indexed", rss_mb()))
    elif mode == "project-serve":
        from rag.pipeline import RagPipeline

        p = RagPipeline(index_dir=params["index_dir"])
        p.index
        marks.append((f"index loaded ({len(p.index.articles)} articles, {len(p.index.chunks)} chunks)", rss_mb()))
        p.warm_up()
        marks.append(("model + spaCy loaded (warm_up)", rss_mb()))
        for q in common.load_questions(N_QUESTIONS):
            p.ask(q)
        marks.append((f"{N_QUESTIONS} questions answered", rss_mb()))
    elif mode == "langchain-serve":
        from index.embed import MiniLMEmbedder

        e = MiniLMEmbedder()
        e.warm_up()
        marks.append(("model loaded", rss_mb()))
        store, n, _ = common.langchain_store(_articles(limit), e, cache="use")
        marks.append((f"store loaded ({n} chunks, cached vectors)", rss_mb()))
        for q in common.load_questions(N_QUESTIONS):
            store.similarity_search(q, k=5)
        marks.append((f"{N_QUESTIONS} searches", rss_mb()))
    else:
        raise SystemExit(f"unknown mode {mode}")
    return {"mode": mode, "peak_mb": peak_mb(), "marks": marks, "seconds": time.perf_counter() - t0}


def _articles(limit) -> dict[str, str]:
    """The same article set the project indexes (file name -> text, duplicates dropped)."""
    from index.ingest import collect

    return {a.source: a.text for a in collect(common.corpus_paths(limit)).articles}


def run_child(mode: str, params: dict) -> dict:
    log(f"child: {mode} ...")
    out = subprocess.run([sys.executable, __file__, "--child", mode, json.dumps(params)], capture_output=True,
                         text=True)
    if out.returncode != 0:
        raise SystemExit(f"{mode} child failed:\n{out.stderr[-2000:]}")
    res = json.loads(out.stdout.strip().splitlines()[-1])
    log(f"  peak RSS {res['peak_mb']:.0f} MB, {res['seconds']:.0f} s")
    return res


def main(argv=None) -> int:
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(child(sys.argv[2], json.loads(sys.argv[3]))))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--limit", type=int, default=None, help="BBC articles (default: all 2,225)")
    ap.add_argument("--no-langchain-index", action="store_true", help="skip the LangChain indexing child (it embeds everything)")
    ap.add_argument("--json", type=Path, default=common.OUT / "memory.json")
    args = ap.parse_args(argv)

    import tempfile

    from index.embed import MiniLMEmbedder
    from rag.pipeline import RagPipeline

    load_start = common.load_avg()
    cache = common.BBC_INDEX if args.limit is None else common.OUT / f"index-bundled-bbc{args.limit}"
    stale = RagPipeline(index_dir=cache, embedder=MiniLMEmbedder(), entities=False).is_stale(
        common.corpus_paths(args.limit))
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-mem-") as tmp:
        params = {"limit": args.limit, "index_dir": str(cache if stale else Path(tmp) / "index")}
        results["model"] = run_child("model", params)
        results["project-index"] = run_child("project-index", params)
        if not args.no_langchain_index:
            results["langchain-index"] = run_child("langchain-index", params)
    params = {"limit": args.limit, "index_dir": str(cache)}
    results["project-serve"] = run_child("project-serve", params)
    results["langchain-serve"] = run_child("langchain-serve", params)

    print(common.machine_header("Memory benchmark (bench/memory.py)"))
    print(f"corpus: bundled 5 + {'all 2,225' if args.limit is None else args.limit} BBC articles; "
          f"load average at start {load_start}; peak RSS = ru_maxrss of each child process")
    print()
    base = results["model"]["peak_mb"]
    names = {
        "model": "model only: torch + MiniLM + one query (floor)",
        "project-index": "project indexing (collect + IndexStore.update)",
        "langchain-index": "LangChain indexing (split + embed + FAISS)",
        "project-serve": f"project serving (load index, warm_up, {N_QUESTIONS} asks)",
        "langchain-serve": f"LangChain serving (cached vectors, {N_QUESTIONS} searches)",
    }
    rows = []
    for k, r in results.items():
        pair = {"project-index": "langchain-index", "project-serve": "langchain-serve"}.get(k)
        vs_lc = r["peak_mb"] / results[pair]["peak_mb"] if pair in results else None
        rows.append([names[k], r["peak_mb"], r["peak_mb"] - base, r["peak_mb"] / base, vs_lc, r["seconds"]])
    print(common.table(["process", "peak RSS MB", "above floor MB", "x floor", "project / LangChain", "seconds"], rows))
    print()
    print("RSS after each step (MB):")
    rows = [[names[k].split(" (")[0], step, mb] for k, r in results.items() for step, mb in r["marks"]]
    print(common.table(["process", "after", "RSS MB"], rows, "llr"))
    common.write_json(args.json, {"settings": vars(args) | {"json": str(args.json)}, "load_start": load_start,
                                  "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
