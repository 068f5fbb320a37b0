"""Which version a build serves, said out loud; identical exports are one version.

Real exports (skl2onnx, the parity gate, a real sqlite MLflow registry) and real builds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from notebook_files import write_notebook
from sklearn.linear_model import LogisticRegression

from kernel_magics.bundle.build import build_service
from kernel_magics.errors import ValidationError
from kernel_magics.export.api import export_model, leaderboard

pytestmark = pytest.mark.slow


def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((400, 4)).astype("float32")
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype("int64")
    return x, y


def test_without_a_champion_the_best_metric_is_built_and_said(workspace: Path) -> None:
    x, y = data()
    good = LogisticRegression().fit(x, y)
    export_model(good, "risk", x[:8], eval_X=x, eval_y=y)  # version 1
    useless = np.repeat(x[:, 3:4], 4, axis=1)  # four copies of a feature y ignores
    weak = LogisticRegression().fit(useless, y)
    export_model(weak, "risk", x[:8], eval_X=x, eval_y=y)  # version 2, the newest
    nb = write_notebook(workspace / "risk.ipynb", "x = 1")
    result = build_service(nb, "risk")
    assert result.model_version == "1" and result.precision == "fp32"
    assert "the best accuracy of 2 versions" in result.model_choice
    assert "ship models alias risk VERSION champion" in result.model_choice
    from kernel_magics.export.api import set_alias

    set_alias("risk", "2", "champion")
    assert build_service(nb, "risk").model_choice.endswith("the champion alias")
    asked = build_service(nb, "risk", model_version="2")
    assert asked.model_version == "2" and "--model-version" in asked.model_choice


def test_without_metrics_the_build_asks_for_a_version(workspace: Path) -> None:
    x, y = data()
    export_model(LogisticRegression().fit(x, y), "plain", x[:8])
    export_model(LogisticRegression(C=0.01).fit(x, y), "plain", x[:8])
    nb = write_notebook(workspace / "plain.ipynb", "x = 1")
    with pytest.raises(ValidationError) as err:
        build_service(nb, "plain")
    assert "--model-version" in str(err.value) and "(1, 2)" in str(err.value)


def test_exporting_an_identical_model_reuses_its_version(workspace: Path) -> None:
    x, y = data()
    model = LogisticRegression().fit(x, y)
    first = export_model(model, "same", x[:8])
    again = export_model(model, "same", x[:8])
    assert (first.version, first.reused) == ("1", False)
    assert (again.version, again.reused) == ("1", True)
    rows = leaderboard("same")
    assert len(rows) == 1 and rows[0].run_id == first.run_id and rows[0].run_name
    changed = export_model(LogisticRegression(C=0.01).fit(x, y), "same", x[:8])
    assert changed.version == "2" and not changed.reused
