"""Shared helpers of the speed benchmarks (bench/indexing.py, bench/query.py, bench/memory.py).

Nothing here is timed itself: corpus staging, the cached BBC index, machine load, table printing."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

OUT = ROOT / "bench" / "out"
BUNDLED = ROOT / "articles"
QA = ROOT / "eval" / "data" / "qa.jsonl"
BBC_STAGE = OUT / "bbc_articles"  # bbc_<category>_<NNN>.txt, unique names (eval.distractors.stage_bbc)
BBC_INDEX = OUT / "index-bundled-bbc"  # bundled + all BBC, built once by bench/query.py or bench/memory.py
BUNDLED_INDEX = OUT / "index-bundled"  # the five bundled articles


def load_avg() -> str:
    """The 1/5/15-minute load averages (the machine has ``os.cpu_count()`` cores)."""
    try:
        a, b, c = os.getloadavg()
        return f"{a:.2f}, {b:.2f}, {c:.2f}"
    except OSError:  # pragma: no cover
        return "n/a"


def machine_header(title: str) -> str:
    import torch

    return (
        f"# {title}\n"
        f"date {time.strftime('%Y-%m-%d %H:%M:%S')}; {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores; load average {load_avg()} (1/5/15 min); "
        f"python {platform.python_version()}, torch {torch.__version__} (threads {torch.get_num_threads()})"
    )


def bbc_files(limit: int | None = None) -> list[Path]:
    """The staged BBC files (copied once into bench/out/bbc_articles with unique names). With
    ``limit``, an evenly spaced sample over the five categories (deterministic)."""
    from eval.distractors import stage_bbc

    files = stage_bbc(BBC_STAGE)
    if limit is not None and limit < len(files):
        if limit <= 0:
            return []
        step = len(files) / limit
        files = [files[int(i * step)] for i in range(limit)]
    return files


def corpus_paths(bbc_limit: int | None = None, with_bbc: bool = True) -> list[Path]:
    """The bundled folder (with its sidecars) plus the staged BBC files."""
    return [BUNDLED] + (bbc_files(bbc_limit) if with_bbc else [])


def ensure_index(index_dir: Path, paths: list[Path], embedder=None, log=print):
    """Build the index at ``index_dir`` once (idempotent: the store skips unchanged articles).
    Returns (seconds spent building, 0 when the cached index was current; the pipeline)."""
    from index.embed import MiniLMEmbedder
    from rag.pipeline import RagPipeline

    p = RagPipeline(index_dir=index_dir, embedder=embedder or MiniLMEmbedder(), entities=False)
    if not p.is_stale(paths):
        return 0.0, p
    log(f"building {index_dir} (cached for later runs) ...")
    t0 = time.perf_counter()
    p.index_paths(paths, prune=True)
    return time.perf_counter() - t0, p


def load_questions(limit: int | None = None) -> list[str]:
    qs = [json.loads(l)["question"] for l in QA.read_text(encoding="utf-8").splitlines() if l.strip()]
    return qs[:limit] if limit else qs


def pct(values, q: float) -> float:
    from eval.metrics import percentile

    v = percentile(list(values), q)
    return float("nan") if v is None else v


def table(headers: list[str], rows: list[list], aligns: str | None = None) -> str:
    """A Markdown table (also readable in a terminal)."""
    cells = [[_fmt(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    aligns = aligns or ("l" + "r" * (len(headers) - 1))
    out = ["| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths)) + " |"]
    out.append("|" + "|".join(("-" * (w + 1) + ":") if a == "r" else ("-" * (w + 2)) for w, a in zip(widths, aligns)) + "|")
    for r in cells:
        out.append("| " + " | ".join(c.rjust(w) if a == "r" else c.ljust(w) for c, w, a in zip(r, widths, aligns)) + " |")
    return "\n".join(out)


def _fmt(c) -> str:
    if c is None:
        return "–"
    if isinstance(c, float):
        if c != c:
            return "–"
        if abs(c) >= 100:
            return f"{c:,.0f}"
        if abs(c) >= 10:
            return f"{c:.1f}"
        return f"{c:.2f}"
    if isinstance(c, int):
        return f"{c:,}"
    return str(c)


def write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")


def langchain_store(articles: dict[str, str], embedder, cache: str = "use"):
    """eval/baseline.py's LangChain path over ``articles`` (file name -> text): the 1000/200
    splitter and ``FaissVectorStore`` with the same MiniLM. The document vectors are cached in
    bench/out/lc_vectors_<hash>.npy (keyed by the chunk texts), so the BBC store is embedded once.
    ``cache``: "use" (load when present, else embed and save), "refresh" (always embed, then
    save), "off" (always embed, save nothing).
    Returns (store, number of chunks, seconds spent embedding (0 when cached))."""
    import hashlib

    import numpy as np
    from eval.baseline import FaissVectorStore, ProjectEmbeddings, split_articles

    docs = split_articles(articles)
    h = hashlib.sha256(("\x00".join(d.page_content for d in docs) + embedder.name).encode()).hexdigest()[:16]
    path = OUT / f"lc_vectors_{h}.npy"
    spent = [0.0]

    class Cached(ProjectEmbeddings):
        def embed_documents(self, texts):
            if cache == "use" and path.exists():
                v = np.load(path)
                if len(v) == len(texts):
                    return v
            t0 = time.perf_counter()
            v = np.asarray(super().embed_documents(texts), dtype=np.float32)
            spent[0] = time.perf_counter() - t0
            if cache != "off":
                OUT.mkdir(parents=True, exist_ok=True)
                np.save(path, v)
            return v

        def embed_query(self, text):
            # what a LangChain user runs: sentence-transformers on torch (HuggingFaceEmbeddings)
            return np.asarray(self.embedder.embed_texts([text])[0], dtype=np.float32).tolist()

    store = FaissVectorStore(Cached(embedder))
    store.add_documents(docs)
    return store, len(docs), spent[0]
