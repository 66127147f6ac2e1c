"""Running an evaluation: ask every gold question, score it, write the run's files. ``evaluate`` is
the one entry point of ``rag eval``; ``run_eval`` runs one set on one pipeline."""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eval.calibration import reliability, write_chart
from eval.gate import DEFAULT_THRESHOLDS, check_thresholds
from eval.gold import DEFAULT_HELDOUT, DEFAULT_QA, QA_TYPES, QAItem, load_qa
from eval.metrics import (
    ItemResult, aggregate, aggregate_baseline, answer_correct, compare, evidence_in, evidence_rank,
    failure_reasons, mean, score_item, sentence_labels,
)
from eval.report import report_markdown, write_chart_per_type
from rag import settings as C
from rag.errors import BadInputError, RagError

if TYPE_CHECKING:
    from rag.pipeline import RagPipeline

Progress = Callable[[str], Any]  # label -> a (done, total) callback, or None


@dataclass(frozen=True)
class EvalOptions:
    """What ``rag eval`` was asked for (see its --help)."""

    qa: Path = DEFAULT_QA
    corpus: tuple[Path, ...] = ()
    split: str | None = None
    typos: bool = False
    followups: bool = False
    dated: bool = False  # with split: its dated copy (eval.dated)
    answerer: str = "learned"
    model: Path | None = None  # a learned answerer's JSON (default: the shipped one)
    index_dir: Path | None = None
    distractors: str | None = None
    out: Path = C.PROJECT_ROOT / "eval" / "runs" / "latest"
    k: int = C.DEFAULT_K
    mode: str = "extractive"
    baseline: bool = True
    thresholds: Path | None = DEFAULT_THRESHOLDS
    every: int = 1
    backend: str | None = None  # faiss or milvus (default: RAG_BACKEND, else faiss)
    milvus_uri: str | None = None


def evaluate(opts: EvalOptions, progress: Progress | None = None) -> dict:
    """Index what the set needs, run it (and with ``distractors="bbc"`` again with the 2,225 BBC
    articles added), write ``opts.out``/summary.json and each run's files. Returns the summary:
    ``clean`` (the metrics, with ``threshold_failures`` for a gated set), and ``bbc``/``drop``."""
    from rag.pipeline import RagPipeline

    if opts.every < 1:
        raise BadInputError(f"--every must be at least 1. Currently, it is {opts.every}")
    if (opts.typos or opts.followups) and not opts.split:
        raise BadInputError(f"--{'typos' if opts.typos else 'followups'} needs --split (train, dev or test)")
    if opts.typos and opts.followups:
        raise BadInputError("--typos and --followups are two different sets; ask for one")
    if opts.dated and (not opts.split or opts.typos or opts.followups):
        raise BadInputError("--dated needs --split (train, dev or test), without --typos or --followups")
    qa_path, corpus, index_dir = Path(opts.qa), list(opts.corpus), opts.index_dir
    if opts.split:  # the written BBC QA set: its split over the eligible BBC articles
        from eval import bbc

        qa_path = bbc.qa_path(opts.split, typos=opts.typos, followups=opts.followups)
        corpus = [bbc.DEFAULT_ARTICLES_DIR]
        bbc.stage_articles(bbc.DEFAULT_ARTICLES_DIR)
        index_dir = index_dir or bbc.DEFAULT_INDEX_DIR
        if opts.dated:  # its dated copy, over dated copies of the articles
            from eval import dated

            dated.stage_dated_articles(bbc.DEFAULT_ARTICLES_DIR, dated.ARTICLES_DIR)
            corpus, index_dir = [dated.ARTICLES_DIR], opts.index_dir or dated.INDEX_DIR
            qa_path = dated.DATED_DIR / f"{opts.split}.jsonl"
            dated.write_dated_qa(bbc.qa_path(opts.split), qa_path)
    bar = progress or (lambda label: None)
    with tempfile.TemporaryDirectory(prefix="rag-eval-") as tmp:
        temporary = corpus and index_dir is None
        if temporary:
            index_dir = Path(tmp) / "index"
        store = dict(answerer=opts.answerer, backend=opts.backend, milvus_uri=opts.milvus_uri, answerer_model=opts.model)
        p = RagPipeline(index_dir=index_dir, **store)
        try:
            paths = corpus or [C.BUNDLED_ARTICLES]
            p.ensure_index(paths, progress=bar("indexing"))
            articles = {a.source: a.text for a in p.index.articles.values()}
            qa = load_qa(qa_path, articles)[:: opts.every]
            run = dict(k=opts.k, mode=opts.mode, baseline=opts.baseline, progress=progress is not None)
            metrics = run_eval(p, qa, Path(opts.out) / "clean", gate=gate_for(opts, qa_path), thresholds=opts.thresholds, **run)
            result = {"clean": metrics, "model": str(opts.model or C.ANSWERER_MODEL) if opts.answerer == "learned" else None}
            if opts.distractors == "bbc":
                from eval.distractors import stage_bbc

                pb = RagPipeline(index_dir=Path(tmp) / "bbc-index", **store)
                try:
                    pb.index_paths(list(paths) + stage_bbc(Path(tmp) / "bbc"), progress=bar("indexing BBC"))
                    result["bbc"] = run_eval(pb, qa, Path(opts.out) / "bbc", label="bbc", **run)
                finally:
                    drop_temporary(pb)
                result["drop"] = compare(metrics, result["bbc"])
        finally:
            if temporary:
                drop_temporary(p)
    (Path(opts.out) / "summary.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    return result


def drop_temporary(p) -> None:
    """An index built for one run goes with its temporary folder (Milvus collections too: they
    live on the server, not in the folder)."""
    drop = getattr(p.store, "drop", None)
    if drop is not None and p.store.exists():
        drop()


def gate_for(opts: EvalOptions, qa_path: Path) -> str | None:
    """The bars a set is held to: the test split and the held-out set, the sets nothing was
    fitted on; none for the others (or without a thresholds file)."""
    if not opts.thresholds:
        return None
    if opts.split == "test" and not (opts.typos or opts.followups or opts.dated):
        return "test"
    return "heldout" if qa_path.resolve() == DEFAULT_HELDOUT.resolve() else None


def best_sentence_right(pipeline, item: QAItem) -> bool:
    """Whether the answerer's best sentence (the one it would cite) answers ``item`` right. For
    calibration where it abstained."""
    if not item.answerable:
        return False
    r = pipeline.retrieve(item.question, k=10, history=item.history)
    if not r.sentences:
        return False
    s = r.sentences[0]
    art = pipeline.index.articles[s.doc_id]
    return sentence_labels(item, art.source, art.text[s.start : s.end])[1]


def run_eval(
    pipeline: RagPipeline,
    qa: list[QAItem],
    out_dir: Path,
    *,
    k: int = 5,
    mode: str = "extractive",
    baseline: bool = True,
    progress: bool = True,
    label: str = "clean",
    gate: str | None = None,
    thresholds: Path | None = DEFAULT_THRESHOLDS,
) -> dict:
    """Ask every question with ``pipeline.ask(question, k=max(k, 10), mode=mode)``, score it and
    write ``out_dir``/predictions.jsonl, metrics.json, report.md and per_type.png (plus
    baseline_predictions.jsonl with ``baseline=True``). Returns the metrics dict: the headline
    metrics as flat keys, ``counts``, ``per_type``, ``baseline`` and ``threshold_failures``."""
    if k < 1:
        raise BadInputError(f"k must be at least 1. Currently, k is {k}")
    if not qa:
        raise BadInputError("no question to evaluate")
    t_start = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    articles = {a.source: a.text for a in pipeline.index.articles.values()}
    missing = sorted({d for it in qa for d in it.docs if d not in articles})
    if missing:
        raise BadInputError(
            f"the index does not hold {', '.join(missing)}, named by the gold set; index those articles first"
        )
    ask_k = max(k, 10)
    results = ask_all(pipeline, qa, out_dir / "predictions.jsonl", k=ask_k, mode=mode, label=label, progress=progress)
    system_seconds = time.perf_counter() - t_start
    base_info = run_baseline(results, articles, pipeline.embedder, out_dir, k=ask_k, label=label,
                             progress=progress) if baseline else None
    for r in results:
        r.reasons = failure_reasons(r, k)
    metrics = summarise(results, k, label=label, mode=mode, documents=len(articles), base_info=base_info)
    metrics["gate"] = gate
    metrics["threshold_failures"] = check_thresholds(metrics, thresholds, gate) if gate and thresholds else []
    metrics["seconds"] = {"system": round(system_seconds, 2), "total": round(time.perf_counter() - t_start, 2)}
    chart = write_chart_per_type(out_dir / "per_type.png", metrics, k)
    calib = [(r.confidence, bool(r.best_right)) for r in results if r.confidence is not None and r.best_right is not None]
    metrics["reliability"] = reliability([c for c, _ in calib], [b for _, b in calib])
    metrics["reliability_chart"] = write_chart(
        out_dir / "reliability.png", [c for c, _ in calib], [b for _, b in calib], title=f"{label}: {len(calib)} questions")
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (out_dir / "report.md").write_text(report_markdown(metrics, results, k, chart), encoding="utf-8")
    return metrics


def ask_all(pipeline, qa: Sequence[QAItem], path: Path, *, k: int, mode: str, label: str,
            progress: bool) -> list[ItemResult]:
    """Ask and score every item; one line of ``path`` (predictions.jsonl) each."""
    from tqdm import tqdm

    results: list[ItemResult] = []
    with open(path, "w", encoding="utf-8") as f:
        for it in tqdm(qa, desc=f"eval {label}", unit="q", file=sys.stderr, disable=not progress):
            try:
                ans = pipeline.ask(it.question, k=k, mode=mode, history=it.history)
            except RagError as e:
                res = score_item(it, None)
                res.error = f"{type(e).__name__}: {e}"
                f.write(json.dumps({"id": it.id, "question": it.question, "error": res.error}, ensure_ascii=False) + "\n")
            else:
                res = score_item(it, ans)
                if res.confidence is not None and res.best_right is None:
                    res.best_right = best_sentence_right(pipeline, it)
                f.write(json.dumps({"id": it.id, **ans.to_json()}, ensure_ascii=False) + "\n")
            results.append(res)
    return results


def run_baseline(results: Sequence[ItemResult], articles: dict[str, str], embedder, out_dir: Path, *, k: int,
                 label: str, progress: bool) -> dict[str, Any]:
    """The plain LangChain baseline (eval/baseline.py) on the same questions: fills each result's
    ``baseline_*`` fields and writes baseline_predictions.jsonl. Returns its build facts."""
    from tqdm import tqdm

    from eval.baseline import LangChainBaseline

    t0 = time.perf_counter()
    if progress:
        print(f"baseline: embedding {len(articles)} article(s) in 1000/200 chunks…", file=sys.stderr)
    bl = LangChainBaseline(articles, embedder)
    build_s = time.perf_counter() - t0
    with open(out_dir / "baseline_predictions.jsonl", "w", encoding="utf-8") as f:
        for res in tqdm(results, desc=f"baseline {label}", unit="q", file=sys.stderr, disable=not progress):
            it = res.item
            hit = bl.search(it.question, k=k)
            texts = [d.page_content for d in hit.chunks]
            res.baseline_latency_ms = hit.latency_ms
            res.baseline_top = hit.answer
            res.baseline_sources = tuple(d.metadata.get("source", "") for d in hit.chunks)
            if it.answerable:
                res.baseline_rank = evidence_rank(texts, it.evidence)
                res.baseline_correct = answer_correct(hit.answer, it.answers)
            f.write(json.dumps({
                "id": it.id, "question": it.question, "answer": hit.answer,
                "chunks": [{"rank": n, "source": d.metadata.get("source"), "start_index": d.metadata.get("start_index"),
                            "score": round(s, 4)} for n, (d, s) in enumerate(zip(hit.chunks, hit.scores), start=1)],
                "latency_ms": round(hit.latency_ms, 2),
            }, ensure_ascii=False) + "\n")
    outside = sum(
        1 for r in results for ev in r.item.evidence
        if not any(evidence_in(d.page_content, ev) for d in bl.documents if d.metadata.get("source") in r.item.docs)
    )
    return {
        "chunks": len(bl.documents),
        "build_seconds": round(build_s, 2),
        "evidence_in_no_chunk": outside,  # gold sentences cut by the 1000-char splitter
    }


def summarise(results: Sequence[ItemResult], k: int, *, label: str, mode: str, documents: int,
              base_info: dict[str, Any] | None) -> dict[str, Any]:
    """The metrics dict of a run: headline metrics as flat keys, counts, per type, baseline."""
    overall = aggregate(results, k)
    types_present = [t for t in QA_TYPES if any(r.item.type == t for r in results)]
    per_type = {t: aggregate([r for r in results if r.item.type == t], k) for t in types_present}
    metrics: dict[str, Any] = {
        "label": label,
        "mode": mode,
        "k": k,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "questions": len(results),
        "corpus": {"documents": documents},
    }
    metrics.update({key: v for key, v in overall.items() if key not in ("n", "answerable", "unanswerable")})
    multi = [r for r in results if r.item.type == "multi_doc"]
    metrics["multi_doc_all_cited"] = mean([r.cit_recall == 1.0 for r in multi])
    metrics["counts"] = {
        "questions": len(results),
        "answerable": overall["answerable"],
        "unanswerable": overall["unanswerable"],
        "by_type": {t: per_type[t]["n"] for t in types_present},
        "abstained": sum(r.abstained for r in results),
        "answered_correctly": sum(r.correct for r in results),
        "citations": sum(len(r.quotes) for r in results if r.item.answerable),
        "citations_supported": sum(sum(r.supported) for r in results if r.item.answerable),
        "citations_on_unanswerable": sum(len(r.quotes) for r in results if not r.item.answerable),
        "errors": sum(1 for r in results if r.error),
        "failures": sum(1 for r in results if r.reasons),
    }
    metrics["per_type"] = per_type
    if base_info is not None:
        b = aggregate_baseline(results, k)
        b.update(base_info)
        b["per_type"] = {
            t: aggregate_baseline([r for r in results if r.item.type == t], k) for t in types_present if t != "unanswerable"
        }
        metrics["baseline"] = b
    return metrics
