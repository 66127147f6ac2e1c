"""Query latency: warm ``RagPipeline.ask`` against LangChain's ``similarity_search`` on the
questions of eval/data/qa.jsonl, a per-stage breakdown of ``ask``, and cold start of ``rag ask``.

Run::

    .venv/bin/python bench/query.py                     # bundled index and bundled + 2,225 BBC
    .venv/bin/python bench/query.py --bbc-limit 100     # quick: bundled + 100 BBC articles
    .venv/bin/python bench/query.py --no-bbc --cold-runs 2

Indexes are built once and cached: bench/out/index-bundled (5 articles) and
bench/out/index-bundled-bbc (5 + BBC; ``--bbc-limit N`` uses index-bundled-bbc<N>). The LangChain
store's document vectors are cached in bench/out/lc_vectors_*.npy.

Warm: the pipeline (model, index, spaCy) and the LangChain store are loaded and warmed; then,
for ``--rounds`` rounds, every question is asked once with ``pipeline.ask`` (k = 5) and once
with ``FaissVectorStore.similarity_search`` (k = 5), interleaved, each timed with
``time.perf_counter``. The entity tagger's per-sentence cache is cleared before every ask, so
repeated rounds do not turn into cache hits (a real user's question is new).

Breakdown: one more round, asked as ``pipeline.retrieve`` + ``rag.answering.extractive.build_answer`` with
timers wrapped around the embedder, ``rag.retrieval.search.retrieve`` and the functions that mark its
stages (``index.first_stage.faiss_search``, BM25, ``period_scores``, ``scoring_terms`` = start of the sentence
stage) and the spaCy tagger. These wrappers run only in that round.

Cold: ``rag ask "<question>" --json --index-dir bench/out/index-bundled`` in a fresh process,
timed from just before the launch to its exit (answer printed), ``--cold-runs`` times; plus one
instrumented child that reports when each start-up step finished. Baseline: the bare
interpreter (``python -c pass``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

K = 5
COLD_QUESTION = "How many projectiles did Gazan fighters launch in May 2023?"


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# warm latency
# ---------------------------------------------------------------------------------------------
def encoder_latency(embedder, questions):
    """One question at a time, interleaved: the shipped NumPy encoder (``embed_query``) and
    ``SentenceTransformer.encode`` on torch, which ``embed_query`` called before."""
    import numpy as np

    model = embedder.model
    out: dict[str, list[float]] = {"numpy": [], "torch": []}
    worst = 1.0
    for q in questions:
        t0 = time.perf_counter()
        a = embedder.embed_query(q)
        out["numpy"].append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        b = model.encode([q], normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)[0]
        out["torch"].append((time.perf_counter() - t0) * 1000)
        worst = min(worst, float(np.dot(a, b)))
    out["min_cosine"] = [worst]
    return out


def warm_latency(pipeline, rules, store, questions, rounds: int):
    """Per question, interleaved: the shipped (learned) ask, the hand-rule chain's ask (the chain
    before the learned answerer) and LangChain's similarity_search."""
    ask_ms, rules_ms, lc_ms = [], [], []
    for _ in range(rounds):
        for q in questions:
            for p, out in ((pipeline, ask_ms), (rules, rules_ms)):
                if p.tagger is not None:
                    p.tagger._cache.clear()
                t0 = time.perf_counter()
                p.ask(q, k=K)
                out.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            store.similarity_search(q, k=K)
            lc_ms.append((time.perf_counter() - t0) * 1000)
    return ask_ms, rules_ms, lc_ms


class StageTimer:
    """Monkeypatches timers around the stages of one ask (only while active)."""

    STAGES = ("analysis", "embed question", "first stage: FAISS", "first stage: BM25",
              "first stage: period scores", "first stage: rest (RRF, filters)", "sentence stage",
              "answer: spaCy", "answer: rest")

    def __init__(self, pipeline):
        import rag.pipeline as rp
        import rag.retrieval.search as rr

        self.p, self.rp, self.rr = pipeline, rp, rr
        self.t: dict[str, float] = {}
        self._orig = {}

    def _add(self, key, dt):
        self.t[key] = self.t.get(key, 0.0) + dt

    def _wrap(self, key, fn):
        def w(*a, **kw):
            t0 = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                self._add(key, time.perf_counter() - t0)
        return w

    def __enter__(self):
        from index import first_stage

        rp, rr, p = self.rp, self.rr, self.p
        emb = p.embedder
        self._orig = {
            (rp, "retrieve"): rp.retrieve, (first_stage, "faiss_search"): first_stage.faiss_search,
            (rr, "bm25_tokenize"): rr.bm25_tokenize, (rr, "period_scores"): rr.period_scores,
            (rr, "scoring_terms"): rr.scoring_terms, (emb, "embed_query"): emb.embed_query,
            (p.index.bm25, "retrieve"): p.index.bm25.retrieve,
        }
        if p.tagger is not None:
            self._orig[(p.tagger, "parse")] = p.tagger.parse
        setattr(first_stage, "faiss_search", self._wrap("faiss", first_stage.faiss_search))
        setattr(rr, "bm25_tokenize", self._wrap("bm25", rr.bm25_tokenize))
        p.index.bm25.retrieve = self._wrap("bm25", self._orig[(p.index.bm25, "retrieve")])
        setattr(rr, "period_scores", self._wrap("period", rr.period_scores))
        orig_terms = self._orig[(rr, "scoring_terms")]

        def terms(*a, **kw):  # the sentence stage starts here
            self.t["_sentence_start"] = time.perf_counter()
            return orig_terms(*a, **kw)

        rr.scoring_terms = terms
        orig_retrieve = self._orig[(rp, "retrieve")]

        def retrieve(*a, **kw):
            t0 = time.perf_counter()
            self.t.pop("_sentence_start", None)
            try:
                return orig_retrieve(*a, **kw)
            finally:
                t1 = time.perf_counter()
                s = self.t.pop("_sentence_start", t1)
                self._add("first", s - t0)
                self._add("sentence", t1 - s)
                self._add("retrieve_fn", t1 - t0)

        rp.retrieve = retrieve
        emb.embed_query = self._wrap("embed", self._orig[(emb, "embed_query")])
        if p.tagger is not None:
            p.tagger.parse = self._wrap("spacy", self._orig[(p.tagger, "parse")])
        return self

    def __exit__(self, *exc):
        for (obj, name), fn in self._orig.items():
            if isinstance(obj, type(self.rp)):  # a module: restore the global
                setattr(obj, name, fn)
            else:  # an instance attribute we set: remove it, the class method shows again
                try:
                    delattr(obj, name)
                except AttributeError:
                    setattr(obj, name, fn)


def breakdown(pipeline, questions):
    """Mean milliseconds per stage over the questions (asked as retrieve + build_answer)."""
    from rag.answering.extractive import build_answer

    sums: dict[str, float] = {}
    totals = []
    with StageTimer(pipeline) as st:
        for q in questions:
            if pipeline.tagger is not None:
                pipeline.tagger._cache.clear()
            st.t = {}
            t0 = time.perf_counter()
            r = pipeline.retrieve(q, k=K)
            t1 = time.perf_counter()
            build_answer(r, pipeline.index, pipeline.stats, pipeline.tagger)
            t2 = time.perf_counter()
            t = st.t
            row = {
                "analysis": (t1 - t0) - t.get("embed", 0.0) - t.get("retrieve_fn", 0.0),
                "embed question": t.get("embed", 0.0),
                "first stage: FAISS": t.get("faiss", 0.0),
                "first stage: BM25": t.get("bm25", 0.0),
                "first stage: period scores": t.get("period", 0.0),
                "first stage: rest (RRF, filters)": t.get("first", 0.0) - t.get("faiss", 0.0) - t.get("bm25", 0.0)
                - t.get("period", 0.0),
                "sentence stage": t.get("sentence", 0.0),
                "answer: spaCy": t.get("spacy", 0.0),
                "answer: rest": (t2 - t1) - t.get("spacy", 0.0),
            }
            for k, v in row.items():
                sums[k] = sums.get(k, 0.0) + v * 1000
            totals.append((t2 - t0) * 1000)
    n = len(questions)
    return {k: sums[k] / n for k in StageTimer.STAGES}, sum(totals) / n


# ---------------------------------------------------------------------------------------------
# cold start
# ---------------------------------------------------------------------------------------------
RAG = common.ROOT / ".venv" / "bin" / "rag"
PY = sys.executable


def cold_runs(index_dir: Path, runs: int):
    ask, bare, imp, imp_tf = [], [], [], []
    for i in range(runs):
        t0 = time.perf_counter()
        subprocess.run([PY, "-c", "pass"], check=True)
        bare.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        subprocess.run([PY, "-c", "import torch, sentence_transformers"], check=True)
        imp.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        subprocess.run([PY, "-c", "import torch; from transformers import AutoModel, AutoTokenizer"], check=True)
        imp_tf.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        out = subprocess.run([str(RAG), "ask", COLD_QUESTION, "--json", "--index-dir", str(index_dir)],
                             capture_output=True, text=True)
        dt = time.perf_counter() - t0
        if out.returncode != 0:
            raise SystemExit(f"rag ask failed ({out.returncode}): {out.stderr.strip()[-500:]}")
        ans = json.loads(out.stdout)
        ask.append(dt)
        log(f"  cold run {i + 1}/{runs}: {dt:.2f} s (answer: {ans.get('short_answer') or ans['answer'][:60]!r})")
    return ask, bare, imp, imp_tf


def cold_child(index_dir: str, t_launch: float) -> None:
    """Runs in a fresh interpreter: the steps of `rag ask`, each stamped (seconds since launch)."""
    marks = {"interpreter up": time.time() - t_launch}
    import rag.cli  # noqa: F401
    from rag.pipeline import RagPipeline

    marks["import rag (cli, pipeline)"] = time.time() - t_launch
    p = RagPipeline(index_dir=index_dir)
    p.index
    marks["load index (FAISS, BM25, stats)"] = time.time() - t_launch
    p.embedder.embed_query("x")
    marks["load MiniLM (NumPy) + first encode"] = time.time() - t_launch
    if p.tagger is not None:
        p.tagger.entities("Warm up in Gaza on Monday.")
    marks["load spaCy"] = time.time() - t_launch
    ans = p.ask(COLD_QUESTION, k=K)
    json.dumps(ans.to_json())
    marks["answer"] = time.time() - t_launch
    marks["torch imported"] = "torch" in sys.modules
    print(json.dumps(marks))


def cold_breakdown(index_dir: Path):
    t = time.time()
    out = subprocess.run([PY, __file__, "--cold-child", str(index_dir), repr(t)], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------------
def measure_corpus(label, index_dir, paths, embedder, questions, rounds, do_breakdown):
    from rag.pipeline import RagPipeline

    built, _ = common.ensure_index(index_dir, paths, embedder, log=log)
    p = RagPipeline(index_dir=index_dir, embedder=embedder)
    p.warm_up()
    rules = RagPipeline(index_dir=index_dir, embedder=embedder, answerer="rules")
    rules.warm_up()
    articles = {a.source: a.text for a in p.index.articles.values()}
    log(f"{label}: LangChain store over the same {len(articles)} articles ...")
    store, n_lc, lc_embed_s = common.langchain_store(articles, embedder)
    store.similarity_search("warm up", k=K)
    for q in questions[:5]:  # warm every path
        p.ask(q, k=K)
        rules.ask(q, k=K)
    log(f"{label}: question encoders, NumPy (shipped) vs sentence-transformers on torch (before) ...")
    enc = encoder_latency(embedder, questions)
    log(f"{label}: warm asks, {rounds} round(s) x {len(questions)} questions ...")
    load = common.load_avg()
    ask_ms, rules_ms, lc_ms = warm_latency(p, rules, store, questions, rounds)
    res = {
        "label": label, "articles": len(p.index.articles), "chunks": len(p.index.chunks),
        "sentences": int(p.index.sentence_index.ntotal), "lc_chunks": n_lc, "index_build_s": built,
        "lc_embed_s": lc_embed_s, "load": load, "ask_ms": ask_ms, "rules_ms": rules_ms, "lc_ms": lc_ms, "encoder_ms": enc,
    }
    if do_breakdown:
        log(f"{label}: breakdown round ...")
        res["stages"], res["breakdown_total_ms"] = breakdown(p, questions)
    return res


CONFIGS = {
    "default": ({}, "as shipped (torch default threads, OpenMP default wait policy)"),
    "passive": ({"OMP_WAIT_POLICY": "PASSIVE"}, "env OMP_WAIT_POLICY=PASSIVE (idle OpenMP threads sleep, not spin)"),
    "1thread": ({}, "torch.set_num_threads(1) + faiss.omp_set_num_threads(1)"),
}


def child(params: dict) -> None:
    """One configuration, in its own process (OpenMP settings are per process)."""
    if params["config"] == "1thread":
        import faiss
        import torch

        torch.set_num_threads(1)
        faiss.omp_set_num_threads(1)
    from index.embed import MiniLMEmbedder

    questions = common.load_questions(params["questions"])
    embedder = MiniLMEmbedder()
    out = []
    for label, index_dir, bbc_limit, with_bbc in params["corpora"]:
        out.append(measure_corpus(label, Path(index_dir), common.corpus_paths(bbc_limit, with_bbc), embedder, questions,
                                  params["rounds"], params["breakdown"]))
    import torch

    Path(params["out"]).write_text(json.dumps({"threads": torch.get_num_threads(), "results": out}), encoding="utf-8")


def main(argv=None) -> int:
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "--cold-child":
        cold_child(sys.argv[2], float(sys.argv[3]))
        return 0
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(json.loads(sys.argv[2]))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3, help="times each question is asked warm (default 3)")
    ap.add_argument("--questions", type=int, default=None, help="only the first N questions of eval/data/qa.jsonl")
    ap.add_argument("--no-bbc", action="store_true", help="bundled index only")
    ap.add_argument("--bbc-limit", type=int, default=None, help="BBC articles in the large index (default: all 2,225)")
    ap.add_argument("--configs", default="default,passive,1thread",
                    help=f"comma-separated, each measured in its own process: {', '.join(CONFIGS)} (default: all)")
    ap.add_argument("--cold-runs", type=int, default=5)
    ap.add_argument("--no-breakdown", action="store_true")
    ap.add_argument("--json", type=Path, default=common.OUT / "query.json")
    args = ap.parse_args(argv)
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    for c in configs:
        if c not in CONFIGS:
            ap.error(f"unknown config {c!r}; choose from {', '.join(CONFIGS)}")

    corpora = [("bundled (5 articles)", str(common.BUNDLED_INDEX), None, False)]
    if not args.no_bbc:
        d = common.BBC_INDEX if args.bbc_limit is None else common.OUT / f"index-bundled-bbc{args.bbc_limit}"
        corpora.append((f"bundled + BBC ({'all' if args.bbc_limit is None else args.bbc_limit})", str(d),
                        args.bbc_limit, True))
    import os
    import tempfile

    runs = {}
    with tempfile.TemporaryDirectory(prefix="bench-query-") as tmp:
        for c in configs:
            log(f"== configuration {c}: {CONFIGS[c][1]}")
            params = {"config": c, "questions": args.questions, "corpora": corpora, "rounds": args.rounds,
                      "breakdown": not args.no_breakdown, "out": str(Path(tmp) / f"{c}.json")}
            env = dict(os.environ) | CONFIGS[c][0]
            subprocess.run([PY, __file__, "--child", json.dumps(params)], env=env, check=True)
            runs[c] = json.loads(Path(params["out"]).read_text(encoding="utf-8"))

    cold = None
    if args.cold_runs > 0:
        log(f"cold start: {args.cold_runs} x rag ask ...")
        cold_load = common.load_avg()
        ask_s, bare_s, torch_s, tf_s = cold_runs(common.BUNDLED_INDEX, args.cold_runs)
        marks = cold_breakdown(common.BUNDLED_INDEX)
        cold = {"load": cold_load, "ask_s": ask_s, "bare_s": bare_s, "import_s": torch_s, "import_tf_s": tf_s,
                "marks": marks}

    n_q = len(common.load_questions(args.questions))
    print(common.machine_header("Query benchmark (bench/query.py)"))
    print(f"{n_q} questions (eval/data/qa.jsonl) x {args.rounds} rounds, k = {K}; latency = wall time of one call; "
          f"each configuration in its own process")
    for c in configs:
        print(f"- {c}: {CONFIGS[c][1]} (torch threads {runs[c]['threads']})")
    print()
    rows = []
    for c in configs:
        for i, r in enumerate(runs[c]["results"]):
            a, h, b = r["ask_ms"], r["rules_ms"], r["lc_ms"]
            target = 120.0 if i == 0 else 200.0
            rows.append([c, r["label"], f"{r['articles']:,} / {r['chunks']:,} / {r['lc_chunks']:,}", r["load"].split(",")[0],
                         common.pct(a, 50), common.pct(a, 95), common.pct(h, 50), common.pct(b, 50), common.pct(b, 95),
                         common.pct(a, 50) / common.pct(h, 50), common.pct(a, 50) / common.pct(b, 50),
                         f"<= {target:.0f}: " + ("met" if common.pct(a, 50) <= target else "MISSED")])
    print(common.table(
        ["config", "corpus", "articles / chunks / LC chunks", "load 1 min", "ask p50 ms", "ask p95 ms",
         "rules ask p50 ms", "LC search p50 ms", "LC search p95 ms", "ask / rules (p50)", "ask / LC (p50)", "target p50"],
        rows, "lllrrrrrrrrl"))
    print("(LC = eval/baseline.py: FaissVectorStore.similarity_search, k = 5: query embedding + exact FAISS search, "
          "asked right after each ask; ask = the whole cited answer by the learned answerer; rules = the same index "
          "answered by the hand-rule chain that preceded it)")
    print()
    print("question encoding (one question per call, interleaved): NumPy MiniLM (shipped) vs "
          "SentenceTransformer.encode on torch (before):")
    rows = []
    for c in configs:
        for r in runs[c]["results"]:
            e = r["encoder_ms"]
            rows.append([c, r["label"], common.pct(e["numpy"], 50), common.pct(e["numpy"], 95), common.pct(e["torch"], 50),
                         common.pct(e["torch"], 95), common.pct(e["torch"], 50) / common.pct(e["numpy"], 50),
                         f"{e['min_cosine'][0]:.6f}"])
    print(common.table(["config", "corpus", "NumPy p50 ms", "NumPy p95 ms", "torch p50 ms", "torch p95 ms",
                        "speed-up (p50)", "min cosine"], rows, "llrrrrrr"))
    cols = [(c, r) for c in configs for r in runs[c]["results"] if "stages" in r]
    if cols:
        print()
        print("where a warm ask spends its time (mean ms per question over one round, asked as retrieve + build_answer):")
        head = ["stage"] + [f"{c}: {r['label'].split(' (')[0]}" for c, r in cols]
        rows = [[st] + [r["stages"][st] for _, r in cols] for st in StageTimer.STAGES]
        rows.append(["total"] + [r["breakdown_total_ms"] for _, r in cols])
        print(common.table(head, rows))
    if cold:
        print()
        a, b, t = cold["ask_s"], cold["bare_s"], cold["import_s"]
        print(f"cold start: `rag ask \"{COLD_QUESTION}\" --json` on the bundled index, {len(a)} runs "
              f"(load average {cold['load']} at start):")
        print(common.table(
            ["process", "min s", "median s", "max s", "target"],
            [["rag ask (launch -> answer printed)", min(a), statistics.median(a), max(a), "<= 5 s: "
              + ("met" if statistics.median(a) <= 5 else "MISSED")],
             ["python -c 'import torch, sentence_transformers' (what rag ask imported before)", min(t), statistics.median(t), max(t), ""],
             ["python -c 'import torch; from transformers import AutoModel, AutoTokenizer'",
              min(cold["import_tf_s"]), statistics.median(cold["import_tf_s"]), max(cold["import_tf_s"]), ""],
             ["python -c pass (baseline)", min(b), statistics.median(b), max(b), ""]],
            "lrrrl"))
        print(f"rag ask / importing torch + sentence_transformers alone (median): {statistics.median(a) / statistics.median(t):.2f}")
        print()
        print("start-up steps of one instrumented cold process (seconds since launch, step duration):")
        prev = 0.0
        rows = []
        for k, v in cold["marks"].items():
            if isinstance(v, bool):
                continue
            rows.append([k, v, v - prev])
            prev = v
        print(common.table(["step finished", "at s", "step s"], rows))
        print(f"torch imported by the answering process: {cold['marks'].get('torch imported')}")
    common.write_json(args.json, {"settings": vars(args) | {"json": str(args.json)}, "runs": runs, "cold": cold})
    return 0


if __name__ == "__main__":
    sys.exit(main())
