"""Evaluation harness for the question-answering pipeline (see ``eval/harness.py``), the
LangChain comparison baseline (``eval/baseline.py``), the gold set ``eval/data/qa.jsonl`` and the
quality bars ``eval/thresholds.json``."""
