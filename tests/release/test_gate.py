"""The gate's statistics and decisions on fixed samples, the release file's validation,
and the canary split: fast and deterministic (seeded draws)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from kernel_magics.errors import ConfigError
from kernel_magics.release.gate import GateSettings, Samples, checks, decide
from kernel_magics.serving.release import (
    Canary,
    Release,
    ReleaseFileError,
    read_release,
    takes_canary,
    write_release,
)
from kernel_magics.workspace import init_workspace

SETTINGS = GateSettings()


def samples(rng: np.random.Generator, *, n_champion: int = 2000, n_canary: int = 200,
            slow: float = 1.0, canary_errors: float = 0.005, champion_errors: float = 0.005,
            disagree: int = 0) -> Samples:
    return Samples(
        champion_latency=rng.lognormal(0.0, 0.3, n_champion),
        champion_failed=rng.random(n_champion) < champion_errors,
        canary_latency=rng.lognormal(0.0, 0.3, n_canary) * slow,
        canary_failed=rng.random(n_canary) < canary_errors,
        compared_rows=n_canary, disagreeing_rows=disagree)


def verdict(s: Samples, *, seconds: float = 120.0, next_step: float | None = 25.0,
            settings: GateSettings = SETTINGS) -> tuple[str | None, str, str]:
    found = decide(checks(s, settings), version="2", percent=5.0, next_step=next_step,
                   seconds_at_step=seconds, settings=settings)
    return found.action, found.status, found.reason


def test_an_identical_canary_steps_up_then_is_promoted() -> None:
    rng = np.random.default_rng(0)
    assert verdict(samples(rng))[:2] == ("step", "passing")
    action, _, reason = verdict(samples(rng), next_step=100.0)
    assert action == "promote" and reason.startswith("promoted canary 2")
    assert verdict(samples(rng), next_step=None)[0] == "promote"


def test_a_failing_canary_is_rolled_back_with_its_reason() -> None:
    rng = np.random.default_rng(1)
    action, status, reason = verdict(samples(rng, n_canary=30, canary_errors=0.33))
    assert (action, status) == ("rollback", "failing")
    assert reason.startswith("rolled back canary 2: error rate")
    assert "Fisher's exact test" in reason and "30 and 2000 requests" in reason


def test_a_slow_canary_is_rolled_back_on_latency() -> None:
    action, _, reason = verdict(samples(np.random.default_rng(2), slow=3.0))
    assert action == "rollback" and "p50 latency" in reason and "1.5x" in reason


def test_a_canary_that_disagrees_is_rolled_back() -> None:
    action, _, reason = verdict(samples(np.random.default_rng(3), disagree=40))
    assert action == "rollback" and "disagreement with the champion 20.0%" in reason


def test_worse_accuracy_from_feedback_rolls_back() -> None:
    rng = np.random.default_rng(4)
    s = samples(rng)
    s = Samples(**{**s.__dict__, "champion_correct": rng.random(500) < 0.9,
                   "canary_correct": rng.random(200) < 0.7})
    action, _, reason = verdict(s)
    assert action == "rollback" and reason.startswith("rolled back canary 2: accuracy")


def test_never_on_too_little_data() -> None:
    rng = np.random.default_rng(5)
    # three failures of ten: alarming, but below min_requests
    action, status, reason = verdict(samples(rng, n_canary=10, canary_errors=0.3))
    assert (action, status) == (None, "waiting")
    assert "error rate: not enough data (10 on the canary" in reason
    # no champion traffic at all (a NaN baseline) is waiting, not a pass
    empty = Samples(np.zeros(0), np.zeros(0, bool), np.ones(100), np.zeros(100, bool))
    assert verdict(empty)[:2] == (None, "waiting")
    # enough data, but not yet step_seconds at this step
    action, status, reason = verdict(samples(rng), seconds=10.0)
    assert (action, status) == (None, "passing") and "10 s of 60 s" in reason


def test_zero_baselines_are_cases_not_passes() -> None:
    # a champion that never failed: any significant canary failure rate still fails
    s = samples(np.random.default_rng(6), champion_errors=0.0, canary_errors=0.2)
    assert verdict(s)[0] == "rollback"
    # a champion answering in 0 ms (a coarse clock): a slower canary is infinitely slower
    zero = Samples(np.zeros(500), np.zeros(500, bool), np.full(100, 0.5),
                   np.zeros(100, bool))
    assert verdict(zero)[0] == "rollback"
    same = Samples(np.zeros(500), np.zeros(500, bool), np.zeros(100), np.zeros(100, bool))
    assert verdict(same)[0] == "step"


def test_false_rollbacks_of_identical_canaries_are_rare() -> None:
    rng = np.random.default_rng(7)
    rollbacks = sum(verdict(samples(rng))[0] == "rollback" for _ in range(300))
    assert rollbacks <= 3  # at most 1 %


def test_release_settings_from_ship_toml(tmp_path: Path) -> None:
    workspace = init_workspace(tmp_path)
    (workspace.ship_dir / "ship.toml").write_text(
        "[release]\nmin_requests = 50\nmax_latency_ratio = 2\n", encoding="utf-8")
    settings = GateSettings.from_workspace(init_workspace(tmp_path))
    assert (settings.min_requests, settings.max_latency_ratio) == (50, 2.0)
    (workspace.ship_dir / "ship.toml").write_text("[release]\nmin_request = 5\n",
                                                  encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown keys \\['min_request'\\]"):
        GateSettings.from_workspace(init_workspace(tmp_path))
    (workspace.ship_dir / "ship.toml").write_text("[release]\nmin_requests = 2.5\n",
                                                  encoding="utf-8")
    with pytest.raises(ConfigError, match="min_requests .* whole number"):
        GateSettings.from_workspace(init_workspace(tmp_path))


def test_release_file_round_trip_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "release.json"
    assert read_release(path) is None
    release = Release("churn", "1", Canary("2", 5.0, (5.0, 25.0, 100.0)), ("3",))
    write_release(path, release)
    assert read_release(path) == release
    assert release.versions == ["1", "2", "3"] and release.canary is not None
    assert release.canary.next_step == 25.0
    for document, message in (
            ({"champion": "../1"}, "champion must be a version folder name"),
            ({"champion": "1", "canary": {"version": "2", "percent": 0}},
             "canary.percent must be a number in (0, 100]"),
            ({"champion": "1", "shadows": "3"}, "shadows must be a list"),
            ({"format": 9, "champion": "1"}, "format 9 is not 1")):
        path.write_text(json.dumps(document), encoding="utf-8")
        with pytest.raises(ReleaseFileError, match=message.replace("(", r"\(")
                           .replace(")", r"\)").replace("]", r"\]")):
            read_release(path)


def test_the_canary_split() -> None:
    keys = [f"customer-{i}" for i in range(10_000)]
    share = sum(takes_canary(10.0, k) for k in keys) / len(keys)
    assert 0.09 < share < 0.11
    assert all(takes_canary(10.0, k) == takes_canary(10.0, k) for k in keys[:100])
    # raising the share keeps every key that was on the canary there
    assert all(takes_canary(50.0, k) for k in keys if takes_canary(10.0, k))
    assert takes_canary(100.0, None) and takes_canary(100.0, "x")


def test_a_canary_at_100_percent_compares_errors_with_the_champions_copies() -> None:
    rng = np.random.default_rng(8)
    s = samples(rng, slow=5.0)  # copies skip HTTP: their latency is no baseline
    s = Samples(**{**s.__dict__, "champion_copies": True})
    found = {c.metric: c for c in checks(s, SETTINGS)}
    assert found["latency_p50_ms"].passed is None and not found["latency_p50_ms"].required
    assert found["latency_p50_ms"].test.startswith("not compared")
    assert verdict(s, next_step=None)[0] == "promote"
    failing = Samples(**{**samples(rng, canary_errors=0.3).__dict__, "champion_copies": True})
    assert verdict(failing)[0] == "rollback"
