"""The workspace: root discovery, ship.toml, the MLflow URI, the price table."""

from __future__ import annotations

from pathlib import Path

import pytest

from kernel_magics.errors import ConfigError
from kernel_magics.workspace import find_root, find_workspace, init_workspace


def test_root_prefers_ship_then_git_then_start(tmp_path: Path) -> None:
    project = tmp_path / "project"
    notebooks = project / "notebooks" / "deep"
    notebooks.mkdir(parents=True)
    assert find_root(notebooks) == notebooks.resolve()
    (project / ".git").mkdir()
    assert find_root(notebooks) == project.resolve()
    (project / "notebooks" / ".ship").mkdir()
    assert find_root(notebooks) == (project / "notebooks").resolve()


def test_default_store_is_sqlite_in_ship_dir(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    ws = init_workspace(tmp_path)
    assert ws.tracking_uri() == f"sqlite:///{tmp_path.resolve() / '.ship' / 'mlflow.db'}"
    assert ws.uses_local_store()
    assert ws.ui_url() is None
    assert (tmp_path / ".ship" / "ship.toml").read_text().startswith("# Ship workspace")


def test_environment_then_config_choose_the_store(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / ".ship").mkdir()
    (tmp_path / ".ship" / "ship.toml").write_text(
        '[tracking]\nuri = "http://127.0.0.1:5999"\n')
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    ws = find_workspace(tmp_path)
    assert ws.tracking_uri() == "http://127.0.0.1:5999"
    assert ws.ui_url() == "http://127.0.0.1:5999"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:6000/")
    assert ws.tracking_uri() == "http://127.0.0.1:6000/"
    assert ws.ui_url() == "http://127.0.0.1:6000"


def test_price_table_defaults_and_overrides(tmp_path: Path) -> None:
    (tmp_path / ".ship").mkdir()
    assert find_workspace(tmp_path).prices().cpu_core_hour == 0.048
    (tmp_path / ".ship" / "ship.toml").write_text('[cost]\ncurrency = "EUR"\ngpu_hour = 1\n')
    prices = find_workspace(tmp_path).prices()
    assert (prices.currency, prices.gpu_hour, prices.cpu_core_hour) == ("EUR", 1.0, 0.048)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[cost\n", "not valid TOML"),
        ("cost = 3\n", "[cost] must be a table"),
        ('[cost]\ncpu_core_hour = "cheap"\n', "cpu_core_hour must be a non-negative number"),
        ("[cost]\ngpu_hour = -1\n", "gpu_hour must be a non-negative number"),
    ],
)
def test_bad_config_names_the_file_and_the_key(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / ".ship").mkdir()
    (tmp_path / ".ship" / "ship.toml").write_text(text)
    with pytest.raises(ConfigError) as err:
        find_workspace(tmp_path).prices()
    assert message in str(err.value)
    assert "ship.toml" in str(err.value)
