"""Is the answer's confidence a probability? Plain functions over (confidence, right) pairs:
expected calibration error, the reliability table, the risk-coverage curve, and their chart.

"right" is whether the best answer is right, also where the answerer abstained (the harness
works that out from the best sentence), and always False for unanswerable questions."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

BINS = 10


def reliability(conf: Sequence[float], right: Sequence[bool], bins: int = BINS) -> list[dict]:
    """Equal-width bins over [0, 1]: count, mean confidence and share right of each non-empty bin."""
    out = []
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        idx = [i for i, c in enumerate(conf) if lo <= c < hi or (b == bins - 1 and c == 1.0)]
        if idx:
            out.append({
                "lo": lo, "hi": hi, "n": len(idx),
                "confidence": sum(conf[i] for i in idx) / len(idx),
                "accuracy": sum(bool(right[i]) for i in idx) / len(idx),
            })
    return out


def expected_calibration_error(conf: Sequence[float], right: Sequence[bool], bins: int = BINS) -> float | None:
    """Sum over bins of (bin share) x |mean confidence - share right|."""
    if not conf:
        return None
    n = len(conf)
    return sum(r["n"] / n * abs(r["confidence"] - r["accuracy"]) for r in reliability(conf, right, bins))


def risk_coverage(conf: Sequence[float], right: Sequence[bool]) -> list[tuple[float, float]]:
    """(coverage, risk) when answering only the questions at or above each confidence: coverage =
    share answered, risk = share of those answered wrong."""
    order = sorted(range(len(conf)), key=lambda i: -conf[i])
    out, wrong = [], 0
    for n, i in enumerate(order, start=1):
        wrong += not right[i]
        out.append((n / len(conf), wrong / n))
    return out


def write_chart(path: Path, conf: Sequence[float], right: Sequence[bool], title: str = "") -> str | None:
    """Reliability diagram and risk-coverage curve side by side (Agg canvas). Returns the name."""
    if not conf:
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4.2), dpi=110)
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(1, 2)
    rows = reliability(conf, right)
    ax1.plot([0, 1], [0, 1], color="#999", linestyle="--", linewidth=1, label="perfect calibration")
    ax1.bar([(r["lo"] + r["hi"]) / 2 for r in rows], [r["accuracy"] for r in rows], width=1 / BINS * 0.9,
            color="#4c72b0", alpha=0.8, label="share right")
    ax1.plot([r["confidence"] for r in rows], [r["accuracy"] for r in rows], "o", color="#c44e52", label="bin mean confidence")
    ece = expected_calibration_error(conf, right)
    ax1.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence", ylabel="share right",
            title=f"reliability (ECE {ece:.3f}, n = {len(conf)})")
    ax1.legend(loc="upper left", fontsize=8)
    rc = risk_coverage(conf, right)
    ax2.plot([c for c, _ in rc], [r for _, r in rc], color="#55a868")
    ax2.set(xlim=(0, 1), ylim=(0, 1), xlabel="coverage (share answered)", ylabel="risk (share of answers wrong)",
            title="risk-coverage")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path)
    return Path(path).name
