"""The cleaner built once per session: its wheel and zipapp, with a center key built in."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cleancenter.definitions.keys import PublicKey
from cleancenter.publish.sums import update_sums
from cleancenter.publish.wheel import BuiltWheel, build_wheel
from cleancenter.publish.zipapp import BuiltZipapp, build_zipapp
from tests.cleaner.bundles import new_key

SYSTEM_PYTHON = Path("/usr/bin/python3")


@dataclass(frozen=True)
class Build:
    downloads: Path
    wheel: BuiltWheel
    zipapp: BuiltZipapp
    key: Ed25519PrivateKey
    public: PublicKey
    shiv_home: Path  # HOME of the zipapp runs: shiv unpacks into HOME/.shiv once


@pytest.fixture(scope="session")
def build(tmp_path_factory: pytest.TempPathFactory) -> Build:
    """Wheel and zipapp as `cleancenter publish cleaner` makes them (pip's cache reused)."""
    base = tmp_path_factory.mktemp("publish")
    downloads = base / "downloads"
    downloads.mkdir()
    key, public = new_key()
    wheel = build_wheel(downloads, public)
    zipapp = build_zipapp(wheel.path, downloads, base / "work")
    update_sums(downloads, {wheel.name: wheel.sha256, zipapp.name: zipapp.sha256})
    home = base / "home"
    home.mkdir()
    return Build(downloads, wheel, zipapp, key, public, home)


def system_python_311() -> str | None:
    """Why the system's python3 cannot run the zipapp here, or None when it can."""
    if not SYSTEM_PYTHON.exists():
        return f"{SYSTEM_PYTHON} not found"
    version = subprocess.run([str(SYSTEM_PYTHON), "-c", "import sys; print(sys.version_info[:2])"],
                             capture_output=True, text=True, check=False).stdout.strip()
    if version != "(3, 11)":
        return f"{SYSTEM_PYTHON} is {version}, the zipapp is built for 3.11"
    if os.uname().machine != "x86_64":
        return "the zipapp is built for x86-64"
    return None
