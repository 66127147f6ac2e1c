"""Paths and the settings of the retrieval chain, each named once, grouped in typed frozen
dataclasses by the part of the chain that reads them. The learned answerer's
parameters (weights, calibration, threshold) are not here: ``rag train`` fits them on the train
split and chooses on dev, into ``ANSWERER_MODEL``. The hand weights and abstention thresholds
below serve the hand-rule chain (``answerer="rules"``), kept as the comparison; they were tuned on
eval/data/qa.jsonl, so its numbers for that chain are in-sample."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
BUNDLED_ARTICLES = PROJECT_ROOT / "articles"


DATA_DIR = PROJECT_ROOT / "data"  # build output and uploads (gitignored), never the source tree


def default_index_dir() -> Path:
    return Path(os.environ.get("RAG_INDEX_DIR", DATA_DIR / "index"))


# storage backend (index/backends.py): FAISS + bm25s in a directory, or Milvus (Lite by file path,
# a server or cluster by http:// URI); read from the environment when a pipeline opens its store
BACKENDS = ("faiss", "milvus")


def backend() -> str:
    return os.environ.get("RAG_BACKEND", "faiss")


def milvus_uri() -> str:
    return os.environ.get("RAG_MILVUS_URI", str(DATA_DIR / "milvus.db"))


def milvus_collection_for(index_dir: Path) -> str:
    """The collection-name prefix of the index that ``index_dir`` names (``data/index`` ->
    ``newsrag_data_index``), unless ``RAG_MILVUS_COLLECTION`` sets one."""
    if os.environ.get("RAG_MILVUS_COLLECTION"):
        return os.environ["RAG_MILVUS_COLLECTION"]
    index_dir = Path(index_dir)
    return "newsrag_" + re.sub(r"[^A-Za-z0-9_]", "_", f"{index_dir.parent.name}_{index_dir.name}")


# ingest on Ray (index/ray_ingest.py): RAY_ADDRESS (Ray's own variable) points it at a cluster
RAY_BATCH_ARTICLES = 16  # articles per map_batches call of an encoder worker


def ray_workers() -> int:
    """Encoder actors (one model each); ``RAG_RAY_WORKERS``, default 2."""
    return int(os.environ.get("RAG_RAY_WORKERS", "2"))


def uploads_dir_for(index_dir: Path) -> Path:
    """The folder that chat uploads are copied into: beside the index (``data/index`` ->
    ``data/index-uploads``), never inside it, so an index rebuild or swap cannot touch them."""
    index_dir = Path(index_dir)
    return index_dir.parent / f"{index_dir.name}-uploads"


# the learned answerer (rag train writes it; rag/answering/model.py reads it)
ANSWERER_MODEL = Path(__file__).resolve().parent / "models" / "answerer.json"
# the short-answer span scorer (python -m eval.train_span: fitted on train, chosen on dev)
SPAN_MODEL = Path(__file__).resolve().parent / "models" / "span.json"
ANSWERERS = ("learned", "rules")  # rules: the hand-tuned chain, kept as a comparison

MAX_QUESTION_CHARS = 2000
CORRECT_SPELLING = True  # question words the corpus lacks are read as the nearest corpus word (rag/question/spelling.py)
DEFAULT_K = 5  # passages returned with an answer


@dataclass(frozen=True)
class Writers:
    """Index writers (index/directory.py): one at a time, through a lock file beside the index."""

    lock_timeout_s: float = 600.0  # a second writer waits this long for the first, then gives up
    reader_recovery_wait_s: float = 10.0  # a reader that finds a swap half done waits this long for its writer


@dataclass(frozen=True)
class Search:
    """The first stage (rag/retrieval/search.py) and how many chunks reach the sentence stage."""

    candidates: int = 30  # per retriever (dense chunks, BM25 chunks, dense sentences)
    rrf_k: int = 60  # reciprocal rank fusion: 1 / (rrf_k + rank)
    sentence_candidate_chunks: int = 12  # the best fused chunks whose sentences are scored
    part_candidates: int = 10  # dense sentences searched within each period of a multi-period question
    head_per_list: int = 3  # the top chunks of each first-stage list always reach the sentence stage


@dataclass(frozen=True)
class LearnedDecision:
    """The learned answerer's fixed choices (its weights, calibration and threshold are fitted:
    ``ANSWERER_MODEL``)."""

    extra_min_prob: float = 0.5  # a further period's sentence is cited when it is more likely evidence than not
    max_margin: float = 4.0  # the confidence's margin over the best sentence elsewhere is capped here


@dataclass(frozen=True)
class ReaderSettings:
    """The reader (rag/retrieval/reader.py): a cross-encoder over the evidence model's best sentences."""

    candidates: int = 4  # the evidence model's best sentences that the reader reads
    max_tokens: int = 96  # question + sentence, the sentence truncated first
    threads: int = 2  # ONNX Runtime threads for one question
    titled: bool = True  # `rag train` fits it on the article title before each sentence (the answerer's manifest says which)
    history: bool = True  # `rag train` fits it on the train follow-ups too, each read after its earlier question


@dataclass(frozen=True)
class SpanReaderSettings:
    """The span reader (rag/answering/span_reader.py)."""

    max_tokens: int = 128  # question + sentence, the sentence truncated first
    max_answer_tokens: int = 16  # the longest span it proposes on its own (a comparison in training)
    threads: int = 2  # ONNX Runtime threads for one sentence


@dataclass(frozen=True)
class HandWeights:
    """The hand-rule chain's sentence score = weights · features (tuned on eval/data/qa.jsonl:
    in-sample there). The learned answerer does not use them."""

    dense: float = 1.0  # cosine(question, sentence)
    lexical: float = 0.4  # IDF-weighted share of question terms in the sentence
    context: float = 0.5  # IDF-weighted share of question terms in the sentence's neighbourhood and title
    chunk: float = 0.1  # fused first-stage score of the chunk holding the sentence, relative to the best
    period: float = 0.5  # the article matches the period the question names (also a fused-score bonus)
    typed: float = 0.15  # the sentence holds an answer of the asked type


@dataclass(frozen=True)
class HandAbstention:
    """When the hand-rule chain abstains and what else it cites (tuned on eval/data/qa.jsonl)."""

    multi_min_share: float = 0.8  # an added article's evidence scores at least this share of the best
    type_margin: float = 0.35  # a lower sentence holding the asked type replaces the best one within this margin
    type_min_lexical_share: float = 0.5  # ... and keeps at least this share of the best sentence's term overlap
    extra_share: float = 0.85  # a further sentence of the best article is cited from this share of the best score
    min_coverage: float = 0.5  # IDF-weighted share of the question's terms found in the evidence's article
    min_dense: float = 0.15  # cosine of the best evidence sentence
    min_score: float = 0.75  # sentence score of the best evidence


WRITERS = Writers()
SEARCH = Search()
LEARNED = LearnedDecision()
READER = ReaderSettings()
SPAN_READER = SpanReaderSettings()
HAND_WEIGHTS = HandWeights()
HAND_ABSTENTION = HandAbstention()
