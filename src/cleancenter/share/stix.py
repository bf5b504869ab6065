"""STIX 2.1 bundles for a sample or a family.

A sample's bundle: the file (an SCO with MD5, SHA-1, SHA-256, SSDEEP and TLSH), a
``malware`` SDO for the sample (``is_family: false``, the file in ``sample_refs``) and,
when it has one, its family (``is_family: true``, the sample a ``variant-of`` it), an
``indicator`` for the file's hashes and one for each network IOC (domain, IPv4/IPv6
address, URL), each in a ``relationship`` ``indicates`` the malware. A family's bundle:
the family SDO with its members' files and the indicators of all of them.

Ids are deterministic: SCOs by STIX's own rule (UUIDv5 of the ID-contributing
properties in the spec's namespace), everything else a UUIDv5 of what it says, so a
re-export of unchanged data is byte for byte the same. Times come from the catalog.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from cleancenter.share.gather import FamilyData, NetworkIoc, SampleData
from cleancenter.share.ids import PRODUCER, SCO_NAMESPACE, canonical, stix_time, uuid_for

SPEC = "2.1"
MEDIA_TYPE = "application/stix+json;version=2.1"
# a fixed time for the producer's identity, which never changes
IDENTITY_TIME = "2024-01-01T00:00:00.000Z"
_NETWORK_OBJECT = {"domain": "domain-name", "ipv4": "ipv4-addr", "ipv6": "ipv6-addr",
                   "url": "url"}
_INDICATOR_TYPES = {"malicious": ["malicious-activity"], "suspicious": ["anomalous-activity"]}

Obj = dict[str, Any]


def pattern_string(value: str) -> str:
    """A STIX pattern string literal: quotes and backslashes escaped, in single quotes."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def network_pattern(ioc: NetworkIoc) -> str:
    return f"[{_NETWORK_OBJECT[ioc.kind]}:value = {pattern_string(ioc.value)}]"


def file_pattern(sample: SampleData) -> str:
    return ("[file:hashes.'SHA-256' = " + pattern_string(sample.sha256)
            + " OR file:hashes.'SHA-1' = " + pattern_string(sample.sha1)
            + " OR file:hashes.MD5 = " + pattern_string(sample.md5) + "]")


def _sdo_id(kind: str, *parts: str) -> str:
    return f"{kind}--{uuid_for(kind, *parts)}"


def identity(producer: str = PRODUCER) -> Obj:
    return {"type": "identity", "spec_version": SPEC, "id": _sdo_id("identity", producer),
            "created": IDENTITY_TIME, "modified": IDENTITY_TIME, "name": producer,
            "identity_class": "organization"}


def file_object(sample: SampleData) -> Obj:
    hashes = {"MD5": sample.md5, "SHA-1": sample.sha1, "SHA-256": sample.sha256}
    if sample.ssdeep:
        hashes["SSDEEP"] = sample.ssdeep
    if sample.tlsh:
        # STIX (and its validators) take TLSH as the 70 hex digits, without the "T1"
        # version prefix that TLSH 4 puts in front
        digest = sample.tlsh[2:] if sample.tlsh[:2].upper() == "T1" else sample.tlsh
        if len(digest) == 70:
            hashes["TLSH"] = digest
    # STIX 2.1 6.7: id from hashes (one hash, MD5 first), name, extensions, parent dir;
    # we give no name, so the id depends on the content alone
    sco_id = "file--" + str(uuid.uuid5(SCO_NAMESPACE, canonical({"hashes": {"MD5": sample.md5}})))
    return {"type": "file", "spec_version": SPEC, "id": sco_id, "hashes": hashes,
            "size": sample.size}


def _family_object(name: str, first: datetime, last: datetime, creator: str) -> Obj:
    return {"type": "malware", "spec_version": SPEC,
            "id": _sdo_id("malware", "family", name.lower()), "created_by_ref": creator,
            "created": stix_time(first), "modified": stix_time(max(first, last)), "name": name,
            "is_family": True, "first_seen": stix_time(first), "last_seen": stix_time(last)}


def _sample_object(sample: SampleData, file_id: str, creator: str) -> Obj:
    description = f"Verdict: {sample.verdict or 'unknown'}."
    if sample.names:
        description += " Seen as: " + ", ".join(sample.names[:20]) + "."
    return {"type": "malware", "spec_version": SPEC,
            "id": _sdo_id("malware", "sample", sample.sha256), "created_by_ref": creator,
            "created": stix_time(sample.first_seen), "modified": stix_time(sample.updated),
            "name": sample.sha256, "description": description, "is_family": False,
            "first_seen": stix_time(sample.first_seen),
            "last_seen": stix_time(sample.last_seen), "sample_refs": [file_id]}


def _indicator(pattern: str, name: str, since: datetime, verdict: str | None,
               creator: str, scope: str = "", updated: datetime | None = None) -> Obj:
    """``modified`` follows the data it was made from (a new verdict is a new version of
    the same indicator, so a consumer takes the update)."""
    when = stix_time(since)
    return {"type": "indicator", "spec_version": SPEC,
            "id": _sdo_id("indicator", scope, pattern), "created_by_ref": creator,
            "created": when, "modified": stix_time(max(since, updated or since)),
            "name": name,
            "indicator_types": _INDICATOR_TYPES.get(verdict or "", ["unknown"]),
            "pattern": pattern, "pattern_type": "stix", "pattern_version": SPEC,
            "valid_from": when}


def _relationship(source: Obj, kind: str, target: Obj, creator: str) -> Obj:
    when = source["created"]
    return {"type": "relationship", "spec_version": SPEC,
            "id": _sdo_id("relationship", source["id"], kind, target["id"]),
            "created_by_ref": creator, "created": when, "modified": when,
            "relationship_type": kind, "source_ref": source["id"], "target_ref": target["id"]}


def _network_indicators(samples: Iterable[SampleData], creator: str, scope: str) -> list[Obj]:
    """One indicator per network IOC, valid from the first sample that carried it. The
    id includes the scope (this sample, this family): the same IOC's indicator in another
    export may start at another time."""
    first: dict[NetworkIoc, SampleData] = {}
    for sample in samples:
        for ioc in sample.network:
            seen = first.get(ioc)
            if seen is None or sample.first_seen < seen.first_seen:
                first[ioc] = sample
    newest: dict[NetworkIoc, datetime] = {}
    for sample in samples:
        for ioc in sample.network:
            newest[ioc] = max(newest.get(ioc, sample.updated), sample.updated)
    return [_indicator(network_pattern(ioc), f"{_NETWORK_OBJECT[ioc.kind]} {ioc.value}",
                       sample.first_seen, sample.verdict, creator, scope, newest[ioc])
            for ioc, sample in sorted(first.items())]


def _bundle(subject: str, objects: list[Obj]) -> Obj:
    unique = {o["id"]: o for o in objects}
    return {"type": "bundle", "id": f"bundle--{uuid_for('bundle', subject, *sorted(unique))}",
            "objects": list(unique.values())}


def _sample_objects(sample: SampleData, family: Obj | None, cid: str) -> tuple[Obj, list[Obj]]:
    """The sample's malware SDO and its file, file indicator and relationships."""
    file_obj = file_object(sample)
    malware = _sample_object(sample, file_obj["id"], cid)
    indicator = _indicator(file_pattern(sample), f"file {sample.sha256}", sample.first_seen,
                           sample.verdict, cid, updated=sample.updated)
    objects = [file_obj, malware, indicator, _relationship(indicator, "indicates", malware, cid)]
    if family is not None:
        objects.append(_relationship(malware, "variant-of", family, cid))
    return malware, objects


def stix_sample_bundle(sample: SampleData, *, producer: str = PRODUCER) -> Obj:
    """The STIX 2.1 bundle of one sample."""
    creator = identity(producer)
    cid = creator["id"]
    objects: list[Obj] = [creator]
    family = None
    if sample.family:
        first, last = sample.family_span or (sample.first_seen, sample.last_seen)
        family = _family_object(sample.family, first, last, cid)
        objects.append(family)
    malware, own = _sample_objects(sample, family, cid)
    objects += own
    for indicator in _network_indicators([sample], cid, "sample:" + sample.sha256):
        objects += [indicator, _relationship(indicator, "indicates", malware, cid)]
    return _bundle("sample:" + sample.sha256, objects)


def stix_family_bundle(family: FamilyData, *, producer: str = PRODUCER) -> Obj:
    """The STIX 2.1 bundle of a family: its SDO, its members (as in their own bundles)
    and one indicator for each network IOC any of them carries."""
    creator = identity(producer)
    cid = creator["id"]
    family_obj = _family_object(family.name, family.first_seen, family.last_seen, cid)
    objects: list[Obj] = [creator, family_obj]
    for sample in family.samples:
        objects += _sample_objects(sample, family_obj, cid)[1]
    for indicator in _network_indicators(family.samples, cid, "family:" + family.name.lower()):
        objects += [indicator, _relationship(indicator, "indicates", family_obj, cid)]
    return _bundle("family:" + family.name.lower(), objects)
