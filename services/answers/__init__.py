"""Grounded answers: a chat model answers from the retrieved passages, every sentence checked
against the passages it cites."""
