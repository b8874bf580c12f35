"""Sending: the dispatcher, rate limits and the backends in senders/."""
