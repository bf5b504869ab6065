"""Where the cleaner keeps its things, and the one key it trusts.

One folder (``--home``, ``$CLEANCENTER_CLEANER_HOME``, else a per-system default) holds the
pinned public key, the installed definitions (current and previous), the scan cache, the
quarantine, the action journal and the reports of past scans. Everything the cleaner
changes on the machine is recorded here, so this folder is what undoes it.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from cleancenter.cleaner.definitions import Definitions, load_definitions
from cleancenter.cleaner.quarantine import Journal, Quarantine
from cleancenter.definitions.bundle import BundleError
from cleancenter.definitions.keys import KeyProblem, PublicKey

ENV_HOME = "CLEANCENTER_CLEANER_HOME"
ENV_KEY = "CLEANCENTER_CLEANER_KEY"
PINNED_NAME = "pinned.pub"
CURRENT = "current.ccdef"
PREVIOUS = "previous.ccdef"


def default_home() -> Path:
    if os.environ.get(ENV_HOME):
        return Path(os.environ[ENV_HOME])
    if sys.platform == "win32":
        return Path(os.environ.get("PROGRAMDATA", "C:\\ProgramData")) / "cleancenter-cleaner"
    if os.geteuid() == 0:
        return Path("/var/lib/cleancenter-cleaner")
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "cleancenter-cleaner"


@dataclass
class CleanerHome:
    path: Path

    def __post_init__(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True, mode=0o700)

    @property
    def definitions_dir(self) -> Path:
        return self.path / "definitions"

    @property
    def current(self) -> Path:
        return self.definitions_dir / CURRENT

    @property
    def previous(self) -> Path:
        return self.definitions_dir / PREVIOUS

    @property
    def cache_db(self) -> Path:
        return self.path / "scan-cache.sqlite"

    @property
    def rules_cache(self) -> Path:
        return self.path / "rules-cache"

    @property
    def reports_dir(self) -> Path:
        return self.path / "reports"

    def quarantine(self) -> Quarantine:
        return Quarantine(self.path / "quarantine", Journal(self.path / "journal.jsonl"))

    # -- the pinned key -------------------------------------------------------------------

    def pinned_key(self) -> PublicKey:
        """The key bundles must be signed with: env, then this home, then the packaged one."""
        if os.environ.get(ENV_KEY):
            return PublicKey.parse(os.environ[ENV_KEY])
        pinned = self.path / PINNED_NAME
        if pinned.is_file():
            return PublicKey.parse(pinned.read_text())
        packaged = resources.files("cleancenter.cleaner").joinpath(PINNED_NAME)
        if packaged.is_file():
            return PublicKey.parse(packaged.read_text())
        raise KeyProblem("no pinned public key: run `cleancenter-cleaner pin KEYFILE` with "
                         "the center's definitions.pub (compare its fingerprint first)")

    def pin(self, key: PublicKey, *, force: bool = False) -> Path:
        target = self.path / PINNED_NAME
        if target.exists() and not force:
            current = PublicKey.parse(target.read_text())
            if current != key:
                raise KeyProblem(f"a different key is pinned ({current.fingerprint[:16]}...); "
                                 "use --force to replace it")
        tmp = target.with_suffix(".tmp")
        tmp.write_text(key.text() + "\n")
        os.replace(tmp, target)
        return target

    # -- installed definitions -------------------------------------------------------------

    def installed(self, key: PublicKey) -> tuple[Definitions | None, list[str]]:
        """The installed definitions (current, else the previous ones) and any problems."""
        problems: list[str] = []
        for path in (self.current, self.previous):
            if not path.exists():
                continue
            try:
                return load_definitions(path, key), problems
            except BundleError as exc:
                problems.append(f"{path.name}: {exc}")
        return None, problems
