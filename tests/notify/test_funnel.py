"""The funnel: tokens an ISP mailed, the steps that followed, the address seen again."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from cleancenter.center import Center
from cleancenter.cli import app
from cleancenter.collect.ingest import Ingestor
from cleancenter.notify.funnel import (
    FUNNEL_EVENT,
    SENT_REPORT_FORMAT,
    SentReportError,
    Step,
    funnel,
    import_sent_report,
    read_sent_report,
    record_step,
)
from cleancenter.notify.incidents import Incident
from cleancenter.notify.infections import infected_hosts, update_infections
from cleancenter.notify.isps import add_isp, isp_incidents

NOW = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.fixture
def incidents(center: Center, corpus: Path) -> dict[str, list[Incident]]:
    """Real Cowrie events; alpha owns the /8s of a few real addresses, beta of others."""
    logs = sorted((corpus / "honeypot" / "cowrie").glob("cowrie.json*"))[:6]
    Ingestor(center.catalog, center.blobs).ingest_cowrie(logs)
    update_infections(center.catalog)
    with center.catalog.engine.connect() as conn:
        hosts = infected_hosts(conn)
    # hosts seen over a span (so a mail can fall inside it) and at a single moment
    spans = [h for h in hosts if h.last_seen - h.first_seen > timedelta(minutes=1)]
    points = [h for h in hosts if h.last_seen == h.first_seen]
    assert len(spans) >= 2 and points
    firsts = {h.src_ip.split(".")[0] for h in spans[:2] + points[:1]}
    others = {h.src_ip.split(".")[0] for h in hosts} - firsts
    with center.catalog.transaction() as conn:
        add_isp(conn, "alpha-net", contact="abuse@alpha.example", lang="ja",
                prefixes=[f"{octet}.0.0.0/8" for octet in sorted(firsts)], asns=[])
        add_isp(conn, "beta-net", contact="abuse@beta.example", lang="en",
                prefixes=[f"{octet}.0.0.0/8" for octet in sorted(others)][:3], asns=[])
    with center.catalog.engine.connect() as conn:
        return {isp: isp_incidents(conn, isp) for isp in ("alpha-net", "beta-net")}


def _row(token: str, sent_at: datetime, *ids: str) -> dict[str, object]:
    return {"token": token, "incidents": list(ids), "sent_at": sent_at.isoformat()}


def test_import_keeps_good_rows_refuses_bad_ones_and_is_idempotent(
        center: Center, incidents: dict[str, list[Incident]]) -> None:
    alpha, beta = incidents["alpha-net"], incidents["beta-net"]
    assert alpha and beta
    sent = alpha[0].last_seen
    rows = [
        _row("A" * 22, sent, alpha[0].id),
        _row("B" * 22, sent, alpha[1].id, beta[0].id),   # one foreign id: refused, rest kept
        _row("C" * 22, sent, beta[0].id),                 # only foreign ids: no notice
        "not an object",
        _row("short", sent, alpha[0].id),
        {"token": "D" * 22, "incidents": [alpha[0].id], "sent_at": "2026-01-01T00:00:00"},
        _row("E" * 22, NOW + timedelta(days=1), alpha[0].id),  # in the future
        _row("F" * 22, sent),                                   # about nothing
        _row("G" * 22, sent, "cc-not-an-id"),
        {"token": "H" * 22, "incidents": [alpha[0].id],
         "sent_at": "0001-01-01T00:00:00+01:00"},                # overflows into UTC
        {"token": "I" * 22, "incidents": [alpha[0].id], "sent_at": "1999-12-31T00:00:00Z"},
    ]
    with center.catalog.transaction() as conn:
        summary = import_sent_report(conn, "alpha-net", rows, now=NOW)
    assert (summary.new, summary.known, summary.incidents) == (2, 0, 2)
    reasons = "\n".join(summary.errors)
    assert len(summary.errors) == 10, reasons
    assert f"notification 2: {beta[0].id} is not one of alpha-net's incidents" in reasons
    for number, words in [(4, "not an object"), (5, "token"), (6, "no time zone"),
                          (7, "in the future"), (8, "incidents"), (9, "incidents"),
                          (10, "out of range"), (11, "before any notice")]:
        assert f"notification {number}: " in reasons and words in reasons
    with center.catalog.transaction() as conn:
        again = import_sent_report(conn, "alpha-net", rows[:2], now=NOW)
        stolen = import_sent_report(conn, "beta-net", [_row("A" * 22, sent, beta[0].id)],
                                    now=NOW)
    assert (again.new, again.known, again.errors) == (0, 2, [])
    assert stolen.new == 0 and stolen.errors == ["notification 1: token already used by "
                                                 "another ISP"]


def test_steps_count_only_for_known_tokens(center: Center,
                                            incidents: dict[str, list[Incident]]) -> None:
    alpha = incidents["alpha-net"]
    with center.catalog.transaction() as conn:
        import_sent_report(conn, "alpha-net", [_row("T" * 22, alpha[0].last_seen, alpha[0].id)],
                           now=NOW)
        assert record_step(conn, "T" * 22, "visit") == Step("alpha-net", first=True)
        assert record_step(conn, "T" * 22, "visit") == Step("alpha-net", first=False)
        assert record_step(conn, "U" * 22, "visit") is None          # never mailed
        assert record_step(conn, "<script>", "visit") is None
        with pytest.raises(ValueError, match="unknown funnel step"):
            record_step(conn, "T" * 22, "purchase")
        stored = conn.execute(select(func.count()).select_from(FUNNEL_EVENT)).scalar()
    assert stored == 1  # the second visit of the same notice is not stored again
    with center.catalog.engine.connect() as conn:
        alpha_figures = funnel(conn, now=NOW)[0]
    assert (alpha_figures.notified, alpha_figures.visited) == (1, 1)  # distinct notices


def test_funnel_per_isp_and_overall_with_seen_again(
        center: Center, incidents: dict[str, list[Incident]]) -> None:
    alpha, beta = incidents["alpha-net"], incidents["beta-net"]
    spans = [i for i in alpha if i.last_seen - i.first_seen > timedelta(minutes=1)]
    point = next(i for i in alpha if i.last_seen == i.first_seen)
    # mailed in the middle of a span: its later events are "seen again"; mailed after the
    # last event: not; mailed 29 days before the first event: outside the four weeks
    middle = spans[0].first_seen + (spans[0].last_seen - spans[0].first_seen) / 2
    with center.catalog.transaction() as conn:
        import_sent_report(conn, "alpha-net", [
            _row("a" * 22, middle, spans[0].id),
            _row("b" * 22, point.last_seen, point.id),
            _row("c" * 22, spans[1].first_seen - timedelta(days=29), spans[1].id),
        ], now=NOW)
        import_sent_report(conn, "beta-net", [_row("d" * 22, beta[0].last_seen, beta[0].id)],
                           now=NOW)
        record_step(conn, "a" * 22, "visit")
        record_step(conn, "a" * 22, "download")
        record_step(conn, "a" * 22, "report")
        record_step(conn, "b" * 22, "visit")
        record_step(conn, "d" * 22, "download")
    with center.catalog.engine.connect() as conn:
        figures = funnel(conn, now=NOW)
        recent = funnel(conn, now=middle + timedelta(days=1))
    alpha_f, beta_f, total = figures
    assert (alpha_f.isp, beta_f.isp, total.isp) == ("alpha-net", "beta-net", None)
    assert (alpha_f.notified, alpha_f.visited, alpha_f.downloaded, alpha_f.cleaned,
            alpha_f.seen_again) == (3, 2, 1, 1, 1)
    assert (beta_f.notified, beta_f.visited, beta_f.downloaded, beta_f.seen_again) == (
        1, 0, 1, 0)
    assert (total.notified, total.visited, total.downloaded, total.cleaned,
            total.seen_again) == (4, 2, 2, 1, 1)
    assert total.rate(total.downloaded) == 0.5 and total.window_open == 0
    assert recent[-1].window_open >= 1   # mailed a day ago: may still be seen again
    assert total.to_dict()["rates"]["visited"] == 0.5


def test_cli_imports_a_report_and_shows_the_funnel(
        center: Center, incidents: dict[str, list[Incident]], tmp_path: Path,
        database_url: str) -> None:
    alpha = incidents["alpha-net"]
    report = tmp_path / "sent.json"
    report.write_text(json.dumps({"format": SENT_REPORT_FORMAT, "notifications": [
        _row("Z" * 22, alpha[0].last_seen, alpha[0].id), _row("bad", NOW, alpha[0].id)]}))
    runner = CliRunner()
    base = ["--data-dir", str(center.settings.data_dir), "--database-url", database_url]
    result = runner.invoke(app, [*base, "notify", "sent-report", str(report), "--isp",
                                 "alpha-net", "--json"])
    assert result.exit_code == 1, result.output
    assert json.loads(result.stdout)["new"] == 1
    result = runner.invoke(app, [*base, "notify", "funnel", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["funnel"][-1]["notified"] == 1 and data["ccc_fy2006"]["downloaded"] == 0.308
    result = runner.invoke(app, [*base, "notify", "funnel"])
    assert "CCC FY2006" in result.stdout and "alpha-net" in result.stdout
    result = runner.invoke(app, [*base, "notify", "sent-report", str(report), "--isp",
                                 "nobody"])
    assert result.exit_code == 2 and "no ISP named" in result.output


@pytest.mark.parametrize(("content", "message"), [
    (b"{not json", "not a readable sent report"),
    (b'{"format": "other/1", "notifications": []}', "not a cleancenter-sent-report/1"),
    (b'{"format": "cleancenter-sent-report/1", "notifications": {}}', "not a list"),
    (b"[]", "not a cleancenter-sent-report/1"),
    (b"[" * 100_000, "not a readable sent report"),   # nested too deep for the parser
])
def test_unreadable_reports_are_refused_whole(tmp_path: Path, content: bytes,
                                              message: str) -> None:
    path = tmp_path / "report.json"
    path.write_bytes(content)
    with pytest.raises(SentReportError, match=message):
        read_sent_report(path)
