"""Build a definitions release from the catalog: what is malicious, and how to find it.

The bundle holds the sha256 (with size and family) of every sample whose verdict is
malicious (an analyst's label counts first, as in the catalog), the IOCs those samples
carry, the registered YARA packs, the behaviour table and a manifest whose version only
grows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, func, select

from cleancenter import __version__
from cleancenter.analyze.yara_rules import list_packs, rule_files
from cleancenter.definitions.behaviour import behaviour_rules
from cleancenter.definitions.bundle import write_bundle
from cleancenter.definitions.keys import load_private, public_of
from cleancenter.store.catalog import SAMPLE, Catalog, utcnow
from cleancenter.store.models import Ioc, Release, SampleIoc

RELEASE = cast(Table, Release.__table__)
IOC = cast(Table, Ioc.__table__)
SAMPLE_IOC = cast(Table, SampleIoc.__table__)
MIN_CLEANER_VERSION = "0.1.0"
IOC_TYPES = {"ipv4": "ips", "ipv6": "ips", "domain": "domains", "url": "urls",
             "irc-server": "irc_servers", "irc-channel": "irc_channels"}


@dataclass
class BuiltRelease:
    version: int
    path: Path
    sha256: str
    counts: dict[str, int]
    key_fingerprint: str

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "path": str(self.path), "sha256": self.sha256,
                "counts": self.counts, "key_fingerprint": self.key_fingerprint}


def build_release(catalog: Catalog, *, keys_dir: Path, rules_registry: Path, out: Path | None,
                  releases_dir: Path) -> BuiltRelease:
    key = load_private(keys_dir)
    with catalog.engine.connect() as conn:
        version = int(conn.execute(select(func.max(RELEASE.c.version))).scalar() or 0) + 1
        malicious = conn.execute(
            select(SAMPLE.c.sha256, SAMPLE.c.size, SAMPLE.c.family)
            .where(SAMPLE.c.verdict == "malicious").order_by(SAMPLE.c.sha256)).all()
        iocs = conn.execute(
            select(IOC.c.type, IOC.c.value).distinct()
            .join(SAMPLE_IOC, SAMPLE_IOC.c.ioc_id == IOC.c.id)
            .join(SAMPLE, SAMPLE.c.sha256 == SAMPLE_IOC.c.sha256)
            .where(SAMPLE.c.verdict == "malicious", IOC.c.type.in_(list(IOC_TYPES)))
            .order_by(IOC.c.type, IOC.c.value)).all()
    hashes = "".join(json.dumps({"sha256": s, "size": size, "family": fam}) + "\n"
                     for s, size, fam in malicious)
    ioc_lists: dict[str, list[str]] = {name: [] for name in sorted(set(IOC_TYPES.values()))}
    for kind, value in iocs:
        ioc_lists[IOC_TYPES[kind]].append(value)
    files: dict[str, bytes] = {
        "hashes.jsonl": hashes.encode(),
        "iocs.json": json.dumps(ioc_lists, indent=1, sort_keys=True).encode(),
        "behaviour.json": json.dumps(behaviour_rules(), indent=1, sort_keys=True).encode(),
    }
    rule_count = 0
    for entry in list_packs(rules_registry):
        for path in rule_files(Path(entry.folder)):
            relative = path.relative_to(entry.folder).as_posix()
            files[f"rules/{entry.name}/{relative}"] = path.read_bytes()
            rule_count += 1
    counts = {"hashes": len(malicious), "rule_files": rule_count,
              **{name: len(values) for name, values in ioc_lists.items()}}
    created = utcnow()
    manifest = {"version": version, "created": created.isoformat(),
                "min_cleaner_version": MIN_CLEANER_VERSION, "center_version": __version__,
                "counts": counts}
    path = out or releases_dir / f"definitions-{version}.ccdef"
    sha256 = write_bundle(path, manifest, files, key)
    fingerprint = public_of(key).fingerprint
    with catalog.transaction() as conn:
        conn.execute(RELEASE.insert().values(
            version=version, created=created, sha256=sha256, key_fingerprint=fingerprint,
            counts=json.dumps(counts), path=str(path)))
    return BuiltRelease(version, path, sha256, counts, fingerprint)
