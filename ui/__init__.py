"""NewsRAG web UI (Gradio). ``ui.app.launch`` starts it; ``ui.format`` holds the pure HTML
formatting it uses. Importing this package imports neither Gradio nor a model."""
