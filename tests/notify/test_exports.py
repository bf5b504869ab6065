"""Per-ISP exports, checked against the published formats in the corpus.

X-ARF: every report validates against the published v4 schemas (``$ref`` resolved
locally from the corpus, never over the network, formats checked), and so do the
published samples (which proves the validator setup). IntelMQ: every field exists in
``harmonization.conf`` and its value has the field's type. CSV: the event4 header,
formula injection neutralized.
"""

from __future__ import annotations

import csv
import io
import ipaddress
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest
import referencing
from referencing.jsonschema import DRAFT202012

from cleancenter.notify.exports import (
    EVENT4_COLUMNS,
    FORMATS,
    Reporter,
    event4_row,
    export,
    intelmq_event,
    neutralize,
    report_id,
    xarf_report,
)
from cleancenter.notify.incidents import Incident, incident_id

REPORTER = Reporter(org="Clean Center", contact="abuse@center.example", domain="center.example")
T0 = datetime(2025, 3, 1, 8, 0, 0, tzinfo=UTC)
HOSTILE = ("=HYPERLINK(\"http://evil.example\",\"x\")", "+cmd|' /C calc'!A0", "-2+3",
           "@SUM(1,2)", "\tTAB", "\rCR", "mirai\n\"quoted\",=1", "line\u2028sep</script>")


def _incidents() -> list[Incident]:
    return [
        Incident(isp="isp-a", ip="192.0.2.10", first_seen=T0, last_seen=T0 + timedelta(hours=5),
                 events=42, ports=(40022, 40023, 51000), families=("Mirai", "gafgyt"),
                 sensors=("s1", "s2"), asn="AS64500"),
        Incident(isp="isp-a", ip="2001:db8::7", first_seen=T0 + timedelta(minutes=3),
                 last_seen=T0 + timedelta(minutes=3, microseconds=250), events=1),
        Incident(isp="isp-a", ip="198.51.100.9", first_seen=T0, last_seen=T0 + timedelta(days=2),
                 events=7, ports=(0, 2222), families=HOSTILE, sensors=("s1",), asn="64501"),
    ]


def _export(fmt: str, incidents: list[Incident] | None = None) -> str:
    out = io.StringIO(newline="")
    written = export(_incidents() if incidents is None else incidents, fmt, REPORTER, out)
    assert written == (len(_incidents()) if incidents is None else len(incidents))
    return out.getvalue()


# -- X-ARF: the validator, built from the corpus only -----------------------------------

RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
HOSTNAME_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def _date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not RFC3339.match(value):
        return False
    try:
        datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _hostname(value: object) -> bool:
    if not isinstance(value, str):
        return True
    return 0 < len(value) <= 253 and all(HOSTNAME_LABEL.match(p) for p in value.split("."))


def _format_checker() -> Any:
    """jsonschema's checkers, plus date-time and hostname (else silently unchecked)."""
    checker = jsonschema.FormatChecker()
    checker.checks("date-time")(_date_time)
    checker.checks("hostname")(_hostname)
    return checker


@pytest.fixture(scope="module")
def xarf_dir(corpus: Path) -> Path:
    return corpus / "formats" / "xarf-v4"


@pytest.fixture(scope="module")
def xarf_validator(xarf_dir: Path) -> Callable[[str], Any]:
    """``validator(name)`` for a schema of the corpus; every $ref resolves to a corpus file."""
    schemas = xarf_dir / "schemas" / "v4"
    by_path: dict[str, dict[str, Any]] = {}
    resources = []
    for path in sorted(schemas.rglob("*.json")):
        contents = json.loads(path.read_text(encoding="utf-8"))
        rel = path.relative_to(schemas).as_posix()
        # each file's $id is its place under https://xarf.org/schemas/v4/, so relative
        # $refs ("../xarf-core.json", "types/...") land on the file next to it
        assert contents["$id"] == f"https://xarf.org/schemas/v4/{rel}"
        by_path[rel] = contents
        resources.append((contents["$id"], DRAFT202012.create_resource(contents)))
    registry = referencing.Registry().with_resources(resources)  # no retrieve: no network
    checker = _format_checker()

    def validator(name: str) -> Any:
        schema = by_path[name]
        cls = jsonschema.validators.validator_for(schema)
        cls.check_schema(schema)
        return cls(schema, registry=registry, format_checker=checker)

    return validator


TYPE_SCHEMA = "types/connection-infected-host.json"
MASTER_SCHEMA = "xarf-v4-master.json"


def _errors(validator: Any, document: dict[str, Any]) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)]


def test_published_xarf_samples_validate_with_this_setup(xarf_dir: Path,
                                                         xarf_validator: Callable[[str], Any]
                                                         ) -> None:
    samples = xarf_dir / "samples" / "v4"
    for sample, schema in [("connection-infected-host.json", TYPE_SCHEMA),
                           ("infrastructure-botnet.json", "types/infrastructure-botnet.json")]:
        document = json.loads((samples / sample).read_text(encoding="utf-8"))
        assert _errors(xarf_validator(schema), document) == [], sample
        assert _errors(xarf_validator(MASTER_SCHEMA), document) == [], sample


def test_validator_setup_rejects_broken_reports(xarf_dir: Path,
                                                xarf_validator: Callable[[str], Any]) -> None:
    """The setup bites: missing required fields, a bad $ref'd field, bad formats."""
    sample = json.loads((xarf_dir / "samples" / "v4" / "connection-infected-host.json")
                        .read_text(encoding="utf-8"))
    validator = xarf_validator(TYPE_SCHEMA)
    for key in ("bot_type", "protocol", "first_seen", "reporter", "report_id"):
        broken = {k: v for k, v in sample.items() if k != key}
        assert _errors(validator, broken), key
    for key, value in [("report_id", "cc-0123456789abcdef01234567"),  # uuid format
                       ("timestamp", "2025-01-11 13:42:15"),  # date-time format
                       ("first_seen", "yesterday"),
                       ("reporter", {**sample["reporter"], "domain": "not a host!"}),
                       ("reporter", {**sample["reporter"], "contact": "nobody"}),
                       ("bot_type", "infected"), ("source_port", 0),
                       ("tags", ["Malware:Mirai"])]:
        assert _errors(validator, {**sample, key: value}), (key, value)


def test_xarf_reports_validate_against_the_published_schema(
        xarf_validator: Callable[[str], Any]) -> None:
    lines = _export("xarf").splitlines()
    assert len(lines) == 3
    for line, incident in zip(lines, _incidents(), strict=True):
        report = json.loads(line)
        assert _errors(xarf_validator(TYPE_SCHEMA), report) == []
        assert _errors(xarf_validator(MASTER_SCHEMA), report) == []
        assert report["source_identifier"] == str(ipaddress.ip_address(incident.ip))
        assert report["incident_id"] == incident.id
        assert report["report_id"] == report_id(incident)
        assert report["reporter"] == report["sender"] == {
            "org": "Clean Center", "contact": "abuse@center.example", "domain": "center.example"}
        assert report["event_count"] == incident.events
        assert f"incident:{incident.id}" in report["tags"]
    first, second, third = (json.loads(line) for line in lines)
    assert first["timestamp"] == first["first_seen"] == "2025-03-01T08:00:00Z"
    assert first["last_seen"] == "2025-03-01T13:00:00Z"
    assert first["source_port"] == 40022 and first["source_ports"] == [40022, 40023, 51000]
    assert first["malware_family"] == "Mirai" and first["source_asn"] == 64500
    assert {"malware:mirai", "malware:gafgyt"} <= set(first["tags"])
    assert "42 honeypot event(s)" in first["description"]
    assert "source_port" not in second and "malware_family" not in second
    assert second["last_seen"] == "2025-03-01T08:03:00.000250Z"
    assert third["source_port"] == 2222  # port 0 is not a port
    assert third["malware_families"] == list(HOSTILE)


def test_xarf_limits_hold_for_long_hostile_input(xarf_validator: Callable[[str], Any]) -> None:
    many = (*(f"fam{i}-" + "x" * 300 for i in range(40)), "", "---", "\u00e9\u00e9")
    incident = Incident(isp="isp-a", ip="192.0.2.1", first_seen=T0, last_seen=T0, events=3,
                        ports=tuple(range(1000, 1064)), families=many)
    report = xarf_report(incident, REPORTER)
    assert _errors(xarf_validator(TYPE_SCHEMA), report) == []
    assert len(report["tags"]) == 20 and len(report["description"]) <= 1000
    assert len(report["malware_family"]) <= 200


# -- IntelMQ: every field from harmonization.conf, with a value of its type ----------------

# The values IntelMQ's ClassificationType / ClassificationTaxonomy accept for what we emit
# (intelmq/lib/harmonization.py); the conf names the types but does not list the values.
TAXONOMY_TYPES = {"malicious-code": {"c2-server", "infected-system", "malware",
                                     "malware-configuration", "malware-distribution"}}


def _intelmq_valid(kind: str, value: object) -> bool:
    if kind in {"String", "LowercaseString", "UppercaseString", "FQDN", "URL"}:
        if not isinstance(value, str) or not value:
            return False
        if kind == "LowercaseString":
            return value == value.lower()
        return value == value.upper() if kind == "UppercaseString" else True
    if kind == "IPAddress":
        try:
            return isinstance(value, str) and str(ipaddress.ip_address(value)) == value
        except ValueError:
            return False
    if kind == "Integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "ASN":
        return (isinstance(value, int) and not isinstance(value, bool)
                and 0 < value <= 4294967295)
    if kind == "DateTime":
        if not isinstance(value, str):
            return False
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return False
        return moment.utcoffset() == timedelta(0) and moment.isoformat() == value
    if kind == "ClassificationTaxonomy":
        return value in TAXONOMY_TYPES
    if kind == "ClassificationType":
        return any(value in types for types in TAXONOMY_TYPES.values())
    if kind == "Float":
        return isinstance(value, float)
    if kind == "Boolean":
        return isinstance(value, bool)
    raise AssertionError(f"the test does not know IntelMQ type {kind}")


@pytest.fixture(scope="module")
def harmonization(corpus: Path) -> dict[str, dict[str, Any]]:
    conf = json.loads((corpus / "formats" / "intelmq" / "harmonization.conf")
                      .read_text(encoding="utf-8"))
    event: dict[str, dict[str, Any]] = conf["event"]
    return event


def test_intelmq_fields_exist_in_harmonization_with_values_of_their_type(
        harmonization: dict[str, dict[str, Any]]) -> None:
    lines = _export("intelmq").splitlines()
    assert len(lines) == 3
    assert harmonization["extra"]["type"] == "JSONDict"
    seen: set[str] = set()
    for line in lines:
        event = json.loads(line)
        for key, value in event.items():
            seen.add(key)
            if key.startswith("extra."):
                assert re.fullmatch(r"extra\.[a-z_][a-z0-9_]*", key), key
                json.dumps(value, allow_nan=False)  # JSONDict: any JSON value
                continue
            assert key in harmonization, f"{key} is not in harmonization.conf"
            spec = harmonization[key]
            assert _intelmq_valid(spec["type"], value), (key, spec["type"], value)
            if "length" in spec:
                assert len(str(value)) <= spec["length"], (key, value)
            if "regex" in spec:
                assert re.search(spec["regex"], str(value)), (key, value)
        assert event["classification.type"] in TAXONOMY_TYPES[event["classification.taxonomy"]]
    for required in ("feed.name", "classification.type", "classification.taxonomy",
                     "time.source", "time.observation", "source.ip", "source.port",
                     "source.asn", "malware.name"):
        assert required in seen
    first, second, third = (json.loads(line) for line in lines)
    assert first["source.ip"] == "192.0.2.10" and first["source.port"] == 40022
    assert first["source.asn"] == 64500 and first["malware.name"] == "mirai"
    assert first["classification.taxonomy"] == "malicious-code"
    assert first["classification.type"] == "infected-system"
    assert first["time.source"] == "2025-03-01T08:00:00+00:00"
    assert first["time.observation"] == "2025-03-01T13:00:00+00:00"
    assert first["extra.event_count"] == 42 and first["extra.incident_id"] == _incidents()[0].id
    assert "source.port" not in second and "malware.name" not in second
    assert second["source.ip"] == "2001:db8::7"
    # the first hostile family is printable ASCII: lower-cased as malware.name
    assert third["malware.name"] == HOSTILE[0].lower()
    assert third["extra.malware_families"] == list(HOSTILE)


def test_intelmq_drops_a_family_the_harmonization_refuses() -> None:
    incident = Incident(isp="isp-a", ip="192.0.2.1", first_seen=T0, last_seen=T0, events=1,
                        families=("bad\nname", "ok"), asn="ASX")
    event = intelmq_event(incident, REPORTER)
    assert "malware.name" not in event and "source.asn" not in event
    assert event["extra.malware_families"] == ["bad\nname", "ok"]


# -- Shadowserver event4 CSV --------------------------------------------------------------

def test_csv_header_is_the_event4_columns_and_rows_carry_the_incident() -> None:
    text = _export("csv")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert tuple(rows[0]) == EVENT4_COLUMNS
    assert EVENT4_COLUMNS[:8] == ("timestamp", "protocol", "src_ip", "src_port", "src_asn",
                                  "src_geo", "src_region", "src_city")
    assert len(rows) == 4 and all(len(row) == len(EVENT4_COLUMNS) for row in rows)
    records = list(csv.DictReader(io.StringIO(text, newline="")))
    first = records[0]
    assert first["timestamp"] == "2025-03-01 08:00:00" and first["protocol"] == "tcp"
    assert first["src_ip"] == "192.0.2.10" and first["src_port"] == "40022"
    assert first["src_asn"] == "64500" and first["infection"] == "Mirai"
    assert first["family"] == "Mirai;gafgyt" and first["event_id"] == _incidents()[0].id
    assert first["tag"] == "events=42;ports=40022,40023,51000"
    assert first["start_time"] == "2025-03-01T08:00:00Z"
    assert first["end_time"] == "2025-03-01T13:00:00Z"
    assert first["public_source"] == "Clean Center"
    for secret in ("dst_ip", "dst_port", "username", "password", "payload_url", "src_geo"):
        assert first[secret] == ""
    assert records[1]["src_port"] == "" and records[1]["infection"] == ""


def test_csv_neutralizes_formula_injection() -> None:
    records = list(csv.DictReader(io.StringIO(_export("csv"), newline="")))
    for record in records:
        for column, cell in record.items():
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), (column, cell)
    hostile = records[2]
    assert hostile["infection"] == "'" + HOSTILE[0]
    # the cell, as a whole, is text, and on one line
    assert hostile["family"] == "'" + ";".join(HOSTILE).translate(
        {ord("\t"): " ", ord("\r"): " ", ord("\n"): " "})
    assert _export("csv").count("\n") == len(records) + 1  # one row, one line
    row = event4_row(Incident(isp="x", ip="192.0.2.1", first_seen=T0, last_seen=T0, events=1,
                              families=("-1+2", "@x")), REPORTER)
    assert row["infection"] == "'-1+2"
    evil = Reporter(org="=cmd()", contact="a@b.example", domain="b.example")
    assert event4_row(_incidents()[0], evil)["public_source"] == "'=cmd()"
    for cell in ("=1", "+1", "-1", "@1"):
        assert neutralize(cell) == "'" + cell
    assert neutralize("\t1") == "' 1" and neutralize("\r=1") == "' =1"
    assert neutralize(" =1") == "' =1" and neutralize("\n@x") == "' @x"
    assert neutralize("a\nb=1") == "a b=1"
    assert neutralize("mirai") == "mirai" and neutralize("") == ""


# -- plain JSON, hostile strings, empty lists, stability ---------------------------------

def test_json_is_the_incident_dicts_and_hostile_strings_stay_plain_json() -> None:
    text = _export("json")
    assert json.loads(text) == [incident.to_dict() for incident in _incidents()]
    for fmt in ("xarf", "intelmq", "json"):
        output = _export(fmt)
        assert output.isascii(), fmt  # U+2028 and friends are escaped
        if fmt != "json":
            for line in output.splitlines():
                assert isinstance(json.loads(line), dict)
    assert "\\u2028" in _export("xarf") and "\\n" in _export("intelmq")


def test_empty_list_gives_valid_empty_output() -> None:
    assert _export("xarf", []) == ""
    assert _export("intelmq", []) == ""
    assert json.loads(_export("json", [])) == []
    rows = list(csv.reader(io.StringIO(_export("csv", []), newline="")))
    assert rows == [list(EVENT4_COLUMNS)]


def test_incident_ids_and_outputs_are_stable_across_exports() -> None:
    for fmt in FORMATS:
        assert _export(fmt) == _export(fmt), fmt
    first = [json.loads(line) for line in _export("xarf").splitlines()]
    second = [json.loads(line) for line in _export("intelmq").splitlines()]
    expected = [incident_id(i.isp, i.ip, i.first_seen) for i in _incidents()]
    assert [r["incident_id"] for r in first] == expected
    assert [e["extra.incident_id"] for e in second] == expected
    assert [r["id"] for r in json.loads(_export("json"))] == expected
    assert len({r["report_id"] for r in first}) == 3


def test_naive_and_aware_times_give_the_same_report() -> None:
    naive = Incident(isp="isp-a", ip="192.0.2.10", first_seen=T0.replace(tzinfo=None),
                     last_seen=T0.replace(tzinfo=None), events=1)
    tokyo = timezone(timedelta(hours=9))
    aware = Incident(isp="isp-a", ip="192.0.2.10", first_seen=T0.astimezone(tokyo),
                     last_seen=T0.astimezone(tokyo), events=1)
    assert xarf_report(naive, REPORTER)["first_seen"] == "2025-03-01T08:00:00Z"
    assert xarf_report(aware, REPORTER)["first_seen"] == "2025-03-01T08:00:00Z"
    assert intelmq_event(aware, REPORTER)["time.source"] == "2025-03-01T08:00:00+00:00"


def test_unknown_format_and_bad_address_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown export format"):
        export([], "pdf", REPORTER, io.StringIO())
    bad = Incident(isp="isp-a", ip="not-an-ip", first_seen=T0, last_seen=T0, events=1)
    for fmt in FORMATS:
        if fmt == "json":
            continue
        with pytest.raises(ValueError, match="not an IP address"):
            export([bad], fmt, REPORTER, io.StringIO())
