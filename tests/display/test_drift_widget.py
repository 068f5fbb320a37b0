"""`%ship drift NAME` in a real IPython shell: the widget (per-feature bars, a feature
picker, reference vs. current histogram), its text/HTML fallbacks, and the usage errors.

The service is a real bundle (skl2onnx classifier, handler over two numeric features and
a string one) with a reference profile, and a prediction log written by the real
``PredictionLog``: normal traffic two hours ago, shifted traffic now.
"""

from __future__ import annotations

import os
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
from IPython.core.error import UsageError
from onnx_models import classifier_schema, sklearn_onnx

from kernel_magics.display.drift import DRIFT_MIME, DriftWidget, render_histogram
from kernel_magics.monitor.predictions import profile_predictions
from kernel_magics.monitor.reference import build_profile, write_reference
from kernel_magics.serving.bundle import Manifest, write_bundle
from kernel_magics.serving.inputs import from_columns
from kernel_magics.serving.pipeline import Pipeline
from kernel_magics.serving.predlog import Prediction, PredictionLog
from kernel_magics.serving.schema import Feature
from kernel_magics.workspace import Workspace, init_workspace

HANDLER = textwrap.dedent('''
    import numpy as np

    def preprocess(df):
        size = df["size"].to_numpy() / 100.0
        price = df["price"].to_numpy() / 1000.0
        red = (df["colour"] == "red").to_numpy().astype(np.float32)
        return np.stack([size, price, red], axis=1).astype(np.float32)
''')
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def _population(rng: np.random.Generator, rows: int, shifted: bool) -> dict[str, Any]:
    if shifted:
        return {"size": rng.normal(80, 10, rows), "price": rng.normal(500, 50, rows),
                "colour": rng.choice(["red", "blue"], rows, p=[0.9, 0.1])}
    return {"size": rng.normal(50, 10, rows), "price": rng.normal(500, 50, rows),
            "colour": rng.choice(["red", "blue"], rows, p=[0.5, 0.5])}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    from sklearn.linear_model import LogisticRegression

    root = tmp_path_factory.mktemp("drift-widget")
    workspace = init_workspace(root)
    rng = np.random.default_rng(1)
    train = pd.DataFrame(_population(rng, 2000, shifted=False))
    x = np.stack([train["size"] / 100, train["price"] / 1000,
                  (train["colour"] == "red").astype(float)], axis=1).astype(np.float32)
    model = LogisticRegression().fit(x, (train["size"] > 50).astype(int))
    folder = workspace.services_dir / "shop" / "1"
    schema = classifier_schema((Feature("size", "float64"), Feature("price", "float64"),
                                Feature("colour", "string")), 3)
    bundle = write_bundle(folder, manifest=Manifest(name="shop", version="1"), schema=schema,
                          model=sklearn_onnx(model, 3), handler_source=HANDLER)
    predicted = profile_predictions(folder, train)
    assert predicted is not None
    write_reference([*build_profile(train, ["size", "price", "colour"]), predicted],
                    folder / "reference.parquet")
    log = PredictionLog(folder.parent / "log")
    log.register("shop", "1", bundle.schema, identity=False)
    pipeline = Pipeline(bundle)
    now = time.time()
    for i in range(20):  # normal two hours ago, shifted within the last hour
        shifted = i >= 10
        inputs = from_columns(bundle.schema, _population(rng, 40, shifted))
        at = now - (600 + i * 60 if shifted else 7200 + i * 60)
        log.append(Prediction(f"r{i}", at, "shop", "1", "invocations", 200, 1.0, None, inputs, None,
                   pipeline.predict(inputs), None))
    log.close()
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
    monkeypatch.chdir(workspace.root)
    monkeypatch.setenv("SHIP_NOTEBOOK", str(workspace.root / "monitor.ipynb"))
    ipython.extension_manager.loaded.discard("kernel_magics")
    ipython.run_line_magic("load_ext", "kernel_magics")
    yield ipython
    ipython.extension_manager.loaded.discard("kernel_magics")


def _displayed(shell: Any, line: str) -> list[dict[str, Any]]:
    from IPython.utils.capture import capture_output

    with capture_output(display=True) as captured:
        shell.run_line_magic("ship", line)
    return [dict(output.data) for output in captured.outputs]


def test_the_magic_shows_a_widget_and_a_feature_histogram_on_selection(
        shell: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import ipywidgets

    # In a kernel (the shell has one), the widget goes with the fallbacks.
    monkeypatch.setattr(shell, "kernel", SimpleNamespace(), raising=False)
    (bundle,) = _displayed(shell, "drift shop --window 1h --history 3")
    assert "drift of service shop" in bundle["text/plain"]
    assert "<" in bundle["text/html"] and "size" in bundle["text/html"]
    assert bundle[DRIFT_MIME] == {"service": "shop", "version": "1", "drifted": True}
    box = ipywidgets.widgets.widget._instances[bundle[WIDGET_VIEW]["model_id"]]
    header, chart, picker, histogram = box.children
    assert "Dataset drift" in header.value and "shop" in header.value
    # One bar per feature and the prediction; size drifted (error colour), price did not.
    assert chart.value.count('class="ship-drift-bar"') == 4
    assert 'data-feature="size" data-drifted="true"' in chart.value
    assert 'data-feature="price" data-drifted="false"' in chart.value
    assert "threshold" in chart.value
    assert list(picker.options) == ["size", "price", "colour", "prediction"]
    # It opens on the first drifted feature ...
    assert picker.value == "size"
    assert 'data-feature="size"' in histogram.value
    # ... and choosing another (as clicking its button does) redraws the histogram.
    picker.value = "colour"
    assert 'class="ship-drift-histogram" data-feature="colour"' in histogram.value
    assert histogram.value.count('class="ship-hist-reference"') == 3  # red, blue, other
    assert histogram.value.count('class="ship-hist-current"') == 3
    assert "js:" in histogram.value and "chi2:" in histogram.value
    assert 'font-weight="bold"' in chart.value  # the chosen feature's label
    picker.value = "price"
    assert histogram.value.count('class="ship-hist-reference"') > 5
    assert "wasserstein" in histogram.value
    picker.value = None
    assert "Choose a feature" in histogram.value


def test_without_a_kernel_the_fallbacks_alone(shell: Any) -> None:
    (bundle,) = _displayed(shell, "drift shop")
    assert WIDGET_VIEW not in bundle
    assert "drift of service shop" in bundle["text/plain"]


def test_the_widget_from_a_report(workspace: Workspace) -> None:
    from kernel_magics.monitor.report import drift_report

    view = DriftWidget(drift_report(workspace, "shop", window="1h").to_json())
    assert view.selected == "size"
    view.select("price")
    assert view.selected == "price" and 'data-feature="price"' in view.histogram.value
    with pytest.raises(KeyError, match="features: size, price, colour"):
        view.select("ghost")
    assert "Choose a feature" in render_histogram(None)


@pytest.mark.parametrize(("line", "expected"), [
    ("drift", "Usage: %ship drift NAME [--window W]"),
    ("drift shop --window soon", "use a duration like 15m"),
    ("drift shop --history 0", "history must be from 1 to"),
    ("drift shop --history x", "invalid int value"),
    ("drift shop --colour red", "unrecognized arguments"),
    ("drift ghost", "service 'ghost' not found"),
])
def test_bad_arguments_say_what_to_type(shell: Any, line: str, expected: str) -> None:
    with pytest.raises(UsageError, match=expected.replace("[", r"\[").replace("]", r"\]")):
        shell.run_line_magic("ship", line)


def test_drift_is_a_line_magic(shell: Any) -> None:
    with pytest.raises(UsageError, match="drift is a line magic"):
        shell.run_cell_magic("ship", "drift shop", "x = 1")
    assert os.environ["SHIP_NOTEBOOK"].endswith("monitor.ipynb")


def test_the_notebook_workspace_is_used(shell: Any, workspace: Workspace,
                                        tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                        ) -> None:
    # From another folder, the notebook's path still finds the workspace.
    monkeypatch.chdir(tmp_path)
    (bundle,) = _displayed(shell, "drift shop")
    assert "drift of service shop" in bundle["text/plain"]
