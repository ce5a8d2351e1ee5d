"""Live events: document status changes pushed to clients over server-sent events."""
