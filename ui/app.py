"""The page: a Gradio chat over the indexed news articles, with cited answers, an article
viewer that highlights the cited span, filters, a documents panel with uploads, and the
``/chat`` and ``/ask`` API endpoints. This module lays the page out and wires its events to
``ui.handlers``; ``ui.server.launch`` starts it.

Importing this module loads Gradio but no model: the pipeline loads its models on first use,
and ``launch`` warms it up after the server is listening (the page shows the progress).
"""

from __future__ import annotations

import os

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # before gradio is imported, here and anywhere
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from collections.abc import Sequence  # noqa: E402
from functools import lru_cache  # noqa: E402
from pathlib import Path  # noqa: E402

import gradio as gr  # noqa: E402

from index.ingest import SUFFIXES  # noqa: E402
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
HEADER = (
    '<div class="nr-header"><h1>NewsRAG</h1><p>Questions answered from the indexed news articles '
    "only — every answer quotes and cites its source sentence; when the articles don't say, it says so.</p></div>"
)
CHAT_PLACEHOLDER = (
    '<div class="nr-placeholder"><b>Ask about the indexed news articles.</b><br>'
    "Each answer quotes the sentence it rests on and lists its sources underneath; "
    "pick a source on the right to read it in context.</div>"
)


@lru_cache(maxsize=None)
def asset(name: str) -> str:
    """The text of ``ui/assets/<name>``, read once."""
    return (ASSETS / name).read_text(encoding="utf-8")


def _options(modes: list[str]) -> dict:
    """The search options (filters, k, answer mode) in the sidebar."""
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
    return {"since": since, "until": until, "sources": sources, "k": k, "mode": mode}


def _ask_tab(examples: Sequence[str]) -> dict:
    """The conversation, the question box and the source viewer."""
    with gr.Row(equal_height=False):
        with gr.Column(scale=3, min_width=420):
            chatbot = gr.Chatbot(
                value=[], label="Conversation", show_label=False, elem_id="nr-chat", height=560, layout="panel",
                latex_delimiters=[], buttons=[], feedback_options=None, sanitize_html=True,
                allow_tags=False, render_markdown=True, placeholder=CHAT_PLACEHOLDER,
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
                js_on_load=asset("article.js"), elem_id="nr-article", padding=False,
            )
    return {"chatbot": chatbot, "question": question, "ask_btn": ask_btn, "clear_btn": clear_btn,
            "picker": picker, "article": article}


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
        file_types=list(SUFFIXES), type="filepath", elem_id="nr-upload", height=120,
    )
    upload_status = gr.Markdown(
        "Uploaded files are copied into the app's uploads folder and indexed incrementally.",
        elem_id="nr-upload-status",
    )
    return {"docs_summary": docs_summary, "docs": docs, "upload": upload, "upload_status": upload_status}


def _wire(h: Handlers, c: dict) -> None:
    """Connect the components ``c`` to the handlers ``h``."""
    ask_inputs = [c["question"], c["turns"], c["since"], c["until"], c["sources"], c["k"], c["mode"]]
    ask_outputs = [c["question"], c["chatbot"], c["turns"], c["focus"], c["picker"], c["article"]]
    asking = [
        c["question"].submit(h.respond, ask_inputs, ask_outputs, api_visibility="private", show_progress="hidden"),
        c["ask_btn"].click(h.respond, ask_inputs, ask_outputs, api_visibility="private", show_progress="hidden"),
    ]
    light = {"api_visibility": "private", "show_progress": "hidden", "concurrency_limit": None}  # never queued behind answers
    c["picker"].change(h.open_source, [c["picker"], c["turns"], c["focus"]], [c["article"]], **light)
    c["chatbot"].select(h.focus_answer, [c["turns"]], [c["focus"], c["picker"], c["article"]], **light)
    clear_outputs = [c["chatbot"], c["turns"], c["focus"], c["picker"], c["article"], c["question"]]
    c["clear_btn"].click(h.clear, None, clear_outputs, cancels=asking, **light)
    c["chatbot"].clear(h.clear, None, clear_outputs, cancels=asking, **light)
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
    with gr.Blocks(title="NewsRAG — cited answers from news articles", fill_width=True) as demo:
        c: dict = {"demo": demo, "turns": gr.State([]), "focus": gr.State(None)}
        c.update(_options(answer_modes()))
        gr.HTML(HEADER, js_on_load=None)
        c["status_md"] = gr.Markdown(
            h.status_line() if status.ready else f"**Preparing** — {F.esc(status.message)}", elem_id="nr-status")
        with gr.Tabs():
            with gr.Tab("Ask", id="ask"):
                c.update(_ask_tab(examples))
            with gr.Tab("Documents", id="docs"):
                c.update(_docs_tab())
        c["timer"] = gr.Timer(1.0, active=not status.ready)
        _wire(h, c)
    demo.newsrag_status = status  # type: ignore[attr-defined]
    return demo
