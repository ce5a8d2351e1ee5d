"""Retrieval: grounded passages with scores and citations, or an explicit 'nothing relevant'."""
