"""A sample whose every attacker-controlled text is an attack on the page or the terminal.

`add_hostile_sample(center)` puts one into a center and returns its sha256: names, IOCs,
bot configuration, YARA meta, family, verdict reasons, analysis errors, the analyst's
note and an event's sensor and URL carry `PAYLOADS`. The analyst views (and, later, a
browser test) must show them only as text; ``cleancenter samples show`` must print no
raw control character.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

from cleancenter.analyze.report import (
    IOC,
    ConfigResult,
    Family,
    Hashes,
    Identity,
    Packer,
    Reason,
    Report,
    StageError,
    Verdict,
    YaraMatch,
)
from cleancenter.analyze.service import AnalysisService, AnalyzeSummary, TaskResult, set_label
from cleancenter.center import Center
from cleancenter.store.catalog import NewSample
from cleancenter.store.ipkey import ip_key

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
ESC = "\x1b[31m"
PAYLOADS = (SCRIPT, IMG, ESC)
ALL = SCRIPT + IMG + ESC  # the three in one string
# what each looks like once escaped for HTML (markupsafe writes " as &#34;) and with the
# control character shown as text
SCRIPT_ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
IMG_ESCAPED = "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;"
ESC_SHOWN = "\\x1b[31m"
HOSTILE_DOMAIN = "c2.hostile-test.example"
HOSTILE_URL = "http://" + HOSTILE_DOMAIN + "/x.sh?q='\\" + SCRIPT
# global addresses that IANA holds (example.com's), so an indicator of them harms nobody
GLOBAL_V4 = "93.184.216.34"
GLOBAL_V6 = "2606:2800:220:1:248:1893:25c8:1946"
WHEN = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def hostile_bytes() -> bytes:
    return b"\x7fELF hostile test sample, harmless data " + ALL.encode() + b"\x00" * 64


def hostile_report(data: bytes) -> Report:
    sha256 = hashlib.sha256(data).hexdigest()
    return Report(
        sha256=sha256, created=WHEN,
        identity=Identity(kind="data", description="data " + ALL, magic=ALL),
        hashes=Hashes(md5=hashlib.md5(data).hexdigest(), sha1=hashlib.sha1(data).hexdigest(),
                      sha256=sha256, size=len(data),
                      ssdeep="3:hostileSSDEEP:x",  # computed: never the sample's text
                      tlsh=None),
        packer=Packer(name="UPX" + SCRIPT, packed=True, confidence="low", evidence=[ALL]),
        iocs=[IOC(type="url", value=HOSTILE_URL, offset=4),
              IOC(type="domain", value=HOSTILE_DOMAIN, offset=8),
              IOC(type="ipv4", value="203.0.113.7", offset=12, port=6667),  # not global
              IOC(type="ipv4", value=GLOBAL_V4, offset=13),
              IOC(type="ipv6", value=GLOBAL_V6, offset=14),
              IOC(type="ipv4", value="8.8.8.8", offset=15),  # a public resolver
              IOC(type="irc-channel", value="#" + ALL, offset=16),
              IOC(type="filename", value=IMG + ".exe", offset=20),
              IOC(type="path", value="C:\\" + ESC + SCRIPT, offset=24)],
        yara=[YaraMatch(rule="Hostile_" + "Rule", pack=SCRIPT, namespace=IMG, tags=[ESC],
                        meta={"author": IMG + ESC, "reference": "javascript:alert(1)//" + IMG,
                              "description": SCRIPT, "score": 90}),
              YaraMatch(rule="Hostile_Ref", pack="community",
                        meta={"author": "x", "reference": "https://ref.example/?" + IMG})],
        configs=[ConfigResult(extractor="irc", family="IRCBot" + SCRIPT, config={
            "family": "IRCBot" + SCRIPT,
            "tcp": [{"server_domain": HOSTILE_DOMAIN, "server_port": 6667, "usage": "c2"},
                    {"server_ip": "203.0.113.7", "server_port": 6667, "usage": "c2"}],
            "http": [{"uri": HOSTILE_URL, "usage": "download"}],
            "password": [IMG],
            "other": {"irc": {"servers": [{"host": HOSTILE_DOMAIN, "port": 6667}],
                              "channels": [{"name": "#" + SCRIPT, "key": ESC + "key"}],
                              "nick_pattern": IMG, "command_prefix": ESC,
                              "commands": [SCRIPT]}}})],
        family=Family(name="Hostile" + SCRIPT + ESC, source="config", reason=IMG),
        verdict=Verdict(value="malicious", reasons=[
            Reason(kind="config", detail=ALL, weight="malicious")]),
        errors=[StageError(stage="strings", message=IMG + ESC)],
    )


def add_hostile_sample(center: Center) -> str:
    """Put the hostile sample (blob, names, report, IOCs, label, an event) into ``center``;
    returns its sha256."""
    data = hostile_bytes()
    report = hostile_report(data)
    sha256 = report.sha256
    center.blobs.begin_batch()
    try:
        center.blobs.put_bytes(data)
        center.blobs.publish()
    finally:
        center.blobs.abort_batch()
        center.blobs.end_batch()
    with center.catalog.transaction() as conn:
        center.catalog.add_samples(conn, [NewSample(
            sha256, report.hashes.md5, report.hashes.sha1, len(data), "elf", WHEN,
            names=(SCRIPT + ".exe", IMG, ESC + "spoolsvc.exe", "bins/" + ALL),
            tags=("hostile",))])
        center.catalog.add_events(conn, [(
            "hostile-" + sha256[:16], WHEN, "cowrie", "sensor" + ALL, "s" + sha256[:8],
            "198.51.100.9", ip_key("198.51.100.9"), 40000, "192.0.2.1", 22, "tcp", "download",
            "cowrie.session.file_download", HOSTILE_URL, sha256,
            json.dumps({"url": HOSTILE_URL}))])
    service = AnalysisService(center.catalog, center.blobs, center.settings.work_dir / "unpack")
    service._store(TaskResult(sha256=sha256, report_json=report.model_dump_json()),
                   AnalyzeSummary())
    set_label(center.catalog, sha256, verdict=None, family=None, note=ALL, author="tester")
    return sha256
