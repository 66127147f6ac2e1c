"""NewsRAG web UI (Gradio). ``ui.launch`` starts it (``ui.server``); ``ui.app`` lays the page
out and wires it to ``ui.handlers``; ``ui.uploads`` checks and indexes uploaded articles;
``ui.format`` holds the pure HTML formatting. Importing this package imports neither Gradio
nor a model."""

from __future__ import annotations

from typing import Any


def launch(*args: Any, **kwargs: Any) -> Any:
    """Start the web UI; see ``ui.server.launch`` for the arguments."""
    from .server import launch as _launch

    return _launch(*args, **kwargs)
