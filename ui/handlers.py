"""What the page's events do: answer a question (streaming into the chat), open a source in
the article viewer, refresh the status and the documents table, index uploads, and the
``/chat`` and ``/ask`` API endpoints. ``Handlers`` holds the pipeline and the readiness; its
methods are the event functions ``ui.app`` wires to the components."""

from __future__ import annotations

import importlib.util
import logging
import os
import time
from pathlib import Path
from typing import Any

import gradio as gr

from rag import settings as C
from rag.errors import RagError
from rag.pipeline import RagPipeline
from rag.types import Answer, Request

from . import format as F
from .export import ExportFiles, answer_plaintext, conversation_markdown
from .inputs import FieldError, check_request
from .server import Readiness
from .uploads import index_uploads

log = logging.getLogger(__name__)


def llm_available() -> bool:
    """The language-model answer mode is offered only when a backend can exist."""
    return bool(os.environ.get("NEWSRAG_LLM_BASE_URL")) or importlib.util.find_spec("llama_cpp") is not None


def answer_modes() -> list[str]:
    return ["extractive", "llm"] if llm_available() else ["extractive"]


def user_error(e: BaseException) -> gr.Error:
    """A gr.Error with the RagError's message, or a short generic one (the traceback is logged)."""
    if isinstance(e, gr.Error):
        return e
    if isinstance(e, RagError):
        log.info("refused: %s", e)
        return gr.Error(str(e), print_exception=False)
    log.error("unexpected error in the UI", exc_info=e)
    return gr.Error(f"Something went wrong ({type(e).__name__}); the details are in the server log.",
                    print_exception=False)


def messages(turns: list[dict]) -> list[dict]:
    """The Chatbot's messages for the conversation's turns."""
    out = []
    for t in turns:
        out.append({"role": "user", "content": F.format_question(t["question"])})
        out.append({"role": "assistant", "content": t["html"]})
    return out


def picker_hint(ans: Answer | None) -> str:
    if ans is None:
        return "Sources of the selected answer appear here."
    if ans.abstained:
        return "Not in the articles. Pick a lead above to read the closest passages in context — they are related, not support."
    return "Pick a source above to read the whole article with the cited passage highlighted."


class Handlers:
    """The event functions over one pipeline. ``uploads_dir`` is where uploads are copied
    before indexing; ``status`` says whether the index and models are ready."""

    def __init__(self, pipeline: RagPipeline, uploads_dir: Path, status: Readiness):
        self.pipeline = pipeline
        self.uploads_dir = Path(uploads_dir)
        self.status = status
        self.exports = ExportFiles()

    # ---------- views of the index ----------
    def articles(self):
        return self.pipeline.index.articles

    def doc_table(self) -> tuple[list[list[Any]], str]:
        idx = self.pipeline.index
        rows = F.document_rows(idx.articles, idx.chunks_by_doc)
        n_chunks = sum(len(v) for v in idx.chunks_by_doc.values())
        return rows, f"{len(rows)} articles · {n_chunks} chunks indexed"

    def status_line(self) -> str:
        status = self.status
        if status.error:
            return f"**Error:** {F.esc(status.error)}"
        if not status.ready:
            return f"**Preparing** — {F.esc(status.message)}"
        idx = self.pipeline.index
        n_chunks = sum(len(v) for v in idx.chunks_by_doc.values())
        return (
            f"Index ready: {len(idx.articles)} articles, {n_chunks} chunks · "
            "answers quote the articles and cite them, or say the articles don't say."
        )

    def source_names(self) -> list[tuple[str, str]]:
        """The source filter's choices: "Title (date)" labels, file names as values."""
        return F.source_filter_choices(self.articles())

    def picker_update(self, ans: Answer | None, arts=None) -> dict:
        choices = F.source_choices(ans, arts if arts is not None else (self.articles() if ans else {}))
        if ans is None:
            label = "Sources"
        elif ans.abstained:
            label = f"Leads for: {ans.question}"
        else:
            label = f"Sources for: {ans.question}"
        return gr.update(choices=choices, value=None, label=label)

    # ---------- the conversation ----------
    def request(self, question, turns, since, until, sources, k, mode) -> Request:
        """The checked Request for the page's fields; history is the answered earlier questions."""
        history = [t["question"] for t in turns or [] if t.get("answer") is not None]
        return check_request(question, history, since, until, sources, k, mode, self.pipeline.index.by_source)

    def respond(self, question, turns, since, until, sources, k, mode):
        """Answer into the chat. A refusal (empty question, bad date, …) becomes an inline
        message after the earlier turns, and the question stays in the box to be fixed. Only the
        first update empties the box: what is typed there while the answer streams is kept (and
        asked next, when it was sent before this answer finished)."""
        turns = list(turns or [])
        q = " ".join(str(question or "").split())
        keep = gr.update()
        pending = {"question": q or "(empty question)", "answer": None, "html": F.format_pending("Searching the articles…")}
        try:
            if not q:
                raise FieldError("question", "Type a question first, or pick an example question.")
            yield "", messages(turns + [pending]), turns, keep, keep, keep
            if not self.status.ready:
                pending["html"] = F.format_pending("Preparing the index — the first answer waits for it…")
                yield keep, messages(turns + [pending]), turns, keep, keep, keep
                self.status.wait()
            req = self.request(q, turns, since, until, sources, k, mode)
            if req.mode == "llm":
                pending["html"] = F.format_pending(
                    "Retrieving passages, then the local language model writes the answer — on a CPU this can "
                    "take a few minutes. Its draft streams in here and is checked against the articles.")
                yield keep, messages(turns + [pending]), turns, keep, keep, keep
            final: Answer | None = None
            text = ""
            last = 0.0
            for part in self.pipeline.stream(req):
                if isinstance(part, Answer):
                    final = part
                    break
                text += part
                if time.monotonic() - last > 0.05:
                    last = time.monotonic()
                    pending["html"] = F.format_streaming(text)
                    yield keep, messages(turns + [pending]), turns, keep, keep, keep
            assert final is not None
        except Exception as e:  # the refusal joins the conversation; nothing earlier is lost
            message = str(user_error(e).message) if not isinstance(e, FieldError) else str(e)
            refused = {"question": pending["question"], "answer": None, "notice": message,
                       "html": F.format_notice(message)}
            turns = turns + [refused]
            yield q, messages(turns), turns, keep, keep, keep
            return
        arts = self.articles()
        turns = turns + [{"question": q, "answer": final, "html": F.format_answer(final, arts, turn=len(turns))}]
        yield (
            keep, messages(turns), turns, len(turns) - 1,
            self.picker_update(final, arts), F.article_placeholder(picker_hint(final)),
        )

    def open_source(self, value, turns, focus):
        turns = turns or []
        if not value or focus is None or not (0 <= focus < len(turns)):
            return gr.update()
        ans = turns[focus]["answer"]
        target = F.resolve_choice(ans, value)
        if target is None:
            return F.article_placeholder("That source is not part of the selected answer.")
        kind, doc_id, start, end, label = target
        art = self.articles().get(doc_id)
        if art is None:
            return F.article_placeholder("That article is no longer in the index.")
        return F.format_article(art, start, end, label=label, kind=kind, inner=ans.short_answer)

    def open_citation(self, target, turns):
        """A click on ``[n]`` of turn ``t`` (``target`` is "t-n"): focus that answer and open
        source n in the viewer, scrolled to the cited span."""
        turns = turns or []
        t, _, n = str(target or "").partition("-")
        if not (t.isdigit() and n.isdigit() and int(t) < len(turns) and turns[int(t)]["answer"] is not None):
            return gr.update(), gr.update(), gr.update()
        ans = turns[int(t)]["answer"]
        picker = self.picker_update(ans)
        picker["value"] = f"cite:{n}"
        return int(t), picker, self.open_source(f"cite:{n}", turns, int(t))

    def close_source(self):
        return gr.update(value=None), F.article_placeholder("Closed. Click a citation [n] to open its source again.")

    def focus_answer(self, turns, evt: gr.SelectData):
        turns = turns or []
        i = evt.index if isinstance(evt.index, int) else (evt.index[0] if evt.index else 0)
        t = i // 2
        if not (0 <= t < len(turns)) or turns[t]["answer"] is None:
            return gr.update(), gr.update(), gr.update()
        ans = turns[t]["answer"]
        return t, self.picker_update(ans), F.article_placeholder(picker_hint(ans))

    def clear(self):
        return [], [], None, self.picker_update(None), F.article_placeholder(picker_hint(None)), ""

    def copy_text(self, turns, focus) -> str:
        """The selected answer (else the latest) with its citations, for the clipboard."""
        answered = [i for i, t in enumerate(turns or []) if t.get("answer") is not None]
        if not answered:
            return ""
        i = focus if focus in answered else answered[-1]
        return answer_plaintext(turns[i]["answer"])

    def export_file(self, turns):
        """The conversation as a Markdown file for the download button (None: nothing to export)."""
        if not turns:
            return gr.update(value=None, interactive=False)
        path = self.exports.write(conversation_markdown(turns))
        return gr.update(value=str(path), interactive=True)

    # ---------- status, documents, uploads ----------
    def refresh(self):
        ready = self.status.ready
        rows, summary = self.doc_table() if ready else ([], "")
        names = self.source_names() if ready else []
        return self.status_line(), rows, summary, gr.update(choices=names)

    def tick(self):
        line = self.status_line()
        if self.status.ready or self.status.error:
            rows, summary = self.doc_table() if self.status.ready else ([], "")
            names = self.source_names() if self.status.ready else []
            return line, gr.Timer(active=False), rows, summary, gr.update(choices=names)
        return line, gr.Timer(active=True), gr.update(), gr.update(), gr.update()

    def on_upload(self, files, selected_sources, progress=gr.Progress()):
        try:
            self.status.wait()
            html, refused = index_uploads(self.pipeline, self.uploads_dir, files or [], progress)
        except Exception as e:  # the message replaces the last one: no stale "Indexed …" stays
            html, refused = f"<b>Nothing was indexed.</b> {F.esc(user_error(e).message)}", True
        rows, summary = self.doc_table()
        names = self.source_names()
        kept = [s for s in (selected_sources or []) if s in {v for _, v in names}]
        if refused:
            gr.Warning("Nothing was indexed; see the message under the upload box.")
        return html, None, rows, summary, gr.update(choices=names, value=kept), self.status_line()

    # ---------- the API ----------
    def _answer(self, question, since, until, sources, k, mode, history) -> Answer:
        try:
            self.status.wait()
            if isinstance(history, str):
                history = [history]
            req = check_request(question, [str(h) for h in history or ()], since, until, sources, k, mode,
                                self.pipeline.index.by_source)
            return self.pipeline.ask(req)
        except FieldError as e:
            raise gr.Error(str(e), print_exception=False) from None
        except Exception as e:
            raise user_error(e) from None

    def chat(
        self, question: str, since: str = "", until: str = "", sources: list[str] | None = None,
        k: int = C.DEFAULT_K, mode: str = "extractive", history: list[str] | None = None,
    ) -> str:
        """Answer a question from the articles. Returns the answer text with [n] citation markers,
        or "The articles don't say." when they don't."""
        return self._answer(question, since, until, sources, k, mode, history).answer

    def ask(
        self, question: str, since: str = "", until: str = "", sources: list[str] | None = None,
        k: int = C.DEFAULT_K, mode: str = "extractive", history: list[str] | None = None,
    ) -> dict:
        """Like /chat, but returns the whole answer as JSON: citations with offsets, passages,
        abstention note, latency."""
        return self._answer(question, since, until, sources, k, mode, history).to_json()
