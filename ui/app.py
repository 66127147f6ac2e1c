"""The web UI: a Gradio chat over the indexed news articles, with cited answers, an article
viewer that highlights the cited span, filters, a documents panel with uploads, and a ``/chat``
API endpoint.

    from ui.app import launch
    launch(index_dir=None, host="127.0.0.1", port=7860)      # what ``rag ui`` calls

Importing this module loads Gradio but no model: the pipeline loads its models on first use,
and ``launch`` warms it up after the server is listening (the page shows the progress).
"""

import os

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # before gradio is imported, here and anywhere
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import importlib.util  # noqa: E402
import logging  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import gradio as gr  # noqa: E402

from rag import settings as C  # noqa: E402
from rag.errors import ArticleError, RagError  # noqa: E402
from index.ingest import SUFFIXES, decode, parse_article  # noqa: E402
from rag.pipeline import RagPipeline  # noqa: E402
from rag.types import Answer, Request  # noqa: E402

from . import format as F  # noqa: E402

log = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = 5 * 1024 * 1024
LEGACY_UPLOADS_DIRNAME = "uploads"  # where older versions kept uploads: inside the index directory
WAIT_READY_SECONDS = 1800
EXAMPLES = [
    "How many projectiles did Gazan fighters launch during the 2023 conflict?",
    "Which U.S. Secretary of Defense reaffirmed an “ironclad” commitment to Israel in May 2021?",
    "On what date did Operation Cast Lead begin?",
    "Why did Israel cut off ceasefire talks with Islamic Jihad in May 2023?",
    "How many rockets did Hezbollah fire from Lebanon?",
]

CSS = """
.nr-header { padding: 4px 2px 0 2px; }
.nr-header h1 { font-size: 1.45rem; margin: 0; letter-spacing: -0.01em; }
.nr-header p { margin: 2px 0 0 0; color: var(--body-text-color-subdued); font-size: 0.92rem; }
#nr-status { font-size: 0.85rem; color: var(--body-text-color-subdued); }
#nr-status p { margin: 0; }
.nr-q { white-space: normal; font-weight: 600; }
.nr-placeholder { text-align: center; color: var(--body-text-color-subdued); max-width: 460px; margin: 0 auto;
  line-height: 1.6; }
#nr-docs table, #nr-docs td, #nr-docs th { font-family: var(--font); }
#nr-chat .message-row { background: transparent !important; }
#nr-chat .message-row.user-row { background: var(--background-fill-secondary) !important;
  border-top: 1px solid var(--border-color-primary); }
#nr-chat .message-row.user-row .message { background: transparent !important; }
#nr-chat .message-row.bot-row .message { background: transparent !important; }
.nr-answer { line-height: 1.5; }
.nr-answer-text { font-size: 1rem; }
.nr-short { font-weight: 700; }
.nr-ref { color: var(--color-accent); font-weight: 600; margin-left: 1px; }
.nr-sources, .nr-leads { margin-top: 10px; border-top: 1px solid var(--border-color-primary); padding-top: 6px; }
.nr-sources-h, .nr-leads-h { font-size: 0.72rem; text-transform: uppercase; letter-spacing: 0.06em;
  color: var(--body-text-color-subdued); font-weight: 600; margin-bottom: 4px; }
.nr-source, .nr-lead { margin: 6px 0 8px 0; }
.nr-source-head { font-size: 0.9rem; }
.nr-n { font-weight: 700; color: var(--color-accent); margin-right: 2px; }
.nr-lead .nr-n { color: var(--body-text-color-subdued); }
.nr-title { font-weight: 600; }
.nr-source-meta { font-size: 0.78rem; color: var(--body-text-color-subdued); }
.nr-file { font-family: var(--font-mono); font-size: 0.78rem; }
blockquote.nr-quote, blockquote.nr-lead-text { margin: 4px 0 0 0; padding: 4px 10px; font-size: 0.88rem;
  border-left: 3px solid var(--color-accent); background: var(--background-fill-secondary); border-radius: 0 4px 4px 0; }
blockquote.nr-lead-text { border-left: 3px dashed var(--border-color-primary); color: var(--body-text-color-subdued); }
mark.nr-span, mark.nr-mark { background: #fde68a; color: #1f2937; padding: 0 2px; border-radius: 2px; }
mark.nr-mark-lead { background: #e5e7eb; }
.nr-abstain-h { font-weight: 700; color: #b45309; font-size: 0.95rem; margin-bottom: 2px; }
.nr-abstain { border-left: 3px solid #f59e0b; padding-left: 10px; }
.nr-note { font-size: 0.82rem; color: var(--body-text-color-subdued); margin-top: 2px; }
.nr-footer { font-size: 0.72rem; color: var(--body-text-color-subdued); margin-top: 6px; }
.nr-conf { border-radius: 8px; padding: 0 6px; border: 1px solid currentColor; cursor: help; }
.nr-conf-high { color: #2e7d32; } .nr-conf-medium { color: #b26a00; } .nr-conf-low { color: #b3261e; }
.nr-cursor { opacity: 0.6; }
.nr-spinner { display: inline-block; width: 10px; height: 10px; border: 2px solid var(--border-color-primary);
  border-top-color: var(--color-accent); border-radius: 50%; animation: nr-spin 0.8s linear infinite;
  vertical-align: -1px; margin-right: 4px; }
@keyframes nr-spin { to { transform: rotate(360deg); } }
.nr-pending { color: var(--body-text-color-subdued); }
.nr-article { font-size: 0.92rem; }
.nr-article-empty { color: var(--body-text-color-subdued); padding: 18px 4px; }
.nr-article-head { padding-bottom: 6px; border-bottom: 1px solid var(--border-color-primary); margin-bottom: 6px; }
.nr-kicker { font-size: 0.72rem; text-transform: uppercase; letter-spacing: 0.06em; font-weight: 600;
  color: var(--color-accent); }
.nr-kicker-lead { color: #b45309; }
.nr-article-title { font-size: 1.08rem; font-weight: 650; line-height: 1.3; margin: 2px 0; }
.nr-article-meta { font-size: 0.78rem; color: var(--body-text-color-subdued); }
.nr-article-body { position: relative; white-space: pre-wrap; overflow-y: auto; max-height: 62vh;
  line-height: 1.55; padding-right: 6px; }
@keyframes nr-flash { 0% { box-shadow: 0 0 0 4px #f59e0b; } 100% { box-shadow: 0 0 0 0 transparent; } }
mark.nr-flash { animation: nr-flash 1.4s ease-out 1; }
#nr-docs-summary { font-size: 0.85rem; color: var(--body-text-color-subdued); }
footer { display: none !important; }
"""

# Runs in the browser for the article panel: whenever its value changes, scroll the article
# box to the highlighted span (and the panel into view).
ARTICLE_JS = """
const go = () => {
  const m = element.querySelector('#cite-span');
  const box = element.querySelector('.nr-article-body');
  if (!m || !box) return;
  box.scrollTop = Math.max(0, m.offsetTop - box.clientHeight / 3);
  m.classList.remove('nr-flash'); void m.offsetWidth; m.classList.add('nr-flash');
  const r = element.getBoundingClientRect();
  if (r.top < 0 || r.top > window.innerHeight - 80) element.scrollIntoView({block: 'start', behavior: 'smooth'});
};
watch('value', () => requestAnimationFrame(go));
requestAnimationFrame(go);
"""


def llm_available() -> bool:
    """The language-model answer mode is offered only when a backend can exist."""
    return bool(os.environ.get("NEWSRAG_LLM_BASE_URL")) or importlib.util.find_spec("llama_cpp") is not None


def answer_modes() -> list[str]:
    return ["extractive", "llm"] if llm_available() else ["extractive"]


def default_uploads_dir(pipeline: RagPipeline) -> Path:
    """``settings.uploads_dir_for`` the pipeline's index. Uploads that an older version kept
    inside the index directory are moved there once (a rename; nothing is copied or deleted)."""
    target = C.uploads_dir_for(pipeline.index_dir)
    legacy = pipeline.index_dir / LEGACY_UPLOADS_DIRNAME
    if legacy.is_dir() and not target.exists():
        legacy.rename(target)
    return target


class Readiness:
    """Whether the index is built and the models are warm; what to show while they are not."""

    def __init__(self, ready: bool = False):
        self.event = threading.Event()
        self.message = "Starting…"
        self.error: str | None = None
        if ready:
            self.set_ready()

    @property
    def ready(self) -> bool:
        return self.event.is_set() and self.error is None

    def set_ready(self) -> None:
        self.message = "ready"
        self.event.set()

    def fail(self, message: str) -> None:
        self.error = message
        self.event.set()

    def wait(self) -> None:
        """Block until ready; raise the startup error as a gr.Error."""
        if not self.event.wait(WAIT_READY_SECONDS):
            raise gr.Error("The index is still being built; try again in a minute.", print_exception=False)
        if self.error:
            raise gr.Error(self.error, print_exception=False)


def _user_error(e: BaseException) -> gr.Error:
    """A gr.Error with the RagError's message, or a short generic one (the traceback is logged)."""
    if isinstance(e, gr.Error):
        return e
    if isinstance(e, RagError):
        log.info("refused: %s", e)
        return gr.Error(str(e), print_exception=False)
    log.error("unexpected error in the UI", exc_info=e)
    return gr.Error(f"Something went wrong ({type(e).__name__}); the details are in the server log.",
                    print_exception=False)


# ---------------------------------------------------------------- the app
def build_app(
    pipeline: RagPipeline,
    corpus_dir: Path | None = None,
    *,
    status: Readiness | None = None,
    examples: Sequence[str] = EXAMPLES,
) -> gr.Blocks:
    """The Gradio app over ``pipeline``. ``corpus_dir`` is the folder uploads are copied into
    before indexing (default: ``settings.uploads_dir_for(index_dir)``). ``status`` tells the handlers to wait
    while ``launch`` builds the index; without it the pipeline is taken as ready (it loads
    lazily on the first question)."""
    uploads_dir = Path(corpus_dir) if corpus_dir else default_uploads_dir(pipeline)
    status = status or Readiness(ready=True)
    modes = answer_modes()

    def articles():
        return pipeline.index.articles

    def doc_table() -> tuple[list[list[Any]], str]:
        idx = pipeline.index
        rows = F.document_rows(idx.articles, idx.chunks_by_doc)
        n_chunks = sum(len(v) for v in idx.chunks_by_doc.values())
        return rows, f"{len(rows)} articles · {n_chunks} chunks indexed"

    def status_line() -> str:
        if status.error:
            return f"**Error:** {F.esc(status.error)}"
        if not status.ready:
            return f"**Preparing** — {F.esc(status.message)}"
        idx = pipeline.index
        n_chunks = sum(len(v) for v in idx.chunks_by_doc.values())
        return (
            f"Index ready: {len(idx.articles)} articles, {n_chunks} chunks · "
            "answers quote the articles and cite them, or say the articles don't say."
        )

    def source_names() -> list[str]:
        return sorted(a.source for a in articles().values())

    def messages(turns: list[dict]) -> list[dict]:
        out = []
        for t in turns:
            out.append({"role": "user", "content": F.format_question(t["question"])})
            out.append({"role": "assistant", "content": t["html"]})
        return out

    # ---------- handlers ----------
    def respond(question, turns, since, until, sources, k, mode):
        q = (question or "").strip()
        turns = list(turns or [])
        if not q:
            raise gr.Error("Type a question first.", print_exception=False)
        history = [t["question"] for t in turns]
        pending = {"question": q, "answer": None, "html": F.format_pending("Searching the articles…")}
        keep = gr.update()
        yield "", messages(turns + [pending]), turns, keep, keep, keep
        try:
            if not status.ready:
                pending["html"] = F.format_pending("Preparing the index — the first answer waits for it…")
                yield "", messages(turns + [pending]), turns, keep, keep, keep
                status.wait()
            if mode == "llm":
                pending["html"] = F.format_pending(
                    "Retrieving passages, then the local language model writes the answer — on a CPU this can "
                    "take a few minutes. Its draft streams in here and is checked against the articles.")
                yield "", messages(turns + [pending]), turns, keep, keep, keep
            stream = pipeline.stream(Request(
                q, tuple(history), int(k or C.DEFAULT_K), (since or "").strip() or None, (until or "").strip() or None,
                tuple(sources or ()), mode or "extractive",
            ))
            final: Answer | None = None
            text = ""
            last = 0.0
            for part in stream:
                if isinstance(part, Answer):
                    final = part
                    break
                text += part
                if time.monotonic() - last > 0.05:
                    last = time.monotonic()
                    pending["html"] = F.format_streaming(text)
                    yield "", messages(turns + [pending]), turns, keep, keep, keep
            assert final is not None
            if not text and not final.abstained:
                # extractive answers arrive whole: stream them in word by word
                words = final.answer.split(" ")
                step = max(1, len(words) // 24)
                for i in range(step, len(words), step):
                    pending["html"] = F.format_streaming(" ".join(words[:i]))
                    yield "", messages(turns + [pending]), turns, keep, keep, keep
                    time.sleep(0.02)
            arts = articles()
            done = {"question": q, "answer": final, "html": F.format_answer(final, arts)}
        except Exception as e:  # the conversation goes back to before the question
            yield q, messages(turns), turns, keep, keep, keep
            raise _user_error(e) from None
        turns = turns + [done]
        yield (
            "", messages(turns), turns, len(turns) - 1,
            picker_update(final, arts), F.article_placeholder(picker_hint(final)),
        )

    def picker_hint(ans: Answer | None) -> str:
        if ans is None:
            return "Sources of the selected answer appear here."
        if ans.abstained:
            return "Not in the articles. Pick a lead above to read the closest passages in context — they are related, not support."
        return "Pick a source above to read the whole article with the cited passage highlighted."

    def picker_update(ans: Answer | None, arts=None) -> dict:
        choices = F.source_choices(ans, arts if arts is not None else (articles() if ans else {}))
        if ans is None:
            label = "Sources"
        elif ans.abstained:
            label = f"Leads for: {ans.question}"
        else:
            label = f"Sources for: {ans.question}"
        return gr.update(choices=choices, value=None, label=label)

    def open_source(value, turns, focus):
        turns = turns or []
        if not value or focus is None or not (0 <= focus < len(turns)):
            return gr.update()
        ans = turns[focus]["answer"]
        target = F.resolve_choice(ans, value)
        if target is None:
            return F.article_placeholder("That source is not part of the selected answer.")
        kind, doc_id, start, end, label = target
        art = articles().get(doc_id)
        if art is None:
            return F.article_placeholder("That article is no longer in the index.")
        return F.format_article(art, start, end, label=label, kind=kind, inner=ans.short_answer)

    def focus_answer(turns, evt: gr.SelectData):
        turns = turns or []
        i = evt.index if isinstance(evt.index, int) else (evt.index[0] if evt.index else 0)
        t = i // 2
        if not (0 <= t < len(turns)) or turns[t]["answer"] is None:
            return gr.update(), gr.update(), gr.update()
        ans = turns[t]["answer"]
        return t, picker_update(ans), F.article_placeholder(picker_hint(ans))

    def clear():
        return [], [], None, picker_update(None), F.article_placeholder(picker_hint(None)), ""

    def refresh():
        rows, summary = doc_table() if status.ready else ([], "")
        names = source_names() if status.ready else []
        return status_line(), rows, summary, gr.update(choices=names)

    def tick():
        line = status_line()
        if status.ready or status.error:
            rows, summary = doc_table() if status.ready else ([], "")
            names = source_names() if status.ready else []
            return line, gr.Timer(active=False), rows, summary, gr.update(choices=names)
        return line, gr.Timer(active=True), gr.update(), gr.update(), gr.update()

    def on_upload(files, selected_sources, progress=gr.Progress()):
        try:
            status.wait()
            html, refused = index_uploads(pipeline, uploads_dir, files or [], progress)
        except Exception as e:
            raise _user_error(e) from None
        rows, summary = doc_table()
        names = source_names()
        kept = [s for s in (selected_sources or []) if s in names]
        if refused:
            gr.Warning("Nothing was indexed; see the message under the upload box.")
        return html, None, rows, summary, gr.update(choices=names, value=kept), status_line()

    def _answer(question, since, until, sources, k, mode, history) -> Answer:
        try:
            status.wait()
            return pipeline.ask(Request(
                question, tuple(history or ()), int(k), since or None, until or None, tuple(sources or ()), mode,
            ))
        except Exception as e:
            raise _user_error(e) from None

    def chat(
        question: str, since: str = "", until: str = "", sources: list[str] | None = None, k: int = C.DEFAULT_K,
        mode: str = "extractive", history: list[str] | None = None,
    ) -> str:
        """Answer a question from the articles. Returns the answer text with [n] citation markers,
        or "The articles don't say." when they don't."""
        return _answer(question, since, until, sources, k, mode, history).answer

    def ask(
        question: str, since: str = "", until: str = "", sources: list[str] | None = None, k: int = C.DEFAULT_K,
        mode: str = "extractive", history: list[str] | None = None,
    ) -> dict:
        """Like /chat, but returns the whole answer as JSON: citations with offsets, passages,
        abstention note, latency."""
        return _answer(question, since, until, sources, k, mode, history).to_json()

    # ---------- layout ----------
    with gr.Blocks(title="NewsRAG — cited answers from news articles", fill_width=True) as demo:
        turns = gr.State([])
        focus = gr.State(None)
        with gr.Sidebar(label="Search options", open=True, width=300):
            gr.Markdown("### Search options")
            since = gr.Textbox(label="Since", placeholder="YYYY-MM-DD", max_lines=1, elem_id="nr-since")
            until = gr.Textbox(label="Until", placeholder="YYYY-MM-DD", max_lines=1, elem_id="nr-until")
            sources = gr.Dropdown(
                label="Only these articles", choices=[], value=[], multiselect=True, elem_id="nr-sources",
                info="Empty: search every indexed article.",
            )
            k = gr.Slider(1, 10, value=C.DEFAULT_K, step=1, label="Passages to retrieve (k)", elem_id="nr-k")
            mode = gr.Radio(
                modes, value="extractive", label="Answer mode", elem_id="nr-mode",
                info=(
                    "extractive: quotes the article sentence. llm: a local language model writes the answer (minutes on a CPU); it is checked against the quotes."
                    if len(modes) > 1 else
                    "Quotes the article sentence that answers. (The llm mode needs llama-cpp-python or NEWSRAG_LLM_BASE_URL.)"
                ),
            )
        gr.HTML(
            '<div class="nr-header"><h1>NewsRAG</h1><p>Questions answered from the indexed news articles '
            "only — every answer quotes and cites its source sentence; when the articles don't say, it says so.</p></div>",
            js_on_load=None,
        )
        status_md = gr.Markdown(status_line() if status.ready else f"**Preparing** — {F.esc(status.message)}",
                                elem_id="nr-status")
        with gr.Tabs():
            with gr.Tab("Ask", id="ask"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=3, min_width=420):
                        chatbot = gr.Chatbot(
                            value=[], label="Conversation", show_label=False, elem_id="nr-chat", height=560,
                            layout="panel",
                            latex_delimiters=[], buttons=[], feedback_options=None, sanitize_html=True,
                            allow_tags=False, render_markdown=True,
                            placeholder=(
                                '<div class="nr-placeholder"><b>Ask about the indexed news articles.</b><br>'
                                "Each answer quotes the sentence it rests on and lists its sources underneath; "
                                "pick a source on the right to read it in context.</div>"
                            ),
                        )
                        with gr.Row():
                            question = gr.Textbox(
                                show_label=False, placeholder="Ask a question about the articles…", scale=6,
                                max_lines=4, elem_id="nr-question", autofocus=True,
                            )
                            ask_btn = gr.Button("Ask", variant="primary", scale=1, min_width=80, elem_id="nr-ask")
                            clear_btn = gr.Button("Clear", variant="secondary", scale=1, min_width=80, elem_id="nr-clear")
                        gr.Examples(examples=[[e] for e in examples], inputs=[question], label="Example questions")
                    with gr.Column(scale=2, min_width=340):
                        picker = gr.Radio(choices=[], value=None, label="Sources", elem_id="nr-picker")
                        article = gr.HTML(
                            F.article_placeholder("Sources of the selected answer appear here."),
                            js_on_load=ARTICLE_JS, elem_id="nr-article", padding=False,
                        )
            with gr.Tab("Documents", id="docs"):
                docs_summary = gr.Markdown("", elem_id="nr-docs-summary")
                docs = gr.Dataframe(
                    value=[], headers=F.DOC_HEADERS, datatype=["str", "str", "str", "number"], interactive=False,
                    wrap=True, elem_id="nr-docs", latex_delimiters=[], column_widths=["52%", "14%", "24%", "10%"],
                    max_height=420,
                )
                upload = gr.File(
                    label="Add articles (.txt or .md, UTF-8, up to 5 MB each)", file_count="multiple",
                    file_types=list(SUFFIXES), type="filepath", elem_id="nr-upload", height=120,
                )
                upload_status = gr.Markdown(
                    "Uploaded files are copied into the app's uploads folder and indexed incrementally.",
                    elem_id="nr-upload-status",
                )
        timer = gr.Timer(1.0, active=not status.ready)

        # ---------- events ----------
        ask_inputs = [question, turns, since, until, sources, k, mode]
        ask_outputs = [question, chatbot, turns, focus, picker, article]
        asking = [
            question.submit(respond, ask_inputs, ask_outputs, api_visibility="private", show_progress="hidden"),
            ask_btn.click(respond, ask_inputs, ask_outputs, api_visibility="private", show_progress="hidden"),
        ]
        light = {"api_visibility": "private", "show_progress": "hidden", "concurrency_limit": None}  # never queued behind answers
        picker.change(open_source, [picker, turns, focus], [article], **light)
        chatbot.select(focus_answer, [turns], [focus, picker, article], **light)
        clear_outputs = [chatbot, turns, focus, picker, article, question]
        clear_btn.click(clear, None, clear_outputs, cancels=asking, **light)
        chatbot.clear(clear, None, clear_outputs, cancels=asking, **light)
        upload.upload(
            on_upload, [upload, sources], [upload_status, upload, docs, docs_summary, sources, status_md],
            api_visibility="private", concurrency_limit=1, concurrency_id="index-writes",
        )
        timer.tick(tick, None, [status_md, timer, docs, docs_summary, sources], **light)
        demo.load(refresh, None, [status_md, docs, docs_summary, sources], **light)
        gr.api(chat, api_name="chat")
        gr.api(ask, api_name="ask")
    demo.newsrag_status = status  # type: ignore[attr-defined]
    return demo


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
    reserved = {a.source for a in pipeline.index.articles.values()} - _names_in(uploads_dir)
    problems = []
    seen: set[str] = set()
    for p in paths:
        problem = check_upload(p, reserved)
        if problem is None and p.name in seen:
            problem = "given twice"
        seen.add(p.name)
        if problem:
            problems.append((p.name, problem))
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


def _names_in(folder: Path) -> set[str]:
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
    if b"\x00" in raw:
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


# ---------------------------------------------------------------- starting
def launch_options() -> dict[str, Any]:
    """Keyword arguments for ``Blocks.launch`` that belong to the app's look (Gradio 6 takes
    theme and CSS at launch)."""
    theme = gr.themes.Soft(
        primary_hue="slate", secondary_hue="amber", neutral_hue="slate",
        font=["ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "Roboto", "sans-serif"],
        font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "monospace"],
    )
    return {"theme": theme, "css": CSS}


def serve(
    demo: gr.Blocks, host: str = "127.0.0.1", port: int = 7860, block: bool = True, concurrency: int = 4,
    quiet: bool = False,
) -> gr.Blocks:
    """Queue and start ``demo`` on host:port. With ``block`` False the server runs in a thread
    and this returns at once (``demo.close()`` stops it)."""
    demo.queue(default_concurrency_limit=concurrency, max_size=256)
    demo.launch(
        server_name=host, server_port=port, prevent_thread_lock=True, share=False, inbrowser=False,
        show_error=False, quiet=quiet, ssr_mode=False, max_file_size=50 * 1024 * 1024, mcp_server=False,
        **launch_options(),
    )
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: listening on {host}: anyone who can reach this port can use the app (no login)",
              file=sys.stderr)
    if block:
        demo.block_thread()
    return demo


def prepare(pipeline: RagPipeline, paths: Sequence[Path], status: Readiness | None = None,
            uploads: Path | None = None) -> None:
    """Build the index from ``paths`` when it is missing; an existing index is served as it is,
    with only the ``uploads`` folder's files added (never pruned: articles indexed another way
    stay). Progress goes to the console and ``status``; then the models are warmed up."""
    from tqdm import tqdm

    status = status or Readiness()
    status.message = "Checking the index…"
    if pipeline.store.exists():
        paths = [uploads] if uploads is not None and _names_in(uploads) else []
    if paths and pipeline.is_stale(paths):
        where = ", ".join(str(p) for p in paths)
        print(f"Indexing {where} into {pipeline.index_dir} …", file=sys.stderr, flush=True)
        status.message = "Building the index: reading the articles and loading the embedding model…"
        bar: list[Any] = []

        def progress(done: int, total: int) -> None:
            if not bar:
                bar.append(tqdm(total=total, unit="chunk", desc="Embedding", file=sys.stderr))
            bar[0].update(done - bar[0].n)
            pct = int(100 * done / total) if total else 100
            status.message = f"Building the index: {done}/{total} chunks embedded ({pct}%)"

        try:
            report = pipeline.index_paths(paths, prune=False, progress=progress)
        finally:
            if bar:
                bar[0].close()
        if report is not None:
            print(f"Index: {report.summary()}", file=sys.stderr, flush=True)
            for path, reason in report.unreadable:
                print(f"  skipped {path}: {reason}", file=sys.stderr)
    status.message = "Loading the models…"
    pipeline.warm_up()
    status.set_ready()


def launch(
    index_dir: Path | str | None = None,
    host: str = "127.0.0.1",
    port: int = 7860,
    articles: Sequence[Path | str] | Path | str | None = None,
    *,
    block: bool = True,
    uploads_dir: Path | str | None = None,
    concurrency: int = 4,
    pipeline: RagPipeline | None = None,
    quiet: bool = False,
) -> gr.Blocks:
    """Start the web UI on host:port (127.0.0.1 by default). The server starts first; the index
    at ``index_dir`` is then built or updated from ``articles`` (default: the bundled articles)
    plus earlier uploads, with progress on the console and on the page, and the models are
    warmed up. Blocks until interrupted unless ``block`` is False (then returns the running
    app; ``app.close()`` stops it). Raises RagError when the index cannot be built."""
    pipeline = pipeline or RagPipeline(index_dir)
    uploads = Path(uploads_dir) if uploads_dir else default_uploads_dir(pipeline)
    if articles is None:
        paths = [C.BUNDLED_ARTICLES]
    elif isinstance(articles, (str, Path)):
        paths = [Path(articles)]
    else:
        paths = [Path(a) for a in articles]
    if _names_in(uploads):
        paths.append(uploads)
    status = Readiness()
    demo = build_app(pipeline, uploads, status=status)
    serve(demo, host, port, block=False, concurrency=concurrency, quiet=quiet)
    try:
        prepare(pipeline, paths, status, uploads)
    except BaseException as e:
        status.fail(str(e) if isinstance(e, RagError) else f"the index could not be prepared ({type(e).__name__})")
        demo.close()
        raise
    if block:
        demo.block_thread()
    return demo


def _free_port() -> int:  # for tests and ad-hoc runs
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


if __name__ == "__main__":  # python -m ui.app [--host H] [--port P] [--index-dir D]
    import argparse

    ap = argparse.ArgumentParser(description="NewsRAG web UI")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=7860)
    ap.add_argument("--index-dir", default=None)
    a = ap.parse_args()
    try:
        launch(index_dir=a.index_dir, host=a.host, port=a.port)
    except RagError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
