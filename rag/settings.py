"""Paths and the settings of the retrieval chain, each named once. The learned answerer's
parameters (weights, calibration, threshold) are not here: ``rag train`` fits them on the train
split and chooses on dev, into ``ANSWERER_MODEL``. The hand weights and abstention thresholds
below serve the hand-rule chain (``answerer="rules"``), kept as the comparison; they were tuned on
eval/data/qa.jsonl, so its numbers for that chain are in-sample."""

from __future__ import annotations

import os
import re
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


# index writers (index/directory.py): one at a time, through a lock file beside the index
WRITER_LOCK_TIMEOUT_S = 600.0  # a second writer waits this long for the first, then gives up
READER_RECOVERY_WAIT_S = 10.0  # a reader that finds a swap half done waits this long for its writer

# the learned answerer (rag train writes it; rag/answering/model.py reads it)
ANSWERER_MODEL = Path(__file__).resolve().parent / "models" / "answerer.json"
# the short-answer span scorer (python -m eval.train_span: fitted on train, chosen on dev)
SPAN_MODEL = Path(__file__).resolve().parent / "models" / "span.json"
ANSWERERS = ("learned", "rules")  # rules: the hand-tuned chain, kept as a comparison

MAX_QUESTION_CHARS = 2000
CORRECT_SPELLING = True  # question words the corpus lacks are read as the nearest corpus word (rag/question/spelling.py)

# first stage
CANDIDATES = 30  # per retriever (dense chunks, BM25 chunks, dense sentences)
RRF_K = 60
# second stage: sentence score = weights · features
SENTENCE_CANDIDATE_CHUNKS = 12
PART_CANDIDATES = 10  # dense sentences searched within each period of a multi-period question
HEAD_PER_LIST = 3  # the top chunks of each first-stage list always reach the sentence stage
W_DENSE = 1.0  # cosine(question, sentence)
W_LEXICAL = 0.4  # IDF-weighted share of question terms in the sentence
W_CONTEXT = 0.5  # IDF-weighted share of question terms in the sentence's neighbourhood and title
W_CHUNK = 0.1  # fused first-stage score of the chunk holding the sentence, relative to the best
W_PERIOD = 0.5  # the article matches the period the question names
W_TYPE = 0.15  # the sentence holds an answer of the asked type
DEFAULT_K = 5

# abstention
MULTI_MIN_SHARE = 0.8  # an added article's evidence scores at least this share of the best
TYPE_MARGIN = 0.35
TYPE_MIN_LEXICAL_SHARE = 0.5  # ... and keeps at least this share of the best sentence's term overlap  # a lower sentence holding the asked type replaces the best one within this margin
MIN_COVERAGE = 0.5  # IDF-weighted share of the question's terms found in the evidence's article
MIN_DENSE = 0.15  # cosine of the best evidence sentence
MIN_SCORE = 0.75  # sentence score of the best evidence
