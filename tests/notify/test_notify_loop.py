"""The whole loop on real honeypot data: events, lists, leases, mails, tokens, funnel.

Real Cowrie logs become infections; two ISPs own some of the real addresses; leases and
subscribers are generated; mails go to a real SMTP server (aiosmtpd) on 127.0.0.1. The
test reads the generated files and the delivered mails itself and checks that each mail
reached the subscriber whose lease covers the address, in that subscriber's language,
with a token the center now knows, and that nobody got a mail for an ambiguous or
unmatched address. The addresses are data: nothing is sent to them.
"""

from __future__ import annotations

import csv
import email
import mailbox
import re
from email.message import Message
from email.policy import default
from pathlib import Path

from sqlalchemy import select

from cleancenter.center import Center
from cleancenter.collect.ingest import Ingestor
from cleancenter.notify.demo import ISPS, notify_demo
from cleancenter.notify.funnel import NOTICE, NOTICE_INCIDENT
from cleancenter.notify.isps import isp_incidents

JAPANESE = re.compile(r"[\u3040-\u30ff]")


def _body(message: Message, subtype: str) -> str:
    part = message.get_body(preferencelist=(subtype,))  # type: ignore[attr-defined]
    assert part is not None
    return str(part.get_content())


def _lease_holders(path: Path) -> dict[str, set[str]]:
    """address -> the subscriber keys of its leases, read straight from the file."""
    holders: dict[str, set[str]] = {}
    text = path.read_text(encoding="utf-8")
    if path.name == "dhcpd.leases":
        for ip, key in re.findall(r"lease (\S+) \{[^}]*hardware ethernet ([0-9a-f:]+);", text):
            holders.setdefault(ip, set()).add(key)
    else:
        for row in csv.DictReader(text.splitlines()):
            holders.setdefault(row["framedipaddress"], set()).add(row["username"])
    return holders


def test_each_mail_reaches_the_lease_holder_in_their_language(sqlite_center: Center,
                                                              corpus: Path,
                                                              tmp_path: Path) -> None:
    center = sqlite_center
    logs = sorted((corpus / "honeypot" / "cowrie").glob("cowrie.json*"))[:6]
    Ingestor(center.catalog, center.blobs).ingest_cowrie(logs)
    summary, _ = notify_demo(center, tmp_path)
    mails = [email.message_from_bytes(m.as_bytes(), policy=default)
             for m in mailbox.Maildir(tmp_path / "notify" / "sink", create=False)]
    assert len(mails) == summary["delivered"] == sum(s["sent"] for s in summary["isps"]) > 0
    with center.catalog.engine.connect() as conn:
        known = {row.token: row.isp for row in conn.execute(select(NOTICE))}
        about = {(row.token, row.src_ip) for row in conn.execute(select(NOTICE_INCIDENT))}
        listed = {isp.name: {i.ip for i in isp_incidents(conn, isp.name)} for isp in ISPS}
    assert not listed[ISPS[0].name] & listed[ISPS[1].name]
    by_address: dict[str, list[Message]] = {}
    for mail in mails:
        text = _body(mail, "plain")
        link = re.search(r"http://127\.0\.0\.1:8080/n/([A-Za-z0-9_-]{22})", text)
        assert link is not None
        token = link.group(1)
        assert token in _body(mail, "html")
        assert known[token] in mail["From"]  # the ISP that mailed it reported the token
        addresses = [ip for ip in listed[known[token]] if re.search(
            rf"(?<![\d.]){re.escape(ip)}(?![\d.])", text)]
        assert len(addresses) == 1, addresses
        assert (token, addresses[0]) in about
        by_address.setdefault(addresses[0], []).append(mail)
    for isp in ISPS:
        folder = tmp_path / "notify" / isp.name
        lease_file = next(p for p in folder.iterdir() if p.name in ("dhcpd.leases",
                                                                   "radacct.csv"))
        holders = _lease_holders(lease_file)
        with (folder / "subscribers.csv").open(encoding="utf-8") as handle:
            subscribers = {row["subscriber_id"]: row for row in csv.DictReader(handle)}
        side = next(s for s in summary["isps"] if s["isp"] == isp.name)
        assert side["matched"] == sum(len(keys) == 1 for keys in holders.values())
        assert side["none"] == len(listed[isp.name] - holders.keys()) == 1
        for ip in listed[isp.name]:
            keys = holders.get(ip, set())
            got = by_address.get(ip, [])
            if len(keys) != 1:   # no lease, or overlapping leases: never mailed
                assert got == [], ip
                continue
            (mail,) = got
            subscriber = subscribers[keys.pop()]
            assert mail["To"].addresses[0].addr_spec == subscriber["email"]
            japanese = bool(JAPANESE.search(_body(mail, "plain")))
            assert japanese == (subscriber["lang"] == "ja"), subscriber
    assert {s["lang"] for isp in ISPS for s in csv.DictReader(
        (tmp_path / "notify" / isp.name / "subscribers.csv").read_text(
            encoding="utf-8").splitlines())} == {"ja", "en"}
    assert summary["funnel"][-1]["notified"] == len(mails)
