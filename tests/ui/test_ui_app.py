"""ui.app without the real model: import hygiene, upload checks, incremental upload indexing,
the launch path (index built on start, uploads kept across restarts) and the /chat API's error
handling — with the model-free HashEmbedder, so these run in seconds."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from index.embed import HashEmbedder
from rag.pipeline import RagPipeline

ROOT = Path(__file__).resolve().parents[2]

STORY_A = """Harbour cranes return to Nordport

By Ada Lane | June 2, 2022

The port of Nordport installed four new harbour cranes on Tuesday. The cranes were built in Rotterdam.
"""
STORY_B = """Library reopens in Sudvale

By Ben Ito | July 9, 2021

The Sudvale library reopened after a two-year renovation that cost 3 million euros.
"""
ZEPHYR = """Zephyr Bridge opens

By Cy Moor | March 3, 2024

The Zephyr Bridge in Fooville opened on 3 March 2024 and cost 42 million euros.
"""


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    d = tmp_path / "articles"
    d.mkdir()
    (d / "a_cranes.txt").write_text(STORY_A, encoding="utf-8")
    (d / "b_library.txt").write_text(STORY_B, encoding="utf-8")
    return d


@pytest.fixture
def pipeline(tmp_path: Path, corpus: Path) -> RagPipeline:
    p = RagPipeline(index_dir=tmp_path / "index", embedder=HashEmbedder(), entities=False)
    p.ensure_index([corpus])
    return p


def test_import_loads_no_model_and_disables_analytics():
    code = (
        "import os, sys; import ui.app; "
        "print(sorted(m for m in ('torch', 'sentence_transformers', 'spacy', 'faiss', 'transformers') if m in sys.modules)); "
        "print(os.environ['GRADIO_ANALYTICS_ENABLED'])"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["[]", "False"]


# ---------------------------------------------------------------- upload checks
def test_check_upload_reasons(tmp_path: Path):
    from ui.uploads import MAX_UPLOAD_BYTES, check_upload

    def write(name: str, data: bytes) -> Path:
        p = tmp_path / name
        p.write_bytes(data)
        return p

    assert check_upload(write("ok.txt", ZEPHYR.encode())) is None
    assert check_upload(write("ok.md", b"# Title\n\nSome text.\n")) is None
    big = write("big.txt", b"a " * (MAX_UPLOAD_BYTES // 2 + 1))
    assert check_upload(big) == "the file is 5.2 MB; the upload limit is 5 MB"
    assert check_upload(write("utf16.txt", ZEPHYR.encode("utf-16"))) is None  # with its byte-order mark
    assert check_upload(write("bin.txt", b"PK\x03\x04" + b"\x00" * 10 + b"text")) == "binary file, not text"
    assert check_upload(write("latin.txt", "caf\xe9 au lait".encode("latin-1"))) == "not UTF-8 text (bad byte at offset 3)"
    assert check_upload(write("empty.txt", b"  \n")) == "empty file"
    assert check_upload(write("doc.pdf", b"%PDF-1.4")) == "not a .txt or .md file"
    assert check_upload(write(".hidden.txt", b"text")) == "hidden or unnamed files are not indexed; rename the file"
    assert check_upload(write("ctrl.txt", bytes(range(1, 32)) * 20)) == "binary file (control characters), not text"
    assert check_upload(write("a_cranes.txt", b"text"), {"a_cranes.txt"}) == (
        "a bundled article already has this file name; rename the file")


def _manifest(p: RagPipeline) -> dict:
    return json.loads((p.index_dir / "manifest.json").read_text())


def test_upload_refusal_changes_nothing(tmp_path: Path, pipeline: RagPipeline):
    from ui.uploads import index_uploads

    uploads = tmp_path / "uploads"
    src = tmp_path / "src"
    src.mkdir()
    good = src / "zephyr.txt"
    good.write_text(ZEPHYR, encoding="utf-8")
    bad = src / "photo.txt"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    before = _manifest(pipeline)
    msg, refused = index_uploads(pipeline, uploads, [str(good), str(bad)])
    assert refused
    assert msg == ("<b>Nothing was indexed.</b> photo.txt: binary file, not text. "
                   "Fix or remove these files and upload again.")
    assert _manifest(pipeline) == before
    assert not uploads.exists() or not any(uploads.iterdir())
    assert "zephyr.txt" not in pipeline.index.by_source


def test_upload_indexes_incrementally_and_reports(tmp_path: Path, pipeline: RagPipeline, corpus: Path):
    from ui.uploads import index_uploads

    uploads = tmp_path / "uploads"
    src = tmp_path / "src"
    src.mkdir()
    (src / "zephyr.txt").write_text(ZEPHYR, encoding="utf-8")
    (src / "zephyr_copy.txt").write_text(ZEPHYR, encoding="utf-8")
    (src / "a_cranes.txt").write_text("A different text under a bundled name.\n", encoding="utf-8")
    ticks = []

    def progress(value, desc=None, unit=None):
        ticks.append(value)

    msg, refused = index_uploads(pipeline, uploads, [str(src / "zephyr.txt")], progress)
    assert not refused
    assert msg.startswith("<b>Indexed.</b> Added: zephyr.txt. Updated: —. Unchanged (skipped): —.")
    assert ticks and ticks[-1][0] == ticks[-1][1]  # (done, total) at the end
    idx = pipeline.index
    assert set(idx.by_source) == {"a_cranes.txt", "b_library.txt", "zephyr.txt"}  # nothing pruned
    assert (uploads / "zephyr.txt").read_text(encoding="utf-8") == ZEPHYR

    msg, _ = index_uploads(pipeline, uploads, [str(src / "zephyr.txt")])
    assert "Added: —. Updated: —. Unchanged (skipped): zephyr.txt." in msg

    msg, refused = index_uploads(pipeline, uploads, [str(src / "zephyr_copy.txt")])
    assert not refused and "Duplicates, not added: zephyr&#95;copy.txt has the same text as zephyr.txt." in msg
    assert not (uploads / "zephyr_copy.txt").exists()  # the copy is not kept
    assert "zephyr_copy.txt" not in pipeline.index.by_source

    msg, refused = index_uploads(pipeline, uploads, [str(src / "a_cranes.txt")])
    assert refused and "a bundled article already has this file name" in msg
    assert sorted(p.name for p in uploads.iterdir()) == ["zephyr.txt"]

    # an updated upload replaces its earlier version
    (src / "zephyr.txt").write_text(ZEPHYR.replace("42 million", "43 million"), encoding="utf-8")
    msg, _ = index_uploads(pipeline, uploads, [str(src / "zephyr.txt")])
    assert "Updated: zephyr.txt." in msg
    art = pipeline.index.articles[pipeline.index.by_source["zephyr.txt"]]
    assert "43 million" in art.text
    # the bundled corpus plus the uploads folder is exactly what the index holds: not stale
    assert not pipeline.is_stale([corpus, uploads])


# ---------------------------------------------------------------- running app
@pytest.fixture
def running(tmp_path: Path, corpus: Path):
    from ui.server import free_port as _free_port, launch

    (tmp_path / "index-uploads").mkdir(parents=True)
    (tmp_path / "index-uploads" / "zephyr.txt").write_text(ZEPHYR, encoding="utf-8")
    p = RagPipeline(index_dir=tmp_path / "index", embedder=HashEmbedder(), entities=False)
    port = _free_port()
    demo = launch(host="127.0.0.1", port=port, articles=[corpus], block=False, pipeline=p, quiet=True)
    yield p, demo, f"http://127.0.0.1:{port}/"
    demo.close()


def test_launch_builds_index_with_uploads_and_serves_chat(running, corpus: Path):
    from gradio_client import Client

    p, demo, url = running
    assert demo.newsrag_status.ready
    assert set(p.index.by_source) == {"a_cranes.txt", "b_library.txt", "zephyr.txt"}  # earlier uploads kept
    assert (p.index_dir.parent / "index-uploads" / "zephyr.txt").exists()  # uploads live beside the index
    assert not (p.index_dir / "uploads").exists()
    client = Client(url, verbose=False)
    api = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert set(api) == {"/chat", "/ask"}  # UI events are private
    assert [x["parameter_name"] for x in api["/chat"]["parameters"]] == [
        "question", "since", "until", "sources", "k", "mode", "history"]
    assert all(x["parameter_has_default"] for x in api["/chat"]["parameters"][1:])
    text = client.predict("Where were the new harbour cranes of Nordport built?", api_name="/chat")
    assert text == p.ask("Where were the new harbour cranes of Nordport built?").answer
    full = client.predict("Where were the new harbour cranes of Nordport built?", api_name="/ask")
    assert full["answer"] == text and "citations" in full and "passages" in full


def test_chat_errors_are_messages_not_tracebacks(running):
    from gradio_client import Client

    _, _, url = running
    client = Client(url, verbose=False)
    with pytest.raises(Exception) as e:
        client.predict("Where were the cranes built?", since="2012-13-01", api_name="/chat")
    assert "The “Since” date “2012-13-01” is not a real date" in str(e.value)
    assert "--since" not in str(e.value) and "Traceback" not in str(e.value)
    with pytest.raises(Exception) as e:
        client.predict("Where were the cranes built?", since="2012-05-01", until="2012-01-01", api_name="/chat")
    assert "The “Since” date (2012-05-01) is after the “Until” date (2012-01-01)" in str(e.value)
    with pytest.raises(Exception) as e:
        client.predict("Where were the cranes built?", sources=["nope.txt"], api_name="/chat")
    assert "“Only these articles”: no indexed article is named nope.txt" in str(e.value)
    for bad in ("abc", 0, 2.5):
        with pytest.raises(Exception) as e:
            client.predict("Where were the cranes built?", k=bad, api_name="/chat")
        assert "“Passages to retrieve (k)” must be a whole number from 1 to 10" in str(e.value), bad
        assert "Something went wrong" not in str(e.value)
    # k=None is the default k, as on the page
    assert client.predict("Where were the new harbour cranes of Nordport built?", k=None, api_name="/chat")
    with pytest.raises(Exception) as e:
        client.predict("Where were the cranes built?", mode="poetry", api_name="/chat")
    assert "mode must be one of extractive, llm" in str(e.value)


def test_uploads_kept_inside_an_old_index_move_beside_it(tmp_path: Path):
    from ui.uploads import default_uploads_dir

    legacy = tmp_path / "index" / "uploads"
    legacy.mkdir(parents=True)
    (legacy / "zephyr.txt").write_text(ZEPHYR, encoding="utf-8")
    p = RagPipeline(index_dir=tmp_path / "index", embedder=HashEmbedder(), entities=False)
    moved = default_uploads_dir(p)
    assert moved == tmp_path / "index-uploads"
    assert (moved / "zephyr.txt").read_text(encoding="utf-8") == ZEPHYR
    assert not legacy.exists()
    assert default_uploads_dir(p) == moved  # a second call changes nothing


def test_the_ui_serves_an_existing_index_as_it_is(tmp_path: Path, corpus: Path):
    """An index holding more than the bundled corpus is not pruned to it; new uploads are added."""
    from ui.server import prepare

    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "zephyr.txt").write_text(ZEPHYR, encoding="utf-8")
    p = RagPipeline(index_dir=tmp_path / "index", embedder=HashEmbedder(), entities=False)
    p.index_paths([corpus, extra])
    prepare(p, [corpus])  # what launch passes: the bundled corpus
    assert set(p.index.by_source) == {"a_cranes.txt", "b_library.txt", "zephyr.txt"}
    uploads = tmp_path / "index-uploads"
    uploads.mkdir()
    (uploads / "more.txt").write_text(STORY_B.replace("Sudvale", "Nordvale"), encoding="utf-8")
    prepare(p, [corpus, uploads], uploads=uploads)
    assert set(p.index.by_source) == {"a_cranes.txt", "b_library.txt", "zephyr.txt", "more.txt"}


def test_the_package_offers_launch_without_importing_gradio():
    """`rag ui` calls ``ui.launch``; importing the package loads neither Gradio nor a model."""
    code = "import sys, ui; print(callable(ui.launch), 'gradio' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "False", "False"]


def test_sigterm_stops_the_server_and_removes_its_exports(tmp_path: Path):
    """``kill`` stops ``launch`` as Ctrl-C does: it returns, and the exit clean-up removes the
    export folder (without the handler the process died at once and left it behind)."""
    import signal
    import time
    import urllib.request

    from ui.server import free_port

    d = tmp_path / "articles"
    d.mkdir()
    (d / "a_cranes.txt").write_text(STORY_A, encoding="utf-8")
    port = free_port()
    code = (
        "import sys; from pathlib import Path\n"
        "from index.embed import HashEmbedder\nfrom rag.pipeline import RagPipeline\n"
        "from ui.export import ExportFiles\nfrom ui.server import launch, prepare\n"
        "files = ExportFiles(); files.write('# kept until exit'); print(files.root, flush=True)\n"
        f"p = RagPipeline(index_dir=Path(r'{tmp_path / 'index'}'), embedder=HashEmbedder(), entities=False)\n"
        f"prepare(p, [Path(r'{d}')])\n"  # indexed and warm: launch goes straight to serving
        f"launch(pipeline=p, articles=[r'{d}'], port={port}, quiet=True)\n"
        "print('returned', flush=True)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        root = Path(proc.stdout.readline().strip())
        assert root.is_dir()
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except OSError:
                assert time.time() < deadline and proc.poll() is None, proc.stderr.read()
                time.sleep(0.2)
        time.sleep(1.0)  # into the serving loop
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "returned" in out
    assert not root.exists()
