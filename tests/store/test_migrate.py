"""Schema upgrades across a cluster: many processes at once, `store migrate`, and a
catalog newer than the code."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from cleancenter.cli import app
from cleancenter.store.catalog import Catalog, CatalogError
from tests.conftest import REPO

runner = CliRunner()
OPEN = "import sys; from cleancenter.store.catalog import Catalog; Catalog(sys.argv[1]).close()"


@pytest.mark.postgres
def test_many_processes_starting_at_once_upgrade_once(pg_url: str) -> None:
    """Six processes open an empty PostgreSQL catalog at the same moment (workers and
    portal processes after an upgrade): every one starts, and the schema is at head."""
    procs = [subprocess.Popen([sys.executable, "-c", OPEN, pg_url], cwd=REPO,
                              stderr=subprocess.PIPE, text=True) for _ in range(6)]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 6, errors
    catalog = Catalog(pg_url, migrate=False)
    try:
        assert catalog.schema_state().up_to_date
    finally:
        catalog.close()


def test_store_migrate_check_then_upgrade(tmp_path: Path, database_url: str) -> None:
    base = ["--data-dir", str(tmp_path / "data"), "--database-url", database_url,
            "store", "migrate"]
    (tmp_path / "data").mkdir(exist_ok=True)
    due = runner.invoke(app, [*base, "--check", "--json"])
    assert due.exit_code == 1, due.output
    body = json.loads(due.output)
    assert body["before"] is None and not body["up_to_date"] and body["head"]
    done = runner.invoke(app, [*base, "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["now"] == body["head"]
    again = runner.invoke(app, [*base, "--check"])
    assert again.exit_code == 0 and "up to date" in again.output


def test_a_catalog_newer_than_the_code_is_refused(tmp_path: Path, database_url: str) -> None:
    Catalog(database_url).close()
    engine = create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0042_from_the_future'"))
    engine.dispose()
    with pytest.raises(CatalogError, match=r"0042_from_the_future.*upgrade cleancenter"):
        Catalog(database_url)
    (tmp_path / "data").mkdir(exist_ok=True)
    result = runner.invoke(app, ["--data-dir", str(tmp_path / "data"), "--database-url",
                                 database_url, "store", "migrate"])
    assert result.exit_code == 2 and "0042_from_the_future" in result.output
    # any other command: the entry point turns the CatalogError into exit code 2
    stats = subprocess.run([str(Path(sys.executable).parent / "cleancenter"), "--data-dir",
                            str(tmp_path / "data"), "--database-url", database_url, "store",
                            "stats"], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert stats.returncode == 2 and "0042_from_the_future" in stats.stderr
