"""`cleancenter store|samples|events`: look into what the center holds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table
from sqlalchemy import select

from cleancenter.analyze.render import render_report
from cleancenter.analyze.service import latest_label, report_for
from cleancenter.center import Center
from cleancenter.console import (
    EXIT_FOUND,
    RichProgress,
    fail,
    out,
    parse_when,
    print_json,
)
from cleancenter.store.blobs import BlobError, BlobStore
from cleancenter.store.catalog import SAMPLE, Catalog, CatalogError
from cleancenter.store.queries import (
    EventFilter,
    SampleFilter,
    SampleSummary,
    count_events,
    count_samples,
    find_events,
    find_samples,
    get_sample,
    store_counts,
)
from cleancenter.store.s3blobs import S3BlobStore
from cleancenter.store.verify import verify_store
from cleancenter.textsafe import for_console

store_app = typer.Typer(help="The blob store and catalog.", no_args_is_help=True)
samples_app = typer.Typer(help="Samples in the catalog.", no_args_is_help=True)
events_app = typer.Typer(help="Honeypot events in the catalog.", no_args_is_help=True)

JSON = typer.Option(False, "--json", help="JSON output.")


@store_app.command("verify")
def store_verify(ctx: typer.Context, as_json: bool = JSON) -> None:
    """Re-hash every blob; report mismatches, orphans, stray files and missing blobs.

    Exit code 0 when all is well, 1 when a problem was found.
    """
    center: Center = ctx.obj
    try:
        total = center.blobs.count()
        with RichProgress(enabled=not as_json) as progress:
            progress.start("verifying blobs", total)
            report = verify_store(center.blobs, center.catalog, progress.advance)
    except BlobError as exc:
        raise fail(str(exc)) from exc
    if as_json:
        print_json(report.to_dict())
    else:
        out.print(f"{report.blobs_checked} blob files checked, "
                  f"{report.samples_in_catalog} samples in the catalog")
        for p in report.problems:
            out.print(f"[red]{p.kind}[/]: {for_console(str(p.path))}: {for_console(p.detail)}")
        for sha in report.missing:
            out.print(f"[red]missing[/]: {sha}: catalog row without its blob")
        out.print("[green]store OK[/]" if report.ok else "[red]store has problems[/]")
    if not report.ok:
        raise typer.Exit(EXIT_FOUND)


@store_app.command("migrate")
def store_migrate(
    ctx: typer.Context,
    check: bool = typer.Option(False, "--check", help="Only say whether an upgrade is due "
                               "(exit 1 when it is)."),
    as_json: bool = JSON,
) -> None:
    """Bring the catalog's schema to this release's newest revision.

    Every command does this when it opens the catalog; when upgrading several machines,
    stop the workers and portals, run this once, then start the new release everywhere.
    Exit code 0 up to date, 1 (with --check) an upgrade is due, 2 error (also: the
    catalog is newer than this release).
    """
    center: Center = ctx.obj
    try:
        catalog = Catalog(center.settings.database_url, migrate=False)
    except CatalogError as exc:
        raise fail(str(exc)) from exc
    try:
        before = catalog.schema_state()
        if before.newer_than_code:
            raise fail(f"the catalog is at schema revision {before.current}, newer than this "
                       f"release knows (its newest is {before.head}): upgrade cleancenter")
        if not check and not before.up_to_date:
            catalog.migrate()
        after = before if check else catalog.schema_state()
    except CatalogError as exc:
        raise fail(str(exc)) from exc
    finally:
        catalog.close()
    result = {"catalog": catalog.safe_url, "before": before.current, "now": after.current,
              "head": after.head, "up_to_date": after.up_to_date}
    if as_json:
        print_json(result)
    elif check:
        out.print(f"schema {before.current or '(empty)'}; this release's newest {before.head}: "
                  + ("up to date" if before.up_to_date else "an upgrade is due"))
    else:
        out.print(f"schema {before.current or '(empty)'} -> {after.current}"
                  if before.current != after.current else f"schema {after.current}: up to date")
    if check and not before.up_to_date:
        raise typer.Exit(EXIT_FOUND)


@store_app.command("upload-blobs")
def store_upload_blobs(
    ctx: typer.Context,
    source: Path = typer.Option(None, "--from", help="The blobs folder to copy from "
                                "(default: the data dir's, which the S3 store uses as "
                                "its cache)."),
    as_json: bool = JSON,
) -> None:
    """Copy every blob of a local blobs folder that the S3 bucket lacks (moving a center
    from one machine's folder to S3). Each file is re-hashed first; a file that does not
    hash to its name is not sent, and is listed.

    Exit code 0 when every blob is in the bucket, 1 when a file was refused, 2 on error.
    """
    center: Center = ctx.obj
    store = center.blobs
    if not isinstance(store, S3BlobStore):
        raise fail("blob_url is not an s3:// URL: there is no bucket to copy to")
    local = BlobStore(source or center.settings.blobs_dir)
    sent = present = 0
    refused: list[dict[str, str]] = []
    try:
        with RichProgress(enabled=not as_json) as progress:
            progress.start("uploading blobs", local.count())
            for name, problems in local.audit():  # each file re-hashed
                bad = [p for p in problems if p.kind not in ("writable", "stale-temp")]
                refused += [{"path": str(p.path), "kind": p.kind, "detail": p.detail}
                            for p in bad]
                if name is not None and not bad:
                    if store.upload(name, local.path_for(name)):
                        sent += 1
                    else:
                        present += 1
                progress.advance()
    except BlobError as exc:
        raise fail(str(exc)) from exc
    result = {"sent": sent, "already_there": present, "refused": refused,
              "bucket": store.where}
    if as_json:
        print_json(result)
    else:
        out.print(f"{sent} blobs sent to {for_console(store.where)}, {present} were there")
        for item in refused:
            out.print(f"[red]{item['kind']}[/]: {for_console(item['path'])}: "
                      f"{for_console(item['detail'])}")
    if refused:
        raise typer.Exit(EXIT_FOUND)


@store_app.command("stats")
def store_stats(ctx: typer.Context, as_json: bool = JSON) -> None:
    """Counts of samples, names, relations, events and source addresses."""
    center: Center = ctx.obj
    with center.catalog.engine.connect() as conn:
        counts = store_counts(conn)
    if as_json:
        print_json(counts)
        return
    for key, value in counts.items():
        out.print(f"{key:>12}: {value}")


def _sample_table(samples: list[SampleSummary]) -> Table:
    table = Table("sha256", "type", "size", "first seen", "names", "tags")
    for s in samples:
        table.add_row(
            s.sha256, s.file_type, str(s.size), s.first_seen.strftime("%Y-%m-%d %H:%M"),
            for_console(", ".join(s.names[:3]) + (" ..." if len(s.names) > 3 else "")),
            for_console(", ".join(s.tags)),
        )
    return table


def _list_samples(center: Center, flt: SampleFilter, as_json: bool) -> None:
    with center.catalog.engine.connect() as conn:
        samples = find_samples(conn, flt)
        total = count_samples(conn, flt)
    if as_json:
        print_json({"total": total, "offset": flt.offset,
                    "samples": [s.to_dict() for s in samples]})
        return
    out.print(_sample_table(samples))
    out.print(f"{len(samples)} shown of {total}")


@samples_app.command("list")
def samples_list(
    ctx: typer.Context,
    file_type: str | None = typer.Option(None, "--type", help="File type (pe32, elf64, zip...)."),
    tag: str | None = typer.Option(None, "--tag"),
    since: str | None = typer.Option(None, "--since", help="First seen at/after (date or 7d)."),
    until: str | None = typer.Option(None, "--until", help="First seen before."),
    limit: int = typer.Option(50, "--limit", min=1, max=10_000),
    offset: int = typer.Option(0, "--offset", min=0),
    as_json: bool = JSON,
) -> None:
    """The newest samples first."""
    flt = SampleFilter(file_type=file_type, tag=tag, since=parse_when(since),
                       until=parse_when(until), limit=limit, offset=offset)
    _list_samples(ctx.obj, flt, as_json)


@samples_app.command("search")
def samples_search(
    ctx: typer.Context,
    query: str | None = typer.Argument(
        None, help="A md5/sha1/sha256 prefix, or a name (substring or glob)."),
    name: str | None = typer.Option(None, "--name", help="Name substring or glob."),
    hash_prefix: str | None = typer.Option(None, "--hash", help="md5/sha1/sha256 prefix."),
    file_type: str | None = typer.Option(None, "--type"),
    tag: str | None = typer.Option(None, "--tag"),
    since: str | None = typer.Option(None, "--since"),
    until: str | None = typer.Option(None, "--until"),
    limit: int = typer.Option(50, "--limit", min=1, max=10_000),
    offset: int = typer.Option(0, "--offset", min=0),
    as_json: bool = JSON,
) -> None:
    """Find samples by hash prefix, name, tag, type and date."""
    if query:
        is_hex = all(c in "0123456789abcdefABCDEF" for c in query) and len(query) >= 4
        if is_hex:
            hash_prefix = hash_prefix or query
        else:
            name = name or query
    flt = SampleFilter(hash_prefix=hash_prefix, name=name, tag=tag, file_type=file_type,
                       since=parse_when(since), until=parse_when(until), limit=limit,
                       offset=offset)
    try:
        _list_samples(ctx.obj, flt, as_json)
    except CatalogError as exc:
        raise fail(str(exc)) from exc


@samples_app.command("show")
def samples_show(
    ctx: typer.Context,
    reference: str = typer.Argument(..., help="md5, sha1 or sha256 (or a unique prefix)."),
    as_json: bool = JSON,
) -> None:
    """Everything the catalog knows about one sample."""
    center: Center = ctx.obj
    try:
        with center.catalog.engine.connect() as conn:
            sample = get_sample(conn, reference)
    except CatalogError as exc:
        raise fail(str(exc)) from exc
    if sample is None:
        raise fail(f"no sample matches {reference!r}", EXIT_FOUND)
    data = sample.to_dict()
    report = report_for(center.catalog, sample.sha256)
    with center.catalog.engine.connect() as conn:
        label = latest_label(conn, sample.sha256)
        data["verdict"], data["family"] = conn.execute(
            select(SAMPLE.c.verdict, SAMPLE.c.family).where(SAMPLE.c.sha256 == sample.sha256)
        ).one()
    data["analyst_label"] = None if label is None else {
        "verdict": label.verdict, "family": label.family, "note": label.note,
        "author": label.author, "created": label.created.isoformat()}
    if as_json:
        data["report"] = report.model_dump(mode="json") if report else None
        print_json(data)
        return
    for key in ("sha256", "sha1", "md5", "size", "file_type", "first_seen", "last_seen",
                "analysis_state", "ssdeep", "tlsh", "imphash", "event_count"):
        out.print(f"{key:>15}: {for_console(str(data[key]))}")
    out.print(f"{'verdict':>15}: {data['verdict'] or '-'}   family: "
              f"{for_console(data['family']) or '-'}")
    if label is not None:
        out.print(f"{'analyst':>15}: {for_console(label.author)} on {label.created:%Y-%m-%d}: "
                  f"{label.verdict or '-'} / {for_console(label.family) or '-'}"
                  + (f" ({for_console(label.note)})" if label.note else ""))
    out.print(f"{'names':>15}: " + for_console(", ".join(sample.names)))
    out.print(f"{'tags':>15}: " + for_console(", ".join(sample.tags)))
    for rel in sample.parents:
        out.print(f"{'parent':>15}: {rel['sha256']} ({rel['kind']})")
    for rel in sample.children:
        out.print(f"{'child':>15}: {rel['sha256']} ({rel['kind']})")
    if report is not None:
        out.print()
        render_report(report, out)
    else:
        out.print(f"{'analysis':>15}: none yet (cleancenter analyze {sample.sha256[:12]})")


@events_app.command("list")
def events_list(
    ctx: typer.Context,
    since: str | None = typer.Option(None, "--since", help="At/after (date, time or 7d)."),
    until: str | None = typer.Option(None, "--until", help="Before."),
    ip: str | None = typer.Option(None, "--ip", help="Source address or CIDR network."),
    sensor: str | None = typer.Option(None, "--sensor"),
    kind: str | None = typer.Option(None, "--kind", help="connect, login, login-failed, "
                                    "command, download, upload, attack, ..."),
    session: str | None = typer.Option(None, "--session"),
    sample: str | None = typer.Option(None, "--sample", help="sha256 of a linked sample."),
    limit: int = typer.Option(100, "--limit", min=1, max=100_000),
    offset: int = typer.Option(0, "--offset", min=0),
    raw: bool = typer.Option(False, "--raw", help="Include the sensor's raw record."),
    as_json: bool = JSON,
) -> None:
    """Events in time order, filtered."""
    center: Center = ctx.obj
    flt = EventFilter(since=parse_when(since), until=parse_when(until), ip=ip, sensor=sensor,
                      kind=kind, session=session, sample=sample, limit=limit, offset=offset)
    try:
        with center.catalog.engine.connect() as conn:
            rows = find_events(conn, flt, with_raw=raw)
            total = count_events(conn, flt)
    except CatalogError as exc:
        raise fail(str(exc)) from exc
    if as_json:
        print_json({"total": total, "offset": offset, "events": rows})
        return
    table = Table("time (UTC)", "sensor", "kind", "source", "dst port", "session", "detail")
    for r in rows:
        detail: Any = r["url"] or r["sample_sha256"] or r["source_event"]
        src = f"{r['src_ip']}:{r['src_port']}" if r["src_port"] is not None else r["src_ip"]
        table.add_row(
            r["time"].strftime("%Y-%m-%d %H:%M:%S"), for_console(r["sensor"]), r["kind"],
            for_console(src), str(r["dst_port"] or ""), for_console(r["session"]),
            for_console(str(detail)),
        )
    out.print(table)
    out.print(f"{len(rows)} shown of {total}")


@store_app.command("generate")
def store_generate(
    ctx: typer.Context,
    samples: int = typer.Option(..., "--samples", min=1, max=100_000_000,
                                help="How many synthetic samples to add."),
    seed: int = typer.Option(0, "--seed", help="Same seed, same rows."),
    as_json: bool = JSON,
) -> None:
    """Fill the catalog with synthetic samples (tagged `synthetic`), for load tests.

    Realistic types, sizes, families, tags, dates and TLSH digests made from this
    machine's real files; see docs/store.md.
    """
    from cleancenter.store.synthetic import SyntheticError, load

    center: Center = ctx.obj
    try:
        with RichProgress(enabled=not as_json) as progress:
            report = load(center.catalog, samples, seed=seed, progress=progress)
    except SyntheticError as exc:
        raise fail(str(exc)) from exc
    if as_json:
        print_json(report.to_dict())
        return
    out.print(f"{report.samples} synthetic samples ({report.names} names, {report.tags} tags) "
              f"into {report.backend} in {report.seconds:.1f} s "
              f"({report.rows_per_second:,.0f} samples/s; generating "
              f"{report.generate_seconds:.1f} s, ANALYZE {report.analyze_seconds:.1f} s)")
