"""The index directory on disk, as a place: who may write it (one writer at a time, through a
lock file beside it), where a new version is built (a marked temporary directory beside it),
how that version replaces the current one (two renames), and what a crash leaves behind.

Layout around an index at ``data/index``::

    data/.index.lock          the writers' lock (``filelock``; never inside the index)
    data/.index.build-XXXX/   a version being built; a kill leaves it, the next writer removes it
    data/index.old/           the previous version, for the moment of a swap

Readers never take the lock: they read the last complete version. Every writer holds the lock
from before it reads the current version until its swap is done, so two writers cannot both
start from the same version and one erase the other's articles."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from rag import settings as C
from rag.errors import BadInputError, IndexBusyError, RagError

BUILD_MARK = ".newsrag-build"  # inside a build directory until just before its swap
OURS = frozenset({"manifest.json", "articles.jsonl", "chunks.jsonl", "chunks.faiss", "sentences.faiss", "bm25"})


def lock_path(index_dir: Path) -> Path:
    return index_dir.with_name(f".{index_dir.name}.lock")


def old_path(index_dir: Path) -> Path:
    return index_dir.with_name(index_dir.name + ".old")


def _build_prefix(index_dir: Path) -> str:
    return f".{index_dir.name}.build-"


def check_writable(index_dir: Path) -> None:
    """Fail before any work when ``index_dir`` cannot be written: a file in its place, a parent
    that cannot be created or written (read-only, ``/proc``), a directory without write
    permission."""
    index_dir = Path(index_dir)
    fix = "choose another --index-dir"
    if index_dir.exists() and not index_dir.is_dir():
        raise BadInputError(f"--index-dir {index_dir} is a file, not a folder; {fix}")
    parent = index_dir.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        probe = tempfile.mkdtemp(prefix=_build_prefix(index_dir) + "probe-", dir=parent)
        os.rmdir(probe)
    except OSError as e:
        raise BadInputError(f"cannot write the index at {index_dir}: {parent} is not writable ({e.strerror}); {fix}") from e
    if index_dir.is_dir() and not os.access(index_dir, os.W_OK | os.X_OK):
        raise BadInputError(f"cannot write the index at {index_dir}: the folder is read-only; {fix}")


@contextmanager
def writer_lock(
    index_dir: Path, timeout: float = C.WRITERS.lock_timeout_s, on_wait: Callable[[str], None] | None = None
) -> Iterator[None]:
    """Hold the exclusive writers' lock of ``index_dir``. When another writer holds it, call
    ``on_wait`` with a message and wait up to ``timeout`` seconds, then raise ``IndexBusyError``.
    The lock is the operating system's (``flock``): a killed writer releases it."""
    index_dir = Path(index_dir)
    lock = FileLock(lock_path(index_dir), thread_local=False)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if on_wait:
            on_wait(f"waiting for another writer of {index_dir}…")
        try:
            lock.acquire(timeout=timeout)
        except Timeout:
            raise IndexBusyError(
                f"another program has been writing the index at {index_dir} for over {timeout:.0f} s; "
                f"try again when it is done (lock file {lock_path(index_dir)})"
            ) from None
    try:
        yield
    finally:
        lock.release()


def new_build_dir(index_dir: Path) -> Path:
    """A marked temporary directory beside ``index_dir`` for a new version (call under the lock)."""
    tmp = Path(tempfile.mkdtemp(prefix=_build_prefix(index_dir), dir=index_dir.parent))
    (tmp / BUILD_MARK).touch()
    return tmp


def remove_stale_builds(index_dir: Path) -> list[Path]:
    """Remove build directories a killed writer left (call under the lock: then no build is
    under way). Only directories with this store's name pattern and its mark (or, past the
    mark, a manifest) are removed."""
    removed = []
    parent = Path(index_dir).parent
    if not parent.is_dir():
        return removed
    for p in parent.glob(_build_prefix(index_dir) + "*"):
        if p.is_dir() and not p.is_symlink() and ((p / BUILD_MARK).is_file() or (p / "manifest.json").is_file()):
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


def recover(index_dir: Path) -> None:
    """A crash between the two renames of a swap leaves the last index in ``<dir>.old`` and no
    ``<dir>``: rename it back. Only a directory this store wrote (it holds a manifest) is ever
    renamed, and only into an empty place: nothing is deleted, and a user's directory that
    happens to sit at ``<dir>`` or ``<dir>.old`` is never touched. A swap under way also looks
    like this for a moment, so the rename happens only under the writers' lock."""
    old = old_path(index_dir)
    if index_dir.exists() or not (old / "manifest.json").is_file():
        return
    try:
        with writer_lock(index_dir, timeout=C.WRITERS.reader_recovery_wait_s):
            if not index_dir.exists() and (old / "manifest.json").is_file():
                os.replace(old, index_dir)
    except (IndexBusyError, OSError):
        pass  # a writer is at work (it will finish the swap) or the place is read-only


def swap(index_dir: Path, tmp: Path) -> None:
    """Replace ``index_dir`` by the complete build ``tmp`` with two renames (call under the lock).
    Files in ``index_dir`` that are not the index's (a README) move into the new version."""
    old = old_path(index_dir)
    if old.exists():
        if not (old / "manifest.json").is_file():
            raise RagError(f"{old} exists and is not an index this program wrote; move it away, then index again")
        # a crash after the second rename of the last swap left files that were not ours in
        # the old index: bring them back before the old index goes
        if (index_dir / "manifest.json").is_file():
            for p in old.iterdir():
                if p.name not in OURS and not (index_dir / p.name).exists():
                    os.replace(p, index_dir / p.name)
        shutil.rmtree(old)
    (tmp / BUILD_MARK).unlink(missing_ok=True)
    keep_files = []
    if index_dir.exists():
        ours = OURS | {p.name for p in tmp.iterdir()}
        keep_files = [p for p in index_dir.iterdir() if p.name not in ours]
        os.replace(index_dir, old)
    os.replace(tmp, index_dir)
    for p in keep_files:
        os.replace(old / p.name, index_dir / p.name)
    if old.exists():
        shutil.rmtree(old)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fsync_tree(path: Path) -> None:
    for p in path.rglob("*"):
        if p.is_file():
            with open(p, "rb") as f:
                os.fsync(f.fileno())
