"""The web console: one static page and its script, served by the API from this package."""
