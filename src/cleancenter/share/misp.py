"""MISP events (the MISP core format, ``{"Event": {...}}``) for a sample or a family.

Attributes: the file hashes (md5, sha1, sha256, ssdeep, tlsh, imphash) and names
(filename) in category "Payload delivery", the network IOCs (domain, ip-dst, url) in
"Network activity". ``to_ids`` is set where a match means something: exact hashes and
network IOCs, not fuzzy hashes or file names. The family is a tag
(``cleancenter:family="NAME"``) beside the TLP tag. Distribution is "your organisation
only" (0) and attributes inherit it (5): widen it in MISP when you share.

Uuids are UUIDv5 of the content, timestamps come from the catalog, so a re-export of
unchanged data is the same document.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cleancenter.share.gather import FamilyData, NetworkIoc, SampleData
from cleancenter.share.ids import PRODUCER, epoch, uuid_for

PAYLOAD = "Payload delivery"
NETWORK = "Network activity"
THREAT_LEVEL = {"malicious": "1", "suspicious": "2", "clean": "4"}  # else 3 (low)
ANALYSIS_INITIAL, ANALYSIS_ONGOING, ANALYSIS_COMPLETE = "0", "1", "2"
DISTRIBUTION_ORG = "0"
DISTRIBUTION_INHERIT = "5"
_NETWORK_TYPE = {"domain": "domain", "ipv4": "ip-dst", "ipv6": "ip-dst", "url": "url"}

Obj = dict[str, Any]


def _tag_value(text: str) -> str:
    """A machine tag's value: no double quotes or control characters inside the quotes."""
    return "".join(c for c in text.replace('"', "'") if c.isprintable())[:200]


class _Attributes:
    def __init__(self, event_uuid: str) -> None:
        self.event_uuid = event_uuid
        self.items: dict[tuple[str, str], Obj] = {}

    def add(self, kind: str, category: str, value: str | None, when: datetime, *,
            to_ids: bool, comment: str = "") -> None:
        if not value or (kind, value) in self.items:
            return
        self.items[(kind, value)] = {
            "uuid": uuid_for("misp-attribute", self.event_uuid, kind, value),
            "type": kind, "category": category, "value": value, "to_ids": to_ids,
            "distribution": DISTRIBUTION_INHERIT, "timestamp": epoch(when),
            "comment": comment, "disable_correlation": False, "deleted": False}

    def file(self, sample: SampleData, comment: str = "") -> None:
        when = sample.updated
        self.add("sha256", PAYLOAD, sample.sha256, when, to_ids=True, comment=comment)
        self.add("sha1", PAYLOAD, sample.sha1, when, to_ids=True, comment=comment)
        self.add("md5", PAYLOAD, sample.md5, when, to_ids=True, comment=comment)
        self.add("ssdeep", PAYLOAD, sample.ssdeep, when, to_ids=False, comment=comment)
        self.add("tlsh", PAYLOAD, sample.tlsh, when, to_ids=False, comment=comment)
        self.add("imphash", PAYLOAD, sample.imphash, when, to_ids=False, comment=comment)
        for name in sample.names[:50]:
            self.add("filename", PAYLOAD, name, when, to_ids=False, comment=comment)

    def network(self, ioc: NetworkIoc, when: datetime, comment: str = "") -> None:
        self.add(_NETWORK_TYPE[ioc.kind], NETWORK, ioc.value, when, to_ids=True,
                 comment=comment)

    def sorted(self) -> list[Obj]:
        return [self.items[k] for k in sorted(self.items)]


def _event(event_uuid: str, info: str, first: datetime, updated: datetime, verdict: str | None,
           analysed: bool, family: str | None, attributes: list[Obj], producer: str,
           tlp: str) -> Obj:
    tags = [{"name": f"tlp:{tlp}"}]
    if family:
        tags.append({"name": f'{producer}:family="{_tag_value(family)}"'})
    return {"Event": {
        "uuid": event_uuid, "info": info, "date": first.date().isoformat(),
        "timestamp": epoch(updated), "published": False,
        "threat_level_id": THREAT_LEVEL.get(verdict or "", "3"),
        "analysis": ANALYSIS_COMPLETE if analysed else ANALYSIS_INITIAL,
        "distribution": DISTRIBUTION_ORG,
        "Orgc": {"name": producer, "uuid": uuid_for("misp-org", producer)},
        "Attribute": attributes, "Tag": tags}}


def misp_sample_event(sample: SampleData, *, producer: str = PRODUCER, tlp: str = "amber"
                      ) -> Obj:
    """The MISP event of one sample."""
    event_uuid = uuid_for("misp-event", "sample", sample.sha256)
    attributes = _Attributes(event_uuid)
    attributes.file(sample)
    for ioc in sample.network:
        attributes.network(ioc, sample.updated)
    info = f"{producer}: sample {sample.sha256}"
    if sample.family:
        info += f" ({sample.family})"
    return _event(event_uuid, info, sample.first_seen, sample.updated, sample.verdict,
                  sample.report is not None, sample.family, attributes.sorted(), producer, tlp)


def misp_family_event(family: FamilyData, *, producer: str = PRODUCER, tlp: str = "amber"
                      ) -> Obj:
    """The MISP event of a family: its members' files (each attribute's comment names the
    sample) and every network IOC they carry."""
    event_uuid = uuid_for("misp-event", "family", family.name.lower())
    attributes = _Attributes(event_uuid)
    for sample in family.samples:
        attributes.file(sample, comment=f"sample {sample.sha256}")
    for sample in family.samples:
        for ioc in sample.network:
            attributes.network(ioc, sample.updated, comment=f"seen in {sample.sha256}")
    updated = max([family.last_seen] + [s.updated for s in family.samples])
    verdicts = {s.verdict for s in family.samples}
    verdict = next((v for v in ("malicious", "suspicious") if v in verdicts), None)
    info = f"{producer}: family {family.name} ({family.total} samples"
    info += ")" if family.total == len(family.samples) else \
        f", the newest {len(family.samples)} here)"
    analysed = bool(family.samples) and all(s.report is not None for s in family.samples)
    return _event(event_uuid, info, family.first_seen, updated, verdict, analysed,
                  family.name, attributes.sorted(), producer, tlp)
