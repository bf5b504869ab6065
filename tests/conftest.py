"""Shared fixtures: a center on SQLite and on the real PostgreSQL server, the corpus.

Every catalog/collection test that takes ``center`` runs twice: on SQLite in a temp
folder, and on PostgreSQL in a schema of its own (dropped afterwards). Under ``CI=true``
an unreachable PostgreSQL fails the run instead of skipping.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from cleancenter.center import Center
from cleancenter.config import load_settings

if TYPE_CHECKING:
    from tests.s3server import S3Server

REPO = Path(__file__).resolve().parent.parent
PG_URL = os.environ.get(
    "CLEANCENTER_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def corpus_path() -> Path:
    return Path(os.environ.get("CLEANCENTER_CORPUS", REPO.parent / "shared" / "corpus"))


@pytest.fixture(scope="session")
def corpus() -> Path:
    path = corpus_path()
    if not path.is_dir():
        if IN_CI:
            pytest.fail(f"corpus not found at {path} (CLEANCENTER_CORPUS)")
        pytest.skip(f"corpus not found at {path}; set CLEANCENTER_CORPUS")
    return path


_pg_checked: dict[str, str | None] = {}


def _pg_problem() -> str | None:
    if "result" not in _pg_checked:
        try:
            engine = create_engine(PG_URL, connect_args={"connect_timeout": 5})
            with engine.connect() as conn:
                conn.execute(text("select 1"))
            engine.dispose()
            _pg_checked["result"] = None
        except Exception as exc:
            _pg_checked["result"] = f"PostgreSQL at {PG_URL} unreachable: {exc}"
    return _pg_checked["result"]


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A URL to a fresh, empty schema on the real PostgreSQL server."""
    problem = _pg_problem()
    if problem:
        if IN_CI:
            pytest.fail(problem)
        pytest.skip(problem)
    schema = f"cc_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'data' / 'catalog.sqlite'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def center(tmp_path: Path, database_url: str) -> Iterator[Center]:
    """A fresh center (data dir in tmp_path) on each catalog backend."""
    settings = load_settings(
        overrides={"data_dir": str(tmp_path / "data"), "database_url": database_url},
        environ={},
    )
    c = Center(settings)
    yield c
    c.close()


@pytest.fixture
def sqlite_center(tmp_path: Path) -> Iterator[Center]:
    settings = load_settings(overrides={"data_dir": str(tmp_path / "data")}, environ={})
    c = Center(settings)
    yield c
    c.close()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """s3rver on a free loopback port for the whole session; tests make their own buckets.
    The AWS credentials of the center's S3 client come from the environment."""
    from tests.s3server import running_s3rver

    try:
        server_cm = running_s3rver(tmp_path_factory.mktemp("s3rver") / "objects")
        server = server_cm.__enter__()
    except (FileNotFoundError, RuntimeError) as exc:
        if IN_CI:
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    os.environ["AWS_ACCESS_KEY_ID"] = os.environ["AWS_SECRET_ACCESS_KEY"] = "S3RVER"
    try:
        yield server
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        server_cm.__exit__(None, None, None)
