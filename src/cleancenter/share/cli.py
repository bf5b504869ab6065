"""``cleancenter share stix|misp --sample SHA256 | --family NAME [--out FILE]``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

from cleancenter.atomicfile import write_atomically
from cleancenter.center import Center
from cleancenter.console import EXIT_FOUND, err, fail
from cleancenter.share.gather import MAX_FAMILY_SAMPLES, load_family, load_sample
from cleancenter.share.misp import misp_family_event, misp_sample_event
from cleancenter.share.stix import stix_family_bundle, stix_sample_bundle
from cleancenter.store.catalog import CatalogError
from cleancenter.textsafe import for_console

share_app = typer.Typer(help="Export samples and families for sharing: STIX 2.1, MISP.",
                        no_args_is_help=True)
SAMPLE = typer.Option(None, "--sample", help="md5, sha1 or sha256 (or a unique prefix).")
FAMILY = typer.Option(None, "--family", help="a family name (any case).")
OUT = typer.Option(None, "--out", help="Write to this file (default: standard output).",
                   dir_okay=False)
LIMIT = typer.Option(MAX_FAMILY_SAMPLES, "--limit", min=1,
                     help="Members of a family to export (the newest).")


def _document(center: Center, sample: str | None, family: str | None, limit: int,
              kind: str) -> dict[str, Any]:
    if (sample is None) == (family is None):
        raise fail("give --sample or --family (one of them)")
    try:
        if sample is not None:
            data = load_sample(center.catalog, sample)
            if data is None:
                raise fail(f"no sample matches {for_console(sample)!r}", EXIT_FOUND)
            return stix_sample_bundle(data) if kind == "stix" else misp_sample_event(data)
        assert family is not None
        fam = load_family(center.catalog, family, limit=limit)
    except CatalogError as exc:
        raise fail(for_console(str(exc))) from exc
    if fam is None:
        raise fail(f"no family named {for_console(family)!r}", EXIT_FOUND)
    if fam.total > len(fam.samples):
        err.print(f"{fam.total} samples; the newest {len(fam.samples)} exported (--limit)")
    if fam.indicators_left_out:
        err.print(f"{fam.indicators_left_out:,} network indicators left out: a family export "
                  "holds at most 20,000")
    return stix_family_bundle(fam) if kind == "stix" else misp_family_event(fam)


def _write(document: dict[str, Any], out: Path | None) -> None:
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if out is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    write_atomically(out, text.encode("utf-8"), mode=0o644)
    err.print(f"written to {for_console(str(out))}")


@share_app.command("stix")
def share_stix(ctx: typer.Context, sample: str | None = SAMPLE, family: str | None = FAMILY,
               out: Path | None = OUT, limit: int = LIMIT) -> None:
    """A STIX 2.1 bundle: malware, file, indicators and their relationships."""
    _write(_document(ctx.obj, sample, family, limit, "stix"), out)


@share_app.command("misp")
def share_misp(ctx: typer.Context, sample: str | None = SAMPLE, family: str | None = FAMILY,
               out: Path | None = OUT, limit: int = LIMIT) -> None:
    """A MISP event: hashes, file names and network IOCs as attributes, family as a tag."""
    _write(_document(ctx.obj, sample, family, limit, "misp"), out)
