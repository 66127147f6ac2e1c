"""A shipped MiniLM graph on ONNX Runtime (the reader, the span reader): its inputs from the
tokenizer's encodings of (question, text) pairs, and a CPU session opened on first use."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from rag.errors import RagError


def pair_tokenizer(max_tokens: int):
    """The packaged MiniLM tokenizer for (question, text) pairs: the text truncated first to
    ``max_tokens`` in all, a batch padded to its longest pair."""
    from index.encoder import load_tokenizer

    tok = load_tokenizer(max_length=None)
    tok.enable_truncation(max_length=max_tokens, strategy="only_second")
    tok.enable_padding()
    return tok


def pair_feeds(encs) -> dict[str, np.ndarray]:
    """Token ids, attention mask and segment ids of a padded batch of pair encodings."""
    return {
        "input_ids": np.array([e.ids for e in encs], np.int64),
        "attention_mask": np.array([e.attention_mask for e in encs], np.int64),
        "token_type_ids": np.array([e.type_ids for e in encs], np.int64),
    }


class Graph:
    """The graph at ``path`` and the tokenizer it reads with, loaded together on first use (once,
    whatever the threads asking). ``what`` names it in errors; ``rebuild`` is the command that
    rebuilds a missing file."""

    def __init__(self, path: Path | str, threads: int, what: str, rebuild: str, tokenizer: Callable[[], object]):
        self.path = Path(path)
        self.threads = threads  # ONNX Runtime threads for one call
        self._what, self._rebuild, self._tokenizer = what, rebuild, tokenizer
        self._loaded: tuple[object, object] | None = None
        self._lock = threading.Lock()

    def load(self) -> tuple[object, object]:
        """(ONNX Runtime session, tokenizer)."""
        if self._loaded is None:
            with self._lock:
                if self._loaded is None:
                    self._loaded = self._open()
        return self._loaded

    def _open(self) -> tuple[object, object]:
        try:
            import onnxruntime as ort
        except ImportError as e:
            raise RagError(f"the {self._what} needs ONNX Runtime: pip install onnxruntime") from e
        if not self.path.exists():
            raise RagError(f"the {self._what} model {self.path} is missing; run `{self._rebuild}` to rebuild it")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        tok = self._tokenizer()
        return ort.InferenceSession(str(self.path), opts, providers=["CPUExecutionProvider"]), tok
