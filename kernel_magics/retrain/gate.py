"""The champion/challenger gate: better on new data, not worse on old, each with an interval.

Both models are scored on the same rows, so the comparison is paired: each bootstrap
resample draws rows (with replacement) and computes the metric of both models on them;
the interval is the middle ``confidence`` of the differences, challenger minus champion
(the percentile bootstrap, Efron & Tibshirani ch. 13). Pairing removes the rows'
difficulty from the noise: two models that agree everywhere get the interval [0, 0].

- ``recent``: the newest labelled production rows, held out of the challenger's
  training. Passes when the whole interval says the challenger is better by more than
  ``min_gain`` (no promotion without gain).
- ``holdout``: the champion's historical holdout (the `--eval` rows of its export).
  Passes when the interval's worse end loses at most ``max_forgetting`` (forgetting).

Per-row scores are what the metric averages: for accuracy, 1.0 where the prediction is
right; for RMSE, the squared error (the metric is the root of its mean; lower is better).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .settings import LoopSettings

RECENT, HOLDOUT = "recent", "holdout"
# Decisions (docs/retraining.md): what `ship retrain` did and why.
CANARY = "canary"  # both checks passed: released as a canary
REJECTED = "rejected"  # a check failed
NO_HOLDOUT = "no-holdout"  # the champion has no holdout and [loop] require_holdout
TOO_LITTLE = "too-little-feedback"  # too few labelled production rows to train and judge
FIRST_MODEL = "first-model"  # no champion to compare with
FAILED = "failed"  # the notebook, the export or the build failed
PASSED = "passed"  # both checks passed, released by nobody (--no-release)
CHUNK = 200  # resamples drawn at once (memory: CHUNK x rows indices)


def lower_is_better(metric: str) -> bool:
    return metric == "rmse"


def metric_value(metric: str, scores: np.ndarray) -> float:
    """The metric of per-row scores: accuracy is their mean, RMSE the root of it."""
    mean = float(np.mean(scores))
    return math.sqrt(mean) if metric == "rmse" else mean


def per_row_scores(metric: str, predictions: list[Any], targets: list[Any]) -> np.ndarray:
    """1.0 / 0.0 per right / wrong prediction (accuracy), or the squared error (RMSE);
    a missing prediction counts as wrong (accuracy) or is an error (RMSE)."""
    if metric == "rmse":
        try:
            predicted = np.array([np.nan if p is None else float(p) for p in predictions])
            target = np.array([float(t) for t in targets])
        except (TypeError, ValueError) as exc:
            raise ValueError(f"RMSE needs numeric predictions and targets: {exc}") from None
        return np.asarray((predicted - target) ** 2, dtype=np.float64)
    return np.array([p is not None and _label(p) == _label(t)
                     for p, t in zip(predictions, targets, strict=True)], dtype=np.float64)


def disagreement(metric: str, first: list[Any], second: list[Any]) -> float:
    """The share of rows whose two predictions differ (RMSE: by more than 0.1 % of the
    larger)."""
    if not first:
        return 0.0
    if metric == "rmse":
        differ = [a is None or b is None or abs(float(a) - float(b)) >
                  1e-3 * max(1.0, abs(float(a)), abs(float(b)))
                  for a, b in zip(first, second, strict=True)]
    else:
        differ = [_label(a) != _label(b) for a, b in zip(first, second, strict=True)]
    return float(np.mean(differ))


def _label(value: Any) -> str:
    """1, 1.0, "1" and numpy's 1 are the same class."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def paired_interval(metric: str, champion: np.ndarray, challenger: np.ndarray, *,
                    confidence: float, resamples: int, seed: int) -> tuple[float, float]:
    """The percentile-bootstrap interval of metric(challenger) - metric(champion) over
    the same resampled rows."""
    rows = len(champion)
    rng = np.random.default_rng(seed)
    differences = np.empty(resamples)
    for start in range(0, resamples, CHUNK):
        count = min(CHUNK, resamples - start)
        picks = rng.integers(0, rows, size=(count, rows))
        mine, theirs = challenger[picks].mean(axis=1), champion[picks].mean(axis=1)
        if metric == "rmse":
            mine, theirs = np.sqrt(mine), np.sqrt(theirs)
        differences[start:start + count] = mine - theirs
    tail = (1 - confidence) / 2
    low, high = np.quantile(differences, [tail, 1 - tail])
    return float(low), float(high)


@dataclass(frozen=True)
class Check:
    """One set's comparison; ``passed`` None: not judged (``reason`` says why)."""

    name: str
    metric: str
    champion: float | None
    challenger: float | None
    interval: tuple[float, float] | None  # challenger - champion
    passed: bool | None
    rows: int
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "metric": self.metric, "champion": self.champion,
                "challenger": self.challenger,
                "interval": None if self.interval is None else list(self.interval),
                "passed": self.passed, "rows": self.rows, "reason": self.reason}


def compare(name: str, metric: str, champion: np.ndarray, challenger: np.ndarray,
            settings: LoopSettings) -> Check:
    """Judge one set: ``recent`` must gain, ``holdout`` must not lose much."""
    rows = len(champion)
    if rows == 0:
        return Check(name, metric, None, None, None, False, 0,
                     f"no {name} rows to compare the two models on")
    mine, theirs = metric_value(metric, challenger), metric_value(metric, champion)
    low, high = paired_interval(metric, champion, challenger, confidence=settings.confidence,
                                resamples=settings.resamples, seed=settings.seed)
    # The gain's interval: challenger better is positive, whatever the metric's direction;
    # RMSE's margins are shares of the champion's RMSE (its units are the target's).
    gain_low = -high if lower_is_better(metric) else low
    scale = theirs if lower_is_better(metric) else 1.0
    min_gain, max_forgetting = settings.min_gain * scale, settings.max_forgetting * scale
    level = f"{settings.confidence:.0%}"
    span = f"{level} interval of the difference [{_fmt(low)}, {_fmt(high)}]"
    if name == RECENT:
        passed = gain_low > min_gain
        reason = (f"better on {rows} recent rows by more than {_fmt(min_gain)}: {span}"
                  if passed else
                  f"not better on {rows} recent rows by more than {_fmt(min_gain)}: {span}")
    else:
        passed = gain_low >= -max_forgetting
        reason = (f"not worse on {rows} holdout rows by more than {_fmt(max_forgetting)}: "
                  f"{span}" if passed else
                  f"forgets: may be worse on {rows} holdout rows by {_fmt(-gain_low)}, more "
                  f"than {_fmt(max_forgetting)}: {span}")
    return Check(name, metric, theirs, mine, (low, high), passed, rows, reason)


def missing_holdout(metric: str, settings: LoopSettings, why: str) -> Check:
    """The holdout check when the champion has none: failed, or not judged when
    ``require_holdout`` is off; the reason says which."""
    if settings.require_holdout:
        return Check(HOLDOUT, metric, None, None, None, False, 0,
                     f"{why}; forgetting cannot be checked ([loop] require_holdout = true)")
    return Check(HOLDOUT, metric, None, None, None, None, 0,
                 f"{why}; not checked for forgetting ([loop] require_holdout = false)")


def decide(checks: list[Check], settings: LoopSettings) -> str:
    """canary when every check passed (a holdout not judged is allowed only when
    ``require_holdout`` is off), else rejected / no-holdout."""
    by_name = {c.name: c for c in checks}
    holdout = by_name.get(HOLDOUT)
    if holdout is not None and holdout.rows == 0 and holdout.passed is False and \
            by_name.get(RECENT, holdout).passed is not False:
        return NO_HOLDOUT
    if all(c.passed is True or (c.passed is None and not settings.require_holdout)
           for c in checks):
        return CANARY
    return REJECTED


def _fmt(value: float) -> str:
    return f"{value:.4g}"
