"""The cleaner's network check: which process talks to a known C&C address.

Connections are read through a small view with two backends: `ProcNetView` parses the
Linux ``/proc/net/{tcp,tcp6,udp,udp6}`` tables itself (of every network namespace it can
see, so a bot inside a container is not missed) and maps socket inodes to processes
through ``/proc/<pid>/fd``; `PsutilNetView` asks psutil (Windows, macOS). A recorded
listing can carry connections too (``SnapshotView`` in `processes`). The check itself
never resolves a name unless the caller passes a resolver: looking up C&C domains from a
user's machine is a choice, not a default.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cleancenter.cleaner.definitions import Definitions
from cleancenter.cleaner.findings import Evidence, Finding

try:
    import psutil
except ImportError:  # pragma: no cover - psutil is optional on Linux
    psutil = None  # type: ignore[assignment]

# /proc/net/tcp "st" column (include/net/tcp_states.h); names as psutil spells them
TCP_STATES = {
    0x01: "ESTABLISHED", 0x02: "SYN_SENT", 0x03: "SYN_RECV", 0x04: "FIN_WAIT1",
    0x05: "FIN_WAIT2", 0x06: "TIME_WAIT", 0x07: "CLOSE", 0x08: "CLOSE_WAIT",
    0x09: "LAST_ACK", 0x0A: "LISTEN", 0x0B: "CLOSING", 0x0C: "NEW_SYN_RECV",
}
# states in which a process holds a conversation with (or is trying to reach) a remote:
# SYN_SENT counts because a bot whose C&C is down sits in it, which is when it matters
ACTIVE_TCP_STATES = frozenset({"ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1",
                               "FIN_WAIT2", "CLOSE_WAIT", "CLOSING", "LAST_ACK"})
NET_TABLES = (("tcp", "tcp", False), ("tcp6", "tcp", True),
              ("udp", "udp", False), ("udp6", "udp", True))


@dataclass
class Connection:
    """One socket. ``proto`` is tcp or udp (the family shows in the addresses; an
    IPv4-mapped IPv6 address is given as plain IPv4). ``start_time`` is the owning
    process's start time, so a later stop can guard against PID reuse."""

    proto: str
    local_ip: str
    local_port: int
    remote_ip: str
    remote_port: int
    state: str
    pid: int | None = None
    inode: int | None = None
    start_time: float | None = None

    @property
    def has_remote(self) -> bool:
        if not self.remote_ip or self.remote_port == 0:
            return False
        try:
            return not ipaddress.ip_address(self.remote_ip).is_unspecified
        except ValueError:
            return False

    @property
    def remote(self) -> str:
        return _endpoint(self.remote_ip, self.remote_port)

    @property
    def local(self) -> str:
        return _endpoint(self.local_ip, self.local_port)

    def describe(self) -> str:
        return f"{self.proto} {self.local} -> {self.remote} {self.state}".rstrip()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Connection:
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in names})


def _endpoint(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def connections_of(conns: Iterable[Connection], pid: int) -> list[Connection]:
    """The connections a process owns (for the detail of a process finding)."""
    return [c for c in conns if c.pid == pid]


# --- /proc/net parsing --------------------------------------------------------------------

def _hex_address(text: str, ipv6: bool) -> str:
    """A /proc/net address: the kernel prints each 32-bit word of the network-order
    address as a *native* integer, so the bytes come back in host byte order."""
    width = 32 if ipv6 else 8
    if len(text) != width:
        raise ValueError(f"address {text!r} is not {width} hex digits")
    raw = b"".join(int(text[i:i + 8], 16).to_bytes(4, sys.byteorder)
                   for i in range(0, width, 8))
    if not ipv6:
        return str(ipaddress.IPv4Address(raw))
    ip6 = ipaddress.IPv6Address(raw)
    return str(ip6.ipv4_mapped) if ip6.ipv4_mapped is not None else str(ip6)


def _hex_endpoint(text: str, ipv6: bool) -> tuple[str, int]:
    address, sep, port = text.partition(":")
    if not sep or len(port) != 4:
        raise ValueError(f"endpoint {text!r} is not ADDRESS:PORT")
    return _hex_address(address, ipv6), int(port, 16)


def parse_proc_net(text: str, proto: str, ipv6: bool, *, origin: str,
                   errors: list[str]) -> list[Connection]:
    """Parse one /proc/net table; a malformed line is skipped and named in ``errors``."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if number == 1 or not fields:  # the header
            continue
        try:
            if len(fields) < 10 or not fields[0].endswith(":"):
                raise ValueError(f"{len(fields)} fields")
            local_ip, local_port = _hex_endpoint(fields[1], ipv6)
            remote_ip, remote_port = _hex_endpoint(fields[2], ipv6)
            code = int(fields[3], 16)
            inode = int(fields[9])
        except ValueError as exc:
            errors.append(f"{origin} line {number}: malformed, skipped ({exc}): "
                          f"{line.strip()[:120]!r}")
            continue
        state = TCP_STATES.get(code, f"0x{code:02X}")
        found.append(Connection(proto, local_ip, local_port, remote_ip, remote_port, state,
                                inode=inode or None))
    return found


def _stat_start_time(proc_root: Path, pid: int) -> float | None:
    try:
        text = (proc_root / str(pid) / "stat").read_text(errors="replace")
        return float(int(text[text.rindex(")") + 2:].split()[19]))
    except (OSError, ValueError, IndexError):
        return None


class ProcNetView:
    """Connections from the Linux /proc tables, with owning pids from /proc/<pid>/fd.

    Cost: one readlink per open file descriptor of every process (a few ms on a desktop;
    a busy server with 100 k descriptors takes about a second)."""

    system = "linux"

    def __init__(self, proc_root: Path = Path("/proc"), *, all_namespaces: bool = True
                 ) -> None:
        self.proc_root = proc_root
        self.all_namespaces = all_namespaces
        self.errors: list[str] = []

    def _pids(self) -> list[int]:
        try:
            return sorted(int(name) for name in os.listdir(self.proc_root) if name.isdigit())
        except OSError as exc:
            self.errors.append(f"{self.proc_root}: {exc}")
            return []

    def _owners(self, pids: Sequence[int]) -> tuple[dict[int, int], dict[str, int]]:
        """socket inode -> lowest pid holding it; network namespace -> a pid inside it."""
        owners: dict[int, int] = {}
        namespaces: dict[str, int] = {}
        denied: list[int] = []
        for pid in pids:
            base = self.proc_root / str(pid)
            if self.all_namespaces:
                with contextlib.suppress(OSError):
                    namespaces.setdefault(os.readlink(base / "ns" / "net"), pid)
            try:
                fds = os.listdir(base / "fd")
            except PermissionError:
                denied.append(pid)
                continue
            except OSError:
                continue  # gone, or a kernel thread
            for fd in fds:
                try:
                    target = os.readlink(base / "fd" / fd)
                except OSError:
                    continue
                if target.startswith("socket:[") and target.endswith("]"):
                    inode = int(target[8:-1])
                    owners[inode] = min(owners.get(inode, pid), pid)
        if denied:
            self.errors.append(f"open files of {len(denied)} processes unreadable (permission "
                               f"denied), their connections have no pid: {denied[:20]}")
        return owners, namespaces

    def _tables(self, directory: Path, seen: set[tuple[Any, ...]]) -> list[Connection]:
        found = []
        for name, proto, ipv6 in NET_TABLES:
            path = directory / name
            try:
                text = path.read_text(errors="replace")
            except FileNotFoundError:
                continue  # e.g. no IPv6 in this kernel
            except OSError as exc:
                self.errors.append(f"{path}: {exc}")
                continue
            for conn in parse_proc_net(text, proto, ipv6, origin=str(path), errors=self.errors):
                key = (conn.proto, conn.local, conn.remote, conn.inode)
                if key not in seen:
                    seen.add(key)
                    found.append(conn)
        return found

    def connections(self) -> list[Connection]:
        pids = self._pids()
        owners, namespaces = self._owners(pids)
        seen: set[tuple[Any, ...]] = set()
        conns = self._tables(self.proc_root / "net", seen)
        try:
            own = os.readlink(self.proc_root / "self" / "ns" / "net")
        except OSError:
            own = None
        for namespace, pid in sorted(namespaces.items(), key=lambda item: item[1]):
            if namespace != own:
                conns += self._tables(self.proc_root / str(pid) / "net", seen)
        starts: dict[int, float | None] = {}
        for conn in conns:
            if conn.inode is not None and conn.inode in owners:
                conn.pid = owners[conn.inode]
                if conn.pid not in starts:
                    starts[conn.pid] = _stat_start_time(self.proc_root, conn.pid)
                conn.start_time = starts[conn.pid]
        return conns


class PsutilNetView:
    """Connections through psutil (Windows, macOS; works on Linux too)."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def connections(self) -> list[Connection]:
        if psutil is None:
            self.errors.append("psutil is not installed: no connection listing")
            return []
        try:
            raw = psutil.net_connections(kind="inet")
        except (psutil.Error, OSError) as exc:
            self.errors.append(f"connections unreadable: {exc}")
            return []
        conns = []
        starts: dict[int, float | None] = {}
        for item in raw:
            proto = "tcp" if item.type == socket.SOCK_STREAM else "udp"
            local_ip, local_port = (item.laddr[0], item.laddr[1]) if item.laddr else ("", 0)
            remote_ip, remote_port = (item.raddr[0], item.raddr[1]) if item.raddr else ("", 0)
            conn = Connection(proto, _plain_ip(local_ip), local_port, _plain_ip(remote_ip),
                              remote_port, str(item.status), pid=item.pid)
            if item.pid is not None:
                if item.pid not in starts:
                    try:
                        starts[item.pid] = psutil.Process(item.pid).create_time()
                    except (psutil.Error, OSError):
                        starts[item.pid] = None
                conn.start_time = starts[item.pid]
            conns.append(conn)
        return conns


def _plain_ip(text: str) -> str:
    """IPv4-mapped IPv6 as plain IPv4, and no zone suffix, so every backend agrees."""
    try:
        ip = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return text
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


# --- the check ------------------------------------------------------------------------------

def system_resolver(name: str) -> list[str]:
    """The addresses the operating system's resolver gives for ``name`` (hosts file, DNS).
    Each call may wait for DNS; `check_connections` calls it once per IOC name."""
    infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
    return sorted({_plain_ip(str(info[4][0])) for info in infos})


def _talking(conn: Connection) -> bool:
    if not conn.has_remote:
        return False
    return conn.proto == "udp" or conn.state in ACTIVE_TCP_STATES


def _resolved(names: Iterable[str], resolve: Callable[[str], list[str]],
              cache: dict[str, set[str]]) -> None:
    for name in names:
        if name in cache:
            continue
        try:
            cache[name] = {_plain_ip(a) for a in resolve(name)}
        except (OSError, ValueError):
            cache[name] = set()  # an unresolvable C&C name is no evidence either way


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def check_connections(conns: Sequence[Connection], defs: Definitions, *,
                      resolve: Callable[[str], list[str]] | None = None) -> list[Finding]:
    """Connections to a known C&C: an IOC address or network, an address an IOC domain or
    IRC server name resolves to (only with ``resolve``), or an IRC server's host:port.

    Names are resolved at most once each, and only when some connection is talking at all;
    with thousands of IOC domains that is thousands of lookups, so the caller decides."""
    iocs = defs.iocs
    talking = [c for c in conns if _talking(c)]
    names: dict[str, set[str]] = {}
    if resolve is not None and talking:
        hosts = {host for host, _port in iocs.irc_servers if not _is_address(host)}
        _resolved(sorted(iocs.domains | hosts), resolve, names)
    findings: list[Finding] = []
    done: set[tuple[int | None, str, str]] = set()
    # a conversation on a port this machine listens on was started by the other side: a
    # C&C address scanning a server makes the server no bot
    listening = {(c.proto, c.local_port) for c in conns if c.state == "LISTEN"}
    for conn in talking:
        remote_ip = _plain_ip(conn.remote_ip)
        evidence: list[Evidence] = []
        hit = iocs.match_ip(remote_ip)
        if hit is not None:
            evidence.append(Evidence("ioc", hit, source=defs.source,
                                     detail="C&C address" if "/" not in hit
                                     else "C&C network"))
        for host, port in sorted(iocs.irc_servers, key=lambda s: (s[0], s[1] or 0)):
            address = _is_address(host) and _plain_ip(host) == remote_ip
            if (address or remote_ip in names.get(host, ())) and \
                    (port is None or port == conn.remote_port):
                value = f"{host}:{port}" if port is not None else host
                evidence.append(Evidence("ioc", value, source=defs.source,
                                         detail=f"IRC server, {remote_ip}"))
        for domain in sorted(iocs.domains):
            if remote_ip in names.get(domain, ()):
                evidence.append(Evidence("ioc", domain, source=defs.source,
                                         detail=f"C&C domain, resolves to {remote_ip}"))
        key = (conn.pid, conn.local, conn.remote)
        if not evidence or key in done:
            continue
        done.add(key)
        owner = f"pid {conn.pid}" if conn.pid is not None else "no owning process found"
        incoming = conn.proto == "tcp" and (conn.proto, conn.local_port) in listening
        # an address or IRC server from the definitions is the bot's; a name that merely
        # resolves to the address may be a shared host
        direct = any(not e.detail.startswith("C&C domain") for e in evidence)
        findings.append(Finding(
            check="network", kind="ioc-connection-incoming" if incoming else "ioc-connection",
            severity="malicious" if direct and not incoming else "suspicious",
            where=f"{conn.describe()} ({owner})",
            why=("a known C&C address connected to this machine: " if incoming
                 else "connected to a known C&C: ") + ", ".join(e.value for e in evidence),
            evidence=evidence,
            target={"pid": conn.pid, "start_time": conn.start_time, "remote": conn.remote,
                    "local": conn.local, "proto": conn.proto}))
    return findings
