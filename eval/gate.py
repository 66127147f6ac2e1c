"""The quality bars of ``eval/thresholds.json``: which a run's metrics break."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from eval.gold import EVAL_DIR
from rag.errors import BadInputError

DEFAULT_THRESHOLDS = EVAL_DIR / "thresholds.json"


def _fmt(v: float | None) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float) and not v.is_integer():
        s = f"{v:.4f}".rstrip("0")
        return s if len(s.split(".")[1]) >= 2 else f"{v:.2f}"
    return f"{v:.2f}" if isinstance(v, float) else str(v)


def _metric(metrics: Mapping[str, Any], name: str) -> Any:
    if name in metrics:
        return metrics[name]
    overall = metrics.get("overall")
    if isinstance(overall, Mapping) and name in overall:
        return overall[name]
    raise KeyError(name)


def check_thresholds(metrics: dict, thresholds_path: Path = DEFAULT_THRESHOLDS, gate: str | None = None) -> list[str]:
    """Human-readable failures, empty when every bar is met. The file maps a gate name (``test``,
    ``heldout``) to its bars, or is one set of bars. A key ``<metric>_max`` is an upper bound,
    ``<metric>_min`` or a bare metric name a lower bound; a missing or n/a metric fails."""
    try:
        bars = json.loads(Path(thresholds_path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise BadInputError(f"{thresholds_path}: cannot read the thresholds ({e})") from e
    if not isinstance(bars, dict):
        raise BadInputError(f"{thresholds_path}: the thresholds must be a JSON object")
    if gate is not None:
        if not isinstance(bars.get(gate), dict):
            raise BadInputError(f"{thresholds_path}: no gate {gate!r} (it has {', '.join(sorted(bars))})")
        bars = bars[gate]
    bars = {k: v for k, v in bars.items() if not k.startswith("_")}  # "_note" and the like
    failures = []
    for key, bar in bars.items():
        if key.endswith("_max"):
            name, upper = key[: -len("_max")], True
        elif key.endswith("_min"):
            name, upper = key[: -len("_min")], False
        else:
            name, upper = key, False
        try:
            value = _metric(metrics, name)
        except KeyError:
            failures.append(f"{name} is missing from the metrics (bar {'<=' if upper else '>='} {_fmt(bar)})")
            continue
        if value is None:
            failures.append(f"{name} n/a (no item to measure it; bar {'<=' if upper else '>='} {_fmt(bar)})")
        elif upper and value > bar:
            failures.append(f"{name} {_fmt(value)} > {_fmt(bar)}")
        elif not upper and value < bar:
            failures.append(f"{name} {_fmt(value)} < {_fmt(bar)}")
    return failures
