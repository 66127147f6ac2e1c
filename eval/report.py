"""The run's report: report.md and its per-type chart."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eval.gate import DEFAULT_THRESHOLDS
from eval.metrics import HEADLINE, RECALL_AT, ItemResult

def write_chart_per_type(path: Path, metrics: dict, k: int) -> str:
    """Grouped bars per question type (Agg canvas, no pyplot state). Returns the file name."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    per_type = metrics["per_type"]
    types = list(per_type)
    base = (metrics.get("baseline") or {}).get("per_type", {})
    series = [
        ("system: correct (accuracy; abstention for unanswerable)",
         [per_type[t]["answer_accuracy"] if t != "unanswerable" else per_type[t]["abstention_unanswerable"] for t in types]),
        (f"system: evidence recall@{k}", [per_type[t].get(f"evidence_recall@{k}") for t in types]),
    ]
    if base:
        series += [
            (f"baseline: evidence recall@{k}", [base.get(t, {}).get(f"evidence_recall@{k}") for t in types]),
            ("baseline: top-1 chunk contains answer", [base.get(t, {}).get("answer_accuracy") for t in types]),
        ]
    fig = Figure(figsize=(max(8, 1.1 * len(types) + 3), 4.5), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    width = 0.8 / len(series)
    for j, (name, vals) in enumerate(series):
        xs = [i - 0.4 + width * (j + 0.5) for i in range(len(types))]
        ax.bar(xs, [v if v is not None else 0 for v in vals], width, label=name)
    ax.set_xticks(range(len(types)))
    ax.set_xticklabels([f"{t}\n(n={per_type[t]['n']})" for t in types], fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("share of items")
    ax.set_title(f"Per question type — {metrics['label']}")
    ax.grid(axis="y", alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=8, loc="lower center", ncol=min(4, len(series)), frameon=False)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(path)
    return path.name


def _cell(v: Any, name: str = "") -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.1f}" if name.endswith("_ms") else f"{v:.3f}"
    return str(v).replace("|", "\\|").replace("\n", " ")


def _quote(s: str | None, n: int = 400) -> str:
    if not s:
        return "(none)"
    s = " ".join(s.split())
    return (s[:n] + "…") if len(s) > n else s


def report_markdown(metrics: dict, results: Sequence[ItemResult], k: int, chart: str) -> str:
    """report.md of a run: header and gate, headline table beside the baseline, per type,
    confidence, counts, and every failed question with what the chain answered."""
    sections = [
        _header(metrics, k), _headline(metrics, k), _per_type(metrics, k, chart), _confidence(metrics),
        _counts(metrics), _failures(results),
    ]
    return "\n\n".join("\n".join(lines) for lines in sections if lines) + "\n"


def _bars(gate: str | None, path: Path = DEFAULT_THRESHOLDS) -> dict[str, Any]:
    """The bars of ``gate`` in the thresholds file ({} when not gated or unreadable)."""
    try:
        bars = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return bars.get(gate, {}) if gate and isinstance(bars, dict) else {}


def _bar_for(bars: dict[str, Any], name: str) -> str:
    if name in bars:
        return f"≥ {bars[name]}"
    if f"{name}_min" in bars:
        return f"≥ {bars[name + '_min']}"
    if f"{name}_max" in bars:
        return f"≤ {bars[name + '_max']}"
    return ""


def _header(m: dict, k: int) -> list[str]:
    L = [f"# Evaluation report — {m['label']}", ""]
    L.append(
        f"{m['questions']} questions ({m['counts']['answerable']} answerable, {m['counts']['unanswerable']} unanswerable) "
        f"over {m['corpus']['documents']} indexed article(s); mode `{m['mode']}`, k = {k} "
        f"(passages asked: {max(k, 10)}); {m['created']}; {m['seconds']['total']} s."
    )
    L.append("")
    fails = m.get("threshold_failures") or []
    if not m.get("gate"):
        L.append("**Thresholds:** not gated (only the test split and the held-out set are: nothing was fitted on them).")
    else:
        L.append(f"**Thresholds ({m['gate']}):** " + ("all met." if not fails else "FAILED — " + "; ".join(fails)))
    return L


def _headline(m: dict, k: int) -> list[str]:
    b, bars = m.get("baseline"), _bars(m.get("gate"))
    L = ["## Headline metrics", "", "| metric | system | baseline | bar |", "|---|---|---|---|"]
    names = list(HEADLINE)
    if f"evidence_recall@{k}" not in names:
        names.insert(4, f"evidence_recall@{k}")
    for name in names + ["multi_doc_all_cited"]:
        bval = None
        if b is not None:
            bval = b.get("search_latency_p50_ms") if name == "latency_p50_ms" else b.get(name)
        L.append(f"| {name} | {_cell(m.get(name), name)} | {_cell(bval, name)} | {_bar_for(bars, name)} |")
    L.append("")
    L.append(
        "Baseline: LangChain `RecursiveCharacterTextSplitter(1000, 200)` + the same MiniLM model + exact FAISS "
        "inner-product search; its answer is the top chunk (it never abstains), its latency is query embedding + FAISS search "
        "(the system's is the whole ask)."
    )
    if b is not None:
        L.append(
            f"Baseline index: {b['chunks']} chunks built in {b['build_seconds']} s; "
            f"{b['evidence_in_no_chunk']} gold evidence sentence(s) lie in no single baseline chunk."
        )
    return L


def _per_type(m: dict, k: int, chart: str) -> list[str]:
    b = m.get("baseline")
    cols = [f"evidence_recall@{a}" for a in sorted(set(RECALL_AT) | {k})] + [
        "mrr", "answer_accuracy", "citation_precision", "citation_recall", "abstention_unanswerable",
        "abstention_answerable", "latency_p50_ms",
    ]
    short = {c: c.replace("evidence_recall", "R").replace("abstention_", "abst_").replace("citation_", "cit_")
             .replace("answer_accuracy", "acc").replace("latency_p50_ms", "p50 ms") for c in cols}
    head = ["type", "n"] + [short[c] for c in cols]
    if b is not None:
        head += [f"base R@{k}", "base acc"]
    L = ["## Per question type", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for t, row in m["per_type"].items():
        cells = [t, str(row["n"])] + [_cell(row.get(c), c) for c in cols]
        if b is not None:
            bt = b["per_type"].get(t, {})
            cells += [_cell(bt.get(f"evidence_recall@{k}")), _cell(bt.get("answer_accuracy"))]
        L.append("| " + " | ".join(cells) + " |")
    L += ["", f"![per-type results]({chart})"]
    return L


def _confidence(m: dict) -> list[str]:
    if not m.get("reliability_chart"):
        return []
    L = ["## Confidence", "",
         "Reliability of the answer's confidence (right = the best sentence answers it; unanswerable "
         "questions are never right) and the risk-coverage curve it gives.", "",
         "| confidence bin | questions | mean confidence | share right |", "|---|---:|---:|---:|"]
    for b in m["reliability"]:
        L.append(f"| {b['lo']:.1f}-{b['hi']:.1f} | {b['n']} | {b['confidence']:.3f} | {b['accuracy']:.3f} |")
    L += ["", f"![reliability and risk-coverage]({m['reliability_chart']})"]
    return L


def _counts(m: dict) -> list[str]:
    return ["## Counts", ""] + [f"- {key}: {v}" for key, v in m["counts"].items() if key != "by_type"]


def _failures(results: Sequence[ItemResult]) -> list[str]:
    failed = [r for r in results if r.reasons]
    L = [f"## Failures ({len(failed)})", ""]
    if not failed:
        L.append("None.")
    for r in failed:
        L += _failure(r) + [""]
    return L


def _failure(r: ItemResult) -> list[str]:
    it, ans = r.item, r.answer
    L = [f"### {it.id} ({it.type}) — {'; '.join(r.reasons)}", "", f"- **Question:** {it.question}"]
    L.append("- **Expected:** " + (", ".join(f"“{a}”" for a in it.answers) if it.answers else "abstain (unanswerable)"))
    L += [f"- **Gold doc:** {d}" for d in it.docs]
    L += [f"- **Gold evidence:** {_quote(ev)}" for ev in it.evidence]
    if r.error:
        L.append(f"- **Error:** {r.error}")
    elif ans is not None:
        L.append(f"- **Abstained:** {'yes' if ans.abstained else 'no'}" + (f" — note: {ans.note}" if ans.note else ""))
        L.append(f"- **Answer:** {_quote(ans.answer)}")
        if ans.short_answer:
            L.append(f"- **Short answer:** {ans.short_answer}")
        for c, ok in zip(ans.citations, r.supported):
            L.append(f"- **Citation [{c.n}]** {c.source} {c.start}-{c.end} ({'supported' if ok else 'UNSUPPORTED'}): {_quote(c.quote, 300)}")
        if it.answerable:
            L.append(f"- **Evidence rank:** {'not in the passages' if r.rank is None else f'rank {r.rank}'}")
        for p in ans.passages[:3]:
            L.append(f"- **Passage {p.rank}** {p.source} {p.start}-{p.end} (score {p.score}): {_quote(p.text, 200)}")
        L.append(f"- **Latency:** {ans.latency_ms:.0f} ms")
    if r.baseline_top is not None and it.answerable:
        L.append(
            f"- **Baseline:** evidence rank {r.baseline_rank or '–'}, top chunk "
            f"{'contains' if r.baseline_correct else 'lacks'} an answer ({r.baseline_sources[0] if r.baseline_sources else '–'})"
        )
    return L
