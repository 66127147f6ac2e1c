"""Uploaded articles: where they live, the checks a file must pass, and indexing a batch of
them incrementally (all or nothing: one bad file refuses the batch and changes nothing)."""

from __future__ import annotations

import codecs

import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from index.ingest import SUFFIXES, decode, parse_article
from rag import settings as C
from rag.errors import ArticleError
from rag.pipeline import RagPipeline

from . import format as F

MAX_UPLOAD_BYTES = 5 * 1024 * 1024
LEGACY_UPLOADS_DIRNAME = "uploads"  # where older versions kept uploads: inside the index directory


def default_uploads_dir(pipeline: RagPipeline) -> Path:
    """``settings.uploads_dir_for`` the pipeline's index. Uploads that an older version kept
    inside the index directory are moved there once (a rename; nothing is copied or deleted)."""
    target = C.uploads_dir_for(pipeline.index_dir)
    legacy = pipeline.index_dir / LEGACY_UPLOADS_DIRNAME
    if legacy.is_dir() and not target.exists():
        legacy.rename(target)
    return target


def _check_batch(pipeline: RagPipeline, uploads_dir: Path, paths: Sequence[Path]) -> list[tuple[str, str]]:
    """(file name, problem) for every file of the batch that cannot be indexed."""
    reserved = {a.source for a in pipeline.index.articles.values()} - names_in(uploads_dir)
    problems = []
    seen: set[str] = set()
    for p in paths:
        problem = check_upload(p, reserved)
        if problem is None and p.name in seen:
            problem = "given twice"
        seen.add(p.name)
        if problem:
            problems.append((p.name, problem))
    return problems


def index_uploads(
    pipeline: RagPipeline, uploads_dir: Path, files: Sequence[Any], progress: Any = None,
) -> tuple[str, bool]:
    """Index uploaded files incrementally. Every file is checked first and one bad file refuses
    the whole batch, changing nothing; good files are copied into ``uploads_dir`` and indexed
    with ``pipeline.index_paths`` (no pruning). Returns (HTML message, refused)."""
    paths = [Path(f if isinstance(f, (str, Path)) else getattr(f, "name", f)) for f in files]
    if not paths:
        return "No file was given.", True
    uploads_dir = Path(uploads_dir)
    problems = _check_batch(pipeline, uploads_dir, paths)
    if problems:
        return F.format_refusal(problems), True
    uploads_dir.mkdir(parents=True, exist_ok=True)
    targets: list[Path] = []
    backups: dict[Path, Path | None] = {}  # target -> copy of the file it replaces (None: new)
    for p in paths:
        target = uploads_dir / p.name
        backup = None
        if target.exists():
            backup = uploads_dir / f".{p.name}.bak"
            shutil.copyfile(target, backup)
        backups[target] = backup
        tmp = uploads_dir / f".{p.name}.part"
        shutil.copyfile(p, tmp)
        os.replace(tmp, target)
        targets.append(target)

    def undo(which: Sequence[Path]) -> None:
        for t in which:
            b = backups.get(t)
            if b is None:
                t.unlink(missing_ok=True)
            else:
                os.replace(b, t)

    if progress is not None:
        progress(0, desc="Embedding the new articles…")

    def tick(done: int, total: int) -> None:
        if progress is not None:
            progress((done, total), desc="Embedding chunks", unit="chunks")

    try:
        report = pipeline.index_paths(targets, progress=tick)
    except BaseException:
        undo(targets)
        raise
    # files that did not become articles are put back, so the folder mirrors the index
    dropped = {d for d, _ in report.duplicates} | {Path(p).name for p, _ in report.unreadable}
    undo([t for t in targets if t.name in dropped])
    for b in backups.values():
        if b is not None:
            b.unlink(missing_ok=True)
    return F.format_update_report(report), False


def names_in(folder: Path) -> set[str]:
    """Article files in ``folder`` (hidden work files such as ``.x.part`` excluded)."""
    if not folder.is_dir():
        return set()
    return {p.name for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")}


def check_upload(path: Path, reserved: set[str] = frozenset()) -> str | None:
    """Why an uploaded file cannot be indexed, or None. Reads at most 5 MB."""
    name = path.name
    if not name or name.startswith("."):
        return "hidden or unnamed files are not indexed; rename the file"
    if path.suffix.lower() not in SUFFIXES:
        return "not a .txt or .md file"
    try:
        size = path.stat().st_size
    except OSError as e:
        return f"cannot read ({e.strerror})"
    if size > MAX_UPLOAD_BYTES:
        return f"the file is {size / 1e6:.1f} MB; the upload limit is {MAX_UPLOAD_BYTES / 1e6:.0f} MB"
    if name in reserved:
        return "a bundled article already has this file name; rename the file"
    try:
        raw = path.read_bytes()
    except OSError as e:
        return f"cannot read ({e.strerror})"
    if b"\x00" in raw and not raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):  # UTF-16: decode() reads it
        return "binary file, not text"
    try:
        text = decode(raw, name)
        parse_article(text, name)
    except ArticleError as e:
        return e.reason
    controls = sum(1 for ch in text if ord(ch) < 32 and ch not in "\n\r\t\f")
    if controls > max(8, len(text) // 100):
        return "binary file (control characters), not text"
    return None
