"""Settings: where the center keeps its data and how it reaches its services.

Each value comes from, in rising order of precedence: the built-in default, a TOML
file (``--config``, ``$CLEANCENTER_CONFIG`` or ``./cleancenter.toml``), a
``CLEANCENTER_*`` environment variable, a command-line option. We remember where each
value came from, because "why is it using *that* database?" is the first question an
operator asks.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

ENV_PREFIX = "CLEANCENTER_"
DEFAULT_CONFIG_FILE = Path("cleancenter.toml")
DEFAULT_DATA_DIR = Path("cleancenter-data")

# name -> help text; the order is the order `config show` prints.
SETTINGS: dict[str, str] = {
    "data_dir": "folder holding blobs, the SQLite catalog and work files",
    "database_url": "SQLAlchemy URL of the catalog (default: SQLite file in the data dir)",
    "broker_url": "message broker of the analysis workers (redis://... or amqp://...)",
    "job_queue_prefix": "prefix of the broker queue names (several centers on one broker)",
    "broker_visibility_timeout": "seconds before Redis hands an unacknowledged task to "
    "another worker (longer than any task)",
    "blob_url": "where samples are kept: empty for the blobs folder in the data dir, or "
    "s3://BUCKET[/PREFIX] for an S3-compatible store (the folder is then a local cache)",
    "s3_endpoint_url": "the S3-compatible server (e.g. http://127.0.0.1:9000); empty for AWS",
    "s3_region": "the S3 region name",
}
DEFAULT_S3_REGION = "us-east-1"
DEFAULT_JOB_QUEUE_PREFIX = "cleancenter."
DEFAULT_VISIBILITY_TIMEOUT = 600.0


class ConfigError(Exception):
    """The configuration file or a variable cannot be used."""


@dataclass(frozen=True)
class Setting:
    name: str
    value: str | None
    source: str  # "default", "file:<path>", "env:<VAR>", "option"


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    broker_url: str | None
    job_queue_prefix: str = DEFAULT_JOB_QUEUE_PREFIX
    broker_visibility_timeout: float = DEFAULT_VISIBILITY_TIMEOUT
    blob_url: str | None = None  # None: the blobs folder; "s3://bucket/prefix"
    s3_endpoint_url: str | None = None
    s3_region: str = DEFAULT_S3_REGION
    sources: dict[str, Setting] = field(default_factory=dict, compare=False)

    @property
    def blobs_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def work_dir(self) -> Path:
        """Scratch space (archive extraction) inside the data dir, never outside it."""
        return self.data_dir / "work"


def _read_file(path: Path) -> dict[str, object]:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    section = data.get("cleancenter", data)
    if not isinstance(section, dict):
        raise ConfigError(f"config file {path}: [cleancenter] must be a table")
    unknown = sorted(set(section) - set(SETTINGS) - {"cleancenter"})
    if unknown:
        raise ConfigError(
            f"config file {path}: unknown setting(s) {', '.join(unknown)}; "
            f"known: {', '.join(SETTINGS)}"
        )
    return {k: v for k, v in section.items() if k in SETTINGS}


def default_sqlite_url(data_dir: Path) -> str:
    return f"sqlite:///{(data_dir / 'catalog.sqlite').resolve()}"


def load_settings(
    config_file: Path | None = None,
    overrides: Mapping[str, str | None] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Merge defaults, file, environment and options into one `Settings`."""
    env = os.environ if environ is None else environ
    chosen: dict[str, Setting] = {
        "data_dir": Setting("data_dir", str(DEFAULT_DATA_DIR), "default"),
        "database_url": Setting("database_url", None, "default"),
        "broker_url": Setting("broker_url", None, "default"),
        "job_queue_prefix": Setting("job_queue_prefix", DEFAULT_JOB_QUEUE_PREFIX, "default"),
        "broker_visibility_timeout": Setting("broker_visibility_timeout",
                                             str(DEFAULT_VISIBILITY_TIMEOUT), "default"),
        "blob_url": Setting("blob_url", None, "default"),
        "s3_endpoint_url": Setting("s3_endpoint_url", None, "default"),
        "s3_region": Setting("s3_region", DEFAULT_S3_REGION, "default"),
    }

    path = config_file
    if path is None and env.get(ENV_PREFIX + "CONFIG"):
        path = Path(env[ENV_PREFIX + "CONFIG"])
    elif path is None and DEFAULT_CONFIG_FILE.is_file():
        path = DEFAULT_CONFIG_FILE
    if path is not None:
        for name, value in _read_file(path).items():
            if not isinstance(value, str):
                raise ConfigError(f"config file {path}: {name} must be a string")
            if name == "data_dir" and not Path(value).is_absolute():
                value = str((path.parent / value).resolve())
            chosen[name] = Setting(name, value, f"file:{path}")

    for name in SETTINGS:
        var = ENV_PREFIX + name.upper()
        if env.get(var):
            chosen[name] = Setting(name, env[var], f"env:{var}")

    for name, value in (overrides or {}).items():
        if value is not None:
            chosen[name] = Setting(name, value, "option")

    data_dir = Path(chosen["data_dir"].value or DEFAULT_DATA_DIR).expanduser().resolve()
    db = chosen["database_url"]
    if db.value is None:
        chosen["database_url"] = Setting("database_url", default_sqlite_url(data_dir), db.source)
    visibility = chosen["broker_visibility_timeout"]
    try:
        visibility_timeout = float(visibility.value or DEFAULT_VISIBILITY_TIMEOUT)
    except ValueError:
        visibility_timeout = -1.0
    if visibility_timeout <= 0:
        raise ConfigError(f"broker_visibility_timeout ({visibility.source}) must be a "
                          f"positive number of seconds, not {visibility.value!r}")
    blob_url = chosen["blob_url"].value or None
    if blob_url is not None:
        from cleancenter.store.blobs import BlobError
        from cleancenter.store.s3blobs import parse_blob_url

        try:
            parse_blob_url(blob_url)
        except BlobError:
            raise ConfigError(f"blob_url ({chosen['blob_url'].source}) must be empty or "
                              f"s3://BUCKET[/PREFIX], not {blob_url!r}") from None
    return Settings(
        data_dir=data_dir,
        database_url=chosen["database_url"].value or default_sqlite_url(data_dir),
        broker_url=chosen["broker_url"].value,
        job_queue_prefix=chosen["job_queue_prefix"].value or "",
        broker_visibility_timeout=visibility_timeout,
        blob_url=blob_url,
        s3_endpoint_url=chosen["s3_endpoint_url"].value or None,
        s3_region=chosen["s3_region"].value or DEFAULT_S3_REGION,
        sources=chosen,
    )
