"""Strings from samples and logs are hostile: make them safe to print in a terminal.

Control characters (ESC, BEL, CR, ...) become visible escapes, so a file name cannot
move the cursor, retitle the window or hide the line it is on; Rich markup is escaped
so ``[red]`` in a bot's name stays text.
"""

from __future__ import annotations

from rich.markup import escape

_CONTROL = {c: f"\\x{c:02x}" for c in [*range(0x00, 0x20), 0x7F]}
_CONTROL.update({0x85: "\\x85", 0x2028: "\\u2028", 0x2029: "\\u2029"})
_CONTROL.update({c: f"\\x{c:02x}" for c in range(0x80, 0xA0)})
_CONTROL.update({c: f"\\u{c:04x}" for c in (0x200E, 0x200F, *range(0x202A, 0x202F),
                                             *range(0x2066, 0x206A))})


def printable(text: str | None) -> str:
    """``text`` with every control and bidi character shown as an escape."""
    if text is None:
        return ""
    return text.translate(_CONTROL)


def for_console(text: str | None) -> str:
    """`printable`, then escaped for Rich markup."""
    return escape(printable(text))


def display_path(path: str) -> str:
    """A file path as safe text: bytes that are not UTF-8 (kept by Python as surrogates)
    and control characters shown as ``\\xff`` escapes."""
    return printable(path.encode("utf-8", "surrogateescape").decode("utf-8",
                                                                     "backslashreplace"))
