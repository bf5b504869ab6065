"""``cleancenter serve`` as a real server process on 127.0.0.1, for end-to-end tests."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get_json(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, None


@contextmanager
def served_portal(data_dir: Path, log_path: Path, *extra: str,
                  pids: list[int] | None = None) -> Iterator[str]:
    """The portal on ``data_dir``; yields its base URL and stops it afterwards (``pids``
    gets the server's process id)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLEANCENTER_")}
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [str(BIN / "cleancenter"), "--data-dir", str(data_dir), "serve", "--host",
             "127.0.0.1", "--port", str(port), *extra],
            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=log_path.parent)
        if pids is not None:
            pids.append(server.pid)
        try:
            deadline = time.monotonic() + 30
            while True:
                assert server.poll() is None, log_path.read_text()
                try:
                    if get_json(base + "/healthz") == (200, {"status": "ok"}):
                        break
                except OSError:
                    pass
                assert time.monotonic() < deadline, "the portal did not answer /healthz"
                time.sleep(0.2)
            yield base
        finally:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
