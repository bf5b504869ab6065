"""`cleancenter demo`: the main job on real, harmless material found on this machine.

It builds a fresh data dir, gathers real programs (the Windows launchers that pip and
setuptools ship, ELF programs of the system, UPX-packed copies when ``upx`` is here),
writes the EICAR test file and a password-protected zip at run time, ingests all of that
and the real honeypot logs of the corpus when present, and prints what it collected.
Nothing is ever executed but the ``upx`` packer itself, on copies of system programs.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import sysconfig
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyzipper
import typer
from rich.table import Table

from cleancenter.center import Center
from cleancenter.collect.ingest import Ingestor, IngestReport
from cleancenter.config import Settings, load_settings
from cleancenter.console import EXIT_ERROR, EXIT_OK, RichProgress, err, out, print_json
from cleancenter.notify.demo import notify_demo
from cleancenter.store.queries import event_kind_counts, store_counts
from cleancenter.textsafe import for_console

MARKER = ".cleancenter-demo"
DEFAULT_DEMO_DIR = Path("cleancenter-demo")
# EICAR's standard anti-virus test string, put together at run time so that this source
# file is not itself flagged by scanners.
_EICAR_PARTS = (r"X5O!P%@AP[4\PZX54(P^)7CC)7}$", "EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*")
ELF_PROGRAMS = ("ls", "cat", "busybox", "gzip", "tar", "sed", "grep", "sqlite3", "upx")


def eicar() -> bytes:
    return (_EICAR_PARTS[0] + _EICAR_PARTS[1]).encode("ascii")


def corpus_dir() -> Path:
    """Where the shared real corpus is: ``$CLEANCENTER_CORPUS`` or ``../shared/corpus``."""
    return Path(os.environ.get("CLEANCENTER_CORPUS", "../shared/corpus"))


def windows_launchers() -> list[Path]:
    """The real PE launchers shipped inside pip (distlib) and setuptools."""
    roots = {Path(p) for p in site.getsitepackages()}
    roots.add(Path(sysconfig.get_paths()["purelib"]))
    found: dict[str, Path] = {}
    for root in sorted(roots):
        for pattern in ("pip/_vendor/distlib/*.exe", "setuptools/*.exe"):
            for path in sorted(root.glob(pattern)):
                found.setdefault(path.name, path)
    return list(found.values())


def elf_programs() -> list[Path]:
    paths = []
    for name in ELF_PROGRAMS:
        which = shutil.which(name)
        if which:
            real = Path(which).resolve()
            with real.open("rb") as fh:
                if fh.read(4) == b"\x7fELF":
                    paths.append(real)
    return paths


@dataclass
class DemoInputs:
    files: list[Path] = field(default_factory=list)
    cowrie_logs: list[Path] = field(default_factory=list)
    dionaea: Path | None = None
    notes: list[str] = field(default_factory=list)


def stage_inputs(stage: Path) -> DemoInputs:
    """Copy and make the demo's material under ``stage`` (inside the data dir)."""
    inputs = DemoInputs()
    stage.mkdir(parents=True, exist_ok=True)
    win = stage / "windows-launchers"
    win.mkdir(exist_ok=True)
    for path in windows_launchers():
        shutil.copyfile(path, win / path.name)
    inputs.notes.append(f"{len(list(win.iterdir()))} Windows launchers from pip/setuptools")
    elf = stage / "elf"
    elf.mkdir(exist_ok=True)
    programs = elf_programs()
    for path in programs:
        shutil.copyfile(path, elf / path.name)
    inputs.notes.append(f"{len(programs)} ELF programs from this system")
    upx = shutil.which("upx") or shutil.which("upx-ucl")
    if upx:
        packed = stage / "upx-packed"
        packed.mkdir(exist_ok=True)
        made = 0
        for path in programs[:3]:
            target = packed / f"{path.name}.upx"
            target.unlink(missing_ok=True)
            result = subprocess.run(
                [upx, "-q", "-q", "-o", str(target), str(path)],
                capture_output=True, timeout=120, check=False,
            )
            made += result.returncode == 0 and target.exists()
        inputs.notes.append(f"{made} UPX-packed copies made with {upx}")
    else:
        inputs.notes.append("upx not installed: no packed copies")
    (stage / "eicar.com").write_bytes(eicar())
    with pyzipper.AESZipFile(stage / "submission.zip", "w", compression=pyzipper.ZIP_DEFLATED,
                             encryption=pyzipper.WZ_AES) as zf:
        zf.setpassword(b"infected")
        zf.writestr("eicar.com", eicar())
        for path in windows_launchers()[:2]:
            zf.write(path, f"launchers/{path.name}")
    inputs.notes.append("EICAR and a zip with the password 'infected' written")
    inputs.files = [win, elf, stage / "eicar.com", stage / "submission.zip"]
    if upx:
        inputs.files.append(stage / "upx-packed")
    corpus = corpus_dir()
    cowrie = sorted((corpus / "honeypot" / "cowrie").glob("cowrie.json*"))
    if cowrie:
        inputs.cowrie_logs = cowrie
        inputs.notes.append(f"{len(cowrie)} real Cowrie logs from {corpus}")
    dionaea = sorted((corpus / "honeypot" / "dionaea").glob("*.sqlite"))
    if dionaea:
        inputs.dionaea = dionaea[0]
        inputs.notes.append(f"the real Dionaea database {dionaea[0].name}")
    if not cowrie and not dionaea:
        inputs.notes.append(f"no honeypot corpus at {corpus} (set CLEANCENTER_CORPUS)")
    return inputs


def prepare_data_dir(path: Path) -> None:
    """Start from an empty folder; only ever delete one that an earlier demo made."""
    if path.exists() and any(path.iterdir()):
        if not (path / MARKER).exists():
            raise typer.BadParameter(
                f"{path} is not empty and was not made by the demo; pick another --data-dir")
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    (path / MARKER).write_text("made by `cleancenter demo`; it may delete this folder\n")


def demo_command(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="JSON summary on stdout."),
    serve: bool | None = typer.Option(None, "--serve/--no-serve",
                                      help="end with the portal running (default: on a "
                                           "terminal, without --json)"),
    port: int = typer.Option(8080, min=1, max=65535, help="the portal's port"),
) -> None:
    """Build a fresh demo center from real, harmless material and show what it holds."""
    center: Center = ctx.obj
    settings = center.settings
    if settings.sources["data_dir"].source == "default":
        settings = load_settings(overrides={"data_dir": str(DEFAULT_DEMO_DIR),
                                            "database_url": None},
                                 environ={k: v for k, v in os.environ.items()
                                          if k != "CLEANCENTER_DATA_DIR"})
    prepare_data_dir(settings.data_dir)
    demo = Center(settings)
    try:
        inputs = stage_inputs(settings.data_dir / "demo-input")
        reports: dict[str, IngestReport] = {}
        with RichProgress(enabled=not as_json) as progress:
            ingestor = Ingestor(demo.catalog, demo.blobs, progress=progress, tags=("demo",))
            reports["files"] = ingestor.ingest_paths(inputs.files)
            if inputs.cowrie_logs:
                reports["cowrie"] = Ingestor(demo.catalog, demo.blobs, progress=progress
                                             ).ingest_cowrie(inputs.cowrie_logs)
            if inputs.dionaea:
                reports["dionaea"] = Ingestor(demo.catalog, demo.blobs, progress=progress
                                              ).ingest_dionaea(inputs.dionaea)
        analysis = analyze_demo(demo, inputs, as_json)
        cleaner, show_cleaner = clean_demo(demo, settings.data_dir / "demo-input")
        notification, show_notification = notify_demo(demo, settings.data_dir / "demo-input",
                                                      landing_url=f"http://127.0.0.1:{port}/n/")
        portal = portal_demo(demo)
        with demo.catalog.engine.connect() as conn:
            counts = store_counts(conn)
            kinds = event_kind_counts(conn)
            types: dict[str, int] = dict(conn.exec_driver_sql(
                "SELECT file_type, count(*) FROM sample GROUP BY file_type ORDER BY 2 DESC"
            ).all())
    finally:
        demo.close()
    summary: dict[str, Any] = {
        "data_dir": str(settings.data_dir),
        "database_url": settings.database_url,
        "gathered": inputs.notes,
        "counts": counts,
        "samples_by_type": types,
        "events_by_kind": kinds,
        "ingest": {name: r.to_dict() for name, r in reports.items()},
        "analysis": analysis,
        "cleaner": cleaner,
        "notification": notification,
        "portal": portal,
    }
    if as_json:
        print_json(summary)
    else:
        _print_summary(summary)
        show_cleaner()
        show_notification()
        out.rule("The portal")
        out.print(f"published: {', '.join(portal['published'])}")
        out.print(f"analyst login: [bold]{portal['user']}[/] / password "
                  f"[bold]{portal['password']}[/] (made for this demo)")
    if counts["samples"] == 0:
        err.print("[red]the demo collected no samples[/]")
        raise typer.Exit(EXIT_ERROR)
    if serve if serve is not None else (sys.stdout.isatty() and not as_json):
        serve_demo(settings, port)
    elif not as_json:
        out.print(f"the portal: cleancenter --data-dir {settings.data_dir} serve --port {port}",
                  highlight=False)
    raise typer.Exit(EXIT_OK)


def portal_demo(demo: Center) -> dict[str, Any]:
    """Put the signed definitions and the cleaner's wheel on the download page, and make
    an analyst account to sign in with."""
    import secrets

    from cleancenter.definitions.cli import keys_dir
    from cleancenter.definitions.keys import load_public
    from cleancenter.portal.auth.store import add_user
    from cleancenter.publish.definitions import publish_definitions
    from cleancenter.publish.sums import update_sums
    from cleancenter.publish.wheel import build_wheel

    data_dir = demo.settings.data_dir
    downloads = data_dir / "downloads"
    key = load_public(keys_dir(demo) / "definitions.pub")
    definitions = publish_definitions(key, downloads, releases_dir=data_dir / "releases")
    wheel = build_wheel(downloads, key)
    update_sums(downloads, {wheel.name: wheel.sha256})
    password = secrets.token_urlsafe(12)
    with demo.catalog.transaction() as conn:
        add_user(conn, "analyst", password, ["analyst"])
    return {"published": [definitions.path.name, definitions.key_path.name, wheel.name],
            "user": "analyst", "password": password, "downloads": str(downloads)}


def serve_demo(settings: Settings, port: int) -> None:
    """The portal on the demo's data, in the foreground, until Ctrl-C."""
    import logging

    import uvicorn

    from cleancenter.portal.app import create_app
    from cleancenter.portal.serve import RedactTokens

    out.rule(f"the portal is running: http://127.0.0.1:{port}/  (Ctrl-C stops it)")
    out.print(f"  a mail's link: http://127.0.0.1:{port}/n/<token> (the tokens are in the "
              f"sink's mails under {settings.data_dir / 'demo-input' / 'notify' / 'sink'})")
    logging.getLogger("uvicorn.access").addFilter(RedactTokens())
    app = create_app(settings, funnel_ttl=5)
    uvicorn.run(app, host="127.0.0.1", port=port, server_header=False, log_level="warning")


def analyze_demo(demo: Center, inputs: DemoInputs, quiet: bool) -> dict[str, Any]:
    """Register the corpus's community rule packs, analyze every sample, sum it up."""
    from cleancenter.analyze.cli import rules_dirs, run_analysis
    from cleancenter.analyze.yara_rules import add_pack

    registry, _ = rules_dirs(demo)
    packs = []
    for name in ("reversinglabs", "elastic", "signature-base"):
        folder = corpus_dir() / "yara" / name
        if folder.is_dir():
            add_pack(registry, name, folder)
            packs.append(name)
    inputs.notes.append(f"rule packs: {', '.join(packs) or 'none (no corpus)'}")
    with RichProgress(enabled=not quiet) as progress:
        summary = run_analysis(demo, None, all_pending=True, progress=progress)
    with demo.catalog.engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT s.sha256, s.verdict, s.family, r.packer, r.body FROM sample s "
            "JOIN report r ON r.sha256 = s.sha256 ORDER BY s.first_seen").all()
    samples = []
    for sha256, verdict, family, packer, body in rows:
        report = json.loads(body)
        samples.append({
            "sha256": sha256, "name": _first_name(demo, sha256), "verdict": verdict,
            "family": family, "packer": packer, "unpacked": report["unpacked"],
            "iocs": len(report["iocs"]), "yara": [m["rule"] for m in report["yara"]][:3],
            "type": report["identity"]["description"],
        })
    return {"summary": summary.to_dict(), "samples": samples}


def clean_demo(demo: Center, stage: Path) -> tuple[dict[str, Any], Callable[[], None]]:
    """Sign definitions from the demo's verdicts and run the cleaner on a copy of the
    harmless samples, as a user would after `cleancenter-cleaner update`."""
    from cleancenter.cleaner.report import print_summary
    from cleancenter.cleaner.scan import ScanPlan, run_scan
    from cleancenter.cleaner.state import CleanerHome
    from cleancenter.cleaner.update import update
    from cleancenter.definitions.build import build_release
    from cleancenter.definitions.cli import keys_dir
    from cleancenter.definitions.keys import init_keys

    data_dir = demo.settings.data_dir
    public = init_keys(keys_dir(demo))
    built = build_release(demo.catalog, keys_dir=keys_dir(demo),
                          rules_registry=data_dir / "rules", out=None,
                          releases_dir=data_dir / "releases", generate=False)
    endpoint = stage / "endpoint"
    for source in (stage / "eicar.com", stage / "upx-packed", stage / "elf"):
        if source.is_dir():
            shutil.copytree(source, endpoint / source.name, dirs_exist_ok=True)
        elif source.exists():
            endpoint.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, endpoint / "Downloads-invoice.pdf.com")
    home = CleanerHome(data_dir / "cleaner-home")
    home.pin(public)
    installed = update(str(built.path), home, public)
    defs, _ = home.installed(public)
    assert defs is not None
    report = run_scan(ScanPlan(roots=[endpoint], checks=("files",)), defs, home)
    report.write_jsonl(home.reports_dir / "demo-scan.jsonl")

    def show() -> None:
        out.rule("The cleaner, on a machine holding the demo's harmless samples")
        out.print(f"definitions v{built.version} signed by {public.fingerprint[:16]}..., "
                  f"{built.counts.get('hashes', 0)} hashes; {installed.message}")
        print_summary(report, out)
        out.print(f"next: cleancenter-cleaner --help; its folder here is {home.path}: "
                  f"cleancenter-cleaner scan {endpoint} --home {home.path} --clean")
    return ({"definitions": built.to_dict(), "endpoint": str(endpoint),
             "cleaner_home": str(home.path), "scan": report.header(),
             "findings": [f.to_dict() for f in report.findings]}, show)


def _first_name(center: Center, sha256: str) -> str | None:
    from cleancenter.store.queries import get_sample

    with center.catalog.engine.connect() as conn:
        sample = get_sample(conn, sha256)
    return sample.names[0] if sample and sample.names else None


def _print_summary(summary: dict[str, Any]) -> None:
    out.rule("cleancenter demo")
    out.print(f"data dir: {summary['data_dir']}")
    for note in summary["gathered"]:
        out.print(f"  gathered: {note}")
    table = Table("what", "count", title="the center now holds")
    for key, value in summary["counts"].items():
        table.add_row(key, str(value))
    out.print(table)
    types = Table("sample type", "count")
    for key, value in summary["samples_by_type"].items():
        types.add_row(str(key), str(value))
    out.print(types)
    kinds = Table("event kind", "count")
    for key, value in summary["events_by_kind"].items():
        kinds.add_row(key, str(value))
    out.print(kinds)
    analysis = summary["analysis"]
    table = Table("sample", "type", "verdict", "packer", "family", "IOCs", "YARA",
                  title="analysis")
    for row in analysis["samples"]:
        name = for_console(row["name"] or row["sha256"][:16])
        packer = (row["packer"] or "-") + (" (unpacked)" if row["unpacked"] else "")
        table.add_row(name, for_console(row["type"]), row["verdict"] or "-", packer,
                      for_console(row["family"]) or "-", str(row["iocs"]),
                      for_console(", ".join(row["yara"])))
    out.print(table)
    s = analysis["summary"]
    out.print(f"analyzed {s['analyzed']}, failed {s['failed']}, unpacked children "
              f"{s['children']}; verdicts: {s['verdicts']}")
    out.print(f"next: cleancenter --data-dir {summary['data_dir']} samples show <sha256>")
    _ = sys.stdout.flush()
