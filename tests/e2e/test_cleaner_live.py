"""The cleaner against a live bot imitation on this machine.

A tiny C program (tests/e2e/botimitation.c, compiled here with gcc) copies itself into a
temp folder under a kernel-thread name, runs from there, deletes its file, writes an
``@reboot`` line into a crontab inside a test root, and joins a channel on a real ngircd
listening on 127.0.0.1. Definitions carry its sha256 and its IRC server. The cleaner must
find the process, the connection and the entry, stop it, quarantine its image, cut the
line; `restore` must bring the file back byte-identical.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.cleaner.bundles import make_bundle, new_key
from tests.e2e.ircd import Ircd, start_ngircd

pytestmark = pytest.mark.e2e
SOURCE = Path(__file__).with_name("botimitation.c")
CHANNEL = "#ccc-test"
CLEANER = [sys.executable, "-m", "cleancenter.cleaner"]


@dataclass
class LiveBot:
    binary: Path
    sha256: str
    process: subprocess.Popen[bytes]
    ircd: Ircd
    copy_path: Path
    crontab: Path
    root: Path
    nick: str


def _need(tool: str) -> None:
    if shutil.which(tool) or os.path.exists(tool):
        return
    if os.environ.get("CI"):
        pytest.fail(f"{tool} is missing: ./quickstart test installs it")
    pytest.skip(f"{tool} is not installed")


@pytest.fixture
def live_bot(tmp_path: Path) -> Iterator[LiveBot]:
    _need("gcc")
    _need("/usr/sbin/ngircd")
    binary = tmp_path / "build" / "bot"
    binary.parent.mkdir()
    subprocess.run(["gcc", "-O2", "-o", str(binary), str(SOURCE)], check=True)
    ircd = start_ngircd(tmp_path / "ircd")
    temp_folder = tmp_path / "victim-tmp"
    temp_folder.mkdir()
    root = tmp_path / "root"
    crontab = root / "var" / "spool" / "cron" / "crontabs" / "root"
    crontab.parent.mkdir(parents=True)
    crontab.write_text("# m h dom mon dow command\n30 3 * * * /usr/bin/true\n")
    process = subprocess.Popen([str(binary), "--install", str(temp_folder), "kworker",
                                str(crontab), str(ircd.port), CHANNEL])
    nick = f"cc{process.pid % 1000000}"
    try:
        deadline = time.monotonic() + 20
        while nick not in ircd.channel_members(CHANNEL):
            assert process.poll() is None, "the bot imitation exited"
            assert time.monotonic() < deadline, "the bot never joined its channel"
            time.sleep(0.2)
        yield LiveBot(binary, hashlib.sha256(binary.read_bytes()).hexdigest(), process, ircd,
                      temp_folder / "kworker", crontab, root, nick)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)
        ircd.stop()


def _cleaner(*args: str, key: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, CLEANCENTER_CLEANER_KEY=key)
    return subprocess.run([*CLEANER, *args, "--home", str(home)], env=env,
                          capture_output=True, text=True, timeout=300)


def _records(stdout: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    rows = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    return rows[0], [r for r in rows[1:] if r["record"] == "finding"]


def test_cleaner_finds_stops_quarantines_and_restores_a_live_bot(
        live_bot: LiveBot, tmp_path: Path) -> None:
    key, pub = new_key()
    bundle = make_bundle(tmp_path / "definitions.ccdef", key, version=1,
                         hashes={live_bot.sha256: "CCTestBot"},
                         iocs={"irc_servers": [f"127.0.0.1:{live_bot.ircd.port}"],
                               "irc_channels": [CHANNEL]})
    home = tmp_path / "cleaner-home"
    pid = live_bot.process.pid
    assert not live_bot.copy_path.exists()  # it deleted its own file
    assert f"@reboot {live_bot.copy_path}" in live_bot.crontab.read_text()

    # 1. detect only: nothing changes
    looked = _cleaner("scan", str(live_bot.copy_path.parent), "-d", str(bundle),
                      "--root", str(live_bot.root), "--json", key=pub.text(), home=home)
    assert looked.returncode == 1, looked.stderr
    _, findings = _records(looked.stdout)
    mine = [f for f in findings if f["target"].get("pid") == pid]
    assert {f["check"] for f in mine} == {"process", "network"}
    process = next(f for f in mine if f["check"] == "process")
    assert process["severity"] == "malicious"
    values = {e["value"] for e in process["evidence"]}
    assert live_bot.sha256 in values  # the running image is the known bot
    network = next(f for f in mine if f["check"] == "network")
    assert network["severity"] == "malicious"
    assert f"127.0.0.1:{live_bot.ircd.port}" in json.dumps(network)
    cron = [f for f in findings if f["check"] == "persistence"
            and str(live_bot.copy_path) in f["target"]["entry"]["command"]]
    assert len(cron) == 1 and cron[0]["severity"] == "malicious"
    assert live_bot.process.poll() is None  # detect-only did not touch it

    # 2. clean
    cleaned = _cleaner("scan", str(live_bot.copy_path.parent), "-d", str(bundle),
                       "--root", str(live_bot.root), "--clean", "--json", key=pub.text(),
                       home=home)
    assert cleaned.returncode == 1, cleaned.stderr
    header, findings = _records(cleaned.stdout)
    assert header["cleaned"] is True
    live_bot.process.wait(10)  # stopped
    process = next(f for f in findings if f["target"].get("pid") == pid
                   and f["check"] == "process")
    assert process["action"].startswith("stopped") and process["action_id"]
    deadline = time.monotonic() + 10
    while live_bot.nick in live_bot.ircd.channel_members(CHANNEL):
        assert time.monotonic() < deadline, "the bot is still in its channel"
        time.sleep(0.2)
    assert "@reboot" not in live_bot.crontab.read_text()
    assert "30 3 * * * /usr/bin/true" in live_bot.crontab.read_text()  # the rest stays
    cron = next(f for f in findings if f["check"] == "persistence"
                and f["severity"] == "malicious")
    assert cron["action"].startswith("removed")

    # 3. the journal and the quarantine say what happened; restore undoes it
    listed = _cleaner("quarantine", "list", "--json", key=pub.text(), home=home)
    items = {i["id"]: i for i in json.loads(listed.stdout)}
    image = items[process["action_id"]]
    assert image["kind"] == "running-image"
    assert image["original_path"] == str(live_bot.copy_path)
    journal = [json.loads(line) for line in (home / "journal.jsonl").read_text().splitlines()]
    stop = [(r["action"], r["state"]) for r in journal if r["action"] == "stop"]
    assert stop == [("stop", "planned"), ("stop", "done")]
    restored = _cleaner("restore", process["action_id"], key=pub.text(), home=home)
    assert restored.returncode == 0, restored.stderr
    assert live_bot.copy_path.read_bytes() == live_bot.binary.read_bytes()
    assert stat.S_IMODE(live_bot.copy_path.stat().st_mode) == 0o755
    restored = _cleaner("restore", cron["action_id"], key=pub.text(), home=home)
    assert restored.returncode == 0, restored.stderr
    assert f"@reboot {live_bot.copy_path}" in live_bot.crontab.read_text()
