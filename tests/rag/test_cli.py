"""The `rag` command at the edge: exit codes, one-line errors, the JSON contract, and that
`ask` never modifies the index."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import pytest

from conftest import ARTICLES, ROOT, as_unprivileged


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


# ---------- writers, unusable destinations, files that cannot be read ----------



def small_folder(d, prefix, n):
    d.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (d / f"{prefix}{i}.txt").write_text(f"Story {prefix} {i}\n\nThe {prefix} council {i} met in Sderot on Monday.\n")
    return d


@pytest.mark.parametrize("kind", ["regular-file", "under-proc"])
def test_unusable_index_dir_is_refused_before_any_work(tmp_path, kind):
    target = tmp_path / "file" if kind == "regular-file" else "/proc/newsrag-test/index"
    (tmp_path / "file").write_text("not an index")
    r = rag("index", small_folder(tmp_path / "in", "s", 2), "--index-dir", target)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "unexpected" not in r.stderr
    assert "choose another --index-dir" in r.stderr
    assert "embedding" not in r.stderr


def test_read_only_index_parent_is_refused_before_any_work(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    src = small_folder(tmp_path / "in", "s", 2)
    try:
        r = subprocess.run(as_unprivileged([sys.executable, "-m", "rag.cli", "index", str(src), "--index-dir", str(ro / "idx")]),
                           capture_output=True, text=True, timeout=300, cwd=ROOT)
    finally:
        ro.chmod(0o755)
    assert r.returncode == 2 and "not writable" in r.stderr and "unexpected" not in r.stderr


def test_unreadable_folder_and_overlong_first_line_are_skipped_not_the_batch(tmp_path):
    src = small_folder(tmp_path / "in", "s", 2)
    locked = small_folder(src / "locked", "l", 1)
    locked.chmod(0o600)  # listed, not entered
    (src / "long-title.txt").write_text("word " * 20_000 + "\n\nThe council met on Monday.\n")
    idx = tmp_path / "idx"
    try:
        r = subprocess.run(as_unprivileged([sys.executable, "-m", "rag.cli", "index", str(src), "--index-dir", str(idx)]),
                           capture_output=True, text=True, timeout=300, cwd=ROOT)
    finally:
        locked.chmod(0o755)
    assert r.returncode == 0, r.stderr
    assert "added 2," in r.stdout
    assert "locked" in r.stderr and "warning: skipped" in r.stderr
    assert "long-title.txt" in r.stderr and "first line" in r.stderr and "too long for a title" in r.stderr


def test_control_characters_in_file_names_are_printed_escaped(tmp_path):
    src = small_folder(tmp_path / "in", "s", 1)
    (src / "evil\x1b[2J\x1b[31m.txt").write_bytes(b"\x00\x01binary")
    r = rag("index", src, "--index-dir", tmp_path / "idx")
    assert r.returncode == 0, r.stderr
    assert "\x1b" not in r.stderr and "evil\\x1b[2J\\x1b[31m.txt" in r.stderr


def test_stats_lists_sources_that_ask_source_names(built):
    r = rag("stats", "--index-dir", built, "--sources")
    assert r.returncode == 0
    names = sorted(p.name for p in ARTICLES.glob("*.txt"))
    assert all(f"  {n}" in r.stdout.splitlines() for n in names)
    r = rag("ask", "Who brokered talks?", "--index-dir", built, "--source", "nope.txt")
    assert r.returncode == 2 and "rag stats --sources" in r.stderr
    r = rag("stats", "--index-dir", built, "--sources", "--json")
    assert sorted(json.loads(r.stdout)["sources"]) == names


def test_a_long_history_item_is_named_as_history(built):
    r = rag("ask", "And what about the ceasefire?", "--history", "x" * 5000, "--index-dir", built)
    assert r.returncode == 2 and "earlier question" in r.stderr and "5,000" in r.stderr


@pytest.mark.slow
def test_two_index_commands_at_once_index_the_union(tmp_path):
    """Both printed 'added N' and the second erased the first's articles."""
    a = small_folder(tmp_path / "a", "alpha", 12)
    b = small_folder(tmp_path / "b", "beta", 9)
    idx = tmp_path / "idx"
    cmds = [[sys.executable, "-m", "rag.cli", "index", str(d), "--index-dir", str(idx)] for d in (a, b)]
    procs = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT) for c in cmds]
    outs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    r = rag("stats", "--index-dir", idx, "--json")
    assert json.loads(r.stdout)["documents"] == 21


def test_a_second_writer_says_it_waits_then_adds(tmp_path):
    import threading
    import time

    from index.directory import writer_lock

    idx = tmp_path / "idx"
    held, release = threading.Event(), threading.Event()

    def first_writer():
        with writer_lock(idx):
            held.set()
            release.wait(120)

    t = threading.Thread(target=first_writer)
    t.start()
    held.wait(10)
    proc = subprocess.Popen([sys.executable, "-m", "rag.cli", "index", str(small_folder(tmp_path / "in", "s", 2)),
                             "--index-dir", str(idx)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        first_line: list[str] = []
        reader = threading.Thread(target=lambda: first_line.append(proc.stderr.readline()))
        reader.start()
        reader.join(120)  # the command starts, reads its articles, reaches the lock and says so
        assert first_line == [f"waiting for another writer of {idx}…\n"]
        time.sleep(1)
        assert proc.poll() is None and not idx.exists()  # it waits, and has written nothing
    finally:
        release.set()
        t.join()
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert "added 2," in out
