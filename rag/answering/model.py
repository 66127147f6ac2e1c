"""The learned answerer's parameters, loaded from one place: ``settings.ANSWERER_MODEL``
(``rag/models/answerer.json``, written by ``rag train``; plain JSON, no pickle).

* ``scorer``: the evidence model, log-odds that a sentence answers the question
  (``rag.retrieval.scoring.FEATURES``);
* ``calibrator``: a logistic calibration of the answer as a whole, over ``CONFIDENCE_FEATURES``
  of the best sentence, fitted on out-of-fold predictions of the train split;
* ``threshold``: the answer is given when its confidence reaches it (chosen on the dev split);
* ``adapter``: the question adapter, MiniLM with its top layers fine-tuned so that a question
  lands near the sentences that answer it (``question_adapter.safetensors`` beside the JSON;
  it gives the ``dense_tuned`` feature, for an index embedded with the same MiniLM);
* ``reader`` and ``stack``: the cross-encoder that reads the evidence model's best sentences
  (``reader.onnx`` beside the JSON; ``rag/retrieval/reader.py``) and the log-odds over (evidence
  log-odds, reader log-odds) that reorders them.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path

from rag import settings as C
from rag.errors import RagError
import numpy as np

from rag.retrieval.scoring import FEATURES, LinearScorer, sigmoid

MODEL_FORMAT = 3
# what the calibrated confidence of an answer is computed from: the best sentence's log-odds, its
# margin over the best sentence elsewhere, the reader's log-odds of it, and its own features
CONFIDENCE_FEATURES = ("top_logit", "margin", "reader", *FEATURES)
STACK_FEATURES = ("evidence", "reader")  # the stack's inputs: evidence model and reader log-odds
READER_INPUTS = {False: "sentence", True: "title. sentence"}  # what the reader reads of a sentence (manifest "input")
READER_QUESTIONS = {False: "question", True: "question (after: earlier question)"}  # ... of a question ("question")


def rival_logit(top: tuple[str, int], ranked) -> float | None:
    """The log-odds of the best sentence elsewhere: the first of ``ranked`` ((article, sentence
    index, log-odds), best first, the top excluded) in another article or more than one sentence
    away from ``top`` (article, sentence index). None when there is none."""
    doc, i = top
    return next((z for d, j, z in ranked if d != doc or abs(j - i) > 1), None)


def confidence_inputs(top_logit: float, second_logit: float | None, reader: float | None, features) -> list[float]:
    """``CONFIDENCE_FEATURES`` of an answer (the margin is capped at ``settings.LEARNED.max_margin``, which it also
    is when no other sentence competes; ``reader`` is 0 without a reader)."""
    margin = min(top_logit - second_logit, C.LEARNED.max_margin) if second_logit is not None else C.LEARNED.max_margin
    return [top_logit, margin, 0.0 if reader is None else reader, *features]


@dataclass(frozen=True)
class Answerer:
    scorer: LinearScorer  # sentence log-odds over FEATURES
    calibrator: LinearScorer  # answer log-odds over CONFIDENCE_FEATURES
    threshold: float
    meta: dict = field(default_factory=dict, compare=False)
    adapter: Path | None = None  # safetensors overrides of the packaged MiniLM
    reader: Path | None = None  # the reader's ONNX graph
    stack: LinearScorer | None = None  # sentence log-odds over STACK_FEATURES (with a reader)
    reader_titled: bool = False  # the reader reads the article title before each sentence
    reader_history: bool = False  # the reader reads a follow-up after its earlier question
    _encoder: list = field(default_factory=list, compare=False, repr=False)
    _reader: list = field(default_factory=list, compare=False, repr=False)

    def question_vector(self, text: str) -> np.ndarray | None:
        """The adapter's vector of ``text`` (None without an adapter). Loads on first use."""
        if self.adapter is None:
            return None
        if not self._encoder:
            from index.encoder import NumpyMiniLM

            self._encoder.append(NumpyMiniLM(overrides=self.adapter))
        return self._encoder[0].encode([text])[0]

    def read(self):
        """The reader (None without one). Loads on first use."""
        if self.reader is None or self.stack is None:
            return None
        if not self._reader:
            from rag.retrieval.reader import Reader

            self._reader.append(Reader(self.reader, titled=self.reader_titled, history=self.reader_history))
        return self._reader[0]

    def confidence(self, inputs: list[float]) -> float:
        return float(sigmoid(self.calibrator.logits(np.asarray([inputs], dtype=np.float32))[0]))

    def to_json(self) -> dict:
        return {
            "format": MODEL_FORMAT,
            "evidence": self.scorer.to_json(),
            "confidence": self.calibrator.to_json(),
            "threshold": self.threshold,
            "adapter": {"file": self.adapter.name, "sha256": _sha256(self.adapter)} if self.adapter else None,
            "reader": ({"file": self.reader.name, "sha256": _sha256(self.reader),
                        "input": READER_INPUTS[self.reader_titled], "question": READER_QUESTIONS[self.reader_history]}
                       if self.reader else None),
            "stack": self.stack.to_json() if self.stack else None,
            "meta": self.meta,
        }

    @classmethod
    def from_json(cls, d: dict, folder: Path | None = None) -> Answerer:
        if d.get("format") != MODEL_FORMAT:
            raise ValueError(f"model format {d.get('format')!r}; this program reads format {MODEL_FORMAT}")
        adapter, reader = (_beside(d.get(key), folder, what) for key, what in
                           (("adapter", "question adapter"), ("reader", "reader")))
        stack = LinearScorer.from_json(d["stack"], STACK_FEATURES) if d.get("stack") else None
        # a manifest written before readers read titles or history names neither: sentences and questions alone
        titled, history = (_reader_choice(d.get("reader") or {}, key, choices) for key, choices in
                           (("input", READER_INPUTS), ("question", READER_QUESTIONS)))
        return cls(
            LinearScorer.from_json(d["evidence"]), LinearScorer.from_json(d["confidence"], CONFIDENCE_FEATURES),
            float(d["threshold"]), d.get("meta", {}), adapter, reader, stack, titled, history,
        )


def _reader_choice(entry: dict, key: str, choices: dict[bool, str]) -> bool:
    """Which of ``choices`` the reader entry's ``key`` names (the False one when it names none;
    ValueError for another)."""
    value = entry.get(key, choices[False])
    if value not in choices.values():
        raise ValueError(f"reader {key} {value!r}; this program reads {' or '.join(map(repr, choices.values()))}")
    return value == choices[True]


def _beside(entry: dict | None, folder: Path | None, what: str) -> Path | None:
    """The file a model entry names, in the model's folder (ValueError when it is missing)."""
    if not entry:
        return None
    path = Path(folder or ".") / entry["file"]
    if not path.exists():
        raise ValueError(f"the {what} {path} is missing")
    return path


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def write_model_json(obj: dict, path: Path) -> None:
    """Write a model file atomically (a temporary file renamed over the old one)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(obj, indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)


def save_answerer(answerer: Answerer, path: Path) -> None:
    write_model_json(answerer.to_json(), path)


@functools.cache
def load_answerer(path: Path | None = None) -> Answerer | None:
    """The shipped answerer, or None when no trained model is there (the rule-based chain then
    answers). A model file that exists but cannot be read is an error, not a silent fallback."""
    path = Path(path or C.ANSWERER_MODEL)
    if not path.exists():
        return None
    try:
        return Answerer.from_json(json.loads(path.read_text(encoding="utf-8")), path.parent)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise RagError(f"{path}: the answerer model cannot be read ({e}); run `rag train` to rebuild it") from e
