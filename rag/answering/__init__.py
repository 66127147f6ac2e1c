"""Answering: the decision to answer or abstain, the extractive answer, and the language-model mode."""
