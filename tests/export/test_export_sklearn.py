"""scikit-learn → ONNX through skl2onnx: a scaled logistic-regression pipeline, DataFrame
inputs, a regressor, and an unsupported step named in the error."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import SplineTransformer, StandardScaler

from kernel_magics.errors import ExportError
from kernel_magics.export import export_model
from kernel_magics.export.graph import SKL2ONNX
from kernel_magics.export.pipeline import ExportSettings, check_export

FAST = ExportSettings(profile_repeats=10)


@pytest.fixture(scope="module")
def pipeline(digits: Any) -> Pipeline:
    model = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(max_iter=300))])
    return model.fit(digits.x_train, digits.y_train)


def test_pipeline_exports_and_passes_the_gate(pipeline: Pipeline, digits: Any) -> None:
    checked = check_export(pipeline, digits.x_test[:1], eval_x=digits.x_test,
                           eval_y=digits.y_test, settings=FAST)
    assert checked.graph.exporter == SKL2ONNX
    assert checked.graph.output_names == ["label", "probabilities"]
    parity = checked.parity
    assert parity.passed
    by_name = {o.name: o for o in parity.outputs}
    assert by_name["label"].kind == "labels" and by_name["label"].outside == 0
    assert by_name["probabilities"].kind == "values"
    assert by_name["probabilities"].max_abs_error < 1e-4
    assert parity.agreement == 1.0
    assert parity.metric_onnx == pytest.approx(pipeline.score(digits.x_test, digits.y_test))
    assert checked.profile is not None
    assert checked.profile.speedup("original", "onnx-fp32") is not None


def test_dataframe_rows_keep_their_feature_names(digits: Any) -> None:
    columns = [f"pixel_{i}" for i in range(64)]
    frame = pd.DataFrame(digits.x_train, columns=columns)
    model = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(max_iter=300))])
    model.fit(frame, digits.y_train)
    test = pd.DataFrame(digits.x_test, columns=columns)
    with warnings.catch_warnings():
        # The original is called with the DataFrame, so scikit-learn has nothing to warn about.
        warnings.simplefilter("error", UserWarning)
        checked = check_export(model, test.iloc[:3], eval_x=test, eval_y=digits.y_test,
                               settings=FAST, profile=False)
    assert checked.parity.passed
    assert checked.held.array.dtype == np.float32


def test_regressor_reports_rmse(digits: Any) -> None:
    model = Ridge().fit(digits.x_train, digits.y_train.astype(np.float64))
    checked = check_export(model, digits.x_test[:2], eval_x=digits.x_test,
                           eval_y=digits.y_test.astype(np.float64), settings=FAST, profile=False)
    assert checked.task.kind == "regression"
    assert checked.parity.passed
    assert checked.parity.metric_name == "rmse"
    delta = checked.parity.metric_delta
    assert delta is not None and abs(delta) < 1e-3


def test_unsupported_step_is_named_and_nothing_is_registered(
        digits: Any, workspace: Any, store_contents: Any) -> None:
    model = Pipeline([("scale", StandardScaler()), ("spline", SplineTransformer(n_knots=3)),
                      ("clf", LogisticRegression(max_iter=50))])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a ConvergenceWarning is beside the point here
        model.fit(digits.x_train[:300], digits.y_train[:300])
    with pytest.raises(ExportError) as caught:
        export_model(model, "splines", digits.x_test[:2], workspace=workspace)
    err = caught.value
    assert err.exporter == SKL2ONNX
    assert err.step == "step 'spline' (SplineTransformer)"
    assert "skl2onnx cannot convert step 'spline' (SplineTransformer)" in str(err)
    assert "StandardScaler" not in str(err)
    assert err.http_status == 400
    assert store_contents() == ([], [])


def test_objects_that_are_not_models_are_refused(digits: Any) -> None:
    from kernel_magics.errors import ValidationError

    with pytest.raises(ValidationError, match="cannot export a builtins.dict"):
        check_export({"weights": [1, 2]}, digits.x_test[:2], settings=FAST)


@pytest.mark.parametrize("library", ["xgboost", "lightgbm"])
def test_gradient_boosted_trees_export_quietly(digits: Any, library: str,
                                               recwarn: pytest.WarningsRecorder) -> None:
    # XGBoost and LightGBM, as people train them: bare, and as a pipeline's last step.
    if library == "xgboost":
        from xgboost import XGBClassifier, XGBRegressor

        classifier: Any = XGBClassifier(n_estimators=15, max_depth=3)
        regressor: Any = XGBRegressor(n_estimators=15, max_depth=3)
    else:
        from lightgbm import LGBMClassifier, LGBMRegressor

        classifier = LGBMClassifier(n_estimators=15, verbose=-1)
        regressor = LGBMRegressor(n_estimators=15, verbose=-1)
    # Trees need no scaling (and XGBoost's thresholds sit on the data's own values, which a
    # float32 scaler in ONNX moves across: the gate refuses that, rightly); an imputer is
    # what such pipelines hold.
    model = Pipeline([("impute", SimpleImputer()), ("clf", classifier)])
    model.fit(digits.x_train, digits.y_train)
    checked = check_export(model, digits.x_test[:4], eval_x=digits.x_test,
                           eval_y=digits.y_test, settings=FAST)
    assert checked.parity.passed and checked.parity.agreement == 1.0
    assert checked.graph.output_names == ["label", "probabilities"]
    assert checked.parity.metric_onnx == pytest.approx(model.score(digits.x_test,
                                                                   digits.y_test), abs=1e-9)
    regressor.fit(digits.x_train, digits.y_train.astype("float32"))
    fitted = check_export(regressor, digits.x_test[:4], eval_x=digits.x_test,
                          eval_y=digits.y_test.astype("float32"), settings=FAST)
    assert fitted.parity.passed and fitted.task.kind == "regression"
    noisy = [str(w.message) for w in recwarn if issubclass(w.category, (FutureWarning,
                                                                         DeprecationWarning))]
    assert not noisy, noisy  # the converters' chatter does not bury the export's report


def test_a_scaler_before_xgboost_fails_the_gate_with_advice(digits: Any) -> None:
    # XGBoost's split thresholds sit on the training values; the scaler's float32 output
    # in ONNX moves some across them. The gate refuses, and says what to do.
    from xgboost import XGBClassifier

    from kernel_magics.errors import ParityError

    model = Pipeline([("scale", StandardScaler()),
                      ("clf", XGBClassifier(n_estimators=15, max_depth=3))])
    model.fit(digits.x_train, digits.y_train)
    with pytest.raises(ParityError) as err:
        check_export(model, digits.x_test[:4], eval_x=digits.x_test, eval_y=digits.y_test,
                     settings=FAST)
    assert "float32" in str(err.value) and "forward()" not in str(err.value)
