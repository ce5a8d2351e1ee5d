"""Groundwire: grounded retrieval over an organisation's own documents."""
