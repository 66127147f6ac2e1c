"""Evaluation of the question-answering chain, one job a module: the gold set (``gold.py``), the
metrics (``metrics.py``), the quality bars (``gate.py``, ``eval/thresholds.json``), a run
(``run.py``: ``evaluate`` is ``rag eval``), the report (``report.py``), the LangChain baseline
(``baseline.py``), the BBC corpus and its written QA split (``bbc.py``, ``split.py``), the
distractor corpus (``distractors.py``), and training the learned answerer (``train.py``,
``adapter.py``, ``calibration.py``). Data under ``eval/data/``."""
