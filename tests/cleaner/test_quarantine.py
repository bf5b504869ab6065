"""Quarantine, journal and restore: every action can be undone, byte for byte."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from cleancenter.cleaner.findings import Evidence, Finding
from cleancenter.cleaner.quarantine import Journal, Quarantine, QuarantineError
from cleancenter.cleaner.remediate import CleanTools, clean, correlate


@pytest.fixture
def quarantine(tmp_path: Path) -> Quarantine:
    return Quarantine(tmp_path / "home" / "quarantine", Journal(tmp_path / "home" / "j.jsonl"))


def _bot(tmp_path: Path, data: bytes = b"\x7fELF fake bot payload " * 100) -> Path:
    path = tmp_path / "victim" / "kworker"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(0o751)
    os.utime(path, ns=(1_600_000_000_123_456_789, 1_500_000_000_987_654_321))
    return path


def test_quarantine_then_restore_is_byte_identical_with_mode_and_times(
        tmp_path: Path, quarantine: Quarantine) -> None:
    path = _bot(tmp_path)
    before = path.read_bytes(), path.stat()
    item = quarantine.quarantine_file(str(path), reason="test")
    assert not path.exists()
    stored = quarantine.folder / item.id / "data"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o400  # never executable
    assert b"fake bot payload" not in stored.read_bytes()  # stored encoded
    restored = quarantine.restore(item.id)
    assert restored.restored_at
    after = path.stat()
    assert path.read_bytes() == before[0]
    assert stat.S_IMODE(after.st_mode) == 0o751
    assert (after.st_uid, after.st_gid) == (before[1].st_uid, before[1].st_gid)
    assert after.st_mtime_ns == before[1].st_mtime_ns
    assert after.st_atime_ns == before[1].st_atime_ns


def test_journal_records_planned_before_done(tmp_path: Path, quarantine: Quarantine) -> None:
    path = _bot(tmp_path)
    item = quarantine.quarantine_file(str(path), reason="test")
    states = [(r["action"], r["state"]) for r in quarantine.journal.records()]
    assert states == [("quarantine", "planned"), ("quarantine", "done")]
    assert quarantine.journal.records()[-1]["id"] == item.id


def test_restore_refuses_to_overwrite_and_can_go_elsewhere(tmp_path: Path,
                                                           quarantine: Quarantine) -> None:
    path = _bot(tmp_path)
    item = quarantine.quarantine_file(str(path), reason="test")
    path.write_bytes(b"something new")
    with pytest.raises(QuarantineError, match="exists"):
        quarantine.restore(item.id)
    assert path.read_bytes() == b"something new"
    other = tmp_path / "elsewhere" / "copy"
    quarantine.restore(item.id, to=str(other))
    assert other.read_bytes() == b"\x7fELF fake bot payload " * 100


def test_damaged_quarantine_data_is_refused(tmp_path: Path, quarantine: Quarantine) -> None:
    path = _bot(tmp_path)
    item = quarantine.quarantine_file(str(path), reason="test")
    data = quarantine.folder / item.id / "data"
    data.chmod(0o600)
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    data.write_bytes(bytes(raw))
    with pytest.raises(QuarantineError, match=r"damaged|sha256"):
        quarantine.restore(item.id)
    assert not path.exists()  # nothing half-restored


def test_unknown_and_hostile_ids_are_refused(quarantine: Quarantine) -> None:
    for bad in ("nope", "../../etc", ".hidden", ""):
        with pytest.raises(QuarantineError):
            quarantine.restore(bad)


def test_vanished_file_fails_cleanly_and_is_journaled(tmp_path: Path,
                                                       quarantine: Quarantine) -> None:
    with pytest.raises(QuarantineError):
        quarantine.quarantine_file(str(tmp_path / "gone"), reason="test")
    assert quarantine.journal.records()[-1]["state"] == "failed"
    assert quarantine.items() == []


def _tools(quarantine: Quarantine) -> CleanTools:
    return CleanTools(quarantine=quarantine, read_image=lambda pid: None,
                      image_stat=lambda pid: None, stop=lambda pid, start: "not running")


def test_clean_cuts_the_bots_line_keeps_the_rest_and_restores(
        tmp_path: Path, quarantine: Quarantine) -> None:
    bot = _bot(tmp_path)
    crontab = tmp_path / "crontab"
    original = f"# m h dom mon dow command\n0 * * * * /usr/bin/backup\n@reboot {bot}\n"
    crontab.write_text(original)
    crontab.chmod(0o600)
    file_finding = Finding("file", "hash-match", "malicious", str(bot), "known",
                           [Evidence("hash", "ab" * 32)], {"path": str(bot)})
    entry = {"file": str(crontab), "line": 3, "whole_file": False, "program": str(bot),
             "command": f"{bot}"}
    cron_finding = Finding("persistence", "suspicious-autostart", "suspicious",
                           f"{crontab}:3", "runs from a temp folder", [], {"entry": entry})
    findings = [file_finding, cron_finding]
    correlate(findings)
    assert cron_finding.severity == "malicious"
    clean(findings, _tools(quarantine))
    assert file_finding.action == "quarantined" and not bot.exists()
    assert cron_finding.action is not None and cron_finding.action.startswith("removed")
    assert crontab.read_text() == "# m h dom mon dow command\n0 * * * * /usr/bin/backup\n"
    assert stat.S_IMODE(crontab.stat().st_mode) == 0o600
    assert cron_finding.action_id is not None and file_finding.action_id is not None
    quarantine.restore(cron_finding.action_id)  # a backup replaces the cut file
    quarantine.restore(file_finding.action_id)
    assert crontab.read_text() == original
    assert bot.exists()


def test_changed_line_is_not_cut(tmp_path: Path, quarantine: Quarantine) -> None:
    crontab = tmp_path / "crontab"
    crontab.write_text("@reboot /tmp/other\n")
    entry = {"file": str(crontab), "line": 1, "whole_file": False, "program": "/tmp/x",
             "command": "/tmp/x"}
    finding = Finding("persistence", "malicious-autostart", "malicious", "x", "y", [],
                      {"entry": entry})
    clean([finding], _tools(quarantine))
    assert finding.action is not None and finding.action.startswith("failed")
    assert crontab.read_text() == "@reboot /tmp/other\n"


def test_os_critical_path_needs_an_exact_hash(tmp_path: Path, quarantine: Quarantine) -> None:
    rule_only = Finding("file", "yara-match", "malicious", "/usr/bin/true", "YARA rule X",
                        [Evidence("rule", "X")], {"path": "/usr/bin/true"})
    clean([rule_only], _tools(quarantine))
    assert rule_only.action == "skipped: OS-critical path, no exact hash match"
    assert Path("/usr/bin/true").exists()
