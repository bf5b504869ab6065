"""`cleancenter isp ...` and `cleancenter notify ...` as an operator runs them."""

from __future__ import annotations

import csv
import ipaddress
import json
from pathlib import Path

from typer.testing import CliRunner

from cleancenter.center import Center
from cleancenter.cli import app
from cleancenter.collect.ingest import Ingestor

runner = CliRunner()


def test_register_an_isp_and_export_only_its_addresses(sqlite_center: Center, corpus: Path,
                                                       tmp_path: Path) -> None:
    logs = sorted((corpus / "honeypot" / "cowrie").glob("cowrie.json*"))[:4]
    Ingestor(sqlite_center.catalog, sqlite_center.blobs).ingest_cowrie(logs)
    data = str(sqlite_center.settings.data_dir)
    listed = runner.invoke(app, ["--data-dir", data, "notify", "infections", "--limit", "0",
                                 "--json"])
    assert listed.exit_code == 0, listed.output
    hosts = [h["src_ip"] for h in json.loads(listed.stdout)["hosts"]]
    net = ipaddress.ip_network(f"{hosts[0]}/16", strict=False)
    added = runner.invoke(app, ["--data-dir", data, "isp", "add", "alpha-net", "--prefix",
                                str(net), "--contact", "abuse@alpha.example", "--lang", "ja"])
    assert added.exit_code == 0, added.output
    out = tmp_path / "alpha.csv"
    exported = runner.invoke(app, ["--data-dir", data, "notify", "export", "--isp",
                                   "alpha-net", "--format", "csv", "--out", str(out)])
    assert exported.exit_code == 0, exported.output
    with out.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {r["src_ip"] for r in rows} == {h for h in hosts if ipaddress.ip_address(h) in net}
    for bad in (["--isp", "nobody"], ["--isp", "alpha-net", "--format", "pdf"],
                ["--isp", "alpha-net", "--since", "yesterdayish"]):
        result = runner.invoke(app, ["--data-dir", data, "notify", "export", *bad])
        assert result.exit_code == 2, (bad, result.output)
    refused = runner.invoke(app, ["--data-dir", data, "isp", "add", "beta-net", "--prefix",
                                  str(net), "--contact", "abuse@beta.example"])
    assert refused.exit_code == 2 and "already registered" in refused.output
