"""The cleaner: runs on the end user's machine, finds the bots the center knows, and
removes them reversibly.

It is shipped on its own, so it imports nothing from the center's ``store``, ``notify``
or ``portal`` packages (a test checks this) and needs only a few dependencies
(cryptography, yara-x, typer, rich; regipy and defusedxml for Windows hives and tasks;
psutil only on Windows). Every check reads the machine through a small *view* with
several backends (live, offline image, recorded snapshot), so Windows checks run here on
real hives and recorded listings.
"""

from cleancenter import __version__ as CLEANER_VERSION

__all__ = ["CLEANER_VERSION"]
