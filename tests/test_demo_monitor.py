"""`ship demo`'s monitoring step against a real served bundle, in two short windows.

A digits classifier (LogisticRegression as ONNX, the digits' own pixel_R_C feature names)
built as `ship build --reference` lays it out, with the digits features as its reference,
served by uvicorn in a thread writing its prediction log into the workspace. The demo's
own helpers send normal then shifted traffic with ground truth, and report each window:
no drift, then dataset drift and a drop in accuracy.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from live_server import serve_in_thread
from onnx_models import classifier_schema, sklearn_onnx

from kernel_magics import demo
from kernel_magics.bundle.reference import from_data, write_reference_file
from kernel_magics.serving.bundle import Lineage, Manifest, RuntimeSettings, write_bundle
from kernel_magics.serving.schema import Feature
from kernel_magics.workspace import Workspace, init_workspace

pytestmark = pytest.mark.slow  # a real served bundle and two 4-second windows


@pytest.fixture(scope="module")
def digits() -> tuple[pd.DataFrame, np.ndarray[Any, Any]]:
    from sklearn.datasets import load_digits

    frame = load_digits(as_frame=True).frame
    return frame.drop(columns="target"), frame["target"].to_numpy()


def _onnx(features: pd.DataFrame, target: np.ndarray[Any, Any]) -> bytes:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(max_iter=300).fit(features.to_numpy(np.float32), target)
    return sklearn_onnx(model, 64)


@pytest.fixture
def served(tmp_path: Path, digits: tuple[pd.DataFrame, np.ndarray[Any, Any]]
           ) -> Iterator[tuple[Workspace, str]]:
    features, target = digits
    workspace = init_workspace(tmp_path / "ws")
    folder = workspace.services_dir / demo.SERVICE / "1"
    schema = classifier_schema([Feature(c) for c in features.columns], 64)
    write_bundle(folder, manifest=Manifest(
        name=demo.SERVICE, version="1", lineage=Lineage(demo.SERVICE, "1", "run-x"),
        runtime=RuntimeSettings(log_flush_interval_s=0.2)), schema=schema,
        model=_onnx(features, target))
    write_reference_file(folder, from_data(schema.feature_names, features))
    running = serve_in_thread(folder, folder.parent / "log")
    yield workspace, running.url
    running.stop()


def test_shift_moves_each_image_one_pixel_right(
        digits: tuple[pd.DataFrame, np.ndarray[Any, Any]]) -> None:
    features, _ = digits
    shifted = demo.shift_traffic(features)
    before = features.to_numpy().reshape(-1, 8, 8)
    after = shifted.to_numpy().reshape(-1, 8, 8)
    assert list(shifted.columns) == list(features.columns)
    assert (after[:, :, 0] == 0).all()  # the left column is blank
    assert np.array_equal(after[:, :, 1:], before[:, :, :-1])


def test_normal_then_shifted_windows(served: tuple[Workspace, str],
                                     digits: tuple[pd.DataFrame, np.ndarray[Any, Any]]
                                     ) -> None:
    workspace, url = served
    features, target = digits
    normal = demo.Phase(time.time(), seconds=4.0, settle_s=1.5)
    shifted = demo.Phase(normal.end, seconds=4.0, settle_s=1.5)
    with httpx.Client(base_url=url, timeout=10) as client:
        demo.send_phase(client, features, target, normal, seed=1, requests=150)
        first = demo.phase_report(workspace, normal)
        demo.send_phase(client, features, target, shifted, seed=2, shift=True, requests=150)
    second = demo.phase_report(workspace, shifted, history=2)

    assert (normal.requests, normal.rows, normal.labelled) == (150, 750, 375)
    assert first.current_rows == 750 and first.window_end is not None
    assert first.performance is not None and first.performance["labelled"] == 375
    assert first.performance["value"] > 0.9
    assert not first.dataset()["drifted"] and first.dataset()["drifted_features"] == []
    assert first.dataset()["judged"] == 64
    assert demo.drifted_summary(first) == "drifted features: none"

    assert second.current_rows == 750
    assert second.dataset()["drifted"]
    drifted = second.dataset()["drifted_features"]
    assert len(drifted) >= 32
    assert demo.drifted_summary(second).startswith(f"drifted features: {len(drifted)} of 64")
    # the model reads pixels by position: moved digits are often misread
    assert second.performance is not None and second.performance["value"] < 0.8
    # the window before the shifted one is exactly the normal phase
    assert [h["rows"] for h in second.history] == [750, 750]
    assert [h["dataset_drifted"] for h in second.history] == [False, True]

    text = demo.report_text(second)
    assert f"DRIFT: {len(drifted)} of 64 judged features drift" in text
    listed = [line.split()[0] for line in text.splitlines() if " numeric " in line]
    assert listed == list(demo.SHOWN_FEATURES)

    # the review step: the queue of both windows, and a person labelling some of it
    said: list[str] = []
    demo.review(workspace, {**normal.truth, **shifted.truth}, said.append, labels=10)
    assert len(normal.truth) == 150 and len(shifted.truth) == 150
    assert said[0].startswith("  human review: ") and "routed to a person" in said[0]
    assert said[1].startswith("  a person labels 10 of them: the model was wrong on ")
    # labels are feedback: half the requests had it from the client, ten rows from review
    from kernel_magics.retrain.data import service_production_data

    data = service_production_data(workspace, demo.SERVICE)
    assert len(data.frame) == 375 * 2 + 10
