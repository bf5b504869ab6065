"""Persistence checks: list what starts by itself (Linux files, Windows registry, tasks
and Startup folders) and rate each entry against the definitions.

``linux.linux_entries`` / ``windows.windows_entries`` read; ``judge.judge`` turns
entries into findings. Nothing listed is ever run. (``judge`` stays the submodule's
name here: the scan imports the modules ``judge, linux, paths, windows``.)
"""

from cleancenter.cleaner.persistence import entries, judge, linux, paths, registry, windows
from cleancenter.cleaner.persistence.entries import PersistenceEntry
from cleancenter.cleaner.persistence.linux import linux_entries
from cleancenter.cleaner.persistence.paths import root_reader
from cleancenter.cleaner.persistence.registry import (
    HiveRegistry,
    LiveRegistry,
    RegistryError,
    RegistryView,
    live_views,
)
from cleancenter.cleaner.persistence.windows import hive_view, offline_views, windows_entries

__all__ = [
    "HiveRegistry",
    "LiveRegistry",
    "PersistenceEntry",
    "RegistryError",
    "RegistryView",
    "entries",
    "hive_view",
    "judge",
    "linux",
    "linux_entries",
    "live_views",
    "offline_views",
    "paths",
    "registry",
    "root_reader",
    "windows",
    "windows_entries",
]
