"""Run cost from tracking: a record written by the real writer into a sqlite MLflow store,
and `ship cost` over runs and services."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from kernel_magics.cli import main
from kernel_magics.cost.service import cost_summary, run_costs
from kernel_magics.errors import NotFoundError
from kernel_magics.tracking.daemon import drain
from kernel_magics.tracking.record import RunRecord
from kernel_magics.tracking.resources import ResourceMeter, run_cost
from kernel_magics.tracking.spool import Spool, new_record_id
from kernel_magics.workspace import Workspace


def _track(workspace: Workspace, notebook: Path, name: str) -> RunRecord:
    """What `%%ship track` spools for a cell: resources measured around real work."""
    meter = ResourceMeter()
    started = time.time()
    sum(i * i for i in range(300_000))  # some CPU
    resources = meter.stop()
    record = RunRecord(
        record_id=new_record_id(), experiment="train", run_name=name,
        tracking_uri=workspace.tracking_uri(), workspace=str(workspace.root),
        status="FINISHED", start_time_ms=int(started * 1000),
        end_time_ms=int(time.time() * 1000), notebook_path=str(notebook),
        resources=resources, cost=run_cost(resources, workspace.prices()),
        kernel_pid=os.getpid(), kernel_started=0.0)
    spool = Spool(workspace.spool_dir)
    spool.ensure()
    spool.open_record(record)
    return record


@pytest.fixture
def tracked(cost_workspace: Workspace) -> tuple[Workspace, Path, RunRecord, RunRecord]:
    notebook = cost_workspace.root / "train.ipynb"
    notebook.write_text("{}")
    written = _track(cost_workspace, notebook, "first")
    result = drain(Spool(cost_workspace.spool_dir), force=True)  # as `ship sync` does
    assert [w.record_id for w in result.written] == [written.record_id], result.failed
    pending = _track(cost_workspace, cost_workspace.root / "other.ipynb", "second")
    return cost_workspace, notebook, written, pending


@pytest.mark.slow
def test_run_cost_from_mlflow_and_from_the_spool(
        tracked: tuple[Workspace, Path, RunRecord, RunRecord],
        monkeypatch: pytest.MonkeyPatch) -> None:
    workspace, notebook, written, pending = tracked
    assert written.resources is not None and written.cost is not None
    [first] = run_costs(workspace, notebook=str(notebook))
    assert first.written and first.record_id == written.record_id and first.run_id
    assert first.cpu_s == pytest.approx(written.resources.cpu_s) and first.cpu_s > 0
    assert first.wall_s == pytest.approx(written.resources.wall_s)
    assert first.amount == pytest.approx(written.cost.amount)
    assert first.measured == ["wall_s", "cpu_s", "gpu_s", "peak_memory_mb"]
    assert first.estimated == ["amount"] and first.basis and "estimate" in first.basis
    # relative notebook paths resolve against the workspace root
    assert [r.id for r in run_costs(workspace, notebook="train.ipynb")] == [first.id]

    both = run_costs(workspace)
    assert [r.name for r in both] == ["second", "first"]
    assert not both[0].written and both[0].cpu_s is not None  # still in the spool
    assert run_costs(workspace, run_id=first.run_id or "")[0].id == first.id
    assert run_costs(workspace, run_id=pending.record_id)[0].name == "second"
    with pytest.raises(NotFoundError):
        run_costs(workspace, run_id="no-such-run")

    summary = cost_summary(workspace)
    assert summary["currency"] == "USD" and len(summary["runs"]) == 2
    assert [s["name"] for s in summary["services"]] == ["digits"]
    totals = summary["totals"]
    assert totals["runs"]["cpu_s"] == pytest.approx(sum(r.cpu_s or 0 for r in both))
    assert totals["amount"] == pytest.approx(totals["runs"]["amount"]
                                             + totals["services"]["amount"])
    assert "runs.amount" in totals["estimated"] and "runs.cpu_s" in totals["measured"]

    monkeypatch.chdir(workspace.root)
    runner = CliRunner()
    answer = runner.invoke(main, ["cost", "--json"])
    assert answer.exit_code == 0, answer.output
    doc = json.loads(answer.output)
    assert [r["name"] for r in doc["runs"]] == ["second", "first"]
    assert doc["services"][0]["notes"]  # built, never served: zeros with a note
    assert json.loads(runner.invoke(main, ["cost", "--notebook", "train.ipynb", "--json"])
                      .output)["totals"]["runs"]["count"] == 1
    one = runner.invoke(main, ["cost", "--run", first.id, "--json"])
    assert json.loads(one.output)["id"] == first.id
    text = runner.invoke(main, ["cost"])
    assert text.exit_code == 0 and "first" in text.output and "(estimate)" in text.output


def test_cli_options_and_errors(cost_workspace: Workspace,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(cost_workspace.root)
    runner = CliRunner()
    both = runner.invoke(main, ["cost", "--run", "r", "--service", "digits"])
    assert both.exit_code == 2 and "mutually exclusive" in both.output
    assert runner.invoke(main, ["cost", "--run", "r", "--since", "1h"]).exit_code == 2
    assert runner.invoke(main, ["cost", "--service", "digits", "--notebook", "x"]).exit_code == 2
    unknown = runner.invoke(main, ["cost", "--service", "nope"])
    assert unknown.exit_code == 1 and "service 'nope' not found" in unknown.output
    assert "digits" in unknown.output
    bad = runner.invoke(main, ["cost", "--service", "digits", "--since", "yesterday"])
    assert bad.exit_code == 1 and "--since" in bad.output
    empty = runner.invoke(main, ["cost", "--service", "digits", "--json"])
    assert empty.exit_code == 0 and json.loads(empty.output)["predictions"] == 0
