"""`cleancenter isp-side subscribers import/list`: the ISP's subscriber file."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from typer.testing import CliRunner

from cleancenter.cli import app

runner = CliRunner()


def _import(tmp_path: Path, data: bytes | str, *extra: str) -> tuple[int, str, str]:
    csv_file = tmp_path / "subs.csv"
    if isinstance(data, str):
        data = data.encode("utf-8")
    csv_file.write_bytes(data)
    result = runner.invoke(app, ["isp-side", "subscribers", "import", str(csv_file),
                                 "--db", str(tmp_path / "isp.db"), *extra])
    return result.exit_code, result.stdout, result.stderr


def test_bad_rows_are_reported_with_their_line_and_skipped(tmp_path: Path) -> None:
    long_name = "x" * 201
    text = ("\ufeffsubscriber_id,email,lang,name\n"
            "sub-1,one@example.jp,ja,山田 太郎\n"             # 2 good
            "sub-2,not-an-address,en,\n"                      # 3 bad e-mail
            "sub-3,,en,\n"                                    # 4 missing e-mail
            "sub-4,four@example.com,fr,\n"                    # 5 lang
            ",five@example.com,en,\n"                         # 6 empty id
            "sub-6,six@example.com,en,Six\n"                  # 7 duplicate (with 8)
            "sub-6,six-b@example.com,en,Six B\n"              # 8
            '"sub-7","seven@example.com","en","Evil\r\nBcc: x@evil.example"\n'  # 9-10
            "sub-8,eight@example.com,en,\x1b[31mred\n"         # 11 control character
            f"sub-9,nine@example.com,en,{long_name}\n"        # 12 too long
            "sub-10,ten@example.com,EN,Ten\n"                 # 13 good (case)
            "sub-11,eleven@example.com,en,a,extra\n"          # 14 too many fields
            "sub-12,a@b@example.com,en,\n")                   # 15 bad e-mail
    code, stdout, _ = _import(tmp_path, text, "--json")
    assert code == 1
    report = json.loads(stdout)
    assert report["added"] == 2
    assert [row["line"] for row in report["bad_rows"]] == [3, 4, 5, 6, 7, 8, 9, 11, 12,
                                                            14, 15]
    reasons = {row["line"]: row["reason"] for row in report["bad_rows"]}
    assert "also on line 8" in reasons[7]
    assert "control character" in reasons[9] and "control character" in reasons[11]
    assert "lang" in reasons[5]
    listed = runner.invoke(app, ["isp-side", "subscribers", "list", "--json", "--db",
                                 str(tmp_path / "isp.db")])
    assert [(s["subscriber_id"], s["lang"], s["name"]) for s in json.loads(listed.stdout)] \
        == [("sub-1", "ja", "山田 太郎"), ("sub-10", "en", "Ten")]


def test_upsert_updates_changed_rows(tmp_path: Path) -> None:
    header = "subscriber_id,email,lang,name\n"
    assert _import(tmp_path, header + "s1,a@example.com,en,A\ns2,b@example.com,ja,B\n")[0] == 0
    code, stdout, _ = _import(tmp_path, header + "s1,a2@example.com,ja,A\ns2,b@example.com,"
                              "ja,B\ns3,c@example.com,en,\n", "--json")
    assert code == 0
    assert json.loads(stdout) | {"bad_rows": []} == {"added": 1, "updated": 1, "unchanged": 1,
                                                     "bad_rows": []}
    db = sqlite3.connect(tmp_path / "isp.db")
    assert db.execute("SELECT email, lang FROM subscriber WHERE subscriber_id = 's1'"
                      ).fetchone() == ("a2@example.com", "ja")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA user_version").fetchone()[0] == 1
    assert (tmp_path / "isp.db").stat().st_mode & 0o077 == 0  # owner only


def test_a_file_without_the_header_is_refused(tmp_path: Path) -> None:
    for text in ("id,mail,language\n1,a@example.com,en\n", "a@example.com,en\n", "",
                 b"subscriber_id,email,lang\ns1,\xff@example.com,en\n"):
        code, _, _ = _import(tmp_path, text)
        assert code == 2, text
    assert not sqlite3.connect(tmp_path / "isp.db").execute(
        "SELECT name FROM sqlite_master WHERE name = 'subscriber'").fetchall()


def test_a_row_the_csv_reader_cannot_read_does_not_hide_the_rows_after_it(
        tmp_path: Path) -> None:
    from cleancenter.notify.isp.subscribers import read_subscriber_csv

    later = "".join(f"sub-{i},u{i}@example.com,en,U\n" for i in range(3))
    path = tmp_path / "subs.csv"
    path.write_text("subscriber_id,email,lang,name\nsub-a,a@example.com,en,A\n"
                    "sub-x,x@example.com,en," + "y" * 200_000 + "\n" + later)
    good, bad = read_subscriber_csv(path)
    assert [s.subscriber_id for s in good] == ["sub-a", "sub-0", "sub-1", "sub-2"]
    assert [(b.line, b.reason.split(":")[0]) for b in bad] == [(3, "not CSV")]
    path.write_text("subscriber_id,email,lang,name\nsub-a,a@example.com,en,A\n"
                    'sub-x,x@example.com,en,"never closed\n' + later)
    good, bad = read_subscriber_csv(path)
    assert [s.subscriber_id for s in good] == ["sub-a"]
    assert [(b.line, b.reason) for b in bad] == [
        (3, "not CSV: a quote opened on line 3 is never closed, so lines 3-6 were not read")]
