"""The page: a Gradio chat over the indexed news articles, with cited answers, an article
viewer that highlights the cited span, filters, a documents panel with uploads, and the
``/chat`` and ``/ask`` API endpoints. This module lays the page out and wires its events to
``ui.handlers``; ``ui.server.launch`` starts it.

Importing this module loads Gradio but no model: the pipeline loads its models on first use,
and ``launch`` warms it up after the server is listening (the page shows the progress).
"""

from __future__ import annotations

import json
import os

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # before gradio is imported, here and anywhere
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from collections.abc import Sequence  # noqa: E402
from functools import lru_cache  # noqa: E402
from pathlib import Path  # noqa: E402

import gradio as gr  # noqa: E402

from rag import settings as C  # noqa: E402
from rag.pipeline import RagPipeline  # noqa: E402

from . import format as F  # noqa: E402
from .handlers import Handlers, answer_modes  # noqa: E402
from .server import ASSETS, Readiness  # noqa: E402
from .uploads import default_uploads_dir  # noqa: E402

EXAMPLES = [
    "How many projectiles did Gazan fighters launch during the 2023 conflict?",
    "Which U.S. Secretary of Defense reaffirmed an “ironclad” commitment to Israel in May 2021?",
    "On what date did Operation Cast Lead begin?",
    "Why did Israel cut off ceasefire talks with Islamic Jihad in May 2023?",
    "How many rockets did Hezbollah fire from Lebanon?",
]
# the files the page serves (exports, uploads before they are copied to the uploads folder) are
# removed from Gradio's cache hourly once a day old, and all of them when the server stops
CACHE_CLEANUP = (3600, 86400)  # (every, older than), seconds
HEADER = (
    '<div class="nr-header"><h1>NewsRAG</h1><p>Questions answered from the indexed news articles '
    "only — every answer quotes and cites its source sentence; when the articles don't say, it says so.</p></div>"
)
CHAT_PLACEHOLDER = (
    '<div class="nr-placeholder"><b>Ask about the indexed news articles.</b><br>'
    "Each answer quotes the sentence it rests on and lists its sources underneath; "
    "click a citation &#91;n&#93; to read its source with the cited passage highlighted.</div>"
)


@lru_cache(maxsize=None)
def asset(name: str) -> str:
    """The text of ``ui/assets/<name>``, read once."""
    return (ASSETS / name).read_text(encoding="utf-8")


def _options(modes: list[str]) -> dict:
    """The search options (dates, articles, k, answer mode), behind one "Search options" button."""
    with gr.Accordion("Search options", open=False, elem_id="nr-options"):
        with gr.Row(elem_id="nr-dates"):  # only articles dated within these days (either may be empty)
            since = gr.DateTime(label="Since", include_time=False, type="string", elem_id="nr-since", min_width=200)
            until = gr.DateTime(label="Until", include_time=False, type="string", elem_id="nr-until", min_width=200)
        sources = gr.Dropdown(
            label="Only these articles", choices=[], value=[], multiselect=True, elem_id="nr-sources",
            info="Empty: search every indexed article.",
        )
        k = gr.Slider(1, 10, value=C.DEFAULT_K, step=1, label="Passages to retrieve (k)", elem_id="nr-k")
        if len(modes) > 1:
            mode = gr.Radio(
                modes, value="extractive", label="Answer mode", elem_id="nr-mode",
                info="extractive: quotes the article sentence. llm: a local language model writes the answer "
                     "(minutes on a CPU); it is checked against the quotes.",
            )
        else:  # one mode: nothing to choose
            mode = gr.State("extractive")
    return {"since": since, "until": until, "sources": sources, "k": k, "mode": mode}


def _chat_column(examples: Sequence[str], modes: list[str]) -> dict:
    """The conversation first, then the question box, its actions, the options and examples."""
    c: dict = {}
    c["chatbot"] = gr.Chatbot(
        value=[], label="Conversation", show_label=False, elem_id="nr-chat", height=560, layout="panel",
        latex_delimiters=[], buttons=[], feedback_options=None, sanitize_html=True,
        allow_tags=False, render_markdown=True, placeholder=CHAT_PLACEHOLDER, autoscroll=True,
    )
    with gr.Row(elem_id="nr-ask-row"):
        c["question"] = gr.Textbox(
            show_label=False, placeholder="Ask about the articles…", scale=6, lines=1,
            max_lines=4, elem_id="nr-question", autofocus=True, submit_btn=False,
        )
        c["ask_btn"] = gr.Button("Ask", variant="primary", scale=1, min_width=70, elem_id="nr-ask")
    with gr.Row(elem_id="nr-actions"):
        c["copy_btn"] = gr.Button("Copy answer with citations", size="sm", elem_id="nr-copy", min_width=120)
        c["export_btn"] = gr.DownloadButton("Export conversation (.md)", value=None, size="sm", interactive=False,
                                            elem_id="nr-export", min_width=120)
        c["clear_btn"] = gr.Button("Clear", variant="secondary", size="sm", elem_id="nr-clear", min_width=70)
    c["copy_box"] = gr.Textbox(visible="hidden", elem_id="nr-copy-text")
    c.update(_options(modes))
    gr.Markdown("Example questions (click one to ask it):", elem_classes=["nr-examples-h"])
    with gr.Column(elem_id="nr-examples"):
        c["example_btns"] = [gr.Button(e, size="sm", elem_classes=["nr-example"]) for e in examples]
    return c


def _ask_tab(examples: Sequence[str], modes: list[str]) -> dict:
    """The chat column and the source viewer (beside it on a wide screen, below it on a phone)."""
    with gr.Row(equal_height=False):
        with gr.Column(scale=3, min_width=360):
            c = _chat_column(examples, modes)
        with gr.Column(scale=2, min_width=320, elem_id="nr-viewer"):
            with gr.Row(elem_id="nr-viewer-head"):
                c["picker"] = gr.Radio(choices=[], value=None, label="Sources", elem_id="nr-picker", scale=5)
                c["close_btn"] = gr.Button("Close ✕", size="sm", elem_id="nr-close-source", scale=1, min_width=70)
            c["article"] = gr.HTML(
                F.article_placeholder("Sources of the selected answer appear here."),
                js_on_load=asset("article.js"), elem_id="nr-article", padding=False,
            )
    # a click on a citation [n] in the chat writes "turn-n" here and presses the hidden button
    c["cite_target"] = gr.Textbox(visible="hidden", elem_id="nr-cite-target")
    c["cite_open"] = gr.Button("Open citation", visible="hidden", elem_id="nr-cite-open")
    return c


def _docs_tab() -> dict:
    """The indexed articles and the upload box."""
    docs_summary = gr.Markdown("", elem_id="nr-docs-summary")
    docs = gr.Dataframe(
        value=[], headers=F.DOC_HEADERS, datatype=["str", "str", "str", "number"], interactive=False,
        wrap=True, elem_id="nr-docs", latex_delimiters=[], column_widths=["52%", "14%", "24%", "10%"],
        max_height=420,
    )
    upload = gr.File(
        label="Add articles (.txt or .md, UTF-8, up to 5 MB each)", file_count="multiple",
        type="filepath", elem_id="nr-upload", height=120,
    )
    upload_status = gr.Markdown(
        "Uploaded files are copied into the app's uploads folder and indexed incrementally.",
        elem_id="nr-upload-status",
    )
    return {"docs_summary": docs_summary, "docs": docs, "upload": upload, "upload_status": upload_status}


def _wire_chat(h: Handlers, c: dict) -> None:
    """Asking (Enter, the Ask button, an example), citations, the viewer, copy and export."""
    ask_inputs = [c["question"], c["turns"], c["since"], c["until"], c["sources"], c["k"], c["mode"]]
    ask_outputs = [c["question"], c["chatbot"], c["turns"], c["focus"], c["picker"], c["article"]]
    private = {"api_visibility": "private", "show_progress": "hidden"}
    light = {**private, "concurrency_limit": None}  # never queued behind answers
    # An example fills the box in the browser (before the event below reads it), then asks it.
    for btn in c["example_btns"]:
        btn.click(None, None, c["question"], js=f"() => {json.dumps(btn.value)}", **light)
    # Enter, the Ask button and the examples are one event: a question sent while an answer is
    # still arriving waits for it and is then asked with the box's contents at that moment (the
    # default would drop it, and a second event would answer beside it and overwrite its turn).
    triggers = [c["question"].submit, c["ask_btn"].click, *(b.click for b in c["example_btns"])]
    asking = gr.on(triggers, h.respond, ask_inputs, ask_outputs, trigger_mode="always_last", **private)
    asking.then(h.export_file, [c["turns"]], [c["export_btn"]], **light)
    c["picker"].input(h.open_source, [c["picker"], c["turns"], c["focus"]], [c["article"]], **light)
    c["cite_open"].click(h.open_citation, [c["cite_target"], c["turns"]],
                         [c["focus"], c["picker"], c["article"]], **light)
    c["close_btn"].click(h.close_source, None, [c["picker"], c["article"]], **light)
    c["chatbot"].select(h.focus_answer, [c["turns"]], [c["focus"], c["picker"], c["article"]], **light)
    clear_outputs = [c["chatbot"], c["turns"], c["focus"], c["picker"], c["article"], c["question"]]
    for event in (c["clear_btn"].click, c["chatbot"].clear):
        event(h.clear, None, clear_outputs, cancels=[asking], **light).then(
            h.export_file, [c["turns"]], [c["export_btn"]], **light)
    c["copy_btn"].click(h.copy_text, [c["turns"], c["focus"]], [c["copy_box"]], **light).then(
        None, [c["copy_box"]], None, js=asset("copy.js"))


def _wire(h: Handlers, c: dict) -> None:
    """Connect the components ``c`` to the handlers ``h``."""
    _wire_chat(h, c)
    light = {"api_visibility": "private", "show_progress": "hidden", "concurrency_limit": None}
    c["upload"].upload(
        h.on_upload, [c["upload"], c["sources"]],
        [c["upload_status"], c["upload"], c["docs"], c["docs_summary"], c["sources"], c["status_md"]],
        api_visibility="private", concurrency_limit=1, concurrency_id="index-writes",
    )
    refreshed = [c["docs"], c["docs_summary"], c["sources"]]
    c["timer"].tick(h.tick, None, [c["status_md"], c["timer"], *refreshed], **light)
    c["demo"].load(h.refresh, None, [c["status_md"], *refreshed], **light)
    gr.api(h.chat, api_name="chat")
    gr.api(h.ask, api_name="ask")


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
    h = Handlers(pipeline, uploads_dir, status)
    with gr.Blocks(title="NewsRAG — cited answers from news articles", fill_width=True,
                   delete_cache=CACHE_CLEANUP) as demo:
        c: dict = {"demo": demo, "turns": gr.State([]), "focus": gr.State(None)}
        gr.HTML(HEADER, js_on_load=None)
        c["status_md"] = gr.Markdown(
            h.status_line() if status.ready else f"**Preparing** — {F.esc(status.message)}", elem_id="nr-status")
        with gr.Tabs():
            with gr.Tab("Ask", id="ask"):
                c.update(_ask_tab(examples, answer_modes()))
            with gr.Tab("Documents", id="docs"):
                c.update(_docs_tab())
        c["timer"] = gr.Timer(1.0, active=not status.ready)
        _wire(h, c)
    demo.newsrag_status = status  # type: ignore[attr-defined]
    return demo
