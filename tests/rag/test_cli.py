"""The `rag` command at the edge: exit codes, one-line errors, the JSON contract, and that
`ask` never modifies the index."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import pytest

from conftest import ARTICLES, ROOT


def rag(*args, env_index=None, timeout=300):
    cmd = [sys.executable, "-m", "rag.cli", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def tree_digest(d):
    h = hashlib.sha256()
    for p in sorted(d.rglob("*")):
        if p.is_file():
            h.update(p.name.encode() + p.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli") / "index"
    r = rag("index", ARTICLES, "--index-dir", d)
    assert r.returncode == 0, r.stderr
    assert "added 5, updated 0, skipped 0, deleted 0" in r.stdout
    return d


def test_index_is_idempotent_and_stats(built):
    r = rag("index", ARTICLES, "--index-dir", built)
    assert r.returncode == 0 and "added 0, updated 0, skipped 5, deleted 0" in r.stdout
    r = rag("stats", "--index-dir", built, "--json")
    s = json.loads(r.stdout)
    assert s["documents"] == 5 and s["dim"] == 384 and s["model"].endswith("all-MiniLM-L6-v2")


def test_ask_json_contract_and_index_untouched(built):
    before = tree_digest(built)
    r = rag("ask", "How many projectiles did Gazan fighters launch in May 2023?", "--json", "--index-dir", built)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert set(out) >= {"question", "answer", "abstained", "citations", "passages", "latency_ms"}
    assert "866" in out["answer"] and out["abstained"] is False
    texts = {p.name: p.read_text() for p in ARTICLES.glob("*.txt")}
    for c in out["citations"]:
        assert set(c) == {"n", "doc_id", "source", "title", "date", "start", "end", "quote"}
        assert texts[c["source"]][c["start"] : c["end"]] == c["quote"]
    for p in out["passages"]:
        assert texts[p["source"]][p["start"] : p["end"]] == p["text"]
    assert [p["rank"] for p in out["passages"]] == list(range(1, len(out["passages"]) + 1))
    assert tree_digest(built) == before


@pytest.mark.parametrize(
    "question,needle",
    [
        ("   ", "empty"),
        ("x" * 20000, "20,000 characters"),
        ("what is the", "only common words"),
        ("🙂🙂🙂", "no words"),
    ],
)
def test_bad_questions(built, question, needle):
    r = rag("ask", question, "--index-dir", built)
    assert r.returncode == 2
    assert needle in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_other_language_abstains_politely(built):
    r = rag("ask", "¿Quién negoció el alto el fuego en Gaza?", "--json", "--index-dir", built)
    out = json.loads(r.stdout)
    assert r.returncode == 0 and out["abstained"] and "English" in out["answer"]


def test_filters_and_bad_filter_values(built):
    r = rag("ask", "Who spoke with Netanyahu?", "--json", "--since", "2023-01-01", "--index-dir", built)
    out = json.loads(r.stdout)
    assert all(p["source"] == "003_95e71b640879a191.txt" for p in out["passages"])
    r = rag("ask", "Who spoke?", "--since", "yesterday", "--index-dir", built)
    assert r.returncode == 2 and "YYYY-MM-DD" in r.stderr
    r = rag("ask", "Who spoke?", "--source", "nope.txt", "--index-dir", built)
    assert r.returncode == 2 and "nope.txt" in r.stderr


def test_missing_and_stale_index(tmp_path, built):
    r = rag("ask", "Who brokered talks?", "--index-dir", tmp_path / "none")
    assert r.returncode == 2 and "rag index --index-dir" in r.stderr
    manifest = built.parent / "copy"
    import shutil

    shutil.copytree(built, manifest)
    m = json.loads((manifest / "manifest.json").read_text())
    m["embedding_model"] = "another/model"
    (manifest / "manifest.json").write_text(json.dumps(m))
    r = rag("ask", "Who brokered talks?", "--index-dir", manifest)
    assert r.returncode == 2 and "another/model" in r.stderr and "--rebuild" in r.stderr


@pytest.mark.parametrize("kind", ["missing", "empty-dir", "empty-file", "binary"])
def test_bad_index_inputs(tmp_path, kind):
    d = tmp_path / "in"
    d.mkdir()
    if kind == "empty-file":
        (d / "a.txt").write_text("")
    if kind == "binary":
        (d / "a.txt").write_bytes(b"\x00\x01\x02")
    target = tmp_path / "missing" if kind == "missing" else d
    r = rag("index", target, "--index-dir", tmp_path / "idx")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert not (tmp_path / "idx").exists()


def test_unreadable_file_is_skipped_with_warning(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    (d / "good.txt").write_text("Title\n\nThe council met in Sderot on Monday.\n")
    (d / "bad.txt").write_bytes("caf\xe9".encode("latin-1"))
    (d / "dup.txt").write_text("Title\n\nThe council met in Sderot on Monday.\n")
    r = rag("index", d, "--index-dir", tmp_path / "idx")
    assert r.returncode == 0
    assert "bad.txt" in r.stderr and "not UTF-8" in r.stderr
    assert "dup.txt" in r.stderr and "added 1" in r.stdout


def test_eval_every_nth_question(built, tmp_path):
    out = tmp_path / "run"
    r = rag("eval", "--index-dir", built, "--every", 10, "--no-baseline", "--out", out)
    assert r.returncode == 0, r.stderr
    m = json.loads((out / "clean" / "metrics.json").read_text())
    n = sum(1 for line in (ROOT / "eval" / "data" / "qa.jsonl").read_text().splitlines() if line.strip())
    assert m["questions"] == len(range(0, n, 10))
    r = rag("eval", "--index-dir", built, "--every", 0, "--out", out)
    assert r.returncode == 2 and "--every must be at least 1" in r.stderr and "Traceback" not in r.stderr
