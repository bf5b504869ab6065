"""The cleaner's own wheel: only the cleaner and the shared modules it imports.

Which modules go in is not a hand-kept list: every ``cleancenter.*`` import of every
cleaner module is followed (read with `ast`, never executed) until nothing new turns up.
Which distributions it requires is read from the same walk: each third-party package the
closure imports, with the version range the center itself declares for it. A closure that
reaches a center-only package (store, notify, portal, ...) or a heavy dependency is an
error, not a bigger wheel.

The wheel is written by hand (it is a zip with a ``.dist-info`` folder), deterministically:
sorted names, fixed times, so the same sources and key give the same bytes.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import importlib.metadata
import io
import re
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import cleancenter
from cleancenter import __version__
from cleancenter.atomicfile import write_atomically
from cleancenter.definitions.keys import PublicKey
from cleancenter.publish import PublishError

DIST_NAME = "cleancenter-cleaner"
WHEEL_STEM = "cleancenter_cleaner"
CONSOLE_SCRIPT = "cleancenter-cleaner"
ENTRY_POINT = "cleancenter.cleaner.cli:main"
PINNED_NAME = "pinned.pub"  # cleancenter.cleaner.state.PINNED_NAME (not imported: see below)
PACKAGE_ROOT = Path(cleancenter.__file__).parent
ROOT_PACKAGE = "cleancenter.cleaner"
FORBIDDEN = ("cleancenter.store", "cleancenter.notify", "cleancenter.portal",
             "cleancenter.analyze", "cleancenter.collect", "cleancenter.center",
             "cleancenter.cli", "cleancenter.config", "cleancenter.definitions.build",
             "cleancenter.jobs", "cleancenter.publish", "cleancenter.demo")
HEAVY = frozenset({"sqlalchemy", "alembic", "lief", "pefile", "numpy", "maco", "py7zr",
                   "fastapi", "uvicorn", "jinja2"})
# Imported only when present, and only needed on some systems: the marker says where.
MARKERS = {"psutil": 'sys_platform == "win32"'}
_FIXED_TIME = (2000, 1, 1, 0, 0, 0)
_REQ_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


@dataclass
class Closure:
    """What the cleaner needs: its modules' files (relative to the ``cleancenter`` folder)
    and the third-party top-level packages they import."""

    files: list[Path] = field(default_factory=list)
    modules: list[str] = field(default_factory=list)
    third_party: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class BuiltWheel:
    path: Path
    name: str
    sha256: str
    size: int
    requires: list[str]
    modules: list[str]
    key_fingerprint: str | None

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "path": str(self.path), "sha256": self.sha256,
                "size": self.size, "requires": self.requires, "modules": len(self.modules),
                "key_fingerprint": self.key_fingerprint}


def wheel_name(version: str = __version__) -> str:
    return f"{WHEEL_STEM}-{version}-py3-none-any.whl"


def _module_file(module: str) -> Path | None:
    parts = module.split(".")[1:]
    base = PACKAGE_ROOT.joinpath(*parts)
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    return None


def _imports(path: Path, module: str) -> set[str]:
    """Every module name an import statement of ``path`` may load (``from a import b``
    gives ``a`` and ``a.b``; relative imports are resolved)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            names.add(base)
            names |= {f"{base}.{alias.name}" for alias in node.names}
    return names


def cleaner_closure() -> Closure:
    """Follow the imports of every cleaner module; raise `PublishError` if they reach a
    center-only package or a heavy dependency."""
    start = sorted((PACKAGE_ROOT / "cleaner").rglob("*.py"))
    todo = [ROOT_PACKAGE + "." + p.relative_to(PACKAGE_ROOT / "cleaner").with_suffix("")
            .as_posix().replace("/", ".") for p in start]
    todo = [m.removesuffix(".__init__") for m in todo]
    seen: dict[str, Path] = {}
    third: set[str] = set()
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        path = _module_file(module)
        if path is None:
            continue  # an attribute imported with `from a import b`, not a module
        seen[module] = path
        parts = module.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))  # parent packages
        for name in _imports(path, module):
            top = name.split(".")[0]
            if top == "cleancenter":
                todo.append(name)
            elif top and top not in sys.stdlib_module_names and top != "__future__":
                third.add(top)
    bad = sorted(m for m in seen if m.startswith(FORBIDDEN))
    if bad:
        raise PublishError(f"the cleaner imports center-only modules: {', '.join(bad)}")
    heavy = sorted(third & HEAVY)
    if heavy:
        raise PublishError(f"the cleaner imports heavy center dependencies: {', '.join(heavy)}")
    return Closure(files=sorted(p.relative_to(PACKAGE_ROOT) for p in seen.values()),
                   modules=sorted(seen), third_party=sorted(third))


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements(third_party: list[str]) -> list[str]:
    """Requires-Dist lines: each imported package's distribution, with the version range
    the center declares for it (and a platform marker where `MARKERS` has one)."""
    declared: dict[str, str] = {}
    for line in importlib.metadata.requires("cleancenter") or []:
        if "extra ==" in line:
            continue
        match = _REQ_NAME.match(line)
        if match:
            declared[_normal(match.group(1))] = line.split(";")[0].strip()
    owners = importlib.metadata.packages_distributions()
    found: list[str] = []
    for top in third_party:
        dists = owners.get(top)
        if not dists:
            raise PublishError(f"the cleaner imports {top!r}, which no installed "
                               "distribution provides")
        requirement = declared.get(_normal(dists[0]))
        if requirement is None:
            raise PublishError(f"the cleaner imports {top!r} ({dists[0]}), which the "
                               "center does not declare as a dependency")
        marker = MARKERS.get(top)
        found.append(requirement + (f"; {marker}" if marker else ""))
    return sorted(set(found), key=str.lower)


def _metadata(requires: list[str], version: str) -> str:
    lines = ["Metadata-Version: 2.1", f"Name: {DIST_NAME}", f"Version: {version}",
             "Summary: cleancenter's cleaner: finds and removes the bots a cleancenter "
             "center knows, reversibly.",
             "License: Apache-2.0", "Requires-Python: >=3.11",
             *(f"Requires-Dist: {r}" for r in requires)]
    return "\n".join(lines) + "\n"


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode("ascii")


def wheel_files(closure: Closure, requires: list[str], key: PublicKey | None,
                version: str = __version__) -> dict[str, bytes]:
    """Archive name -> bytes of every file of the wheel, RECORD last."""
    files: dict[str, bytes] = {}
    for rel in closure.files:
        files[f"cleancenter/{rel.as_posix()}"] = (PACKAGE_ROOT / rel).read_bytes()
    # package data of the cleaner (none today besides a pinned key)
    for path in sorted((PACKAGE_ROOT / "cleaner").rglob("*")):
        if path.is_file() and path.suffix not in (".py", ".pyc") and \
                "__pycache__" not in path.parts and path.name != PINNED_NAME:
            files[f"cleancenter/{path.relative_to(PACKAGE_ROOT).as_posix()}"] = \
                path.read_bytes()
    if key is not None:
        files[f"cleancenter/cleaner/{PINNED_NAME}"] = (key.text() + "\n").encode("ascii")
    info = f"{WHEEL_STEM}-{version}.dist-info"
    files[f"{info}/METADATA"] = _metadata(requires, version).encode("utf-8")
    files[f"{info}/WHEEL"] = (f"Wheel-Version: 1.0\nGenerator: cleancenter publish {version}\n"
                              "Root-Is-Purelib: true\nTag: py3-none-any\n").encode("ascii")
    files[f"{info}/entry_points.txt"] = \
        f"[console_scripts]\n{CONSOLE_SCRIPT} = {ENTRY_POINT}\n".encode("ascii")
    files[f"{info}/top_level.txt"] = b"cleancenter\n"
    record = "".join(f"{name},{_record_hash(data)},{len(data)}\n"
                     for name, data in sorted(files.items()))
    files[f"{info}/RECORD"] = (record + f"{info}/RECORD,,\n").encode("utf-8")
    return files


def build_wheel(out_dir: Path, key: PublicKey | None, version: str = __version__
                ) -> BuiltWheel:
    """Write the cleaner's wheel into ``out_dir`` atomically."""
    closure = cleaner_closure()
    requires = requirements(closure.third_party)
    files = wheel_files(closure, requires, key, version)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        names = sorted(files)
        record = next(n for n in names if n.endswith(".dist-info/RECORD"))
        for name in [n for n in names if n != record] + [record]:
            entry = zipfile.ZipInfo(name, _FIXED_TIME)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            zf.writestr(entry, files[name])
    data = buffer.getvalue()
    name = wheel_name(version)
    path = out_dir / name
    write_atomically(path, data, mode=0o644)
    return BuiltWheel(path=path, name=name, sha256=hashlib.sha256(data).hexdigest(),
                      size=len(data), requires=requires, modules=closure.modules,
                      key_fingerprint=key.fingerprint if key else None)
