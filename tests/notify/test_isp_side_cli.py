"""`cleancenter isp-side match`: the center's list against the ISP's own leases."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from typer.testing import CliRunner

from cleancenter.cli import app
from cleancenter.notify.incidents import Incident

runner = CliRunner()
CGNAT = """\
2026-11-26T01:00:00Z ALLOC 100.64.0.7 203.0.113.9 1024-2047 sub-alice
2026-11-26T01:00:00Z ALLOC 100.64.0.8 203.0.113.9 2048-3071 sub-bob
2026-11-26T01:30:00Z ALLOC 100.64.0.9 203.0.113.9 2048-3071 sub-carol
this line is no allocation
2026-11-26T03:00:00Z RELEASE 100.64.0.7 203.0.113.9 1024-2047 sub-alice
"""


def _incident(ip: str, hour: int, minute: int, ports: tuple[int, ...]) -> Incident:
    at = datetime(2026, 11, 26, hour, minute, tzinfo=UTC)
    return Incident(isp="alpha-net", ip=ip, first_seen=at, last_seen=at, events=3,
                    ports=ports)


def test_each_incident_is_matched_none_or_ambiguous(tmp_path: Path) -> None:
    incidents = [_incident("203.0.113.9", 1, 10, (1500,)),   # alice's block
                 _incident("203.0.113.9", 1, 40, (2500,)),   # bob's block, also carol's
                 _incident("203.0.113.9", 3, 0, (1500,)),    # alice released at 03:00
                 _incident("198.51.100.1", 1, 10, (80,))]    # not ours at all
    listed = tmp_path / "list.json"
    listed.write_text(json.dumps([i.to_dict() for i in incidents]))
    leases = tmp_path / "cgnat.log"
    leases.write_text(CGNAT)
    result = runner.invoke(app, ["isp-side", "match", str(listed), "--leases", str(leases),
                                 "--json"])
    assert result.exit_code == 1, result.output  # a bad lease line was skipped
    report = json.loads(result.stdout)
    statuses = [(m["status"], m["subscriber"]) for m in report["matches"]]
    assert statuses == [("matched", "sub-alice"), ("ambiguous", None), ("none", None),
                        ("none", None)]
    assert len(report["matches"][1]["candidates"]) == 2
    assert report["matches"][0]["id"] == incidents[0].id
    # the block allocated twice is reported too (and both leases kept: hence ambiguous)
    assert [e["where"] for e in report["lease_errors"]] == [f"{leases}:3", f"{leases}:4"]


def test_a_list_that_is_not_the_centers_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "list.json"
    for text in ("not json", json.dumps({"ip": "x"}), json.dumps([{"ip": "1.2.3.4"}])):
        bad.write_text(text)
        result = runner.invoke(app, ["isp-side", "match", str(bad), "--leases",
                                     str(bad)])
        assert result.exit_code == 2, result.output
