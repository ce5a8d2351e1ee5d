"""Operators' own models, from the models folder: a manifest each, checked by sha256."""
