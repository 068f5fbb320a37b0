"""The retraining gate's arithmetic, settings and production-data rules, without models."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from kernel_magics.errors import ConfigError
from kernel_magics.retrain import gate
from kernel_magics.retrain.data import split_recent
from kernel_magics.retrain.settings import LoopSettings
from kernel_magics.workspace import Workspace

SETTINGS = LoopSettings()


def scores(right: int, rows: int) -> np.ndarray:
    return np.array([1.0] * right + [0.0] * (rows - right))


def test_two_models_that_agree_everywhere_get_an_empty_interval_and_no_release() -> None:
    same = scores(450, 500)
    check = gate.compare(gate.RECENT, "accuracy", same, same.copy(), SETTINGS)
    assert check.interval == (0.0, 0.0) and check.passed is False
    assert "not better" in check.reason


def test_pairing_sees_a_gain_that_two_independent_samples_would_not() -> None:
    rng = np.random.default_rng(0)
    champion = (rng.random(400) < 0.8).astype(float)
    challenger = champion.copy()
    challenger[np.flatnonzero(champion == 0)[:30]] = 1.0  # right on 30 more rows, nowhere worse
    check = gate.compare(gate.RECENT, "accuracy", champion, challenger, SETTINGS)
    assert check.challenger - check.champion == pytest.approx(30 / 400)
    assert check.interval is not None and check.interval[0] > SETTINGS.min_gain
    assert check.passed


def test_the_holdout_fails_a_challenger_that_forgets_and_passes_one_that_does_not() -> None:
    champion = scores(430, 450)
    forgets = scores(300, 450)
    holdout = gate.compare(gate.HOLDOUT, "accuracy", champion, forgets, SETTINGS)
    assert holdout.passed is False and holdout.reason.startswith("forgets")
    kept = gate.compare(gate.HOLDOUT, "accuracy", champion, champion.copy(), SETTINGS)
    assert kept.passed is True


def test_rmse_is_lower_is_better_and_its_margins_are_shares_of_the_champions() -> None:
    rng = np.random.default_rng(1)
    errors = rng.normal(0, 10.0, 300)  # RMSE about 10 in the target's units
    champion, better = errors ** 2, (errors * 0.8) ** 2
    check = gate.compare(gate.RECENT, "rmse", champion, better, SETTINGS)
    assert check.challenger < check.champion
    assert check.interval is not None and check.interval[1] < 0  # challenger - champion
    assert check.passed
    # 1 % worse is within a 3 % forgetting margin of an RMSE of 10, 10 % is not
    assert gate.compare(gate.HOLDOUT, "rmse", champion, champion * 1.01 ** 2, SETTINGS).passed
    assert not gate.compare(gate.HOLDOUT, "rmse", champion, champion * 1.1 ** 2,
                            SETTINGS).passed


def test_per_row_scores_read_labels_the_way_the_log_does() -> None:
    assert gate.per_row_scores("accuracy", [1, "2", 3.0, None], [1, 2, "3", 0]).tolist() == \
        [1.0, 1.0, 1.0, 0.0]
    assert gate.per_row_scores("rmse", [1.0, 3.0], [2, 3]).tolist() == [1.0, 0.0]
    with pytest.raises(ValueError, match="numeric"):
        gate.per_row_scores("rmse", ["cat"], [1])


def test_a_missing_holdout_is_stated_never_a_silent_pass() -> None:
    recent = gate.compare(gate.RECENT, "accuracy", scores(50, 100), scores(90, 100), SETTINGS)
    missing = gate.missing_holdout("accuracy", SETTINGS, "no --eval rows")
    assert missing.passed is False and "require_holdout = true" in missing.reason
    assert gate.decide([recent, missing], SETTINGS) == gate.NO_HOLDOUT

    lenient = LoopSettings(require_holdout=False)
    skipped = gate.missing_holdout("accuracy", lenient, "no --eval rows")
    assert skipped.passed is None and "not checked for forgetting" in skipped.reason
    assert gate.decide([recent, skipped], lenient) == gate.CANARY
    assert gate.decide([recent, skipped], SETTINGS) == gate.REJECTED


def test_the_json_names_are_the_designs() -> None:
    check = gate.compare(gate.RECENT, "accuracy", scores(5, 10), scores(9, 10), SETTINGS)
    assert set(check.to_json()) >= {"name", "metric", "champion", "challenger", "interval",
                                    "passed"}


def test_recent_rows_are_the_newest_whole_requests() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    frame = pd.DataFrame({
        "x": range(10), "target": [0] * 10,
        "request_id": ["a", "a", "b", "b", "c", "c", "d", "d", "e", "e"],
        "time": [start + timedelta(seconds=i // 2) for i in range(10)]})
    older, recent = split_recent(frame.sample(frac=1, random_state=0), 0.3)
    assert recent.request_id.tolist() == ["d", "d", "e", "e"]  # 3 rows asked, whole requests
    assert len(older) + len(recent) == 10 and set(older.request_id) == {"a", "b", "c"}


def test_loop_settings_name_a_bad_value_and_where(tmp_path: object) -> None:
    from pathlib import Path

    root = Path(str(tmp_path))
    with pytest.raises(ConfigError, match=r"\[loop\] has unknown keys \['share'\]|unknown"):
        LoopSettings.from_workspace(Workspace(root, {"loop": {"share": 0.3}}))
    with pytest.raises(ConfigError, match="recent_share"):
        LoopSettings.from_workspace(Workspace(root, {"loop": {"recent_share": 1.5}}))
    with pytest.raises(ConfigError, match="metric"):
        LoopSettings.from_workspace(Workspace(root, {"loop": {"metric": "f1"}}))
    with pytest.raises(ConfigError, match="true or false"):
        LoopSettings.from_workspace(Workspace(root, {"loop": {"require_holdout": "yes"}}))
    assert LoopSettings.from_workspace(Workspace(root, {"loop": {"min_gain": 0}})).min_gain == 0
