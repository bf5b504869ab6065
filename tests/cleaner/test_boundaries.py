"""The cleaner is shipped alone: it must not reach into the center's store, notify,
portal or analysis code, nor pull in their heavy dependencies."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import cleancenter.cleaner

CLEANER = Path(cleancenter.cleaner.__file__).parent
FORBIDDEN = ("cleancenter.store", "cleancenter.notify", "cleancenter.portal",
             "cleancenter.analyze", "cleancenter.collect", "cleancenter.center",
             "cleancenter.cli", "cleancenter.definitions.build", "cleancenter.config")


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def test_no_cleaner_module_imports_center_code() -> None:
    files = sorted(CLEANER.rglob("*.py"))
    assert len(files) > 10
    bad = {str(f.relative_to(CLEANER)): sorted(n for n in _imports(f)
                                                if n.startswith(FORBIDDEN))
           for f in files}
    assert {k: v for k, v in bad.items() if v} == {}


def test_loading_every_cleaner_module_pulls_in_no_center_package() -> None:
    modules = [f"cleancenter.cleaner.{p.relative_to(CLEANER).with_suffix('').as_posix()}"
               .replace("/", ".").removesuffix(".__init__")
               for p in sorted(CLEANER.rglob("*.py")) if p.name != "__main__.py"]
    code = (f"import sys\nfor m in {modules!r}: __import__(m)\n"
            "print('\\n'.join(sorted(sys.modules)))")
    loaded = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                            text=True).stdout.split()
    assert [m for m in loaded if m.startswith(FORBIDDEN)] == []
    heavy = {"sqlalchemy", "alembic", "lief", "pefile", "numpy", "maco", "py7zr"}
    assert sorted(heavy & {m.split(".")[0] for m in loaded}) == []
