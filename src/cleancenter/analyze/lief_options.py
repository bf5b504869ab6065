"""LIEF parser options: switch off what we never read; an older LIEF lacks some names."""

from __future__ import annotations

from typing import TypeVar

T = TypeVar("T")


def without(config: T, *options: str) -> T:
    """``config`` with each named parse option that this LIEF has set to False."""
    for option in options:
        if hasattr(config, option):
            setattr(config, option, False)
    return config
