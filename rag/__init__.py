"""Grounded question answering over news articles: cited, extractive, offline."""

__version__ = "0.1.0"
