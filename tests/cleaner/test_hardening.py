"""Hostile machines: odd file names, paths swapped between scan and clean, lines hidden
among others, bundles that would inflate, and addresses that only look like a C&C's."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from cleancenter.cleaner.definitions import IocSet
from cleancenter.cleaner.files import _read_once
from cleancenter.cleaner.findings import Evidence, Finding
from cleancenter.cleaner.network import Connection, check_connections
from cleancenter.cleaner.persistence.paths import windows_in_root
from cleancenter.cleaner.quarantine import Journal, Quarantine, QuarantineError
from cleancenter.cleaner.remediate import CleanTools, clean
from cleancenter.definitions.bundle import BundleError, read_bundle
from tests.cleaner.bundles import make_bundle, new_key
from tests.cleaner.test_cli import EICAR, rows, run
from tests.cleaner.test_processes import make_defs


@pytest.fixture
def quarantine(tmp_path: Path) -> Quarantine:
    return Quarantine(tmp_path / "q", Journal(tmp_path / "journal.jsonl"))


def _tools(quarantine: Quarantine, exe: str | None = None) -> CleanTools:
    stopped: list[int] = []

    def stop(pid: int, start: object) -> str:
        stopped.append(pid)
        return "stopped"
    tools = CleanTools(quarantine=quarantine, read_image=lambda pid: None,
                       image_stat=lambda pid: None, stop=stop, exe_of=lambda pid: exe)
    tools.stopped = stopped  # type: ignore[attr-defined]
    return tools


def test_a_file_name_that_is_not_utf8_is_scanned_cleaned_and_restored(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    raw = os.fsencode(str(tree)) + b"/bot\xff\x1b[2J.com"
    with open(raw, "wb") as out:
        out.write(EICAR)
    (tree / "caf\udce9.txt").write_bytes(b"harmless")
    key, pub = new_key()
    bundle = make_bundle(tmp_path / "d.ccdef", key,
                         hashes={hashlib.sha256(EICAR).hexdigest(): "EICAR-Test"})
    home = tmp_path / "home"
    result = run("scan", str(tree), "-d", str(bundle), "--checks", "files", "--clean",
                 "--json", home=home, key=pub.text())
    assert result.returncode == 1, result.stderr
    finding = rows(result.stdout)[1]
    assert finding["where"].endswith("bot\\xff\\x1b[2J.com")  # shown escaped, never raw
    assert "\x1b" not in result.stdout
    assert finding["action"] == "quarantined" and not os.path.exists(raw)
    assert run("restore", finding["action_id"], home=home, key=pub.text()).returncode == 0
    with open(raw, "rb") as back:
        assert back.read() == EICAR
    summary = run("scan", str(tree), "-d", str(bundle), "--checks", "files", home=home,
                  key=pub.text())
    assert summary.returncode == 1 and "\x1b" not in summary.stdout


def test_a_root_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    key, pub = new_key()
    bundle = make_bundle(tmp_path / "d.ccdef", key)
    result = run("scan", str(tmp_path / "nope"), "-d", str(bundle), "--checks", "files",
                 home=tmp_path / "home", key=pub.text())
    assert result.returncode == 2


def test_clean_refuses_recordings_and_images(tmp_path: Path) -> None:
    key, pub = new_key()
    bundle = make_bundle(tmp_path / "d.ccdef", key)
    listing = tmp_path / "listing.json"
    listing.write_text(json.dumps({"system": "windows", "processes": []}))
    result = run("processes", "--snapshot", str(listing), "-d", str(bundle), home=tmp_path,
                 key=pub.text())
    assert result.returncode == 0
    result = run("scan", str(tmp_path), "--snapshot", str(listing), "--clean", "-d",
                 str(bundle), home=tmp_path / "home", key=pub.text())
    assert result.returncode == 2 and "running machine only" in result.stderr


def test_a_folder_swapped_for_a_link_after_the_scan_is_not_followed(
        tmp_path: Path, quarantine: Quarantine) -> None:
    drop, victim = tmp_path / "drop", tmp_path / "victim"
    drop.mkdir()
    victim.mkdir()
    (drop / "x.bin").write_bytes(EICAR)
    (victim / "x.bin").write_bytes(b"precious")
    scanned_sha = hashlib.sha256(EICAR).hexdigest()
    shutil.rmtree(drop)
    drop.symlink_to(victim)  # the bot (or a local user) swaps the folder after the scan
    finding = Finding("file", "hash-match", "malicious", str(drop / "x.bin"), "known",
                      [Evidence("hash", scanned_sha)],
                      {"path": str(drop / "x.bin"), "sha256": scanned_sha})
    clean([finding], _tools(quarantine))
    assert finding.action is not None and finding.action.startswith("failed")
    assert (victim / "x.bin").read_bytes() == b"precious"
    with pytest.raises(QuarantineError, match="changed since the scan"):
        quarantine.quarantine_file(str(victim / "x.bin"), reason="t",
                                   expected_sha256=scanned_sha)
    assert (victim / "x.bin").exists()


def test_restore_refuses_a_folder_that_now_leads_elsewhere(tmp_path: Path,
                                                           quarantine: Quarantine) -> None:
    folder = tmp_path / "drop"
    folder.mkdir()
    (folder / "bot").write_bytes(b"bot bytes")
    item = quarantine.quarantine_file(str(folder / "bot"), reason="t")
    folder.rmdir()
    (tmp_path / "cron.d").mkdir()
    folder.symlink_to(tmp_path / "cron.d")
    with pytest.raises(QuarantineError, match="leads to"):
        quarantine.restore(item.id)
    assert not (tmp_path / "cron.d" / "bot").exists()
    quarantine.restore(item.id, to=str(tmp_path / "safe" / "bot"))
    assert (tmp_path / "safe" / "bot").read_bytes() == b"bot bytes"


def test_every_bot_line_of_one_file_is_cut_in_one_go(tmp_path: Path,
                                                     quarantine: Quarantine) -> None:
    crontab = tmp_path / "crontab"
    crontab.write_text("MAILTO=root\n@reboot /tmp/.x/a\n# keep\n*/5 * * * * /tmp/.x/b\n")
    findings = [Finding("persistence", "malicious-autostart", "malicious", f"l{n}", "bot", [],
                        {"entry": {"file": str(crontab), "line": n, "command": cmd}})
                for n, cmd in ((2, "/tmp/.x/a"), (4, "/tmp/.x/b"))]
    clean(findings, _tools(quarantine))
    assert [f.action for f in findings] == ["removed (line cut, file backed up)"] * 2
    assert crontab.read_text() == "MAILTO=root\n# keep\n"
    assert findings[0].action_id == findings[1].action_id
    quarantine.restore(str(findings[0].action_id))
    assert "/tmp/.x/b" in crontab.read_text()


def test_lines_are_counted_as_the_persistence_check_counts_them(
        tmp_path: Path, quarantine: Quarantine) -> None:
    crontab = tmp_path / "crontab"  # a form feed splits a line for str.splitlines
    crontab.write_bytes(b"# a\x0cb\n@reboot /tmp/.x/a\n")
    finding = Finding("persistence", "malicious-autostart", "malicious", "x", "bot", [],
                      {"entry": {"file": str(crontab), "line": 3, "command": "/tmp/.x/a"}})
    clean([finding], _tools(quarantine))
    assert finding.action == "removed (line cut, file backed up)"
    assert crontab.read_bytes() == b"# a\x0cb\n"


def test_an_os_program_is_not_stopped_for_an_address_alone(quarantine: Quarantine) -> None:
    by_address = Finding("network", "ioc-connection", "malicious", "tcp ...", "C&C",
                         [Evidence("ioc", "45.9.148.99", detail="C&C address")],
                         {"pid": 4242, "start_time": 1})
    tools = _tools(quarantine, exe="/usr/bin/perl")
    clean([by_address], tools)
    assert by_address.action is not None and by_address.action.startswith("skipped")
    assert tools.stopped == []  # type: ignore[attr-defined]
    by_irc = Finding("network", "ioc-connection", "malicious", "tcp ...", "C&C",
                     [Evidence("ioc", "45.9.148.99:6667", detail="IRC server, 45.9.148.99")],
                     {"pid": 4243, "start_time": 1})
    clean([by_irc], tools)
    assert tools.stopped == [4243]  # type: ignore[attr-defined]


def test_a_listed_address_connecting_in_makes_no_bot() -> None:
    defs = make_defs(iocs={"ips": ["45.9.148.99"]})
    conns = [Connection("tcp", "0.0.0.0", 22, "0.0.0.0", 0, "LISTEN", pid=700),
             Connection("tcp", "10.0.0.5", 22, "45.9.148.99", 51515, "ESTABLISHED", pid=701),
             Connection("tcp", "10.0.0.5", 40000, "45.9.148.99", 443, "ESTABLISHED", pid=702)]
    found = {f.target["pid"]: f for f in check_connections(conns, defs)}
    assert (found[701].severity, found[701].kind) == ("suspicious", "ioc-connection-incoming")
    assert found[702].severity == "malicious"
    assert IocSet.from_lists({"ips": ["45.9.148.99"]}).match_ip("::ffff:45.9.148.99")


def test_offline_paths_never_climb_out_of_the_image(tmp_path: Path) -> None:
    (tmp_path / "img" / "Windows").mkdir(parents=True)
    (tmp_path / "img" / "link").symlink_to("/etc")
    assert windows_in_root(tmp_path / "img", "C:\\..\\..\\etc\\passwd") is None
    assert windows_in_root(tmp_path / "img", "C:\\link\\passwd") is None
    assert windows_in_root(tmp_path / "img", "C:\\WINDOWS") == tmp_path / "img" / "Windows"


def test_a_fifo_is_never_waited_on(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(OSError, match="not a regular file"):
        _read_once(str(fifo))


def test_a_file_rewritten_in_place_with_its_old_mtime_is_scanned_again(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    target = tree / "tool.bin"
    target.write_bytes(b"A" * len(EICAR))
    before = target.stat()
    key, pub = new_key()
    bundle = make_bundle(tmp_path / "d.ccdef", key,
                         hashes={hashlib.sha256(EICAR).hexdigest(): "EICAR-Test"})
    home = tmp_path / "home"
    args = ("scan", str(tree), "-d", str(bundle), "--checks", "files", "--json")
    assert run(*args, home=home, key=pub.text()).returncode == 0
    target.write_bytes(EICAR)  # same size, then the old times put back
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    again = run(*args, home=home, key=pub.text())
    assert again.returncode == 1
    assert rows(again.stdout)[0]["stats"]["files"]["from_cache"] == 0


def test_an_unsigned_bundle_is_never_inflated(tmp_path: Path) -> None:
    key, pub = new_key()
    good = make_bundle(tmp_path / "good.ccdef", key)
    bomb = tmp_path / "bomb.ccdef"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info, src.read(info))
        dst.writestr("rules/big.yar", io.BytesIO(bytes(64 << 20)).getvalue())
    with pytest.raises(BundleError, match="not in the signed manifest"):
        read_bundle(bomb, pub)
    _, other = new_key()
    with pytest.raises(BundleError, match="pinned public key"):
        read_bundle(bomb, other)


def test_module_runs_as_a_script() -> None:
    result = subprocess.run([sys.executable, "-m", "cleancenter.cleaner", "--help"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "scan" in result.stdout
