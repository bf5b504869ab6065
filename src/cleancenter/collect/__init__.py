"""Collect: turn files, archives and honeypot logs into samples and events."""
