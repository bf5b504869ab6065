"""The network check on real loopback connections the tests make, on a fake /proc/net,
and with a fake resolver (no test ever resolves a name or leaves the loopback)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cleancenter.cleaner.definitions import Definitions, IocSet
from cleancenter.cleaner.network import (
    Connection,
    ProcNetView,
    PsutilNetView,
    check_connections,
    connections_of,
    parse_proc_net,
    system_resolver,
)
from cleancenter.cleaner.processes import ProcView, check_processes
from cleancenter.definitions.behaviour import behaviour_rules

LINUX = sys.platform.startswith("linux") and Path("/proc/net/tcp").exists()
live = pytest.mark.skipif(not LINUX, reason="needs a Linux /proc")
little_endian = pytest.mark.skipif(sys.byteorder != "little",
                                   reason="the recorded /proc/net lines are little-endian")


def make_defs(iocs: dict[str, list[str]]) -> Definitions:
    return Definitions(version=1, created="", source="test-defs.ccdef", bundle_sha256="",
                       manifest={}, iocs=IocSet.from_lists(iocs), behaviour=behaviour_rules())


def ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


CLIENT = ("import os, socket, sys, time\n"
          "s = socket.create_connection((sys.argv[1], int(sys.argv[2])))\n"
          "print('up', flush=True)\n"
          "s.recv(1)\n")  # returns (and the process ends) when the test closes its side


class Link:
    """A listening socket in this process and a child process connected to it."""

    def __init__(self, host: str) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.server = socket.socket(family, socket.SOCK_STREAM)
        self.server.bind((host, 0))
        self.server.listen(1)
        self.server.settimeout(10)
        self.port = self.server.getsockname()[1]
        self.child = subprocess.Popen([sys.executable, "-c", CLIENT, host, str(self.port)],
                                      stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
        self.accepted, _ = self.server.accept()
        assert self.child.stdout is not None and self.child.stdout.readline() == b"up\n"

    def close(self) -> None:
        self.accepted.close()
        self.server.close()
        if self.child.poll() is None:
            self.child.kill()
        self.child.wait(10)
        if self.child.stdout is not None:
            self.child.stdout.close()


@pytest.fixture(params=["127.0.0.1", "::1"])
def link(request: pytest.FixtureRequest) -> Iterator[Link]:
    host = str(request.param)
    if host == "::1" and not ipv6_loopback():
        pytest.skip("no IPv6 loopback here")
    made = Link(host)
    try:
        yield made
    finally:
        made.close()


def _endpoint(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@live
def test_a_real_connection_to_an_ioc_names_the_process(link: Link) -> None:
    host = link.server.getsockname()[0]
    net = "127.0.0.0/8" if ":" not in host else "::1/128"
    defs = make_defs({"ips": [net]})
    child_start = ProcView().process(link.child.pid)
    assert child_start is not None
    for view in (ProcNetView(), PsutilNetView()):
        conns = view.connections()
        mine = [f for f in check_connections(conns, defs) if f.target["pid"] == link.child.pid]
        assert len(mine) == 1, (type(view).__name__, mine)
        f = mine[0]
        assert (f.check, f.kind, f.severity) == ("network", "ioc-connection", "malicious")
        assert f.target["remote"] == _endpoint(host, link.port)
        assert [(e.type, e.value) for e in f.evidence] == [("ioc", net)]
        assert f"(pid {link.child.pid})" in f.where
        if isinstance(view, ProcNetView):
            assert f.target["start_time"] == child_start.start_time
        owned = connections_of(conns, link.child.pid)
        assert [c.remote for c in owned] == [_endpoint(host, link.port)]
        assert owned[0].state == "ESTABLISHED" and owned[0].proto == "tcp"
    # an address outside the IOCs is no finding
    other = check_connections(ProcNetView().connections(), make_defs({"ips": ["192.0.2.1"]}))
    assert link.child.pid not in {f.target["pid"] for f in other}


@live
def test_an_irc_server_ioc_matches_on_host_and_port(link: Link) -> None:
    host = link.server.getsockname()[0]
    conns = ProcNetView().connections()
    right = make_defs({"irc_servers": [_endpoint(host, link.port)]})
    mine = [f for f in check_connections(conns, right) if f.target["pid"] == link.child.pid]
    assert [e.detail for e in mine[0].evidence if "IRC" in e.detail] == [f"IRC server, {host}"]


@live
def test_the_process_finding_lists_its_connections(link: Link) -> None:
    # make the client look hidden (a filtered readdir), so that the process check flags it
    def hooked_listdir(root: Path) -> list[str]:
        return [n for n in os.listdir(root) if n != str(link.child.pid)]

    findings = check_processes(ProcView(listdir=hooked_listdir), make_defs({}))
    mine = next(f for f in findings if f.target["pid"] == link.child.pid)
    host = link.server.getsockname()[0]
    remote = _endpoint(host, link.port)
    assert any(c.endswith(f"-> {remote} ESTABLISHED") for c in mine.target["connections"])


@live
def test_connections_in_another_network_namespace_are_seen(tmp_path: Path) -> None:
    """A bot in a container has its own network namespace: /proc/net of ours does not
    show its sockets, /proc/<pid>/net does."""
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("ip"):
        pytest.skip("needs root, unshare and ip")
    script = ("import socket, sys\n"
              "server = socket.socket(); server.bind(('127.0.0.1', 0)); server.listen(1)\n"
              "client = socket.create_connection(server.getsockname())\n"
              "peer, _ = server.accept()\n"
              "print(server.getsockname()[1], flush=True)\n"
              "sys.stdin.read()\n")  # until the test closes our stdin
    child = subprocess.Popen(["unshare", "-n", "sh", "-c",
                              'ip link set lo up && exec "$0" -c "$1"', sys.executable,
                              script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        if not line:
            pytest.skip("unshare -n or ip failed here")
        port = int(line)
        ours = [c for c in ProcNetView(all_namespaces=False).connections()
                if c.pid == child.pid]
        assert ours == []
        theirs = [c for c in ProcNetView().connections() if c.pid == child.pid]
        assert f"127.0.0.1:{port}" in {c.remote for c in theirs}
        found = check_connections(theirs, make_defs({"ips": ["127.0.0.1"]}))
        assert {f.target["pid"] for f in found} == {child.pid}
    finally:
        if child.stdin is not None:
            child.stdin.close()  # the child reads to the end of stdin, then exits
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(10)
        for stream in (child.stdout, child.stderr):
            if stream is not None:
                stream.close()


# --- a fake /proc/net ----------------------------------------------------------------------

HEADER = ("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  "
          "timeout inode\n")
TAIL = "00000000:00000000 00:00000000 00000000     0        0"


def _line(n: int, local: str, remote: str, state: str, inode: int) -> str:
    return f"   {n}: {local} {remote} {state} {TAIL} {inode} 1 0000000000000000 100 0 0 10 0\n"


@pytest.fixture
def fake_proc(tmp_path: Path) -> Path:
    root = tmp_path / "proc"
    net = root / "net"
    net.mkdir(parents=True)
    (net / "tcp").write_text(
        HEADER
        + _line(0, "0100007F:1F90", "00000000:0000", "0A", 1111)  # 127.0.0.1:8080 LISTEN
        + _line(1, "1401A8C0:C350", "077100CB:1A0B", "01", 2222)  # -> 203.0.113.7:6667
        + "   2: this line is broken\n"
        + _line(3, "1401A8C0:C351", "077100CB:1A0B", "06", 0))  # TIME_WAIT, no socket
    (net / "tcp6").write_text(
        HEADER
        + _line(0, "00000000000000000000000001000000:1F91",
                "00000000000000000000000001000000:D431", "01", 3333)  # [::1]:8081 -> :54321
        + _line(1, "0000000000000000FFFF00001401A8C0:C352",
                "0000000000000000FFFF0000077100CB:0050", "02", 4444))  # mapped, SYN_SENT
    (net / "udp").write_text(
        HEADER
        + _line(0, "1401A8C0:D000", "096433C6:0035", "01", 5555)  # -> 198.51.100.9:53
        + _line(1, "00000000:0044", "00000000:0000", "07", 6666))  # no remote
    # no udp6 at all: a kernel without IPv6
    for pid, fds in ((77, {"3": "socket:[2222]", "0": "/dev/null"}),
                     (88, {"5": "socket:[4444]", "6": "socket:[5555]"}),
                     (99, {"7": "socket:[2222]"})):  # shares 77's socket (inherited)
        (root / str(pid) / "fd").mkdir(parents=True)
        (root / str(pid) / "stat").write_text(
            f"{pid} (bot) S 1 1 1 0 -1 0 " + "0 " * 12 + f"{pid * 10} " + "0 " * 10 + "\n")
        for fd, target in fds.items():
            (root / str(pid) / "fd" / fd).symlink_to(target)
    (root / "100").mkdir()  # a process without a readable fd folder
    return root


@little_endian
def test_proc_net_parsing_on_a_fake_tree(fake_proc: Path) -> None:
    view = ProcNetView(fake_proc)
    conns = {(c.proto, c.local, c.remote): c for c in view.connections()}
    assert set(conns) == {
        ("tcp", "127.0.0.1:8080", "0.0.0.0:0"),
        ("tcp", "192.168.1.20:50000", "203.0.113.7:6667"),
        ("tcp", "192.168.1.20:50001", "203.0.113.7:6667"),
        ("tcp", "[::1]:8081", "[::1]:54321"),
        ("tcp", "192.168.1.20:50002", "203.0.113.7:80"),
        ("udp", "192.168.1.20:53248", "198.51.100.9:53"),
        ("udp", "0.0.0.0:68", "0.0.0.0:0"),
    }
    c2 = conns[("tcp", "192.168.1.20:50000", "203.0.113.7:6667")]
    assert (c2.state, c2.pid, c2.inode, c2.start_time) == ("ESTABLISHED", 77, 2222, 770.0)
    assert conns[("tcp", "192.168.1.20:50001", "203.0.113.7:6667")].state == "TIME_WAIT"
    assert conns[("tcp", "192.168.1.20:50002", "203.0.113.7:80")].pid == 88
    assert conns[("tcp", "[::1]:8081", "[::1]:54321")].pid is None  # no process holds it
    assert len(view.errors) == 1
    assert "net/tcp line 4: malformed, skipped" in view.errors[0]

    found = check_connections(list(conns.values()),
                              make_defs({"ips": ["203.0.113.7", "198.51.100.0/24"]}))
    got = sorted((f.target["pid"], f.target["proto"], f.target["remote"]) for f in found)
    # the LISTEN and TIME_WAIT lines and the UDP socket without a remote are not talking;
    # SYN_SENT is: a bot whose C&C is down keeps trying
    assert got == [(77, "tcp", "203.0.113.7:6667"), (88, "tcp", "203.0.113.7:80"),
                   (88, "udp", "198.51.100.9:53")]
    udp = next(f for f in found if f.target["proto"] == "udp")
    assert udp.evidence[0].value == "198.51.100.0/24"
    assert udp.evidence[0].detail == "C&C network"


def test_malformed_lines_of_every_kind_are_skipped_and_named() -> None:
    errors: list[str] = []
    text = (HEADER
            + "   0: 0100007F:1F90 00000000:0000 0A\n"  # too few fields
            + _line(1, "0100007F1F90", "00000000:0000", "0A", 1)  # no port separator
            + _line(2, "0100007:1F90", "00000000:0000", "0A", 1)  # 7 hex digits
            + _line(3, "0100007F:1F90", "00000000:0000", "ZZ", 1)  # bad state
            + _line(4, "0100007F:1F90", "00000000:0000", "0A", 1).replace(" 1 1 ", " x 1 ")
            + _line(5, "0100007F:1F90", "00000000:0000", "0A", 9))  # the only good one
    conns = parse_proc_net(text, "tcp", False, origin="tcp", errors=errors)
    assert [c.inode for c in conns] == [9]
    assert [e.split(":")[0] for e in errors] == [f"tcp line {n}" for n in (2, 3, 4, 5, 6)]


# --- names, through a fake resolver ----------------------------------------------------------

def test_ioc_names_need_a_resolver_and_each_is_resolved_once() -> None:
    conns = [Connection("tcp", "10.0.0.2", 50000 + n, "127.0.0.1", 6667, "ESTABLISHED",
                        pid=10 + n) for n in range(3)]
    conns += [Connection("tcp", "10.0.0.2", 50100, "127.0.0.2", 7000, "ESTABLISHED", pid=20),
              Connection("tcp", "10.0.0.2", 6667, "0.0.0.0", 0, "LISTEN", pid=21),
              Connection("udp", "10.0.0.2", 5353, "", 0, "CLOSE", pid=22)]
    defs = make_defs({"domains": ["c2.example"], "irc_servers": ["irc.example:6667"]})
    assert check_connections(conns, defs) == []  # no resolver: no name is ever looked up

    asked: list[str] = []

    def resolve(name: str) -> list[str]:
        asked.append(name)
        table = {"irc.example": ["127.0.0.1"], "c2.example": ["::ffff:127.0.0.2"]}
        if name not in table:
            raise OSError("no such name")
        return table[name]

    found = check_connections(conns, defs, resolve=resolve)
    assert sorted(asked) == ["c2.example", "irc.example"]
    got = {f.target["pid"]: [(e.value, e.detail) for e in f.evidence] for f in found}
    assert got == {
        10: [("irc.example:6667", "IRC server, 127.0.0.1")],
        11: [("irc.example:6667", "IRC server, 127.0.0.1")],
        12: [("irc.example:6667", "IRC server, 127.0.0.1")],
        20: [("c2.example", "C&C domain, resolves to 127.0.0.2")],  # port 7000: not IRC
    }
    failing = make_defs({"domains": ["gone.example"]})
    assert check_connections(conns, failing, resolve=resolve) == []  # a lookup error is no hit
    asked.clear()
    quiet = [c for c in conns if c.state == "LISTEN"]
    assert check_connections(quiet, defs, resolve=resolve) == [] and asked == []


def test_connection_round_trip_and_describe() -> None:
    conn = Connection("tcp", "::1", 8081, "::1", 6667, "ESTABLISHED", pid=5, inode=7,
                      start_time=12.0)
    assert Connection.from_dict(conn.to_dict()) == conn
    assert conn.describe() == "tcp [::1]:8081 -> [::1]:6667 ESTABLISHED"
    assert connections_of([conn], 5) == [conn] and connections_of([conn], 6) == []


def test_the_system_resolver_gives_plain_addresses() -> None:
    # address literals only: getaddrinfo answers them without asking any DNS server
    assert system_resolver("127.0.0.1") == ["127.0.0.1"]
    if ipv6_loopback():
        assert system_resolver("::ffff:127.0.0.1") == ["127.0.0.1"]
