from pathlib import Path

import pytest
from typer.testing import CliRunner

from cleancenter.cli import app
from cleancenter.config import ConfigError, load_settings


def test_defaults_put_sqlite_in_the_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                              ) -> None:
    monkeypatch.chdir(tmp_path)
    s = load_settings(environ={})
    assert s.data_dir == tmp_path / "cleancenter-data"
    assert s.database_url == f"sqlite:///{tmp_path / 'cleancenter-data' / 'catalog.sqlite'}"
    assert s.sources["data_dir"].source == "default"
    assert s.broker_url is None


def test_file_then_env_then_option(tmp_path: Path) -> None:
    cfg = tmp_path / "cc.toml"
    cfg.write_text('data_dir = "from-file"\nbroker_url = "redis://127.0.0.1:6379/0"\n')
    s = load_settings(cfg, environ={})
    assert s.data_dir == tmp_path / "from-file"  # relative to the file, not the cwd
    assert s.sources["data_dir"].source == f"file:{cfg}"
    assert s.broker_url == "redis://127.0.0.1:6379/0"

    env = {"CLEANCENTER_DATA_DIR": str(tmp_path / "from-env")}
    s = load_settings(cfg, environ=env)
    assert s.data_dir == tmp_path / "from-env"
    assert s.sources["data_dir"].source == "env:CLEANCENTER_DATA_DIR"
    assert s.sources["broker_url"].source == f"file:{cfg}"

    s = load_settings(cfg, {"data_dir": str(tmp_path / "opt")}, environ=env)
    assert s.data_dir == tmp_path / "opt"
    assert s.sources["data_dir"].source == "option"


def test_config_file_from_environment_and_section(tmp_path: Path) -> None:
    cfg = tmp_path / "x.toml"
    cfg.write_text('[cleancenter]\ndatabase_url = "postgresql://u@127.0.0.1/db"\n')
    s = load_settings(environ={"CLEANCENTER_CONFIG": str(cfg)})
    assert s.database_url == "postgresql://u@127.0.0.1/db"
    assert s.sources["database_url"].source == f"file:{cfg}"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("data_dir = ", "not valid TOML"),
        ('datadir = "x"', r"unknown setting\(s\) datadir"),
        ("data_dir = 3", "must be a string"),
    ],
)
def test_bad_config_file_is_a_clear_error(tmp_path: Path, content: str, message: str) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text(content)
    with pytest.raises(ConfigError, match=message):
        load_settings(cfg, environ={})


def test_config_show_json_says_where_values_came_from(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(
        app, ["--data-dir", str(tmp_path / "d"), "config", "show", "--json"],
        env={"CLEANCENTER_BROKER_URL": "amqp://guest:guest@127.0.0.1:5672//"},
    )
    assert result.exit_code == 0, result.output
    import json

    data = json.loads(result.stdout)
    assert data["data_dir"] == {"value": str(tmp_path / "d"), "source": "option"}
    assert data["broker_url"]["source"] == "env:CLEANCENTER_BROKER_URL"
    assert data["database_url"]["value"].endswith("/d/catalog.sqlite")


def test_bad_config_exits_2(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("nonsense = ")
    result = CliRunner().invoke(app, ["--config", str(cfg), "config", "show"])
    assert result.exit_code == 2
    assert "not valid TOML" in result.output


def test_config_show_table_prints_brackets_as_text(tmp_path: Path) -> None:
    """Help texts and values with brackets ("s3://BUCKET[/PREFIX]", a folder named
    "[red]x[/]") are shown as they are, not read as markup."""
    folder = Path("/tmp/[red]x[/red]")
    result = CliRunner().invoke(app, ["--data-dir", str(folder), "config", "show"],
                                env={"CLEANCENTER_BLOB_URL": "s3://bucket/p",
                                     "COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    assert "[/PREFIX]" in result.output and "[red]x[/red]" in result.output
    assert "s3://bucket/p" in result.output
