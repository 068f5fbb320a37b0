"""`%ship retrain` and `%ship watch NAME --status` in a real IPython shell: the arguments
and their usage errors, the loop's status from a service folder whose watch.json and
loop.jsonl Ship's own writers wrote, and a retraining's decision as HTML and text.

The service is a real bundle (an skl2onnx classifier) written by ``write_bundle``; the
full retraining (a notebook run, export, build, gate) is tested with the core.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from IPython.core.error import UsageError
from onnx_models import classifier_schema, sklearn_onnx

from kernel_magics.display.retrain import LOOP_MIME, RETRAIN_MIME, show_retrain
from kernel_magics.magics import parse_retrain_args, parse_watch_args
from kernel_magics.retrain import events, gate
from kernel_magics.retrain.retrain import RetrainResult, Version
from kernel_magics.retrain.watch import WatchState, state_file
from kernel_magics.serving.bundle import Manifest, write_bundle
from kernel_magics.serving.schema import Feature
from kernel_magics.workspace import Workspace, init_workspace

CHECKS = [
    gate.Check("recent", "accuracy", 0.71, 0.84, (0.08, 0.18), True, 240,
               "better on 240 recent rows: 95% interval of the difference [0.08, 0.18]"),
    gate.Check("holdout", "accuracy", 0.9, 0.87, (-0.05, -0.01), False, 400,
               "forgets: may be worse on 400 holdout rows by 0.05, more than 0.01"),
]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    from sklearn.linear_model import LogisticRegression

    root = tmp_path_factory.mktemp("loop-magic")
    workspace = init_workspace(root)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((60, 2)).astype("float32")
    model = LogisticRegression().fit(x, (x[:, 0] > 0).astype("int64"))
    schema = classifier_schema((Feature("a", "float32"), Feature("b", "float32")), 2)
    write_bundle(workspace.services_dir / "shop" / "1", manifest=Manifest(name="shop",
                 version="1"), schema=schema, model=sklearn_onnx(model, 2))
    events.record(workspace, "shop", "trigger", "dataset drift: 1 of 2 features drift",
                  reason="drift", share=0.5, drifted_features=["a"])
    events.record(workspace, "shop", "backoff", "challenger rejected; next try after "
                  "2030-01-01 00:00:00 UTC (600 s)", until="2030-01-01T00:00:00+00:00",
                  rejections=1)
    state = WatchState(last_check="2026-12-06T11:00:00+00:00",
                       last_retrain="2026-12-06T10:30:00+00:00", rejections=1,
                       backoff_until="2030-01-01T00:00:00+00:00")
    state_file(workspace, "shop").write_text(json.dumps(state.to_json()), encoding="utf-8")
    return workspace


@pytest.fixture
def shell(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The one InteractiveShell of the process, in the workspace, magics loaded."""
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    if InteractiveShell.initialized():
        ipython = InteractiveShell.instance()
    else:
        config = Config()
        config.HistoryManager.hist_file = ":memory:"
        ipython = InteractiveShell.instance(config=config)
    assert ipython.extension_manager is not None
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("SHIP_NOTEBOOK", raising=False)
    monkeypatch.chdir(workspace.root)
    ipython.extension_manager.loaded.discard("kernel_magics")
    ipython.run_line_magic("load_ext", "kernel_magics")
    yield ipython
    ipython.extension_manager.loaded.discard("kernel_magics")


def _displayed(shell: Any, line: str) -> list[dict[str, Any]]:
    from IPython.utils.capture import capture_output

    with capture_output(display=True) as captured:
        shell.run_line_magic("ship", line)
    return [dict(output.data) for output in captured.outputs]


def test_retrain_arguments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.ipynb").write_text("{}", encoding="utf-8")
    assert parse_retrain_args("churn") == ("churn", None, None, True)
    assert parse_retrain_args("churn --since 2h --no-release") == ("churn", None, "2h", False)
    assert parse_retrain_args('churn --notebook "train.ipynb" --since 2026-12-01T00:00') == (
        "churn", Path("train.ipynb"), "2026-12-01T00:00", True)
    with pytest.raises(UsageError, match=r"--notebook gone.ipynb: no such notebook"):
        parse_retrain_args("churn --notebook gone.ipynb")
    with pytest.raises(UsageError, match=r"Usage: %ship retrain NAME \[--notebook NB\]"):
        parse_retrain_args("")
    with pytest.raises(UsageError, match="unrecognized arguments: --canary"):
        parse_retrain_args("churn --canary 10")
    with pytest.raises(UsageError, match="expected one argument"):
        parse_retrain_args("churn --since")


def test_watch_arguments() -> None:
    assert parse_watch_args("churn --status") == "churn"
    assert parse_watch_args("--status churn") == "churn"
    with pytest.raises(UsageError, match="start it in a terminal: ship watch churn"):
        parse_watch_args("churn")
    with pytest.raises(UsageError, match=r"Usage: %ship watch NAME --status"):
        parse_watch_args("--status")


def test_watch_status_shows_the_loop(shell: Any) -> None:
    (shown,) = _displayed(shell, "watch shop --status")
    text = shown["text/plain"]
    assert text.startswith("watch shop: not running")
    assert "back-off    until 2030-01-01T00:00:00+00:00 after 1 rejected challenger(s)" in text
    assert "retrained   2026-12-06T10:30:00+00:00" in text
    lines = text.splitlines()
    trigger = next(i for i, line in enumerate(lines) if "trigger" in line)
    backoff = next(i for i, line in enumerate(lines) if "backoff " in line)
    assert trigger < backoff and "dataset drift: 1 of 2 features drift" in lines[trigger]
    doc = shown[LOOP_MIME]
    assert doc["service"] == "shop" and doc["running"] is False
    assert [e["kind"] for e in doc["events"]] == ["trigger", "backoff"]
    assert doc["release"]["champion"] == "1"


def test_the_magics_usage_errors(shell: Any) -> None:
    with pytest.raises(UsageError, match="service 'ghost' not found.*Services of .*: shop"):
        shell.run_line_magic("ship", "watch ghost --status")
    with pytest.raises(UsageError, match="start it in a terminal"):
        shell.run_line_magic("ship", "watch shop")
    with pytest.raises(UsageError, match="retrain is a line magic"):
        shell.run_cell_magic("ship", "retrain shop", "x = 1")
    with pytest.raises(UsageError, match="ghost"):
        shell.run_line_magic("ship", "retrain ghost")
    with pytest.raises(UsageError, match=r"(?s)Available:.*%ship retrain NAME.*%ship watch NAME"):
        shell.run_line_magic("ship", "retrian shop")


def test_a_retraining_shows_its_decision_and_checks(capsys: pytest.CaptureFixture[str]
                                                    ) -> None:
    from IPython.utils.capture import capture_output

    result = RetrainResult(
        service="shop", decision=gate.REJECTED, reason="; ".join(c.reason for c in CHECKS),
        champion=Version("1", "shop", "1", "r" * 32), challenger=Version("2", "shop", "2"),
        checks=CHECKS, labelled_rows=800, training_rows=560, recent_rows=240,
        data="/tmp/production.parquet", seconds=12.0)
    with capture_output(display=True) as captured:
        show_retrain(result.to_json())
    (shown,) = [dict(output.data) for output in captured.outputs]
    html = shown["text/html"]
    assert "retrain shop: rejected" in html and "champion 1 · challenger 2" in html
    assert html.count("<tr>") == 3  # a head and one row per check
    assert "<td>recent</td><td>accuracy</td><td>240</td>" in html
    assert "<b>FAILED</b>" in html and "[-0.0500, -0.0100]" in html
    text = shown["text/plain"]
    assert "retrain shop: rejected (rejected: the champion stays)" in text
    assert "holdout   accuracy     400" in text
    assert shown[RETRAIN_MIME]["checks"][1]["passed"] is False
