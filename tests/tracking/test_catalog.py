"""Reading back what `%%ship track` wrote: the sidebar's view of a notebook's runs."""

from __future__ import annotations

import pytest

from kernel_magics.tracking import catalog, detail
from kernel_magics.tracking.compare import compare
from kernel_magics.tracking.fingerprint import fingerprint
from kernel_magics.workspace import find_workspace

pytestmark = pytest.mark.slow  # tracked cells start the background writer process

SETUP = "import numpy as np\nX = np.arange(200, dtype='float64').reshape(100, 2)\n"


def test_tracked_cells_are_listed_detailed_and_compared(nb, workspace, notebook_path):
    nb.run(SETUP)
    first = nb.track("lr = 0.1\nscore = float(X.mean()) * lr")
    second = nb.track("lr = 0.2\nscore = float(X.mean()) * lr")
    assert first.result.success and second.result.success
    workspace.sync()
    ws = find_workspace(workspace.root)

    page = catalog.list_runs(ws, catalog.notebook_spellings(notebook_path), limit=10)

    assert [r.record_id for r in page.runs] == [second.record_id, first.record_id]
    assert page.total == 2 and not page.truncated
    newest = page.runs[0]
    assert newest.written and newest.status == "FINISHED" and newest.run_id == newest.id
    assert newest.params == {"lr": "0.2"}
    assert newest.metrics == pytest.approx({"score": 99.5 * 0.2})
    [data] = newest.data
    assert (data.name, data.digest, data.shape) == ("X", fingerprint("X", nb.ns["X"]).digest,
                                                     [100, 2])
    assert newest.cost is not None and newest.cost.wall_s is not None
    assert newest.cost.amount is not None and newest.cost.currency == "USD"
    assert newest.notebook == str(notebook_path)

    # Another notebook's runs are not this one's.
    assert catalog.list_runs(ws, ("/elsewhere/x.ipynb",)).runs == []

    run = detail.get_run(ws, newest.id)
    assert run.cell_source is not None and "lr = 0.2" in run.cell_source
    assert run.has_snapshot
    assert run.environment is not None and run.environment.change is not None
    assert run.environment.change.empty  # same kernel, same packages as the first run

    snapshot = detail.notebook_snapshot(ws, newest.id)
    assert snapshot.name == notebook_path.name and snapshot.content["nbformat"] == 4

    result = compare(ws, [page.runs[1].id, newest.id])
    assert [r.values for r in result.params] == [["0.1", "0.2"]]
    assert result.environment.packages == [] and result.environment.same_count > 10
    assert result.data[0].differs is False
    assert result.code.changed_lines == [[1], [1]]
