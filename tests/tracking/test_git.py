"""Git state of a tracked run: commit, branch, dirty flag and the diff of what the kernel ran."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kernel_magics.workspace import init_workspace

pytestmark = pytest.mark.slow  # every tracked cell starts the background writer process


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=Ship Tests", "-c", "user.email=t@example.com",
         "-c", "commit.gpgsign=false", *args],
        check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def notebook_path(workspace, make_notebook) -> Path:
    """A committed notebook and local module in a repository that is the workspace."""
    root = workspace.root
    git(root, "init", "-q", "-b", "main")
    make_notebook(root / "analysis.ipynb", ["import mymod", "y = mymod.SCALE * 3"])
    (root / "mymod.py").write_text("SCALE = 1\n\n\ndef double(x):\n    return 2 * x\n")
    (root / ".gitignore").write_text("__pycache__/\n")
    init_workspace(root)  # .ship/ship.toml and .ship/.gitignore are meant to be committed
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial")
    return root / "analysis.ipynb"


@pytest.fixture
def local_imports(workspace, monkeypatch):
    """The kernel imports modules from the repository (sys.path), fresh for each test."""
    monkeypatch.syspath_prepend(str(workspace.root))
    names = ("mymod", "helper_untracked")
    for name in names:
        sys.modules.pop(name, None)
    yield
    for name in names:
        sys.modules.pop(name, None)


def test_dirty_repository_logs_commit_and_diff_of_notebook_and_local_module(
        nb, workspace, notebook_path, local_imports, make_notebook):
    root = workspace.root
    head = git(root, "rev-parse", "HEAD")
    (root / "mymod.py").write_text("SCALE = 2\n\n\ndef double(x):\n    return 2 * x\n")
    make_notebook(notebook_path, ["import mymod", "y = mymod.SCALE * 3", "print(y)"])

    nb.run("import mymod")
    assert nb.track("y = mymod.SCALE * 3").result.success
    workspace.sync_cleanly()
    run = workspace.only_run()
    assert run.data.metrics["y"] == 6.0  # the modified module ran
    tags = run.data.tags
    assert tags["mlflow.source.git.commit"] == head
    assert tags["mlflow.source.git.branch"] == "main"
    assert tags["ship.git.dirty"] == "true"
    assert tags["mlflow.source.name"] == str(notebook_path)
    diff = workspace.artifact_text(run.info.run_id, "git/git.diff")
    assert "+++ b/mymod.py" in diff and "-SCALE = 1" in diff and "+SCALE = 2" in diff
    assert "+++ b/analysis.ipynb" in diff and "print(y)" in diff
    snapshot = workspace.artifact_text(run.info.run_id, "code/notebook.ipynb")
    assert snapshot == notebook_path.read_text()


def test_untracked_local_module_the_kernel_imported_is_in_the_diff(
        nb, workspace, notebook_path, local_imports):
    # A new module nobody committed yet: without it, commit + diff cannot reproduce the run.
    (workspace.root / "helper_untracked.py").write_text("OFFSET = 41\n")
    nb.run("import helper_untracked, mymod")
    assert nb.track("z = helper_untracked.OFFSET + mymod.SCALE").result.success
    workspace.sync()
    run = workspace.only_run()
    assert run.data.metrics["z"] == 42.0
    diff = workspace.artifact_text(run.info.run_id, "git/git.diff")
    assert "+++ b/helper_untracked.py" in diff and "+OFFSET = 41" in diff
    assert "mymod.py" not in diff  # committed and unchanged


def test_clean_repository_is_not_dirty_and_has_no_diff(nb, workspace, notebook_path,
                                                      local_imports):
    nb.run("import mymod")
    assert nb.track("y = mymod.SCALE * 3").result.success
    workspace.sync()
    run = workspace.only_run()
    assert run.data.tags["mlflow.source.git.commit"] == git(workspace.root, "rev-parse", "HEAD")
    assert run.data.tags["ship.git.dirty"] == "false"
    assert not any(p.startswith("git/") for p in workspace.artifact_paths(run.info.run_id))
    assert git(workspace.root, "status", "--porcelain") == ""  # Ship's files stay ignored


def test_credentials_in_the_remote_url_reach_neither_mlflow_nor_the_spool(
        nb, workspace, notebook_path):
    root = workspace.root
    git(root, "remote", "add", "origin", "https://ci-bot:ghp_SeCrEtToKeN@github.com/acme/churn.git")
    assert nb.track("y = 3").result.success
    workspace.sync_cleanly()
    run = workspace.only_run()
    assert run.data.tags["mlflow.source.git.repoURL"] == "https://github.com/acme/churn.git"
    spooled = "".join(p.read_text() for p in workspace.spool_dir.rglob("*.json"))
    everything = spooled + json.dumps(run.data.tags) + workspace.artifact_text(
        run.info.run_id, "ship/ship-record.json")
    assert "SeCrEtToKeN" not in everything and "ci-bot" not in everything
