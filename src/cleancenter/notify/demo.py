"""The notification loop on the demo's data: from honeypot events to mails in a local sink.

Both sides run here, as they would on two machines: the center derives infected hosts
from the real honeypot events, registers two ISPs whose prefixes cover some of the real
attacking addresses and exports each its own list; each ISP reads leases and subscribers
the demo generates (no real subscriber exists), queues the mails and sends them to an SMTP
server on 127.0.0.1 that the demo starts and stops; the ISP's sent report (tokens only)
goes back to the center, which shows the funnel. The addresses are data: nothing is ever
sent to them.
"""

from __future__ import annotations

import csv
import io
import mailbox
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from rich.table import Table

from cleancenter.center import Center
from cleancenter.console import out
from cleancenter.notify.exports import Reporter, export
from cleancenter.notify.funnel import CCC_FY2006, funnel, import_sent_report
from cleancenter.notify.incidents import Incident
from cleancenter.notify.infections import infected_hosts, update_infections
from cleancenter.notify.isp.cli import read_incident_list
from cleancenter.notify.isp.correlate import correlate
from cleancenter.notify.isp.db import open_db
from cleancenter.notify.isp.leases import Lease, LeaseError, read_all
from cleancenter.notify.isp.mail import Renderer, parse_sender
from cleancenter.notify.isp.outbox import enqueue, sent_report
from cleancenter.notify.isp.smtp import SmtpSettings, send_due
from cleancenter.notify.isp.subscribers import import_subscribers, read_subscriber_csv
from cleancenter.notify.isps import add_isp, isp_incidents
from cleancenter.textsafe import for_console

LANDING_URL = "http://127.0.0.1:8080/n/"  # where `cleancenter serve` listens by default
HOSTS_PER_ISP = 6


@dataclass(frozen=True)
class DemoIsp:
    name: str
    lang: str
    lease_format: str  # the log its leases come in


ISPS = (DemoIsp("demo-hikari", "ja", "dhcpd"), DemoIsp("demo-fibre", "en", "radacct"))


def free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _MaildirSink:
    """aiosmtpd handler: every message into a maildir, stored before the 250."""

    def __init__(self, folder: Path) -> None:
        self.box = mailbox.Maildir(folder, create=True)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.box.add(envelope.original_content)
        return "250 OK stored"


def notify_demo(center: Center, stage: Path, landing_url: str = LANDING_URL
                ) -> tuple[dict[str, Any], Callable[[], None]]:
    """Run the loop; the summary for ``--json`` and a function that prints it."""
    folder = stage / "notify"
    folder.mkdir(parents=True, exist_ok=True)
    update = update_infections(center.catalog)
    with center.catalog.engine.connect() as conn:
        hosts = [h for h in infected_hosts(conn) if ":" not in h.src_ip]
    with center.catalog.transaction() as conn:
        for number, isp in enumerate(ISPS):
            picked = hosts[number::len(ISPS)][:HOSTS_PER_ISP]
            prefixes = sorted({".".join(h.src_ip.split(".")[:2]) + ".0.0/16" for h in picked})
            add_isp(conn, isp.name, contact=f"abuse@{isp.name}.example", lang=isp.lang,
                    prefixes=prefixes, asns=[])
    maildir = folder / "sink"
    port = free_loopback_port()
    controller = Controller(_MaildirSink(maildir), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        sides = [_isp_side(center, isp, folder, port, landing_url) for isp in ISPS]
    finally:
        controller.stop()
    with center.catalog.engine.connect() as conn:
        figures = [f.to_dict() for f in funnel(conn)]
    delivered = len(list(mailbox.Maildir(maildir, create=False).keys()))
    summary = {"infections": update.to_dict(), "isps": sides, "maildir": str(maildir),
               "delivered": delivered, "funnel": figures, "ccc_fy2006": CCC_FY2006}

    def show() -> None:
        out.rule("Notification: honeypot events to the right subscriber's inbox")
        table = Table("ISP", "list", "leases", "matched", "none", "ambiguous", "queued",
                      "sent", "tokens to the center")
        for side in sides:
            table.add_row(side["isp"], str(side["incidents"]), f"{side['leases']} "
                          f"({side['lease_format']})", str(side["matched"]),
                          str(side["none"]), str(side["ambiguous"]), str(side["queued"]),
                          str(side["sent"]), str(side["report"]["new"]))
        out.print(table)
        out.print(f"{delivered} mails in the local SMTP sink {for_console(str(maildir))} "
                  f"(maildir; ja and en, text and HTML)")
        funnel_table = Table("ISP", "notified", "visited", "downloaded", "cleaned",
                             "seen again (4 weeks)", title="the funnel")
        for f in figures:
            funnel_table.add_row(f["isp"] or "all", *(str(f[k]) for k in (
                "notified", "visited", "downloaded", "cleaned", "seen_again")))
        funnel_table.add_row("CCC FY2006", "", "", f"{CCC_FY2006['downloaded']:.1%}", "",
                             f"< {CCC_FY2006['seen_again']:.0%}")
        out.print(funnel_table)
        out.print("visits, downloads and cleaner reports arrive through the portal "
                  f"(`cleancenter serve`, landing pages under {landing_url})")
    return summary, show


def _isp_side(center: Center, isp: DemoIsp, folder: Path, port: int,
              landing_url: str) -> dict[str, Any]:
    """One ISP: its list from the center, then everything on the ISP's own machine."""
    own = folder / isp.name
    own.mkdir(exist_ok=True)
    with center.catalog.engine.connect() as conn:
        incidents = isp_incidents(conn, isp.name)
    listing = own / "list.json"
    with listing.open("w", encoding="utf-8", newline="") as handle:
        export(incidents, "json", Reporter(org="cleancenter demo",
                                           contact="abuse@center.example",
                                           domain="center.example"), handle)
    # ---- from here on, the ISP's machine: the list file, its leases, its subscribers
    received = read_incident_list(listing)
    leases_path, subscribers_path = _generate_isp_data(isp, received, own)
    leases: list[Lease] = []
    bad: list[LeaseError] = []
    for item in read_all([leases_path]):
        (bad if isinstance(item, LeaseError) else leases).append(item)  # type: ignore[arg-type]
    matches = correlate(received, leases)
    isp_db = open_db(own / "isp-side.db")
    try:
        subscribers, bad_rows = read_subscriber_csv(subscribers_path)
        import_subscribers(isp_db, subscribers, datetime.now(UTC))
        queued = enqueue(isp_db, matches, landing_url=landing_url, now=datetime.now(UTC))
        sender = parse_sender(f"{isp.name} abuse desk <abuse@{isp.name}.example>")
        renderer = Renderer(isp_name=isp.name, support=f"https://{isp.name}.example/support")
        sent = send_due(isp_db, SmtpSettings(host="127.0.0.1", port=port, timeout=10), sender,
                        renderer)
        report = sent_report(isp_db)
    finally:
        isp_db.close()
    # ---- back at the center: tokens, incident ids and times only
    with center.catalog.transaction() as center_conn:
        imported = import_sent_report(center_conn, isp.name, report["notifications"])
    statuses = [m.status for m in matches]
    return {"isp": isp.name, "lang": isp.lang, "incidents": len(incidents),
            "lease_format": isp.lease_format, "leases": len(leases),
            "bad_lease_lines": len(bad), "bad_subscriber_rows": len(bad_rows),
            "matched": statuses.count("matched"), "none": statuses.count("none"),
            "ambiguous": statuses.count("ambiguous"), "queued": len(queued.queued),
            "skipped": [s.to_dict() for s in queued.skipped], "sent": len(sent.sent),
            "failed": len(sent.failed), "report": imported.to_dict()}


def _generate_isp_data(isp: DemoIsp, incidents: list[Incident],
                       folder: Path) -> tuple[Path, Path]:
    """Leases covering each listed address over its window, and a subscriber for each.

    The last address is left without a lease (``none``). In RADIUS accounting the one
    before it also gets a session whose Stop never came, overlapping (``ambiguous``): the
    ISP side reports both leases and guesses neither. (A DHCP server binds an address to
    one client at a time, so its log cannot overlap like that.)"""
    rows: list[tuple[str, str, datetime, datetime | None]] = []
    subscribers = io.StringIO()
    writer = csv.writer(subscribers, lineterminator="\n")
    writer.writerow(["subscriber_id", "email", "lang", "name"])
    for number, incident in enumerate(incidents[:-1] if len(incidents) > 1 else incidents):
        key = (f"52:54:00:00:{number // 256:02x}:{number % 256:02x}"
               if isp.lease_format == "dhcpd" else f"user{number:03d}@{isp.name}")
        start = incident.first_seen - timedelta(hours=1)
        rows.append((key, incident.ip, start, incident.last_seen + timedelta(hours=1)))
        lang = isp.lang if number % 3 else ("en" if isp.lang == "ja" else "ja")
        writer.writerow([key, f"subscriber{number:03d}@{isp.name}.example", lang,
                         f"Subscriber {number}"])
        if isp.lease_format == "radacct" and number == len(incidents) - 2 and number > 0:
            rows.append((f"other{number:03d}@{isp.name}", incident.ip,
                         incident.first_seen - timedelta(minutes=5), None))  # no Stop came
    subscribers_path = folder / "subscribers.csv"
    subscribers_path.write_text(subscribers.getvalue(), encoding="utf-8")
    leases_path = folder / ("dhcpd.leases" if isp.lease_format == "dhcpd" else "radacct.csv")
    leases_path.write_text(_dhcpd(rows) if isp.lease_format == "dhcpd" else _radacct(rows),
                           encoding="utf-8")
    return leases_path, subscribers_path


def _dhcpd(rows: list[tuple[str, str, datetime, datetime | None]]) -> str:
    def when(moment: datetime) -> str:
        return f"{moment.isoweekday() % 7} {moment.astimezone(UTC):%Y/%m/%d %H:%M:%S}"
    blocks = []
    for key, ip, start, end in rows:
        ends = when(end) if end is not None else "never"
        blocks.append(f"lease {ip} {{\n  starts {when(start)};\n  ends {ends};\n"
                      f"  binding state active;\n  hardware ethernet {key};\n}}\n")
    return "# generated by cleancenter demo\n" + "".join(blocks)


def _radacct(rows: list[tuple[str, str, datetime, datetime | None]]) -> str:
    lines = ["username,acctstarttime,acctstoptime,framedipaddress,callingstationid"]
    for key, ip, start, end in rows:
        stop = end.astimezone(UTC).isoformat() if end is not None else ""
        lines.append(f"{key},{start.astimezone(UTC).isoformat()},{stop},{ip},")
    return "\n".join(lines) + "\n"
