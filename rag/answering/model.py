"""The learned answerer's parameters, loaded from one place: ``settings.ANSWERER_MODEL``
(``rag/models/answerer.json``, written by ``rag train``; plain JSON, no pickle).

* ``scorer``: the evidence model, log-odds that a sentence answers the question
  (``rag.retrieval.scoring.FEATURES``);
* ``confidence``: a logistic calibration of the answer as a whole, over ``CONFIDENCE_FEATURES``
  of the best sentence, fitted on out-of-fold predictions of the train split;
* ``threshold``: the answer is given when its confidence reaches it (chosen on the dev split).
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from rag import settings as C
from rag.errors import RagError
from rag.retrieval.scoring import LinearScorer

MODEL_FORMAT = 1
# what the calibrated confidence of an answer is computed from
CONFIDENCE_FEATURES = ("top_logit", "margin", "names_article", "article_coverage")


def confidence_inputs(top_logit: float, second_logit: float | None, features: dict[str, float]) -> list[float]:
    """``CONFIDENCE_FEATURES`` of an answer: the best sentence's log-odds, its margin over the
    best sentence of another passage (4.0 when there is none), and two article-level shares."""
    margin = min(top_logit - second_logit, 4.0) if second_logit is not None else 4.0
    return [top_logit, margin, features["names_article"], features["article_coverage"]]


@dataclass(frozen=True)
class Answerer:
    scorer: LinearScorer
    confidence_coef: tuple[float, ...]
    confidence_intercept: float
    threshold: float
    meta: dict = field(default_factory=dict, compare=False)

    def confidence(self, inputs: list[float]) -> float:
        z = sum(c * x for c, x in zip(self.confidence_coef, inputs)) + self.confidence_intercept
        return 1.0 / (1.0 + math.exp(-max(min(z, 40.0), -40.0)))

    def to_json(self) -> dict:
        return {
            "format": MODEL_FORMAT,
            "evidence": self.scorer.to_json(),
            "confidence": {
                "features": list(CONFIDENCE_FEATURES),
                "coef": list(self.confidence_coef),
                "intercept": self.confidence_intercept,
            },
            "threshold": self.threshold,
            "meta": self.meta,
        }

    @classmethod
    def from_json(cls, d: dict) -> Answerer:
        if d.get("format") != MODEL_FORMAT:
            raise ValueError(f"model format {d.get('format')!r}; this program reads format {MODEL_FORMAT}")
        conf = d["confidence"]
        if tuple(conf["features"]) != CONFIDENCE_FEATURES:
            raise ValueError("the confidence features differ from this program's")
        return cls(
            LinearScorer.from_json(d["evidence"]), tuple(float(c) for c in conf["coef"]),
            float(conf["intercept"]), float(d["threshold"]), d.get("meta", {}),
        )


def save_answerer(answerer: Answerer, path: Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(answerer.to_json(), indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)


@functools.cache
def load_answerer(path: Path | None = None) -> Answerer | None:
    """The shipped answerer, or None when no trained model is there (the rule-based chain then
    answers). A model file that exists but cannot be read is an error, not a silent fallback."""
    path = Path(path or C.ANSWERER_MODEL)
    if not path.exists():
        return None
    try:
        return Answerer.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise RagError(f"{path}: the answerer model cannot be read ({e}); run `rag train` to rebuild it") from e
