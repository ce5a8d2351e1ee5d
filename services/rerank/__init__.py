"""Reranking: reorder the best retrieved passages with a cross-encoder, inside a time budget."""
