"""Embedding spaces of a collection: what a change of its model or chunking builds, compares
and switches to."""
