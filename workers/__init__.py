"""Celery workers: parse, chunk, embed and store documents."""
