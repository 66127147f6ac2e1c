"""Shared fixtures. Network is blocked except loopback; the default index dir points at a
temporary folder; the real MiniLM model and a bundled-corpus index are built once per session."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARTICLES = ROOT / "articles"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """In CI, which installs everything the tests need (``.ci/run``: every extra, Chromium), a
    skipped test is a failure: a skip there would hide a test that did not run."""
    outcome = yield
    rep = outcome.get_result()
    if os.environ.get("CI") and rep.skipped and not hasattr(rep, "wasxfail"):
        reason = rep.longrepr[2] if isinstance(rep.longrepr, tuple) else str(rep.longrepr)
        rep.outcome = "failed"
        rep.longrepr = f"skipped in CI, where everything the tests need is installed: {reason}"


def as_unprivileged(cmd: list) -> list:
    """``cmd`` run without the power to ignore file permissions (root keeps it otherwise), so
    permission tests mean the same as root and as a user; skipped where root cannot drop it."""
    if os.geteuid() != 0:
        return cmd
    if not shutil.which("setpriv"):
        pytest.skip("root, and no setpriv to drop the permission override")
    caps = "-dac_override,-dac_read_search"
    return ["setpriv", f"--bounding-set={caps}", f"--inh-caps={caps}", *cmd]


_real_connect = socket.socket.connect


def _guarded_connect(self, address):
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and (host.startswith("127.") or host in ("localhost", "::1") or host.startswith("/")):
        return _real_connect(self, address)
    if self.family == socket.AF_UNIX:
        return _real_connect(self, address)
    raise RuntimeError(f"network access blocked in tests: {address!r}")


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)


@pytest.fixture(autouse=True)
def _index_dir_in_tmp(monkeypatch, tmp_path):
    monkeypatch.setenv("RAG_INDEX_DIR", str(tmp_path / "default-index"))


@pytest.fixture
def articles_copy(tmp_path) -> Path:
    d = tmp_path / "articles"
    shutil.copytree(ARTICLES, d)
    return d


@pytest.fixture(scope="session")
def minilm():
    from index.embed import MiniLMEmbedder

    e = MiniLMEmbedder()
    e.warm_up()
    return e


@pytest.fixture(scope="session")
def bundled_index_dir(tmp_path_factory, minilm) -> Path:
    """The bundled articles indexed once with the real model (read-only for tests)."""
    from rag.pipeline import RagPipeline

    d = tmp_path_factory.mktemp("bundled") / "index"
    RagPipeline(index_dir=d, embedder=minilm).ensure_index([ARTICLES])
    return d


@pytest.fixture(scope="session")
def pipeline(bundled_index_dir, minilm):
    from rag.pipeline import RagPipeline

    p = RagPipeline(index_dir=bundled_index_dir, embedder=minilm)
    p.warm_up()
    return p


TINY_STORIES = {
    "a_cranes.txt": """Harbour cranes return to Nordport

By Ada Lane | June 2, 2022

The port of Nordport installed four new harbour cranes on Tuesday. The cranes were built in Rotterdam.
The harbour master said the cranes would double the port's capacity.
""",
    "b_library.txt": """Library reopens in Sudvale

By Ben Ito | July 9, 2021

The Sudvale library reopened after a two-year renovation that cost 3 million euros. Its new reading
room seats 120 people.
""",
}


@pytest.fixture
def tiny_corpus(tmp_path) -> Path:
    d = tmp_path / "tiny"
    d.mkdir()
    for name, text in TINY_STORIES.items():
        (d / name).write_text(text, encoding="utf-8")
    return d


@pytest.fixture
def tiny_pipeline(tmp_path, tiny_corpus):
    """Two short stories indexed with the model-free hashing embedder: decision and scoring
    rules run in milliseconds, without MiniLM."""
    from index.embed import HashEmbedder
    from rag.pipeline import RagPipeline

    p = RagPipeline(index_dir=tmp_path / "tiny-index", embedder=HashEmbedder(), entities=False)
    p.ensure_index([tiny_corpus])
    return p


@pytest.fixture(scope="session")
def rules_pipeline(bundled_index_dir, minilm):
    """The hand-rule chain (``answerer="rules"``), kept as the comparison to the learned one."""
    from rag.pipeline import RagPipeline

    p = RagPipeline(index_dir=bundled_index_dir, embedder=minilm, answerer="rules")
    p.warm_up()
    return p
