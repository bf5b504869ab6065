"""A real IRC server for tests: Debian's ngircd on 127.0.0.1, from a temp config.

It listens on loopback only, on a free port, in the foreground (``-n``) so the test owns
the process; `Ircd.channel_members` asks the server itself (over IRC, as a watcher
client) who is in a channel.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

NGIRCD = "/usr/sbin/ngircd"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Ircd:
    port: int
    process: subprocess.Popen[bytes]
    folder: Path
    watchers: int = 0

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def channel_members(self, channel: str, timeout: float = 10) -> list[str]:
        """NAMES of a channel, asked over a fresh loopback connection."""
        self.watchers += 1  # a fresh nick each time: the last one may not be gone yet
        nick = f"w{self.watchers}"
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
            s.sendall(f"NICK {nick}\r\nUSER {nick} 0 * :test watcher\r\n".encode())
            buffer = b""
            deadline = time.monotonic() + timeout
            asked = False
            while time.monotonic() < deadline:
                buffer += s.recv(4096)
                for raw in buffer.split(b"\r\n"):
                    words = raw.decode(errors="replace").split(" ")
                    if len(words) > 1 and words[0] == "PING":
                        s.sendall(f"PONG {words[1]}\r\n".encode())
                    if len(words) > 1 and words[1] == "001" and not asked:
                        s.sendall(f"NAMES {channel}\r\n".encode())
                        asked = True
                    if len(words) > 5 and words[1] == "353":
                        return [n.lstrip("@+:") for n in words[5:] if n.strip(":")]
                    if len(words) > 1 and words[1] == "366":
                        return []
                buffer = buffer.rsplit(b"\r\n", 1)[-1]
        raise TimeoutError(f"no NAMES reply for {channel}")


def start_ngircd(folder: Path) -> Ircd:
    if not os.path.exists(NGIRCD):
        raise FileNotFoundError(f"{NGIRCD} missing: install the Debian package ngircd")
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    user = "nobody" if os.geteuid() == 0 else None
    config = folder / "ngircd.conf"
    motd = folder / "motd"
    motd.write_text("cleancenter test server\n")
    lines = [
        "[Global]", "Name = irc.cleancenter.test", "Info = cleancenter test server",
        "Listen = 127.0.0.1", f"Ports = {port}", f"MotdFile = {motd}",
        f"PidFile = {folder / 'ngircd.pid'}",
    ]
    if user:
        lines += [f"ServerUID = {user}", "ServerGID = nogroup"]
    lines += ["[Limits]", "MaxConnectionsIP = 20", "[Options]", "PAM = no", "Ident = no",
              "DNS = no"]
    config.write_text("\n".join(lines) + "\n")
    if user:
        shutil.chown(folder, user="nobody", group="nogroup")
        motd.chmod(0o644)
        config.chmod(0o644)
    log = (folder / "ngircd.log").open("wb")
    process = subprocess.Popen([NGIRCD, "-n", "-f", str(config)], stdout=log,
                               stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"ngircd exited: {(folder / 'ngircd.log').read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return Ircd(port, process, folder)
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("ngircd did not start listening")
