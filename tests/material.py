"""The benign corpus built by ``scripts/fetch-material``, for tests and benchmarks.

Its files come from the registries by package name (DESIGN.md section 10) and live in a
cache outside the repository, so a fresh machine (CI runs as root) builds the missing
parts on first use. Everything here is data: never execute any of it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "fetch-material"
DEFAULT = Path("/var/cache/cleancenter/material")
PACKERS = ("upx", "aspack", "fsg", "mew", "nsis", "pespin", "petite", "upack", "wwpack", "yc")


def material_dir() -> Path:
    """The cache folder: ``$CLEANCENTER_MATERIAL`` or /var/cache/cleancenter/material."""
    return Path(os.environ.get("CLEANCENTER_MATERIAL") or DEFAULT)


def ensure_material(*parts: str) -> Path:
    """Build the parts not yet complete (all parts when none given); return the cache."""
    root = material_dir()
    missing = [p for p in parts if not (root / p / ".complete").is_file()]
    if missing or not parts:
        cmd = [sys.executable, str(SCRIPT), "--dest", str(root)]
        proc = subprocess.run(
            cmd + (["--only", *missing] if parts else []),
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"fetch-material failed:\n{proc.stderr[-3000:]}")
    return root


def _files(part: str, sub: str = "") -> list[Path]:
    base = ensure_material(part) / part / sub
    return sorted(p for p in base.rglob("*") if p.is_file() and p.name != ".complete")


def libwine_pe() -> list[Path]:
    """The PE files of Debian libwine (hundreds of real, benign DLLs and EXEs)."""
    return _files("libwine", "pe")


def wheel_pe() -> list[Path]:
    """The .pyd/.dll/.exe files of the pywin32 and psutil win_amd64 wheels."""
    return _files("wheels", "pe")


def busybox_elfs() -> dict[str, Path]:
    """busybox-static by Debian architecture (amd64, arm64, mipsel, s390x, ...)."""
    root = ensure_material("busybox") / "busybox"
    return {p.parent.name: p for p in sorted(root.glob("*/busybox"))}


def clamav_packed() -> dict[str, Path]:
    """ClamAV's harmless clam.exe by packer name; ``"none"`` is the unpacked original."""
    root = ensure_material("clamav-testfiles") / "clamav-testfiles"
    found = {name: root / f"clam-{name}.exe" for name in PACKERS}
    found["none"] = root / "clam.exe"
    return {name: path for name, path in found.items() if path.is_file()}


def upx_packed() -> dict[str, Path]:
    """UPX-packed benign programs: original (absolute, or relative to the cache) -> packed."""
    root = ensure_material("upx") / "upx"
    manifest: dict[str, str] = json.loads((root / "manifest.json").read_text())
    return {orig: root / packed for orig, packed in manifest.items()}
