"""Starting the web UI: ``launch`` serves the app at once, then builds or updates the index and
warms the models up while the page shows the progress (``Readiness``).

    from ui import launch
    launch(index_dir=None, host="127.0.0.1", port=7860)      # what ``rag ui`` calls
"""

from __future__ import annotations

import os

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # before gradio is imported, here and anywhere
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import signal  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import gradio as gr  # noqa: E402

from rag import settings as C  # noqa: E402
from rag.errors import RagError  # noqa: E402
from rag.pipeline import RagPipeline  # noqa: E402

from .uploads import default_uploads_dir, names_in  # noqa: E402

WAIT_READY_SECONDS = 1800
ASSETS = Path(__file__).resolve().parent / "assets"


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


def launch_options() -> dict[str, Any]:
    """Keyword arguments for ``Blocks.launch`` that belong to the app's look (Gradio 6 takes
    theme, CSS and page script at launch); both are read from ``ui/assets`` once per launch."""
    theme = gr.themes.Soft(
        primary_hue="slate", secondary_hue="amber", neutral_hue="slate",
        font=["ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "Roboto", "sans-serif"],
        font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "monospace"],
    )
    return {"theme": theme, "css_paths": [ASSETS / "app.css"], "js": (ASSETS / "app.js").read_text(encoding="utf-8")}


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
        paths = [uploads] if uploads is not None and names_in(uploads) else []
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
    from .app import build_app

    pipeline = pipeline or RagPipeline(index_dir)
    uploads = Path(uploads_dir) if uploads_dir else default_uploads_dir(pipeline)
    if articles is None:
        paths = [C.BUNDLED_ARTICLES]
    elif isinstance(articles, (str, Path)):
        paths = [Path(articles)]
    else:
        paths = [Path(a) for a in articles]
    if names_in(uploads):
        paths.append(uploads)
    if block:
        stop_on_sigterm()
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


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def stop_on_sigterm() -> None:
    """Make SIGTERM (``kill``, a service manager, a container stopping) stop the server as Ctrl-C
    does, so the exit clean-up runs: the export folder and Gradio's cache are removed. Without
    it the process dies at once and leaves them behind. Only the main thread can set it."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (for tests and ad-hoc runs)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv: Sequence[str] | None = None) -> int:  # python -m ui.server [--host H] [--port P] [--index-dir D]
    import argparse

    ap = argparse.ArgumentParser(description="NewsRAG web UI")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=7860)
    ap.add_argument("--index-dir", default=None)
    a = ap.parse_args(argv)
    try:
        launch(index_dir=a.index_dir, host=a.host, port=a.port)
    except RagError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
