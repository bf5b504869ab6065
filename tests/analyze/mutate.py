"""Random damage to real files, shared by the PE and ELF robustness tests."""

from __future__ import annotations

import random


def damaged(rng: random.Random, base: bytes, header_span: int) -> bytes:
    """``base`` maybe truncated, with 1-12 words overwritten in its first ``header_span``
    bytes (where the parsers' offsets and sizes live)."""
    data = bytearray(base)
    if rng.random() < 0.4:
        del data[rng.randint(0, len(data)) :]
    for _ in range(rng.randint(1, 12)):
        if not data:
            break
        at = rng.randint(0, min(len(data), header_span) - 1)
        data[at : at + 4] = rng.choice([b"\xff\xff\xff\xff", b"\0\0\0\0", rng.randbytes(4)])
    return bytes(data)
