"""The cleaner's process check: bots that run, hide, or dress up as system programs.

Processes are read through one view (`info.ProcessView`) with three backends: `procfs`
reads Linux ``/proc`` itself (it sees deleted executables, kernel-thread flags and can
probe for hidden pids), `psutil_view` serves Windows and the rest, and `snapshot` reads a
recorded JSON listing so the Windows rules are exercised on any machine. `check` turns what
a view shows into findings; `stop` ends one process without hitting a reused pid.

Nothing found here is ever executed: executables and memory are only read and hashed.
"""

from cleancenter.cleaner.processes.check import (
    KIND_ORDER,
    RULE_DELETED,
    RULE_HIDDEN,
    RULE_KERNEL_NAME,
    RULE_KINDS,
    RULE_LOCATION,
    RULE_LOOKALIKE,
    RULE_REPLACED,
    RULE_WRONG_FOLDER,
    RULE_WRONG_PARENT,
    check_processes,
    damerau_levenshtein,
    lookalike_limit,
)
from cleancenter.cleaner.processes.info import (
    DELETED,
    EXE_CAP,
    MEMORY_CAP,
    PF_KTHREAD,
    PROBE_CAP,
    PROBE_MARGIN,
    UNREADABLE_MAPPINGS,
    Listing,
    ProcessInfo,
    ProcessView,
    sys_system,
)
from cleancenter.cleaner.processes.procfs import ProcView
from cleancenter.cleaner.processes.psutil_view import PsutilView
from cleancenter.cleaner.processes.snapshot import SnapshotView
from cleancenter.cleaner.processes.stop import stop_process

__all__ = [
    "DELETED",
    "EXE_CAP",
    "KIND_ORDER",
    "MEMORY_CAP",
    "PF_KTHREAD",
    "PROBE_CAP",
    "PROBE_MARGIN",
    "RULE_DELETED",
    "RULE_HIDDEN",
    "RULE_KERNEL_NAME",
    "RULE_KINDS",
    "RULE_LOCATION",
    "RULE_LOOKALIKE",
    "RULE_REPLACED",
    "RULE_WRONG_FOLDER",
    "RULE_WRONG_PARENT",
    "UNREADABLE_MAPPINGS",
    "Listing",
    "ProcView",
    "ProcessInfo",
    "ProcessView",
    "PsutilView",
    "SnapshotView",
    "check_processes",
    "damerau_levenshtein",
    "lookalike_limit",
    "stop_process",
    "sys_system",
]
