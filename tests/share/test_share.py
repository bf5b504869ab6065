"""STIX 2.1 and MISP exports: valid documents, escaped patterns, stable ids, the CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from cleancenter.analyze.service import set_label
from cleancenter.center import Center
from cleancenter.cli import app as cli_app
from cleancenter.collect.ingest import Ingestor
from cleancenter.share import (
    load_family,
    load_sample,
    misp_family_event,
    misp_sample_event,
    stix_family_bundle,
    stix_sample_bundle,
)
from cleancenter.share.stix import pattern_string
from cleancenter.store.catalog import SAMPLE
from tests.portal.hostile import (
    GLOBAL_V4,
    GLOBAL_V6,
    HOSTILE_DOMAIN,
    HOSTILE_URL,
    SCRIPT,
    add_hostile_sample,
)
from tests.portal.test_analyst import analyse_real_elfs

SDO_REQUIRED = {"type", "spec_version", "id", "created", "modified"}
REQUIRED = {
    "malware": SDO_REQUIRED | {"is_family"},
    "indicator": SDO_REQUIRED | {"pattern", "pattern_type", "valid_from"},
    "relationship": SDO_REQUIRED | {"relationship_type", "source_ref", "target_ref"},
    "identity": SDO_REQUIRED | {"name"},
    "file": {"type", "id"},
}
# MISP core format (draft-dulaunoy-misp-core-format): what an event and an attribute hold
MISP_EVENT_KEYS = {"uuid", "info", "date", "threat_level_id", "analysis", "distribution",
                   "timestamp", "published", "Attribute", "Orgc"}
MISP_ATTRIBUTE_KEYS = {"uuid", "type", "category", "value", "to_ids", "distribution",
                       "timestamp"}


def check_stix(bundle: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Schema checks without any library; with stix2 (and stix2-patterns) when installed."""
    assert bundle["type"] == "bundle" and bundle["id"].startswith("bundle--")
    by_type: dict[str, list[dict[str, Any]]] = {}
    ids = set()
    for obj in bundle["objects"]:
        assert REQUIRED[obj["type"]] <= obj.keys(), obj
        assert obj["id"].startswith(obj["type"] + "--") and obj["id"] not in ids
        ids.add(obj["id"])
        if "created" in obj:
            assert obj["modified"] >= obj["created"] and obj["created"].endswith("Z")
        by_type.setdefault(obj["type"], []).append(obj)
    for rel in by_type.get("relationship", []):
        assert rel["source_ref"] in ids and rel["target_ref"] in ids
    for obj in bundle["objects"]:
        for ref in [*obj.get("sample_refs", []), obj.get("created_by_ref", "")]:
            assert not ref or ref in ids
    try:
        import stix2
        from stix2patterns.validator import run_validator
    except ImportError:
        return by_type
    parsed = stix2.parse(json.dumps(bundle), allow_custom=False)
    assert len(parsed.objects) == len(bundle["objects"])
    for indicator in by_type.get("indicator", []):
        assert run_validator(indicator["pattern"]) == [], indicator["pattern"]
    for file_obj in by_type.get("file", []):  # STIX's own deterministic SCO id
        assert stix2.File(hashes=file_obj["hashes"], size=file_obj["size"]).id == file_obj["id"]
    return by_type


def misp_schema() -> dict[str, Any] | None:
    try:
        import pymisp
    except ImportError:
        return None
    path = Path(pymisp.__file__).parent / "data" / "schema.json"
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def check_misp(event: dict[str, Any]) -> list[dict[str, Any]]:
    body = event["Event"]
    assert body.keys() >= MISP_EVENT_KEYS
    assert body["threat_level_id"] in {"1", "2", "3", "4"}
    assert body["analysis"] in {"0", "1", "2"} and body["distribution"] in set("012345")
    for attribute in body["Attribute"]:
        assert attribute.keys() >= MISP_ATTRIBUTE_KEYS, attribute
    schema = misp_schema()
    if schema is not None:
        jsonschema.validate(event, schema)
        from pymisp import MISPEvent

        loaded = MISPEvent()
        loaded.load(json.dumps(event))  # checks types and categories against MISP's table
        assert len(loaded.attributes) == len(body["Attribute"])
        describe = loaded.describe_types
        for attribute in body["Attribute"]:
            assert attribute["category"] in describe["categories"]
            assert attribute["type"] in describe["category_type_mappings"][attribute["category"]]
    return body["Attribute"]  # type: ignore[no-any-return]


def test_pattern_strings_escape_quotes_and_backslashes() -> None:
    assert pattern_string("a'b\\c") == "'a\\'b\\\\c'"
    assert pattern_string("plain") == "'plain'"


def test_sample_exports(center: Center) -> None:
    sha = add_hostile_sample(center)
    sample = load_sample(center.catalog, sha)
    assert sample is not None
    bundle = stix_sample_bundle(sample)
    objects = check_stix(bundle)
    malware = {m["is_family"]: m for m in objects["malware"]}
    assert malware[False]["name"] == sha and malware[True]["name"].startswith("Hostile")
    assert malware[False]["sample_refs"] == [objects["file"][0]["id"]]
    hashes = objects["file"][0]["hashes"]
    assert hashes["SHA-256"] == sha and {"MD5", "SHA-1", "SSDEEP"} <= hashes.keys()
    patterns = {i["pattern"] for i in objects["indicator"]}
    assert f"[domain-name:value = '{HOSTILE_DOMAIN}']" in patterns
    assert f"[ipv4-addr:value = '{GLOBAL_V4}']" in patterns
    assert f"[ipv6-addr:value = '{GLOBAL_V6}']" in patterns
    escaped = HOSTILE_URL.replace("\\", "\\\\").replace("'", "\\'")
    assert f"[url:value = '{escaped}']" in patterns
    assert not any("203.0.113.7" in p or "8.8.8.8" in p for p in patterns)  # not worth it
    assert any(p.startswith("[file:hashes.'SHA-256' = '" + sha) for p in patterns)
    kinds = {(r["relationship_type"]) for r in objects["relationship"]}
    assert kinds == {"indicates", "variant-of"}
    assert stix_sample_bundle(load_sample(center.catalog, sha)) == bundle  # type: ignore[arg-type]

    event = misp_sample_event(sample)
    attributes = check_misp(event)
    values = {(a["type"], a["value"]): a for a in attributes}
    assert values[("sha256", sha)]["to_ids"] and values[("sha256", sha)]["category"] == \
        "Payload delivery"
    assert values[("domain", HOSTILE_DOMAIN)]["category"] == "Network activity"
    assert ("ip-dst", GLOBAL_V4) in values and ("url", HOSTILE_URL) in values
    assert ("filename", SCRIPT + ".exe") in values
    assert not values[("filename", SCRIPT + ".exe")]["to_ids"]
    assert {"name": "tlp:amber"} in event["Event"]["Tag"]
    assert any(t["name"].startswith('cleancenter:family="Hostile') for t in event["Event"]["Tag"])
    assert event["Event"]["threat_level_id"] == "1"
    assert misp_sample_event(load_sample(center.catalog, sha)) == event  # type: ignore[arg-type]


def test_family_exports_from_the_real_pipeline(center: Center, tmp_path: Path) -> None:
    true_sha, false_sha = analyse_real_elfs(center, tmp_path)
    for sha in (true_sha, false_sha):
        set_label(center.catalog, sha, verdict="malicious", family="Coreutil", note=None,
                  author="test")
    family = load_family(center.catalog, "COREUTIL")
    assert family is not None and family.name == "Coreutil" and family.total == 2
    bundle = stix_family_bundle(family)
    objects = check_stix(bundle)
    families = [m for m in objects["malware"] if m["is_family"]]
    assert len(families) == 1 and families[0]["name"] == "Coreutil"
    assert {f["hashes"]["SHA-256"] for f in objects["file"]} == {true_sha, false_sha}
    assert all(f["hashes"].get("TLSH") for f in objects["file"])
    assert stix_family_bundle(load_family(center.catalog, "coreutil")) == bundle  # type: ignore[arg-type]
    # the same sample in its own bundle has the same objects (same ids, same content)
    own = stix_sample_bundle(load_sample(center.catalog, true_sha))  # type: ignore[arg-type]
    in_family = {o["id"]: o for o in bundle["objects"]}
    for obj in own["objects"]:
        if obj["id"] in in_family:
            assert in_family[obj["id"]] == obj

    event = misp_family_event(family)
    attributes = check_misp(event)
    assert {a["value"] for a in attributes if a["type"] == "sha256"} == {true_sha, false_sha}
    assert {a["type"] for a in attributes} >= {"md5", "sha1", "sha256", "ssdeep", "tlsh",
                                               "filename"}
    assert "family Coreutil (2 samples)" in event["Event"]["info"]
    assert load_family(center.catalog, "nothing") is None

    limited = load_family(center.catalog, "coreutil", limit=1)
    assert limited is not None and len(limited.samples) == 1 and limited.total == 2
    assert "the newest 1 here" in misp_family_event(limited)["Event"]["info"]


def test_share_cli(center: Center, tmp_path: Path) -> None:
    sha = add_hostile_sample(center)
    runner = CliRunner()
    base = ["--data-dir", str(center.settings.data_dir), "--database-url",
            center.settings.database_url, "share"]
    out = tmp_path / "bundle.json"
    result = runner.invoke(cli_app, [*base, "stix", "--sample", sha[:12], "--out", str(out)])
    assert result.exit_code == 0, result.output
    check_stix(json.loads(out.read_text()))
    assert os.stat(out).st_mode & 0o777 == 0o644
    result = runner.invoke(cli_app, [*base, "misp", "--sample", sha])
    assert result.exit_code == 0 and check_misp(json.loads(result.stdout))
    family = json.loads(runner.invoke(cli_app, [*base, "stix", "--family", "hostile" + SCRIPT
                                                + "\x1b[31m"]).stdout)
    assert any(o.get("is_family") for o in family["objects"])
    assert runner.invoke(cli_app, [*base, "stix"]).exit_code == 2
    assert runner.invoke(cli_app, [*base, "misp", "--sample", sha, "--family", "x"]
                         ).exit_code == 2
    assert runner.invoke(cli_app, [*base, "stix", "--sample", "0" * 64]).exit_code == 1
    missing = runner.invoke(cli_app, [*base, "misp", "--family", "\x1b[31mnone"])
    assert missing.exit_code == 1 and "\x1b" not in missing.output


@pytest.mark.parametrize("kind", ["stix", "misp"])
def test_exports_need_no_report(center: Center, tmp_path: Path, kind: str) -> None:
    (tmp_path / "plain.bin").write_bytes(b"nothing analysed yet " * 20)
    Ingestor(center.catalog, center.blobs).ingest_paths([tmp_path / "plain.bin"])
    with center.catalog.engine.connect() as conn:
        sha = conn.execute(select(SAMPLE.c.sha256)).scalar_one()
    sample = load_sample(center.catalog, sha)
    assert sample is not None and sample.report is None
    if kind == "stix":
        objects = check_stix(stix_sample_bundle(sample))
        assert len(objects["indicator"]) == 1
        assert objects["indicator"][0]["indicator_types"] == ["unknown"]
    else:
        event = misp_sample_event(sample)
        check_misp(event)
        assert event["Event"]["analysis"] == "0" and event["Event"]["threat_level_id"] == "3"


def test_network_indicators_leave_out_what_proves_nothing() -> None:
    """URLs on private addresses or public resolvers, host:port values and a public
    resolver written out in full are never shared as indicators."""
    from cleancenter.analyze.report import IOC, ConfigResult
    from cleancenter.share.gather import NetworkIoc, network_iocs
    from tests.portal.hostile import GLOBAL_V4, hostile_report

    report = hostile_report(b"x").model_copy(update={
        "iocs": [IOC(type="url", value="http://192.168.1.10/bins/x86", offset=1),
                 IOC(type="url", value="http://8.8.8.8/a.sh", offset=2),
                 IOC(type="url", value=f"http://{GLOBAL_V4}:8080/b.sh", offset=3),
                 IOC(type="url", value="http://c2.example.net/c.sh", offset=4),
                 IOC(type="ipv6", value="2001:4860:4860:0:0:0:0:8888", offset=5),
                 IOC(type="domain", value="bad.example.org", offset=6)],
        "configs": [ConfigResult(extractor="t", family="Mirai", config={
            "http": [{"uri": "http://172.16.0.9/x", "hostname": "10.0.0.1:8080"}],
            "tcp": [{"server_domain": "10.0.0.7:23"}, {"server_domain": f"{GLOBAL_V4}:23"},
                    {"server_domain": "cnc.example.com:23"}]})]})
    assert network_iocs(report) == (
        NetworkIoc("domain", "bad.example.org"), NetworkIoc("domain", "cnc.example.com"),
        NetworkIoc("ipv4", GLOBAL_V4),
        NetworkIoc("url", f"http://{GLOBAL_V4}:8080/b.sh"),
        NetworkIoc("url", "http://c2.example.net/c.sh"))


def test_a_family_with_non_ascii_letters_exports_on_every_backend(
        center: Center, tmp_path: Path) -> None:
    true_sha, _ = analyse_real_elfs(center, tmp_path)
    set_label(center.catalog, true_sha, verdict="malicious", family="Émotet", note=None,
              author="test")
    sample = load_sample(center.catalog, true_sha)
    assert sample is not None and sample.family_span is not None
    assert check_stix(stix_sample_bundle(sample))["malware"]
    family = load_family(center.catalog, "Émotet")
    assert family is not None and family.total == 1
