"""``rag train`` end to end, on a few train and dev articles of the written BBC set: every stage
runs, the answerer it writes loads and answers, and a second run reuses its fitted readers."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from rag import settings as C

pytestmark = pytest.mark.slow


def docs_of(line: dict) -> set[str]:
    """The articles a question is on (none for an unanswerable one written on no article)."""
    doc = line["doc"]
    return {doc} if isinstance(doc, str) else set(doc or ())


def busiest(path: Path, n: int) -> list[str]:
    """The ``n`` articles with the most single-article questions in ``path``."""
    counts = Counter(d["doc"] for d in map(json.loads, path.read_text().splitlines()) if isinstance(d["doc"], str))
    return sorted(a for a, _ in counts.most_common(n))


def keep(src: Path, dest: Path, articles: set[str], per_article: int) -> int:
    """Copy to ``dest`` the first ``per_article`` questions of ``src`` on each of ``articles``
    (those on several: counted on the first); how many."""
    lines, seen = [], Counter()
    for raw in src.read_text().splitlines():
        docs = docs_of(json.loads(raw))
        if docs and docs <= articles and seen[min(docs)] < per_article:
            seen[min(docs)] += 1
            lines.append(raw)
    dest.write_text("\n".join(lines) + "\n")
    return len(lines)


def test_rag_train_writes_an_answerer_that_answers_and_a_second_run_reuses_its_fits(tmp_path, monkeypatch, minilm):
    from eval import adapter, bbc
    from eval import train as T
    from eval import train_reader as tr
    from rag.answering.model import load_answerer
    from rag.pipeline import RagPipeline

    chosen = {"train": busiest(bbc.qa_path("train"), 2), "dev": busiest(bbc.qa_path("dev"), 2)}
    sources = {bbc.staged_name(p): p for p in bbc.bbc_paths() if bbc.eligible(p)}
    articles = tmp_path / "articles"
    articles.mkdir()
    for name in chosen["train"] + chosen["dev"]:
        shutil.copyfile(sources[name], articles / name)
    RagPipeline(index_dir=tmp_path / "index").ensure_index([articles])
    monkeypatch.setattr(bbc, "ensure_index", lambda answerer, **kw: RagPipeline(index_dir=tmp_path / "index",
                                                                               answerer=answerer))

    files, counts = {}, {}
    for split, real in T.training_files().items():
        base = split.split()[0]
        files[split] = [tmp_path / p.name for p in real]
        counts[split] = sum(keep(p, tmp_path / p.name, set(chosen[base]), 12) for p in real)
    assert counts["train"] >= 30 and counts["dev"] >= 20
    monkeypatch.setattr(T, "training_files", lambda: files)
    monkeypatch.setattr(tr, "CACHE_DIR", tmp_path / "cache")

    out = tmp_path / "model" / "answerer.json"
    answerer, meta = T.train(out, progress=False)
    assert {p.name for p in out.parent.iterdir()} == {"answerer.json", T.READER_FILE, T.ADAPTER_FILE}
    assert {s: d["questions"] for s, d in meta["data"].items()} == counts
    assert meta["data"]["dev"]["files"][0]["file"] == str(files["dev"][0])  # outside the project: its full path
    assert meta["reader"]["reader_input"] == T.READER_INPUTS[C.READER.titled]
    assert 0.0 <= meta["threshold"] <= 1.0
    measured = {s: m["questions"] for s, m in meta["metrics"].items()}
    assert measured == {"dev": counts["dev"], "train (out-of-fold scores, in-sample calibration)": counts["train"]} | (
        {"dev follow-ups": counts["dev follow-ups"]} if C.READER.history else {})
    assert 0.0 <= meta["metrics"]["dev"]["handled_right"] <= 1.0
    fitted = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert all(n.endswith(".safetensors") for n in fitted)  # no checkpoint left
    assert [n.split("-")[0] for n in fitted] == ["adapter"] * (T.FOLDS + 1) + ["reader"] * 3

    loaded = load_answerer(out)
    assert loaded.threshold == answerer.threshold and loaded.read() is not None
    pipeline = RagPipeline(index_dir=tmp_path / "index")
    pipeline._answerer = loaded
    question = json.loads(files["dev"][0].read_text().splitlines()[0])["question"]
    ans = pipeline.ask(question)
    assert ans.confidence is not None and 0.0 <= ans.confidence <= 1.0
    assert ans.abstained or ans.citations

    def refit(*args, **kwargs):
        raise AssertionError("a reader or a question adapter was fitted again")

    monkeypatch.setattr(tr, "train_loop", refit)
    monkeypatch.setattr(adapter, "_fit", refit)
    again, _ = T.train(tmp_path / "again" / "answerer.json", progress=False)  # every fit from the cache
    assert again.threshold == answerer.threshold
    assert (tmp_path / "again" / T.ADAPTER_FILE).read_bytes() == (out.parent / T.ADAPTER_FILE).read_bytes()
