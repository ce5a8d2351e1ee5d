"""Webhooks: receivers, the outbox of their events, signed delivery with retries."""
