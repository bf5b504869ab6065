"""Definitions: what the center knows, packed and signed for the cleaner."""
