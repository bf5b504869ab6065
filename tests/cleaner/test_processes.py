"""The process check on real processes the tests start (harmless copies of ``sleep``),
on a fake /proc tree for the parsing edge cases, and on a recorded Windows listing."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cleancenter.cleaner.definitions import Definitions, HashEntry, IocSet
from cleancenter.cleaner.findings import Evidence, Finding
from cleancenter.cleaner.network import check_connections
from cleancenter.cleaner.processes import (
    EXE_CAP,
    PF_KTHREAD,
    RULE_DELETED,
    RULE_HIDDEN,
    RULE_KERNEL_NAME,
    RULE_LOCATION,
    RULE_LOOKALIKE,
    RULE_REPLACED,
    RULE_WRONG_FOLDER,
    RULE_WRONG_PARENT,
    ProcessInfo,
    ProcView,
    PsutilView,
    SnapshotView,
    check_processes,
    damerau_levenshtein,
    stop_process,
)
from cleancenter.definitions.behaviour import SUSPICIOUS_LOCATIONS, behaviour_rules

LINUX = sys.platform.startswith("linux") and Path("/proc/self/stat").exists()
live = pytest.mark.skipif(not LINUX, reason="needs a Linux /proc")
SLEEP = shutil.which("sleep") or "/bin/sleep"


def make_defs(hashes: dict[str, int | None] | None = None,
              iocs: dict[str, list[str]] | None = None) -> Definitions:
    return Definitions(
        version=1, created="2026-11-25", source="test-defs.ccdef", bundle_sha256="",
        manifest={}, hashes={h: HashEntry(h, size, "testbot")
                             for h, size in (hashes or {}).items()},
        iocs=IocSet.from_lists(iocs or {}), behaviour=behaviour_rules())


class Spawner:
    """Starts real processes and makes sure every one is gone afterwards."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def __call__(self, args: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        kwargs.setdefault("stdout", subprocess.DEVNULL)
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, **kwargs)
        self.procs.append(proc)
        return proc

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)
            if proc.stdout is not None:
                proc.stdout.close()


@pytest.fixture
def spawn() -> Iterator[Spawner]:
    spawner = Spawner()
    try:
        yield spawner
    finally:
        spawner.close()


def by_pid(findings: list[Finding]) -> dict[int, Finding]:
    return {f.target["pid"]: f for f in findings}


def rules(finding: Finding) -> set[str]:
    return {e.value for e in finding.evidence}


def bot_copy(path: Path, tag: str = "bot") -> str:
    """A copy of sleep with a few bytes appended (ELF ignores them), so its sha256 is its
    own and the system's sleep stays unknown to the definitions."""
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(SLEEP, path)
    with path.open("ab") as out:
        out.write(b"\0cleancenter test " + tag.encode() + b"\0")
    return hashlib.sha256(path.read_bytes()).hexdigest()


def in_temp(path: Path) -> bool:
    return str(path).startswith(tuple(SUSPICIOUS_LOCATIONS["linux"]))


# --- live Linux --------------------------------------------------------------------------

@live
def test_deleted_kworker_and_sshd_lookalike_are_found_normal_ones_are_not(
        tmp_path: Path, spawn: Spawner) -> None:
    bot = tmp_path / "x" / "kworker"
    sha = bot_copy(bot)
    kworker = spawn([str(bot), "300"])
    bot.unlink()
    sshd_path = tmp_path / "sshd"
    bot_copy(sshd_path, "sshd")
    sshd = spawn([str(sshd_path), "300"])
    normal = spawn([SLEEP, "300"])

    view = ProcView()
    started = time.perf_counter()
    found = by_pid(check_processes(view, make_defs({sha: None})))
    elapsed = time.perf_counter() - started
    f = found[kworker.pid]
    assert (f.check, f.kind, f.severity) == ("process", "hash-match", "malicious")
    assert {RULE_DELETED, RULE_KERNEL_NAME} <= rules(f)
    assert (RULE_LOCATION in rules(f)) == in_temp(bot)
    assert any(e.type == "hash" and e.value == sha and e.detail == "testbot"
               for e in f.evidence)
    running = ProcView().process(kworker.pid)
    assert running is not None and running.exe_deleted and not running.exe_replaced
    assert f.target == {"pid": kworker.pid, "start_time": running.start_time,
                        "exe": f"{bot} (deleted)", "name": "kworker", "ppid": os.getpid(),
                        "uid": os.getuid()}
    assert f.where == f"pid {kworker.pid} kworker ({bot} (deleted))"
    assert f.why.startswith("its image's sha256 is a known bot's (testbot); "
                            "executable deleted while running")

    s = found[sshd.pid]
    assert (s.kind, s.severity) == ("masquerade", "suspicious")
    assert RULE_WRONG_FOLDER in rules(s) and RULE_DELETED not in rules(s)
    assert normal.pid not in found and os.getpid() not in found
    assert elapsed < 10, f"a full process check took {elapsed:.2f} s"

    # without the hash it is still caught, as suspicious
    again = by_pid(check_processes(ProcView(), make_defs()))[kworker.pid]
    assert (again.kind, again.severity) == ("deleted-executable", "suspicious")

    # the psutil backend, run here on Linux, sees the same bot
    psutil_found = by_pid(check_processes(PsutilView(), make_defs({sha: None})))
    p = psutil_found[kworker.pid]
    assert p.kind == "hash-match" and {RULE_DELETED, RULE_KERNEL_NAME} <= rules(p)
    assert normal.pid not in psutil_found and os.getpid() not in psutil_found


@live
def test_a_replaced_image_is_told_from_a_deleted_one(tmp_path: Path, spawn: Spawner) -> None:
    path = tmp_path / "tool"
    bot_copy(path)
    proc = spawn([str(path), "300"])
    fresh = tmp_path / "tool.new"
    shutil.copy(SLEEP, fresh)
    os.replace(fresh, path)  # what a package upgrade does
    info = ProcView().process(proc.pid)
    assert info is not None and info.exe_deleted and info.exe_replaced
    f = by_pid(check_processes(ProcView(), make_defs()))[proc.pid]
    assert RULE_REPLACED in rules(f) and RULE_DELETED not in rules(f)
    if not in_temp(path):
        assert f.severity == "info"


@live
def test_a_hard_linked_bot_and_a_file_named_deleted(tmp_path: Path, spawn: Spawner) -> None:
    """The kernel marks the unlinked *name*: a bot that keeps a hard link elsewhere is
    still "deleted"; a file really named "... (deleted)" is not."""
    bot = tmp_path / "x" / "kworker"
    bot_copy(bot)
    linked = spawn([str(bot), "300"])
    (tmp_path / "y").mkdir()
    os.link(bot, tmp_path / "y" / ".keep")
    bot.unlink()
    odd = tmp_path / "tool (deleted)"
    bot_copy(odd, "odd")
    named = spawn([str(odd), "300"])
    view = ProcView()
    first, second = view.process(linked.pid), view.process(named.pid)
    assert first is not None and first.exe == str(bot) and first.exe_deleted
    assert second is not None and second.exe == str(odd) and not second.exe_deleted


@live
def test_a_program_run_from_memory_is_found(spawn: Spawner) -> None:
    """Fileless start: the image lives in an anonymous memory file (memfd)."""
    fd = os.memfd_create("cc-test")
    try:
        os.write(fd, Path(SLEEP).read_bytes())
        proc = spawn([f"/proc/self/fd/{fd}", "300"], pass_fds=(fd,))
    finally:
        os.close(fd)
    f = by_pid(check_processes(ProcView(), make_defs(), hidden=False))[proc.pid]
    assert f.kind == "deleted-executable" and f.target["exe"].startswith("/memfd:cc-test")
    assert "anonymous memory file" in f.evidence[0].detail


@live
def test_each_image_is_hashed_once_and_sizes_skip_reading(tmp_path: Path,
                                                          spawn: Spawner) -> None:
    image = tmp_path / "shared-image"  # its own image: no other process on the machine has it
    bot_copy(image, "shared")
    first, second = spawn([str(image), "300"]), spawn([str(image), "300"])

    class Counting(ProcView):
        def __init__(self) -> None:
            super().__init__()
            self.reads: list[int] = []

        def read_executable(self, pid: int, limit: int = EXE_CAP) -> bytes | None:
            self.reads.append(pid)
            return super().read_executable(pid, limit)

    view = Counting()
    check_processes(view, make_defs({"00" * 32: None}), hidden=False)
    assert len({first.pid, second.pid} & set(view.reads)) == 1
    sized = Counting()  # every known bot is 1 byte long: no image is read at all
    check_processes(sized, make_defs({"00" * 32: 1}), hidden=False)
    assert sized.reads == []


@live
def test_stop_process_kills_only_the_right_one(tmp_path: Path, spawn: Spawner) -> None:
    bot = tmp_path / "kworker"
    bot_copy(bot)
    victim = spawn([str(bot), "300"])
    bystander = spawn([SLEEP, "300"])
    info = ProcView().process(victim.pid)
    assert info is not None and info.start_time is not None

    assert stop_process(victim.pid, info.start_time + 1).startswith("skipped: pid reused")
    assert stop_process(victim.pid, None).startswith("refused")
    assert victim.poll() is None
    assert stop_process(1, 0).startswith("refused")
    assert stop_process(os.getpid(), 0).startswith("refused")
    kthreads = [p for p in ProcView().processes() if p.kernel_thread]
    for kthread in kthreads[:2]:
        assert stop_process(kthread.pid, kthread.start_time).startswith("refused: kernel")

    assert stop_process(victim.pid, info.start_time) == "stopped"
    assert victim.wait(5) == -signal.SIGKILL
    assert bystander.poll() is None
    status = stop_process(victim.pid, info.start_time)
    assert status.startswith(("gone", "skipped: pid reused"))


@live
def test_hidden_process_is_found_by_probing_and_threads_are_not(spawn: Spawner) -> None:
    hidden = spawn([SLEEP, "300"])
    threaded = spawn([sys.executable, "-c",
                      "import threading, time\n"
                      "for _ in range(3):\n"
                      "    threading.Thread(target=time.sleep, args=(300,), daemon=True).start()\n"
                      "print('up', flush=True)\n"
                      "time.sleep(300)\n"], stdout=subprocess.PIPE)
    assert threaded.stdout is not None and threaded.stdout.readline() == b"up\n"
    tids = {int(t) for t in os.listdir(f"/proc/{threaded.pid}/task")} - {threaded.pid}
    assert len(tids) == 3 and all(os.path.exists(f"/proc/{t}") for t in tids)

    # a readdir that leaves the pid out, exactly as a getdents-hooking rootkit does
    def hooked_listdir(root: Path) -> list[str]:
        return [n for n in os.listdir(root) if n != str(hidden.pid)]

    view = ProcView(listdir=hooked_listdir)
    assert hidden.pid not in {p.pid for p in view.processes()}
    findings = check_processes(view, make_defs())
    reported = {f.target["pid"]: f for f in findings if RULE_HIDDEN in rules(f)}
    assert set(reported) == {hidden.pid}
    f = reported[hidden.pid]
    assert (f.kind, f.severity) == ("hidden-process", "suspicious")
    detail = next(e.detail for e in f.evidence if e.value == RULE_HIDDEN)
    assert detail.startswith("missing from readdir; found by probe")
    assert f.target["exe"] == os.path.realpath(SLEEP) and f.target["start_time"] is not None


@live
def test_memory_scan_finds_a_marker_in_a_running_process(spawn: Spawner) -> None:
    """The holder is a grandchild: the cleaner's own children (its workers, which hold
    the rules) are never scanned."""
    holder = ("import os, time\n"
              "held = ''.join(['cc', 'marker-', str(6 * 7) * 3])\n"
              "parent = os.getppid()\n"
              "print('up', flush=True)\n"
              "while os.getppid() == parent:\n"  # ends with its parent, whatever happens
              "    time.sleep(0.2)\n")
    parent = spawn([sys.executable, "-c",
                    "import subprocess, sys\n"
                    f"p = subprocess.Popen([sys.executable, '-c', {holder!r}], "
                    "stdout=subprocess.PIPE)\n"
                    "p.stdout.readline()\n"
                    "print(p.pid, flush=True)\n"
                    "p.wait()\n"], stdout=subprocess.PIPE)
    assert parent.stdout is not None
    pid = int(parent.stdout.readline())
    marker = b"ccmarker-424242"  # this process holds it too, and must not be scanned

    def scan(data: bytes) -> list[Evidence]:
        return [Evidence("rule", "test_marker", source="tests")] if marker in data else []

    try:
        found = by_pid(check_processes(ProcView(), make_defs(), scan_memory=scan,
                                       memory_pids={pid, parent.pid, os.getpid()},
                                       hidden=False))
    finally:
        os.kill(pid, signal.SIGKILL)  # still our grandchild: its parent waits for it
    f = found[pid]
    assert (f.kind, f.severity) == ("memory-rule", "malicious")
    assert f.evidence[0].detail.startswith("in memory at 0x")
    assert os.getpid() not in found and parent.pid not in found


@live
def test_unreadable_executables_and_memory_are_recorded_not_fatal() -> None:
    """As an unprivileged user (root drops to nobody in a forked child) pid 1's
    executable link and memory are unreadable: named in the errors, the scan goes on."""
    def scan() -> dict[str, Any]:
        view = ProcView()
        procs = view.processes()
        regions = list(view.memory_regions(1, 1 << 20))
        findings = check_processes(view, make_defs({"00" * 32: None}),
                                   scan_memory=lambda data: [])
        init = next(p for p in procs if p.pid == 1)
        return {"count": len(procs), "init_exe": init.exe, "regions": len(regions),
                "errors": view.errors, "findings": len(findings)}

    if os.geteuid() != 0:
        result = scan()
    else:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: never returns into pytest
            code = 1
            try:
                os.close(read)
                os.setgroups([])
                os.setgid(65534)
                os.setuid(65534)
                payload = json.dumps(scan()).encode()
                with os.fdopen(write, "wb") as out:
                    out.write(payload)
                code = 0
            finally:
                os._exit(code)
        os.close(write)
        with os.fdopen(read, "rb") as source:
            payload = source.read()
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        result = json.loads(payload)
    assert result["count"] > 1 and result["init_exe"] is None and result["regions"] == 0
    errors = " | ".join(result["errors"])
    assert "pid 1: executable link unreadable (Permission denied)" in errors
    assert "pid 1: memory map unreadable (Permission denied)" in errors


# --- a fake /proc ------------------------------------------------------------------------

def _stat(pid: int, name: str, ppid: int, *, flags: int = 0x400000, start: int = 1000,
          state: str = "S") -> str:
    rest = [state, ppid, pid, pid, 0, -1, flags] + [0] * 12 + [start] + [0] * 10
    return f"{pid} ({name}) " + " ".join(str(x) for x in rest) + "\n"


def fake_process(root: Path, pid: int, name: str, ppid: int, *, exe: str | None = None,
                 cmdline: list[str] | None = None, flags: int = 0x400000, start: int = 1000,
                 tgid: int | None = None, stat: str | None = None) -> Path:
    base = root / str(pid)
    base.mkdir(parents=True)
    (base / "stat").write_text(stat if stat is not None else
                               _stat(pid, name, ppid, flags=flags, start=start))
    (base / "status").write_text(f"Name:\t{name}\nTgid:\t{tgid or pid}\nPid:\t{pid}\n"
                                 f"PPid:\t{ppid}\nUid:\t1000\t1000\t1000\t1000\n")
    (base / "cmdline").write_bytes(b"".join(a.encode() + b"\0" for a in cmdline or []))
    if exe is not None:
        (base / "exe").symlink_to(exe)
    return base


@pytest.fixture
def fake_proc(tmp_path: Path) -> Path:
    root = tmp_path / "proc"
    (root / "sys" / "kernel").mkdir(parents=True)
    (root / "sys" / "kernel" / "pid_max").write_text("5000\n")
    fake_process(root, 1, "init", 0, exe="/usr/lib/systemd/systemd", cmdline=["/sbin/init"])
    fake_process(root, 2, "kthreadd", 0, flags=PF_KTHREAD)
    fake_process(root, 3, "kworker/0:1-events", 2, flags=PF_KTHREAD)
    fake_process(root, 300, "kworker/0:0", 1, exe="/tmp/.x/kworker (deleted)",
                 cmdline=["[kworker/0:0]"])
    fake_process(root, 301, "kworker/0:0", 1, tgid=300)  # a thread of 300
    fake_process(root, 310, "odd) S 1 (name", 1, exe="/usr/bin/odd")
    fake_process(root, 500, "sshd", 1, exe="/usr/sbin/sshd", cmdline=["sshd: root@pts/0"])
    fake_process(root, 510, "bash", 500, exe="/usr/bin/bash", cmdline=["-bash"])
    fake_process(root, 520, "dash", 500, exe="/usr/bin/dash", cmdline=["dash"])
    fake_process(root, 530, "ssh", 510, exe="/usr/bin/ssh", cmdline=["ssh", "host"])
    fake_process(root, 540, "rsyslgd", 1, exe="/usr/local/bin/rsyslgd")
    noexe = fake_process(root, 600, "locked", 1)
    (noexe / "exe").write_text("not a link")  # readlink fails: must be recorded, not fatal
    fake_process(root, 700, "broken", 1, stat="700 garbage\n")
    fake_process(root, 4242, "miner", 1, exe="/usr/bin/miner", cmdline=["miner"])
    # memory of pid 500: one readable region holding a marker, one unreadable mapping
    (root / "500" / "maps").write_text(
        "00001000-00002000 r-xp 00000000 08:01 123   /usr/sbin/sshd\n"
        "00002000-00003000 ---p 00000000 00:00 0\n"
        "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0   [vsyscall]\n")
    with (root / "500" / "mem").open("wb") as mem:
        mem.seek(0x1800)
        mem.write(b"fake-sshd-marker")
        mem.seek(0x2fff)
        mem.write(b"\0")
    return root


def fake_listdir(root: Path) -> list[str]:
    """readdir of the fake /proc: threads are never listed, and 4242 is hidden."""
    return [n for n in os.listdir(root) if n not in ("301", "4242")]


def test_fake_proc_parsing_edge_cases(fake_proc: Path) -> None:
    view = ProcView(fake_proc, listdir=fake_listdir)
    procs = {p.pid: p for p in view.processes()}
    assert sorted(procs) == [1, 2, 3, 300, 310, 500, 510, 520, 530, 540, 600]  # 700 broken
    assert procs[2].kernel_thread and procs[3].kernel_thread and not procs[1].kernel_thread
    assert procs[300].exe == "/tmp/.x/kworker" and procs[300].exe_deleted
    assert procs[300].cmdline == ["[kworker/0:0]"] and procs[300].uid == 1000
    assert procs[310].name == "odd) S 1 (name" and procs[310].ppid == 1
    assert procs[600].exe is None
    assert any(e.startswith("pid 600: executable link unreadable") for e in view.errors)
    assert ProcessInfo.from_dict(json.loads(json.dumps(procs[300].to_dict()))) == procs[300]


def test_fake_proc_check(fake_proc: Path) -> None:
    view = ProcView(fake_proc, listdir=fake_listdir)

    def scan(data: bytes) -> list[Evidence]:
        return [Evidence("rule", "fake_marker", source="tests")] \
            if b"fake-sshd-marker" in data else []

    found = by_pid(check_processes(view, make_defs(), scan_memory=scan))
    assert sorted(found) == [300, 500, 540, 4242]
    bot = found[300]
    assert {RULE_DELETED, RULE_LOCATION, RULE_KERNEL_NAME} <= rules(bot)
    assert bot.target["exe"] == "/tmp/.x/kworker (deleted)"
    hidden = found[4242]
    assert hidden.kind == "hidden-process"
    assert hidden.evidence[0].detail == "missing from readdir; found by probe"
    assert hidden.target["exe"] == "/usr/bin/miner"
    assert (found[500].kind, found[500].severity) == ("memory-rule", "malicious")
    assert found[500].evidence[0].detail == "in memory at 0x1000"
    # the same match from a rule that only describes a trait is suspicious, not malicious
    trait = by_pid(check_processes(ProcView(fake_proc, listdir=fake_listdir), make_defs(),
                                   scan_memory=scan, is_trait=lambda e: True,
                                   memory_pids={500}, hidden=False))
    assert (trait[500].kind, trait[500].severity) == ("memory-rule", "suspicious")
    lookalike = found[540]
    assert rules(lookalike) == {RULE_LOOKALIKE}
    assert lookalike.evidence[0].detail == "rsyslgd is 1 edit from rsyslogd"
    # unreadable pieces were named, nothing stopped the scan
    assert any("pid 1: memory map unreadable" in e for e in view.errors)


# --- a recorded Windows listing ----------------------------------------------------------

WINDOWS_LISTING: dict[str, Any] = {
    "system": "windows",
    "processes": [
        {"pid": 4, "ppid": 0, "name": "System", "kernel_thread": True, "start_time": 100.0},
        {"pid": 388, "ppid": 4, "name": "smss.exe",
         "exe": "\\SystemRoot\\System32\\smss.exe", "start_time": 101.0},
        {"pid": 560, "ppid": 452, "name": "wininit.exe",
         "exe": "C:\\Windows\\System32\\wininit.exe", "start_time": 105.0},
        {"pid": 700, "ppid": 560, "name": "services.exe",
         "exe": "C:\\Windows\\system32\\services.exe", "start_time": 106.0},
        {"pid": 712, "ppid": 560, "name": "lsass.exe", "exe": None, "start_time": 106.5},
        {"pid": 900, "ppid": 700, "name": "svchost.exe",
         "exe": "C:\\WINDOWS\\System32\\svchost.exe",
         "cmdline": ["C:\\WINDOWS\\system32\\svchost.exe", "-k", "netsvcs"],
         "start_time": 110.0},
        {"pid": 1300, "ppid": 700, "name": "spoolsv.exe",
         "exe": "C:\\Windows\\System32\\spoolsv.exe", "start_time": 112.0},
        {"pid": 2000, "ppid": 1990, "name": "explorer.exe",
         "exe": "C:\\Windows\\explorer.exe", "start_time": 200.0},
        {"pid": 3000, "ppid": 2000, "name": "spoolsvc.exe",
         "exe": "C:\\Users\\bob\\AppData\\Local\\Temp\\spoolsvc.exe", "start_time": 300.0},
        {"pid": 3100, "ppid": 2000, "name": "svchost.exe",
         "exe": "C:\\Users\\Public\\svchost.exe", "start_time": 301.0},
        {"pid": 3200, "ppid": 2000, "name": "spoolsv.exe",
         "exe": "C:\\Windows\\System32\\spoolsv.exe", "start_time": 302.0},
        # its parent pid now belongs to a younger process: parent unknown, not flagged
        {"pid": 3300, "ppid": 3400, "name": "svchost.exe",
         "exe": "D:\\Windows\\System32\\svchost.exe", "start_time": 150.0},
        {"pid": 3400, "ppid": 2000, "name": "notepad.exe",
         "exe": "C:\\Windows\\System32\\notepad.exe", "start_time": 500.0},
        {"pid": 3500, "ppid": 2000, "name": "svch0st.exe",
         "exe": "C:\\Windows\\svch0st.exe", "start_time": 501.0},
        {"pid": 3600, "ppid": 2000, "name": "iexplore.exe",
         "exe": "C:\\Program Files\\Internet Explorer\\iexplore.exe", "start_time": 502.0},
        {"pid": 3700, "ppid": 2000, "name": "scvhost.exe",
         "exe": "C:\\Windows\\scvhost.exe", "start_time": 503.0},
        {"pid": 3800, "ppid": 2000, "name": "svchost.com",
         "exe": "C:\\Windows\\svchost.com", "start_time": 504.0},
        {"pid": 6666, "ppid": 700, "name": "winupd.exe",
         "exe": "C:\\Windows\\System32\\winupd.exe", "start_time": 505.0},
    ],
    "connections": [
        {"proto": "tcp", "local_ip": "192.168.1.20", "local_port": 49700,
         "remote_ip": "203.0.113.7", "remote_port": 6667, "state": "ESTABLISHED",
         "pid": 3000, "start_time": 300.0},
        {"proto": "tcp", "local_ip": "192.168.1.20", "local_port": 49701,
         "remote_ip": "93.184.216.34", "remote_port": 443, "state": "ESTABLISHED",
         "pid": 3600},
    ],
}


@pytest.fixture
def windows_snapshot(tmp_path: Path) -> Path:
    data = json.loads(json.dumps(WINDOWS_LISTING))
    pids = [p["pid"] for p in data["processes"]]
    # two enumerations recorded on the machine: the toolhelp one was filtered
    data["listings"] = {"toolhelp32": [p for p in pids if p != 6666],
                        "NtQuerySystemInformation": pids}
    path = tmp_path / "listing.json"
    path.write_text(json.dumps(data))
    return path


def test_windows_masquerade_through_a_recorded_listing(windows_snapshot: Path) -> None:
    view = SnapshotView(windows_snapshot)
    found = by_pid(check_processes(view, make_defs()))
    assert sorted(found) == [3000, 3100, 3200, 3500, 3700, 3800, 6666]

    spoolsvc = found[3000]
    assert rules(spoolsvc) == {RULE_LOOKALIKE, RULE_LOCATION}
    assert spoolsvc.kind == "masquerade" and spoolsvc.severity == "suspicious"
    assert "spoolsvc.exe is 1 edit from spoolsv.exe" in \
        [e.detail for e in spoolsvc.evidence]
    assert spoolsvc.target["connections"] == \
        ["tcp 192.168.1.20:49700 -> 203.0.113.7:6667 ESTABLISHED"]
    assert spoolsvc.where == \
        "pid 3000 spoolsvc.exe (C:\\Users\\bob\\AppData\\Local\\Temp\\spoolsvc.exe)"
    assert rules(found[3100]) == {RULE_WRONG_FOLDER, RULE_WRONG_PARENT, RULE_LOCATION}
    assert rules(found[3200]) == {RULE_WRONG_PARENT}
    assert "started by explorer.exe (pid 2000), expected services.exe" in \
        found[3200].evidence[0].detail
    assert rules(found[3500]) == rules(found[3700]) == rules(found[3800]) == {RULE_LOOKALIKE}
    assert found[6666].evidence[0].detail == \
        "missing from toolhelp32; found by NtQuerySystemInformation"

    net = check_connections(view.connections(), make_defs(iocs={"ips": ["203.0.113.7"]}))
    assert [(f.target["pid"], f.target["remote"], f.target["start_time"]) for f in net] == \
        [(3000, "203.0.113.7:6667", 300.0)]


def test_a_bare_listing_is_read_too(tmp_path: Path) -> None:
    path = tmp_path / "bare.json"
    path.write_text(json.dumps(WINDOWS_LISTING["processes"]))
    view = SnapshotView(path)
    assert view.system == "windows" and view.connections() == []
    assert view.read_executable(3000) is None
    found = by_pid(check_processes(view, make_defs()))
    assert 6666 not in found and 3000 in found  # one listing: nothing can look hidden


def test_lookalike_distances() -> None:
    assert damerau_levenshtein("spoolsvc.exe", "spoolsv.exe") == 1
    assert damerau_levenshtein("scvhost.exe", "svchost.exe") == 1  # a transposition
    assert damerau_levenshtein("svch0st.exe", "svchost.exe") == 1
    assert damerau_levenshtein("iexplore.exe", "explorer.exe") == 2
    assert damerau_levenshtein("abcdef", "uvwxyz", 2) == 3  # stopped early


def test_short_linux_names_are_not_fuzzed(fake_proc: Path) -> None:
    """bash/dash, ssh/sshd: real programs one edit apart must not be flagged."""
    found = by_pid(check_processes(ProcView(fake_proc, listdir=fake_listdir), make_defs(),
                                   hidden=False))
    assert not {510, 520, 530} & set(found)
