"""Per-ISP incident lists in the formats abuse desks already read.

``export(incidents, fmt, reporter, out)`` writes one list; ``fmt`` is one of

``xarf``
    X-ARF v4 reports, category ``connection``, type ``infected_host``, as JSON Lines: one
    complete report (a JSON object) per line. Each report validates against the published
    schema ``types/connection-infected-host.json`` (which includes ``xarf-core.json``).
``csv``
    Shadowserver-style CSV with the columns of the ``event4_honeypot_brute_force`` report
    (:data:`EVENT4_COLUMNS`), one row per incident; columns the center does not know are
    left empty.
``intelmq``
    IntelMQ harmonized events as JSON Lines (the flat ``source.ip`` / ``extra.*`` form the
    IntelMQ file output writes), every field taken from IntelMQ's ``harmonization.conf``.
``json``
    A JSON array of :meth:`Incident.to_dict`.

Strings that come from events (families above all) are hostile. JSON is written by
``json.dumps`` with ``ensure_ascii`` and ``allow_nan=False``: plain JSON, one object a line
where the format is line-based, nothing a line splitter or a JavaScript parser treats
specially. In CSV, control characters (newlines, tabs, ...) in a cell become spaces, so
that one row is one line, and every cell that starts with ``=``, ``+``, ``-`` or ``@``
(after any leading spaces) gets a leading ``'``, so that a spreadsheet shows it as text and
never evaluates it.

The X-ARF, CSV and IntelMQ formats give only the number of sensors that saw a host, never
their names or addresses, nor the credentials tried (the decoys stay secret). The plain
``json`` format is ``Incident.to_dict()`` unchanged, which does list the sensor names.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import ipaddress
import json
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

from cleancenter.notify.incidents import Incident

FORMATS = ("xarf", "csv", "intelmq", "json")

XARF_VERSION = "4.2.0"
XARF_DESCRIPTION_MAX = 1000  # xarf-core.json: description maxLength
XARF_EVIDENCE_DESCRIPTION_MAX = 500  # xarf-core.json: evidence_item.description maxLength
XARF_FAMILY_MAX = 200  # infrastructure-botnet.json: malware_family maxLength
XARF_TAGS_MAX = 20  # xarf-core.json: tags maxItems
_TAG_PART = re.compile(r"[^a-z0-9_+-]+")

# Namespace of the X-ARF report ids: uuid5(NAMESPACE_URL, "urn:cleancenter:incident").
# xarf-core.json wants report_id to be a UUID; incident ids (``cc-`` + 24 hex digits) are
# not, so the report id is the name-based UUID of the incident id, as stable as the id.
REPORT_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:cleancenter:incident")

# The header of Shadowserver's Honeypot Brute Force Events report (file name
# ``event4_honeypot_brute_force``), in Shadowserver's order, as in a real report of
# 2021-03-27 kept as test data by IntelMQ's Shadowserver parser
# (certtools/intelmq, intelmq/tests/bots/parsers/shadowserver/testdata/
# honeypot_brute_force.csv); the field meanings are on
# https://www.shadowserver.org/what-we-do/network-reporting/honeypot-brute-force-events-report/
EVENT4_COLUMNS: tuple[str, ...] = (
    "timestamp", "protocol", "src_ip", "src_port", "src_asn", "src_geo", "src_region",
    "src_city", "src_hostname", "src_naics", "src_sector", "device_vendor", "device_type",
    "device_model", "dst_ip", "dst_port", "dst_asn", "dst_geo", "dst_region", "dst_city",
    "dst_hostname", "dst_naics", "dst_sector", "public_source", "infection", "family", "tag",
    "application", "version", "event_id", "service", "start_time", "end_time",
    "client_version", "username", "password", "payload_url", "payload_md5",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

INTELMQ_FEED_NAME = "cleancenter-infected-hosts"
INTELMQ_TAXONOMY = "malicious-code"
INTELMQ_TYPE = "infected-system"
INTELMQ_IDENTIFIER = "honeypot-observed-host"
_PRINTABLE_ASCII = re.compile(r"^[ -~]+$")  # harmonization.conf: malware.name regex


@dataclass(frozen=True)
class Reporter:
    """The center, as it signs its reports (X-ARF ``reporter`` and ``sender``)."""

    org: str  # organisation name
    contact: str  # abuse contact e-mail address
    domain: str  # the organisation's domain, for verification


# -- shared helpers -------------------------------------------------------------------


def _utc(moment: datetime) -> datetime:
    """An aware UTC datetime; a naive one is taken as UTC (incidents are UTC)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _rfc3339(moment: datetime) -> str:
    """``2025-01-10T08:00:00Z`` (fractions only when there are any)."""
    return _utc(moment).isoformat().replace("+00:00", "Z")


def _address(incident: Incident) -> str:
    try:
        return str(ipaddress.ip_address(incident.ip))
    except ValueError:
        raise ValueError(f"incident {incident.id}: not an IP address: {incident.ip!r}") from None


def _ports(incident: Incident) -> list[int]:
    return [port for port in incident.ports if 1 <= port <= 65535]


def _asn(incident: Incident) -> int | None:
    """``AS64500`` / ``as64500`` / ``64500`` to 64500; anything else to None."""
    if incident.asn is None:
        return None
    text = incident.asn.strip()
    if text[:2].lower() == "as":
        text = text[2:]
    if not text.isascii() or not text.isdigit():
        return None
    number = int(text)
    return number if 0 < number <= 4294967295 else None


def _summary(incident: Incident) -> str:
    """One line a human reads: what, how often, when, which family."""
    ports = _ports(incident)
    text = (f"{incident.events} honeypot event(s) from {_address(incident)} "
            f"between {_rfc3339(incident.first_seen)} and {_rfc3339(incident.last_seen)} (UTC)")
    if ports:
        shown = ", ".join(str(port) for port in ports[:10])
        more = f" and {len(ports) - 10} more" if len(ports) > 10 else ""
        text += f", source port(s) {shown}{more}"
    if incident.families:
        text += f"; malware family: {', '.join(incident.families)}"
    return text + f"; incident {incident.id}."


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=True, allow_nan=False, separators=(", ", ": "))


# -- X-ARF v4 -------------------------------------------------------------------------


def report_id(incident: Incident) -> str:
    """The X-ARF report id of an incident: a UUID, stable like the incident id."""
    return str(uuid.uuid5(REPORT_NAMESPACE, incident.id))


def _tag(namespace: str, value: str) -> str | None:
    """``namespace:value`` in the tag grammar of xarf-core.json, or None if nothing is left."""
    slug = _TAG_PART.sub("-", value.lower()).lstrip("_+-")
    return f"{namespace}:{slug[:100]}" if slug else None


def xarf_report(incident: Incident, reporter: Reporter) -> dict[str, Any]:
    """One X-ARF v4 ``connection`` / ``infected_host`` report.

    Required by the schema: xarf_version, report_id, timestamp (the window's start),
    reporter and sender (both the center), source_identifier (the address), category,
    type, protocol (``tcp``: the decoys speak SSH and Telnet), bot_type (``malicious``)
    and first_seen. Beside them: source_port (the first of the host's source ports; the
    schema has one), last_seen, evidence_source ``honeypot``, a text evidence item, tags,
    a description, and extension fields (the schema allows them) ``incident_id``,
    ``event_count``, ``source_ports``, ``malware_family`` (as in the published samples),
    ``malware_families``, ``source_asn`` and ``sensor_count``.
    """
    contact = {"org": reporter.org, "contact": reporter.contact, "domain": reporter.domain}
    summary = _summary(incident)
    evidence_text = summary.encode("utf-8")
    tags = [f"incident:{incident.id}"]
    for family in incident.families:
        tag = _tag("malware", family)
        if tag is not None and tag not in tags and len(tags) < XARF_TAGS_MAX:
            tags.append(tag)
    report: dict[str, Any] = {
        "xarf_version": XARF_VERSION,
        "report_id": report_id(incident),
        "timestamp": _rfc3339(incident.first_seen),
        "reporter": contact,
        "sender": dict(contact),
        "source_identifier": _address(incident),
        "category": "connection",
        "type": "infected_host",
        "protocol": "tcp",
        "bot_type": "malicious",
        "first_seen": _rfc3339(incident.first_seen),
        "last_seen": _rfc3339(incident.last_seen),
        "evidence_source": "honeypot",
        "description": _clip(summary, XARF_DESCRIPTION_MAX),
        "evidence": [{
            "content_type": "text/plain",
            "description": _clip(f"Honeypot observation summary, {incident.events} event(s)",
                                 XARF_EVIDENCE_DESCRIPTION_MAX),
            "payload": base64.b64encode(evidence_text).decode("ascii"),
            "hash": "sha256:" + hashlib.sha256(evidence_text).hexdigest(),
            "size": len(evidence_text),
        }],
        "tags": tags,
        "incident_id": incident.id,
        "event_count": incident.events,
        "sensor_count": len(incident.sensors),
    }
    ports = _ports(incident)
    if ports:
        report["source_port"] = ports[0]
        report["source_ports"] = ports
    if incident.families:
        report["malware_family"] = _clip(incident.families[0], XARF_FAMILY_MAX)
        report["malware_families"] = list(incident.families)
    asn = _asn(incident)
    if asn is not None:
        report["source_asn"] = asn
    return report


def write_xarf(incidents: Iterable[Incident], reporter: Reporter, out: TextIO) -> int:
    """X-ARF reports as JSON Lines; returns the number written (no incidents: no lines)."""
    count = 0
    for incident in incidents:
        out.write(_dumps(xarf_report(incident, reporter)) + "\n")
        count += 1
    return count


# -- Shadowserver-style CSV -----------------------------------------------------------


def neutralize(cell: str) -> str:
    """A one-line cell a spreadsheet shows as text.

    Control characters become spaces; a cell that then starts with = + - or @ (after any
    leading spaces) gets a leading ``'``.
    """
    if cell.startswith(_FORMULA_START):
        cell = "'" + cell
    cell = _CONTROL.sub(" ", cell)
    return "'" + cell if cell.lstrip(" ").startswith(_FORMULA_START[:4]) else cell


def event4_row(incident: Incident, reporter: Reporter) -> dict[str, str | int]:
    """One ``event4_honeypot_brute_force`` row; unknown columns are empty strings.

    ``timestamp`` is the window's start (Shadowserver's ``YYYY-MM-DD HH:MM:SS`` UTC),
    ``start_time`` / ``end_time`` the window, ``src_port`` the first source port,
    ``infection`` the first family, ``family`` all families (``;``-separated), ``tag``
    ``events=N`` plus ``ports=...`` when there are more ports than ``src_port`` shows,
    ``event_id`` the incident id and ``public_source`` the center. Destination, device,
    credential and payload columns stay empty: the decoys are not disclosed.
    """
    row: dict[str, str | int] = dict.fromkeys(EVENT4_COLUMNS, "")
    ports = _ports(incident)
    asn = _asn(incident)
    tag = f"events={incident.events}"
    if len(ports) > 1:
        tag += ";ports=" + ",".join(str(port) for port in ports)
    row.update({
        "timestamp": _utc(incident.first_seen).strftime("%Y-%m-%d %H:%M:%S"),
        "protocol": "tcp",
        "src_ip": _address(incident),
        "src_port": ports[0] if ports else "",
        "src_asn": asn if asn is not None else "",
        "public_source": reporter.org,
        "infection": incident.families[0] if incident.families else "",
        "family": ";".join(incident.families),
        "tag": tag,
        "event_id": incident.id,
        "start_time": _rfc3339(incident.first_seen),
        "end_time": _rfc3339(incident.last_seen),
    })
    return {key: neutralize(value) if isinstance(value, str) else value
            for key, value in row.items()}


def write_csv(incidents: Iterable[Incident], reporter: Reporter, out: TextIO) -> int:
    """The header and one row per incident (no incidents: the header alone)."""
    writer = csv.DictWriter(out, fieldnames=EVENT4_COLUMNS, lineterminator="\n")
    writer.writeheader()
    count = 0
    for incident in incidents:
        writer.writerow(event4_row(incident, reporter))
        count += 1
    return count


# -- IntelMQ --------------------------------------------------------------------------


def _intelmq_time(moment: datetime) -> str:
    """IntelMQ's DateTime form: ``datetime.isoformat()`` in UTC, ``+00:00``."""
    return _utc(moment).isoformat()


def intelmq_event(incident: Incident, reporter: Reporter) -> dict[str, Any]:
    """One IntelMQ event (flat keys), classified ``malicious-code`` / ``infected-system``.

    ``time.source`` is the window's start and ``time.observation`` its end (the last time
    the center's sensors observed the host), so the output is the same on every export.
    ``malware.name`` is the first family, lower-cased, when it is printable ASCII (the
    harmonization's rule); all families, as given, are in ``extra.malware_families``.
    """
    event: dict[str, Any] = {
        "feed.name": INTELMQ_FEED_NAME,
        "feed.provider": reporter.org,
        "classification.taxonomy": INTELMQ_TAXONOMY,
        "classification.type": INTELMQ_TYPE,
        "classification.identifier": INTELMQ_IDENTIFIER,
        "source.ip": _address(incident),
        "protocol.transport": "tcp",
        "time.source": _intelmq_time(incident.first_seen),
        "time.observation": _intelmq_time(incident.last_seen),
        "event_description.text": _summary(incident),
        "extra.incident_id": incident.id,
        "extra.isp": incident.isp,
        "extra.first_seen": _intelmq_time(incident.first_seen),
        "extra.last_seen": _intelmq_time(incident.last_seen),
        "extra.event_count": incident.events,
        "extra.sensor_count": len(incident.sensors),
    }
    ports = _ports(incident)
    if ports:
        event["source.port"] = ports[0]
        event["extra.source_ports"] = ports
    asn = _asn(incident)
    if asn is not None:
        event["source.asn"] = asn
    if incident.families:
        name = incident.families[0].lower()
        if _PRINTABLE_ASCII.match(name):
            event["malware.name"] = name
        event["extra.malware_families"] = list(incident.families)
    return event


def write_intelmq(incidents: Iterable[Incident], reporter: Reporter, out: TextIO) -> int:
    """IntelMQ events as JSON Lines; returns the number written."""
    count = 0
    for incident in incidents:
        out.write(_dumps(intelmq_event(incident, reporter)) + "\n")
        count += 1
    return count


# -- plain JSON -----------------------------------------------------------------------


def write_json(incidents: Iterable[Incident], reporter: Reporter, out: TextIO) -> int:
    """A JSON array of ``Incident.to_dict()``, one incident a line (no incidents: ``[]``)."""
    del reporter  # the plain list carries no reporter
    count = 0
    out.write("[")
    for incident in incidents:
        out.write(("\n" if count == 0 else ",\n") + _dumps(incident.to_dict()))
        count += 1
    out.write("\n]\n" if count else "]\n")
    return count


WRITERS: dict[str, Callable[[Iterable[Incident], Reporter, TextIO], int]] = {
    "xarf": write_xarf, "csv": write_csv, "intelmq": write_intelmq, "json": write_json,
}


def export(incidents: Iterable[Incident], fmt: str, reporter: Reporter, out: TextIO) -> int:
    """Write ``incidents`` to ``out`` in ``fmt`` (see :data:`FORMATS`); returns the count.

    Incidents are written in the order given. For ``csv`` open ``out`` with
    ``newline=""``.
    """
    try:
        writer = WRITERS[fmt]
    except KeyError:
        raise ValueError(f"unknown export format {fmt!r}: one of {', '.join(FORMATS)}") from None
    return writer(incidents, reporter, out)
