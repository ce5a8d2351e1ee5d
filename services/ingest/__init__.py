"""Ingestion: accept documents, record them, hand their ids to the workers."""
