"""The `rag` command. Domain errors become one line on stderr and exit code 2 here, at the edge."""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from pathlib import Path

from rag import settings as C
from rag.errors import RagError

EXIT_ERROR = 2
# control characters (ANSI escapes), and bidirectional overrides that reorder what follows
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def shown(text: object) -> str:
    """``text`` safe to print on a terminal: a file name or title cannot move the cursor,
    recolour the screen or reorder the line; its control characters are printed escaped."""
    return _UNSAFE.sub(lambda m: m.group(0).encode("unicode_escape").decode("ascii"), str(text))


def warn(text: object) -> None:
    print(f"warning: {shown(text)}", file=sys.stderr, flush=True)


def _progress_bar(desc: str, unit: str = "chunk"):
    """A tqdm bar on stderr for embedding progress (shown for long runs only)."""
    from tqdm import tqdm

    state: dict = {}

    def update(done: int, total: int) -> None:
        bar = state.get("bar")
        if bar is None:
            bar = state["bar"] = tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, disable=total < 50)
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return update


def _pipeline(args, **kw):
    from rag.pipeline import RagPipeline

    return RagPipeline(index_dir=args.index_dir, backend=args.backend, milvus_uri=args.milvus_uri, **kw)


def cmd_index(args) -> int:
    from index.ingest import collect

    p = _pipeline(args)
    store = p.store
    store.check_writable()  # before reading or embedding anything
    paths = args.paths or [C.BUNDLED_ARTICLES]
    embed = None
    if args.ray:  # read, clean, chunk and embed on Ray (local, or the cluster at RAY_ADDRESS)
        from index.ray_ingest import ray_collect, ray_embed

        corpus = ray_collect(paths)
        embed = ray_embed(p.embedder, p.store.settings)
    else:
        corpus = collect(paths)
    for s in corpus.skipped:
        warn(f"skipped {s.path}: {s.reason}")
    for dup, kept in corpus.duplicates:
        warn(f"{dup} has the same text as {kept}; indexed once")
    bar = _progress_bar("embedding on Ray", "article") if args.ray else _progress_bar("embedding")
    report = store.update(corpus, prune=args.prune, rebuild=args.rebuild, progress=bar, embed=embed,
                          on_wait=lambda message: print(shown(message), file=sys.stderr, flush=True))
    for path, reason in report.unreadable[len(corpus.skipped):]:
        warn(f"skipped {path}: {reason}")
    for dup, kept in report.duplicates[len(corpus.duplicates):]:
        warn(f"{dup} has the same text as {kept}, already indexed; skipped")
    print(f"{report.summary()} ({report.chunks_embedded} chunks embedded) -> {shown(store.path)}")
    return 0


def cmd_stats(args) -> int:
    st = _pipeline(args).store
    s = st.stats()
    if args.sources:
        s["sources"] = st.sources()
    if args.json:
        print(json.dumps(s, indent=2, ensure_ascii=False))
        return 0
    size = s["on_disk_bytes"]
    print(f"index:     {s['index_dir']}")
    print(f"documents: {s['documents']}")
    print(f"chunks:    {s['chunks']}")
    print(f"sentences: {s['sentences']}")
    print(f"model:     {s['model']}")
    print(f"dimension: {s['dim']}")
    print(f"type:      {s['index_type']}")
    print(f"on disk:   {size / 1e6:.2f} MB" if size is not None else "on disk:   (on the Milvus server)")
    if args.sources:
        print("sources:")
        for name in s["sources"]:
            print(f"  {shown(name)}")
    return 0


def cmd_migrate(args) -> int:
    """Copy the FAISS index at --index-dir into Milvus, with its stored vectors (no embedding)."""
    from index.milvus_store import MilvusStore
    from index.store import IndexStore
    from rag.pipeline import RagPipeline

    p = RagPipeline(index_dir=args.index_dir, backend="faiss")
    assert isinstance(p.store, IndexStore)
    target = RagPipeline(index_dir=p.index_dir, embedder=p.embedder, backend=args.to, milvus_uri=args.milvus_uri).store
    assert isinstance(target, MilvusStore)
    report = target.import_index(p.store.load())
    print(f"copied {len(report.added)} articles ({report.chunks_embedded} chunks), "
          f"{len(report.skipped)} already there -> {target.path}")
    return 0


def format_answer(ans) -> str:
    lines = []
    if ans.abstained:
        lines.append(ans.answer + (f" ({ans.note})" if ans.note else ""))
        if ans.passages:
            lines.append("")
            lines.append("Closest passages (related, not support):")
            for p in ans.passages[:3]:
                text = " ".join(p.text.split())
                lines.append(f"  - {shown(p.source)}: {shown(text[:160])}{'…' if len(text) > 160 else ''}")
        return "\n".join(lines)
    if ans.short_answer:
        lines.append(f"Answer: {ans.short_answer}")
    lines.append(ans.answer)
    if ans.confidence is not None:
        lines.append(f"Confidence: {ans.confidence:.0%} (calibrated probability that the answer is right)")
    lines.append("")
    lines.append("Sources:")
    for c in ans.citations:
        date = f", {c.date}" if c.date else ""
        lines.append(f"  [{c.n}] {shown(c.title)} ({shown(c.source)}{date}), chars {c.start}-{c.end}")
        lines.append(f"      “{shown(' '.join(c.quote.split()))}”")
    return "\n".join(lines)


def cmd_ask(args) -> int:
    p = _pipeline(args)
    ans = p.ask(
        args.question, history=args.history, k=args.k, since=args.since, until=args.until,
        sources=args.source or (), mode=args.mode,
    )
    if args.json:
        print(json.dumps(ans.to_json(), ensure_ascii=False, indent=2))
    else:
        print(format_answer(ans))
    return 0


def cmd_eval(args) -> int:
    from eval.run import EvalOptions, evaluate

    opts = EvalOptions(
        qa=args.qa, corpus=tuple(args.corpus or ()), split=args.split, typos=args.typos, followups=args.followups, dated=args.dated,
        answerer=args.answerer, model=args.model, index_dir=args.index_dir, distractors=args.distractors, out=args.out, k=args.k,
        mode=args.mode, baseline=not args.no_baseline, thresholds=args.thresholds, every=args.every,
        backend=args.backend, milvus_uri=args.milvus_uri,
    )
    metrics = evaluate(opts, progress=_progress_bar)["clean"]
    _print_headline(metrics)
    failures = metrics["threshold_failures"]
    for f in failures:
        print(f"below threshold: {f}", file=sys.stderr)
    print(f"report: {Path(args.out) / 'clean' / 'report.md'}")
    return 1 if failures and args.strict else 0


def _print_headline(m: dict) -> None:
    o = m.get("overall", m)
    keys = ["evidence_recall@5", "answer_accuracy", "citation_precision", "citation_recall",
            "abstention_unanswerable", "abstention_answerable", "latency_p50_ms", "latency_p95_ms"]
    for k in keys:
        if k in o:
            v = o[k]
            print(f"{k:26s} {v:.3f}" if isinstance(v, float) else f"{k:26s} {v}")


def cmd_train(args) -> int:
    if args.span:  # the short-answer span scorer (eval/train_span.py)
        from eval.train_span import summary, train as train_span

        _, meta = train_span(out=args.out, progress=False, reader=not args.no_reader)
        print(summary(meta))
        print(f"model: {args.out or C.SPAN_MODEL}")
        return 0
    from eval.train import train

    answerer, meta = train(out=args.out, reader=not args.no_reader)
    m = meta["metrics"]
    print(f"trained on {meta['data']['train']['questions']} questions ({meta['train_rows']} sentences); "
          f"C = {meta['regularisation_C']} and threshold = {meta['threshold']:.2f} chosen on dev "
          f"({meta['data']['dev']['questions']} questions)")
    for name, row in m.items():
        print(f"  {name:18s} " + "  ".join(f"{k} {v}" for k, v in row.items()))
    print(f"model: {args.out or C.ANSWERER_MODEL}")
    return 0


def cmd_ui(args) -> int:
    from ui import launch

    launch(index_dir=args.index_dir, host=args.host, port=args.port, pipeline=_pipeline(args))
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="rag", description="Cited question answering over news articles, offline.")
    ap.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = ap.add_subparsers(dest="command", required=True)

    def index_dir(p):
        p.add_argument("--index-dir", type=Path, default=None, help=f"index directory (default {C.default_index_dir()})")
        p.add_argument("--backend", choices=list(C.BACKENDS), default=None,
                       help="index storage: faiss (a directory, default) or milvus; default $RAG_BACKEND")
        p.add_argument("--milvus-uri", default=None,
                       help="Milvus Lite file or http://host:19530 (default $RAG_MILVUS_URI, else data/milvus.db)")

    p = sub.add_parser("index", help="index articles (.txt/.md files or folders); idempotent")
    p.add_argument("paths", nargs="*", type=Path, help=f"files or folders (default: the bundled {C.BUNDLED_ARTICLES.name}/)")
    index_dir(p)
    p.add_argument("--prune", action="store_true", help="remove indexed articles whose files are not among PATHS")
    p.add_argument("--rebuild", action="store_true", help="ignore the existing index and build a new one")
    p.add_argument("--ray", action="store_true",
                   help="read, chunk and embed on Ray (local, or the cluster at $RAY_ADDRESS); needs .[scale]")
    p.set_defaults(func=cmd_index)

    p = sub.add_parser("migrate", help="copy the FAISS index into Milvus, with its vectors (no re-embedding)")
    p.add_argument("--to", choices=["milvus"], required=True)
    index_dir(p)
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("stats", help="documents, chunks, model, dimension, size of the index")
    index_dir(p)
    p.add_argument("--json", action="store_true")
    p.add_argument("--sources", action="store_true", help="also list the indexed file names (for ask --source)")
    p.set_defaults(func=cmd_stats)

    p = sub.add_parser("ask", help="answer a question with citations, or say the articles don't")
    p.add_argument("question")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("-k", type=int, default=C.DEFAULT_K, help="passages to return (default %(default)s)")
    p.add_argument("--since", help="only articles dated on or after YYYY-MM-DD")
    p.add_argument("--until", help="only articles dated on or before YYYY-MM-DD")
    p.add_argument("--source", action="append", help="only this article file name (repeatable)")
    p.add_argument("--history", action="append", default=[], help="an earlier question of the conversation (repeatable, oldest first)")
    p.add_argument("--mode", choices=["extractive", "llm"], default="extractive")
    index_dir(p)
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("eval", help="evaluate against hand-written Q&A pairs")
    p.add_argument("--qa", type=Path, default=C.PROJECT_ROOT / "eval" / "data" / "qa.jsonl")
    p.add_argument("--corpus", type=Path, nargs="+", help="articles to index and evaluate on (default: the bundled index)")
    p.add_argument("--split", choices=["train", "dev", "test"],
                   help="the written BBC QA set's split, over the eligible BBC articles (eval/data/bbc)")
    p.add_argument("--typos", action="store_true", help="with --split: the typo'd copies of that split")
    p.add_argument("--dated", action="store_true",
                   help="with --split: its one-article questions naming their article's period, over dated copies of the articles")
    p.add_argument("--followups", action="store_true",
                   help="with --split: that split's follow-up questions, each asked after its earlier ones")
    p.add_argument("--answerer", choices=list(C.ANSWERERS), default="learned",
                   help="learned (default) or the hand-rule chain, for comparison")
    p.add_argument("--model", type=Path, default=None,
                   help="the learned answerer's JSON to evaluate (default: the shipped rag/models/answerer.json); "
                        "e.g. the one `rag train --out` wrote, to judge it before it ships")
    index_dir(p)
    p.add_argument("--distractors", choices=["bbc"], help="also run with the 2,225 BBC News articles added")
    p.add_argument("--out", type=Path, default=C.PROJECT_ROOT / "eval" / "runs" / "latest")
    p.add_argument("-k", type=int, default=C.DEFAULT_K)
    p.add_argument("--mode", choices=["extractive", "llm"], default="extractive")
    p.add_argument("--no-baseline", action="store_true", help="skip the plain LangChain baseline column")
    p.add_argument("--thresholds", type=Path, default=C.PROJECT_ROOT / "eval" / "thresholds.json",
                   help="bars checked for --split test and the held-out set (the sets nothing was fitted on)")
    p.add_argument("--strict", action="store_true", help="exit 1 when a threshold is broken")
    p.add_argument("--every", type=int, default=1, metavar="N",
                   help="evaluate every N-th question only (a quick or language-model run; thresholds are for N=1)")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("train", help="fit the learned answerer on the train split, choose on dev (eval/data/bbc)")
    p.add_argument("--out", type=Path, default=None, help="model file (default: the shipped rag/models/answerer.json)")
    p.add_argument("--span", action="store_true",
                   help="fit the short-answer span scorer and its span reader instead (default --out: rag/models/span.json)")
    p.add_argument("--no-reader", action="store_true",
                   help="without the reader (the cross-encoder; it is most of the training time); with --span, without the span reader")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("ui", help="open the chat in the browser (Gradio)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s: this machine only)")
    p.add_argument("--port", type=int, default=7860)
    index_dir(p)
    p.set_defaults(func=cmd_ui)
    return ap


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except RagError as e:
        if args.debug:
            raise
        print(f"error: {shown(e)}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted; the index was left as it was before this command", file=sys.stderr)
        return 130
    except OSError as e:  # a file or folder the system refused: say which and why
        if args.debug:
            raise
        where = f" ({shown(e.filename)})" if e.filename else ""
        print(f"error: {shown(e.strerror or e)}{where}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as e:  # the edge: no traceback for the user
        if args.debug:
            raise
        print(f"error: unexpected {type(e).__name__}: {shown(e)} (run with --debug for details)", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
