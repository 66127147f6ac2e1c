"""Indexing throughput: the project's IndexStore + MiniLMEmbedder against its own limit (raw
``SentenceTransformer.encode`` of the same chunk texts) and against LangChain's usual path
(RecursiveCharacterTextSplitter(1000/200) + a FAISS vector store with the same model).

Run::

    .venv/bin/python bench/indexing.py                 # bundled 5 + all 2,225 BBC articles
    .venv/bin/python bench/indexing.py --limit 200     # quick: bundled 5 + 200 BBC articles
    .venv/bin/python bench/indexing.py --sweep         # also batch size / threads / sorting sweep

What is timed (wall clock, ``time.perf_counter``; CPU seconds of the process shown beside it):

* project: ``index.ingest.collect`` (read + parse) and ``IndexStore.update(rebuild=True)`` into a
  temporary directory: chunking (token counting with the model's tokenizer), the one-pass
  chunk + sentence embedding, FAISS adds, BM25 and the atomic write (fsync) of every file;
* raw: ``SentenceTransformer.encode(texts, batch_size=B, normalize_embeddings=True)`` where
  ``texts`` are exactly the ``embed_text`` of the chunks the project's index holds: the limit
  for any indexer that embeds these chunks with this model;
* LangChain: ``RecursiveCharacterTextSplitter(1000, 200).create_documents`` over the same
  article texts, then ``FaissVectorStore.add_documents`` (eval/baseline.py: the same MiniLM
  behind a LangChain ``Embeddings`` adapter, ``faiss.IndexFlatIP``), i.e. what
  ``FAISS.from_documents`` does. Reading the files is timed separately (it is a few ms).

The model is loaded and warmed before anything is timed (load time is printed separately).
Results also go to ``bench/out/indexing.json``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (puts the project root on sys.path)

import numpy as np  # noqa: E402


class Clock:
    """Wall and process-CPU seconds of a block."""

    def __enter__(self):
        self.w0, self.c0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.w0
        self.cpu = time.process_time() - self.c0


class TimedEmbedder:
    """Delegates to a MiniLMEmbedder and adds up the seconds spent in tokenizer counting
    (chunking) and in ``embed_chunks`` (the encoder pass and sentence pooling)."""

    def __init__(self, inner):
        self._inner = inner
        self.count_s = 0.0
        self.embed_s = 0.0

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def count_tokens(self, texts):
        t0 = time.perf_counter()
        try:
            return self._inner.count_tokens(texts)
        finally:
            self.count_s += time.perf_counter() - t0

    def embed_chunks(self, texts, spans, progress=None):
        t0 = time.perf_counter()
        try:
            return self._inner.embed_chunks(texts, spans, progress)
        finally:
            self.embed_s += time.perf_counter() - t0


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def make_embedder(model, batch_size: int):
    from index.embed import MiniLMEmbedder

    e = MiniLMEmbedder(batch_size=batch_size)
    e._model = model  # share the loaded model: no second load
    return e


# ---------------------------------------------------------------------------------------------
# the three systems
# ---------------------------------------------------------------------------------------------
def run_project(paths, model, batch_size: int):
    from index.ingest import collect
    from index.store import IndexStore

    emb = TimedEmbedder(make_embedder(model, batch_size))
    with tempfile.TemporaryDirectory(prefix="bench-index-") as d:
        store = IndexStore(Path(d) / "index", emb)
        write_s = [0.0]
        real_write = store._write

        def timed_write(*a, **kw):
            t0 = time.perf_counter()
            try:
                return real_write(*a, **kw)
            finally:
                write_s[0] += time.perf_counter() - t0

        store._write = timed_write
        gc.collect()
        with Clock() as total:
            with Clock() as c_collect:
                corpus = collect(paths)
            report = store.update(corpus, rebuild=True)
        index = store.load()  # not timed: to hand the exact chunk texts to the raw run
        cids = sorted(index.chunks)
        texts = [index.chunks[c].embed_text for c in cids]
        vecs = index.chunk_index.reconstruct_batch(np.array(cids, dtype=np.int64))
        from index.chunking import sentence_spans_in

        spans = [sentence_spans_in(index.chunks[c], index.articles[index.chunks[c].doc_id]) for c in cids]
        sources = {a.source for a in index.articles.values()}
        n_sent = int(index.sentence_index.ntotal)
    return {
        "articles": len(corpus.articles),
        "chunks": report.chunks_embedded,
        "sentences": n_sent,
        "wall": total.wall,
        "cpu": total.cpu,
        "collect": c_collect.wall,
        "count_tokens": emb.count_s,
        "embed": emb.embed_s,
        "write": write_s[0],
        "other": total.wall - c_collect.wall - emb.count_s - emb.embed_s - write_s[0],
    }, texts, spans, vecs, sources


def run_raw(model, texts, batch_size: int):
    gc.collect()
    with Clock() as c:
        v = model.encode(texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True,
                         show_progress_bar=False)
    return {"chunks": len(texts), "wall": c.wall, "cpu": c.cpu}, np.asarray(v, dtype=np.float32)


def run_langchain(files: dict[str, Path], model, batch_size: int):
    from eval.baseline import FaissVectorStore, ProjectEmbeddings, split_articles

    gc.collect()
    with Clock() as c_load:
        texts = {name: p.read_text(encoding="utf-8") for name, p in files.items()}
    with Clock() as total:
        with Clock() as c_split:
            docs = split_articles(texts)
        with Clock() as c_embed:
            store = FaissVectorStore(ProjectEmbeddings(make_embedder(model, batch_size)))
            store.add_documents(docs)
    return {"articles": len(texts), "chunks": len(docs), "wall": total.wall, "cpu": total.cpu,
            "load": c_load.wall, "split": c_split.wall, "embed_add": c_embed.wall}, [d.page_content for d in docs]


# ---------------------------------------------------------------------------------------------
# sweep: batch size x threads x (project embed_chunks | raw encode); sorting by length
# ---------------------------------------------------------------------------------------------
def forward_pool(model, texts, batch_size: int, order) -> None:
    """Tokenize + encoder forward + mean pooling over ``texts`` in the given order (no
    sorting of its own): isolates the effect of length sorting on padding."""
    import torch

    tok = model.tokenizer
    transformer = model[0].auto_model
    for b in range(0, len(texts), batch_size):
        batch = [texts[i] for i in order[b : b + batch_size]]
        enc = tok(batch, padding=True, truncation=True, max_length=256, return_tensors="pt")
        with torch.inference_mode():
            h = transformer(**enc).last_hidden_state
            m = enc["attention_mask"].unsqueeze(-1).to(h.dtype)
            (h * m).sum(1) / m.sum(1).clamp(min=1e-9)


def padding_ratio(model, texts, batch_size: int, order) -> float:
    """Padded tokens processed / real tokens (1.0 = no padding). Deterministic."""
    lens = [len(x) for x in model.tokenizer(list(texts), truncation=True, max_length=256)["input_ids"]]
    real = sum(lens)
    padded = 0
    for b in range(0, len(texts), batch_size):
        ls = [lens[i] for i in order[b : b + batch_size]]
        padded += max(ls) * len(ls)
    return padded / real


def sweep(model, texts, spans, batch_sizes, threads_list, repeat: int, sort_batch: int, include_sort: bool = True):
    import torch

    default_threads = torch.get_num_threads()
    sorted_order = list(np.argsort([-len(t) for t in texts], kind="stable"))
    doc_order = list(range(len(texts)))
    cases = []
    for th in threads_list:
        for bs in batch_sizes:
            e = make_embedder(model, bs)
            cases.append((("project embed_chunks", th, bs), lambda e=e: e.embed_chunks(texts, spans)))
            cases.append((("raw encode", th, bs), lambda bs=bs: model.encode(
                texts, batch_size=bs, normalize_embeddings=True, show_progress_bar=False)))
    if include_sort:
        cases.append((("forward only, length-sorted", default_threads, sort_batch),
                      lambda: forward_pool(model, texts, sort_batch, sorted_order)))
        cases.append((("forward only, document order", default_threads, sort_batch),
                      lambda: forward_pool(model, texts, sort_batch, doc_order)))
    best: dict[tuple, float] = {}
    for r in range(repeat):  # rotate through all settings, keep the best of `repeat` runs
        for key, fn in cases:
            torch.set_num_threads(key[1])
            gc.collect()
            t0 = time.perf_counter()
            fn()
            dt = time.perf_counter() - t0
            best[key] = min(best.get(key, float("inf")), dt)
            log(f"  sweep run {r + 1}/{repeat} (OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'default')}): "
                f"{key[0]:28s} threads={key[1]} batch={key[2]}: {len(texts) / dt:6.1f} chunks/s")
    torch.set_num_threads(default_threads)
    pads = {bs: (padding_ratio(model, texts, bs, sorted_order), padding_ratio(model, texts, bs, doc_order))
            for bs in batch_sizes}
    return best, pads, default_threads


def sweep_child(path: str) -> None:
    """Runs in a fresh process (the OpenMP wait policy is read once, at start-up)."""
    from index.embed import MiniLMEmbedder

    d = json.loads(Path(path).read_text(encoding="utf-8"))
    e = MiniLMEmbedder()
    e.warm_up()
    spans = [[tuple(x) for x in sp] for sp in d["spans"]]
    best, pads, default_threads = sweep(e.model, d["texts"], spans, d["batch_sizes"], d["threads"], d["repeat"],
                                        d["sort_batch"], d["include_sort"])
    print(json.dumps({"best": [[*k, v] for k, v in best.items()], "pads": pads, "default_threads": default_threads}))


def run_sweep(texts, spans, args) -> tuple[str, dict]:
    """The sweep, once per OpenMP wait policy (each in a child process). Returns (report, data)."""
    n = min(args.sweep_chunks, len(texts))
    idx = [int(i * len(texts) / n) for i in range(n)]
    sample = {"texts": [texts[i] for i in idx], "spans": [spans[i] for i in idx], "batch_sizes": [16, 32, 64],
              "repeat": args.sweep_repeat, "sort_batch": args.batch_size}
    load0 = common.load_avg()
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        for r in range(args.sweep_repeat):  # alternate the policies, keep each setting's best run
            for policy in ("default", "PASSIVE"):
                env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
                if policy != "default":
                    env["OMP_WAIT_POLICY"] = policy
                f = Path(tmp) / f"{policy}.json"
                # threads: 1, 2 and torch's default (2 on a 2-core machine: then 2 is the default)
                f.write_text(json.dumps(sample | {"threads": sorted({1, 2, args.default_threads}), "repeat": 1,
                                                  "include_sort": policy == "default"}), encoding="utf-8")
                log(f"sweep run {r + 1}/{args.sweep_repeat} over {n} chunks, OMP_WAIT_POLICY={policy} ...")
                out = subprocess.run([sys.executable, __file__, "--sweep-child", str(f)], env=env,
                                     stdout=subprocess.PIPE, text=True, check=True)
                got = json.loads(out.stdout.strip().splitlines()[-1])
                prev = results.get(policy)
                if prev is not None:
                    old = {tuple(x[:3]): x[3] for x in prev["best"]}
                    got["best"] = [[*x[:3], min(x[3], old.get(tuple(x[:3]), x[3]))] for x in got["best"]]
                results[policy] = got
    load1 = common.load_avg()
    ref_key = ("raw encode", args.default_threads, 32)
    ref = next(v for *k, v in results["default"]["best"] if tuple(k) == ref_key)
    rows = []
    for policy, r in results.items():
        for name, th, bs, dt in sorted(r["best"], key=lambda x: (x[0], x[1], x[2])):
            rows.append([name, policy, th, bs, n / dt, ref / dt])
    lines = [
        f"sweep: {n} chunks (evenly spaced sample of the project's chunks), best of {args.sweep_repeat} rotating runs, "
        f"each wait policy in its own process; torch default threads = {args.default_threads}; "
        f"load average at start {load0}, at end {load1}",
        common.table(["path", "OMP_WAIT_POLICY", "threads", "batch", "chunks/s",
                      f"vs raw encode ({args.default_threads} threads, batch 32, default policy)"], rows, "llrrrr"),
        "",
        common.table(["batch", "padding, length-sorted", "padding, document order"],
                     [[int(bs), a, b] for bs, (a, b) in results["default"]["pads"].items()]),
        "(padding = token positions the encoder processes / real tokens; 1.00 = none)",
    ]
    return "\n".join(lines), {"chunks": n, "results": results, "load_start": load0, "load_end": load1}


# ---------------------------------------------------------------------------------------------
def main(argv=None) -> int:
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "--sweep-child":
        sweep_child(sys.argv[2])
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--limit", type=int, default=None, help="BBC articles to add to the 5 bundled ones (default: all 2,225)")
    ap.add_argument("--batch-size", type=int, default=32, help="encoder batch size for all three systems (default 32 = the project's)")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads for the main comparison (default: torch's default)")
    ap.add_argument("--repeat", type=int, default=1, help="run the three systems this many times (rotating) and keep each one's best")
    ap.add_argument("--sweep", action="store_true", help="also sweep batch size 16/32/64 x threads 1/2 x OpenMP wait policy, and length sorting")
    ap.add_argument("--sweep-only", action="store_true", help="only the sweep, on chunks of the cached index bench/out/index-bundled-bbc[N]")
    ap.add_argument("--sweep-chunks", type=int, default=300, help="chunks (evenly spaced sample of the index) used by the sweep")
    ap.add_argument("--sweep-repeat", type=int, default=2)
    ap.add_argument("--json", type=Path, default=common.OUT / "indexing.json")
    args = ap.parse_args(argv)

    import torch

    default_threads = args.default_threads = torch.get_num_threads()
    if args.threads:
        torch.set_num_threads(args.threads)
    from index.embed import MiniLMEmbedder

    if args.sweep_only:
        from index.chunking import sentence_spans_in
        from index.store import IndexStore

        d = common.BBC_INDEX if args.limit is None else common.OUT / f"index-bundled-bbc{args.limit}"
        if not (d / "manifest.json").exists():
            raise SystemExit(f"no cached index at {d}: run bench/query.py or bench/memory.py (same --limit) first")
        index = IndexStore(d, MiniLMEmbedder()).load()
        cids = sorted(index.chunks)
        texts = [index.chunks[c].embed_text for c in cids]
        spans = [sentence_spans_in(index.chunks[c], index.articles[index.chunks[c].doc_id]) for c in cids]
        print(common.machine_header("Indexing sweep (bench/indexing.py --sweep-only)"))
        print(f"chunks of {d}")
        report, data = run_sweep(texts, spans, args)
        print(report)
        common.write_json(args.json.with_name("indexing_sweep.json"), data)
        return 0

    paths = common.corpus_paths(args.limit)
    t0 = time.perf_counter()
    base = MiniLMEmbedder(batch_size=args.batch_size)
    model = base.model
    base.warm_up()
    load_s = time.perf_counter() - t0

    from index.ingest import iter_files

    files_by_name = {f.name: f for f in iter_files(paths) if f.suffix.lower() in (".txt", ".md")}

    load_before = common.load_avg()
    results = {"project": [], "raw": [], "langchain": []}
    texts = spans = vecs_index = vecs_raw = sources = None
    for r in range(args.repeat):
        log(f"run {r + 1}/{args.repeat}: project IndexStore.update ...")
        res, texts, spans, vecs_index, sources = run_project(paths, model, args.batch_size)
        results["project"].append(res)
        log(f"  {res['chunks']} chunks in {res['wall']:.1f} s")
        log(f"run {r + 1}/{args.repeat}: raw SentenceTransformer.encode of the same {len(texts)} chunk texts ...")
        res, vecs_raw = run_raw(model, texts, args.batch_size)
        results["raw"].append(res)
        log(f"  {res['wall']:.1f} s")
        log(f"run {r + 1}/{args.repeat}: LangChain split + embed + add ...")
        res, lc_texts = run_langchain({s: files_by_name[s] for s in sorted(sources)}, model, args.batch_size)
        results["langchain"].append(res)
        log(f"  {res['chunks']} chunks in {res['wall']:.1f} s")
    load_after = common.load_avg()
    best = {k: min(v, key=lambda x: x["wall"]) for k, v in results.items()}
    p, raw, lc = best["project"], best["raw"], best["langchain"]
    same_vectors = float(np.abs(vecs_index - vecs_raw).max())

    def token_lens(ts):  # what the encoder processes per text, [CLS] and [SEP] included (not timed)
        return np.array([len(x) for x in model.tokenizer(list(ts), truncation=True, max_length=256)["input_ids"]])

    def positions(lens, order):  # token positions the encoder runs over, padding included
        return int(sum(lens[order[b:b + args.batch_size]].max() * len(order[b:b + args.batch_size])
                       for b in range(0, len(order), args.batch_size)))

    lens = token_lens(texts)
    lc_lens = token_lens(lc_texts)
    p["tokens"] = raw["tokens"] = int(lens.sum())
    lc["tokens"] = int(lc_lens.sum())
    # batch order: the project sorts by exact token count (index.embed), encode by character length
    p["positions"] = positions(lens, np.argsort(-lens, kind="stable"))
    raw["positions"] = positions(lens, np.argsort([-len(t) for t in texts]))
    lc["positions"] = positions(lc_lens, np.argsort([-len(t) for t in lc_texts]))

    print(common.machine_header("Indexing benchmark (bench/indexing.py)"))
    print(f"load average before the timed runs: {load_before}; after: {load_after}")
    print(
        f"settings: batch size {args.batch_size}; torch threads {torch.get_num_threads()}"
        f"{' (set)' if args.threads else ' (default)'}; OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}"
        f"; sorted batches (project: by token count, index.embed; raw and LangChain: by character length, inside "
        f"SentenceTransformer.encode); best of {args.repeat} run(s); model load + warm-up {load_s:.1f} s (not timed below)"
    )
    print(f"corpus: {p['articles']} articles indexed (5 bundled + {args.limit if args.limit is not None else 'all'} BBC; "
          f"duplicate texts are indexed once), {p['chunks']} project chunks, {p['sentences']} sentences; "
          f"LangChain: {lc['chunks']} chunks of <= 1000 characters")
    print(f"check: raw encode vectors vs the index's chunk vectors: max |diff| = {same_vectors:.1e}")
    print()
    rows = []
    for name, r, arts in (("project: collect + IndexStore.update", p, p["articles"]),
                          ("raw: SentenceTransformer.encode (same chunks)", raw, None),
                          ("LangChain: split + embed + FAISS add", lc, lc["articles"])):
        rows.append([name, r["chunks"], r["tokens"], r["wall"], r["cpu"], r["chunks"] / r["wall"],
                     (arts / r["wall"]) if arts else None, r["tokens"] / r["wall"]])
    print(common.table(["system", "chunks", "tokens embedded", "wall s", "CPU s", "chunks/s", "articles/s", "tokens/s"], rows))
    print(f"(tokens embedded: model tokens incl. [CLS]/[SEP] of every chunk text; project/LangChain = "
          f"{p['tokens'] / lc['tokens']:.2f}: the work per article each chunking asks of the encoder)")
    print("padding (token positions the encoder runs over / tokens embedded; 1.00 = none): "
          + ", ".join(f"{name} {r['positions'] / r['tokens']:.3f}" for name, r in (("project", p), ("raw", raw), ("LangChain", lc))))
    print()
    ratios = [
        ["project / raw encode, chunks/s (target >= 0.90)", (p["chunks"] / p["wall"]) / (raw["chunks"] / raw["wall"]),
         (p["chunks"] / p["cpu"]) / (raw["chunks"] / raw["cpu"])],
        ["project / raw encode, embedding step only", raw["wall"] / p["embed"], None],
        ["project / LangChain, chunks/s (target >= 1.2)", (p["chunks"] / p["wall"]) / (lc["chunks"] / lc["wall"]),
         (p["chunks"] / p["cpu"]) / (lc["chunks"] / lc["cpu"])],
        ["project / LangChain, articles/s (target >= 1.2)", lc["wall"] / p["wall"], lc["cpu"] / p["cpu"]],
    ]
    print(common.table(["ratio", "by wall time", "by CPU time"], ratios))
    print()
    print("project time by stage (seconds, wall):")
    print(common.table(
        ["collect (read+parse)", "count tokens (chunking)", "embed_chunks", "write (FAISS, BM25, fsync)", "other", "total"],
        [[p["collect"], p["count_tokens"], p["embed"], p["write"], p["other"], p["wall"]]],
        "rrrrrr",
    ))
    print(f"LangChain time by stage (seconds, wall): read files {lc['load']:.2f} (not counted), split {lc['split']:.2f}, "
          f"embed + add {lc['embed_add']:.2f}")

    out = {"settings": vars(args) | {"threads_used": torch.get_num_threads(), "json": str(args.json)},
           "load_before": load_before, "load_after": load_after, "model_load_s": load_s,
           "runs": results, "best": best, "max_abs_vector_diff": same_vectors}

    if args.sweep:
        report, out["sweep"] = run_sweep(texts, spans, args)
        print()
        print(report)
    common.write_json(args.json, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
