"""Uploaded files: receiving them, telling their formats, keeping their bytes."""
