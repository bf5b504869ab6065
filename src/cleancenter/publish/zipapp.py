"""The cleaner as one file to download and run: a shiv zipapp of the wheel and its
dependencies, for CPython 3.11 on x86-64 Linux (manylinux).

pip resolves the dependencies for that target (``--platform``/``--python-version``, so
the build machine's own Python does not matter) from pip's configured index and cache into
a wheelhouse, installs the wheel from the wheelhouse only (``--no-index``) into a staging
folder, and shiv packs the staging folder. Nothing is run from what pip fetched.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cleancenter import __version__
from cleancenter.publish import PublishError
from cleancenter.publish.wheel import ENTRY_POINT

PYTHON_VERSION = "3.11"
ABI = "cp311"
PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_28_x86_64",
             "linux_x86_64")
PLATFORM_TAG = "linux-x86_64"
SHEBANG = "/usr/bin/env python3"
PIP_TIMEOUT = 900.0


@dataclass(frozen=True)
class BuiltZipapp:
    path: Path
    name: str
    sha256: str
    size: int
    wheelhouse: Path

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "path": str(self.path), "sha256": self.sha256,
                "size": self.size}


def zipapp_name(version: str = __version__) -> str:
    return f"cleancenter-cleaner-{version}-{PLATFORM_TAG}.pyz"


def target_args() -> list[str]:
    """pip options that pick wheels for the zipapp's target, not for this machine."""
    args = ["--only-binary=:all:", "--python-version", PYTHON_VERSION,
            "--implementation", "cp", "--abi", ABI, "--abi", "abi3", "--abi", "none"]
    for platform in PLATFORMS:
        args += ["--platform", platform]
    return args


def _run(cmd: list[str], what: str) -> None:
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1", PYTHONDONTWRITEBYTECODE="1")
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT,
                              env=env, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PublishError(f"{what} failed: {exc}") from exc
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
        raise PublishError(f"{what} failed (exit {done.returncode}):\n{tail}")


def fill_wheelhouse(wheel: Path, wheelhouse: Path) -> None:
    """The wheel's dependencies for the target, from pip's index (or its cache)."""
    wheelhouse.mkdir(parents=True, exist_ok=True)
    _run([sys.executable, "-m", "pip", "download", "--quiet", "--dest", str(wheelhouse),
          *target_args(), str(wheel)], "pip download of the cleaner's dependencies")
    (wheelhouse / wheel.name).unlink(missing_ok=True)  # the wheel itself: installed by path


def stage(wheel: Path, wheelhouse: Path, staging: Path) -> None:
    """Install the wheel and its dependencies into ``staging`` from the wheelhouse only."""
    _run([sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--find-links",
          str(wheelhouse), "--target", str(staging), "--no-compile", *target_args(),
          str(wheel)], "pip install into the staging folder")


def pack(staging: Path, out_dir: Path, version: str = __version__) -> Path:
    """shiv the staging folder into ``out_dir`` (temp name, then renamed)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", suffix=".pyz", dir=out_dir)
    os.close(fd)
    tmp = Path(tmp_name)
    target = out_dir / zipapp_name(version)
    try:
        _run([sys.executable, "-m", "shiv", "--site-packages", str(staging),
              "--entry-point", ENTRY_POINT, "--output-file", str(tmp), "--python", SHEBANG,
              "--compressed", "--reproducible"], "shiv")
        tmp.chmod(0o755)
        with tmp.open("rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def build_zipapp(wheel: Path, out_dir: Path, work: Path, *, version: str = __version__,
                 step: Callable[[str], None] = lambda _: None) -> BuiltZipapp:
    """The zipapp from ``wheel``; ``work`` holds the wheelhouse and the staging folder
    (kept, so a second build reuses the wheelhouse)."""
    wheelhouse, staging = work / "wheelhouse", work / "staging"
    step("fetching the dependencies (pip)")
    fill_wheelhouse(wheel, wheelhouse)
    step("staging the wheel and its dependencies")
    if staging.exists():
        _clear(staging)
    stage(wheel, wheelhouse, staging)
    step("packing the zipapp (shiv)")
    path = pack(staging, out_dir, version)
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return BuiltZipapp(path=path, name=path.name, sha256=digest.hexdigest(),
                       size=path.stat().st_size, wheelhouse=wheelhouse)


def _clear(folder: Path) -> None:
    shutil.rmtree(folder)
