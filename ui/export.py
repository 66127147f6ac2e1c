"""The conversation as text to take away: one answer with its citations (for the clipboard)
and the whole conversation as Markdown, each citation with its title, date, source and quote,
written where the download button serves it from."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rag.types import Answer

from .format import NO_DATE, abstention_reason


def _md(text: str) -> str:
    """Text made inert for Markdown: characters that would start a link, emphasis or code are
    backslash-escaped."""
    return "".join("\\" + ch if ch in "\\`*_[]<>#|" else ch for ch in text)


def answer_plaintext(answer: Answer) -> str:
    """The answer and its numbered sources, as plain text for the clipboard."""
    if answer.abstained:
        return f"Not in the articles: {abstention_reason(answer)}"
    lines = [answer.answer.strip(), ""] if answer.citations else [answer.answer.strip()]
    for c in answer.citations:
        lines.append(f"[{c.n}] {c.title or c.source} ({c.date or NO_DATE}), {c.source}: “{c.quote}”")
    return "\n".join(lines)


def _turn_markdown(i: int, turn: Mapping[str, Any]) -> list[str]:
    out = [f"## {i}. {_md(turn['question'])}", ""]
    ans: Answer | None = turn.get("answer")
    if ans is None:
        out += [f"*Not answered:* {_md(turn.get('notice') or 'the question was refused')}", ""]
        return out
    if ans.abstained:
        out += [f"**Not in the articles:** {_md(abstention_reason(ans))}", ""]
        return out
    out += [_md(ans.answer.strip()).replace("\\[", "[").replace("\\]", "]"), ""]
    for c in ans.citations:
        out.append(f"[{c.n}] **{_md(c.title or c.source)}** — {c.date or NO_DATE} — source: `{c.source}`  ")
        out.append(f"> {_md(c.quote)}")
        out.append("")
    return out


def conversation_markdown(turns: Sequence[Mapping[str, Any]]) -> str:
    """Every turn of the conversation: the question, then the answer with ``[n]`` markers and
    its citations (title, date, source file, quote), or the verdict when the articles don't say."""
    lines = ["# NewsRAG conversation", ""]
    for i, t in enumerate(turns, start=1):
        lines += _turn_markdown(i, t)
    return "\n".join(lines).rstrip() + "\n"


EXPORT_NAME = "newsrag-conversation.md"
EXPORT_KEEP_SECONDS = 600  # the page copies an export into its own cache as soon as it is written


class ExportFiles:
    """Exported conversations on disk: one temporary folder per chat server, made on the first
    export and removed when the server stops. An export lives in a subfolder named by its
    content's hash (so the download keeps the name ``EXPORT_NAME``); subfolders older than
    ``keep_seconds`` are removed as new ones are written, so a long-running chat does not fill
    the disk with one file per answer."""

    def __init__(self, keep_seconds: float = EXPORT_KEEP_SECONDS):
        self.keep_seconds = keep_seconds
        self._root: Path | None = None

    @property
    def root(self) -> Path:
        if self._root is None:
            self._root = Path(tempfile.mkdtemp(prefix="newsrag-export-"))
            self._cleanup = weakref.finalize(self, shutil.rmtree, self._root, True)
        return self._root

    def write(self, markdown: str) -> Path:
        folder = self.root / hashlib.sha256(markdown.encode("utf-8")).hexdigest()[:16]
        folder.mkdir(exist_ok=True)
        path = folder / EXPORT_NAME
        path.write_text(markdown, encoding="utf-8")
        os.utime(folder)  # fresh even when the same conversation was exported long ago
        self._prune(keep=folder)
        return path

    def _prune(self, keep: Path) -> None:
        cutoff = time.time() - self.keep_seconds
        for old in self.root.iterdir():
            try:
                stale = old != keep and old.stat().st_mtime < cutoff
            except FileNotFoundError:  # another export's pruning removed it first
                continue
            if stale:
                shutil.rmtree(old, ignore_errors=True)

    def close(self) -> None:
        """Remove the folder and every export in it (also done at exit)."""
        if self._root is not None:
            self._cleanup()
            self._root = None
