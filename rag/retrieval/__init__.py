"""Retrieval: first-stage search and fusion, then sentence scoring."""
