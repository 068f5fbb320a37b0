"""``[loop]`` of ship.toml: the retraining gate's and `ship watch`'s policy.

Every key is optional; docs/retraining.md explains each default.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ..errors import ConfigError
from ..workspace import CONFIG_FILE, Workspace, typed_section

METRICS = ("auto", "accuracy", "rmse")


@dataclass(frozen=True)
class LoopSettings:
    """How a challenger is trained, judged and released, and when `ship watch` retrains."""

    # Production data: the newest share of labelled rows (by time) is held out of the
    # challenger's training data; the gate's "recent" set.
    recent_share: float = 0.3
    # Fewer labelled production rows than this: nothing is trained ("too-little-feedback").
    min_labelled_rows: int = 100
    # The gate: the task's metric ("auto": accuracy for classifiers, RMSE for regressors),
    # a paired bootstrap interval of challenger minus champion at this confidence.
    metric: str = "auto"
    confidence: float = 0.95
    resamples: int = 2000
    seed: int = 0
    # Recent rows: the interval must lie above this gain: a release is worth its risk only
    # for a gain this size (accuracy: a fraction, 0.02 = 2 points; RMSE: a share of the
    # champion's RMSE). bench/loop.py: at 0, retrained challengers no better than the
    # champion went out in 10 % of seeds.
    min_gain: float = 0.02
    # Holdout: the interval's worse end may lose at most this much (forgetting), in the
    # same units. A holdout of a few hundred rows gives an interval about +-0.02 wide
    # around no change at all, so a tighter margin rejects challengers that forget
    # nothing (bench/loop.py: 0.01 released 28 of 50 real improvements, 0.03 49 of 50).
    max_forgetting: float = 0.03
    # A champion exported without labelled --eval rows has no holdout: true rejects the
    # challenger ("no-holdout"); false releases it on the recent check alone, and says so.
    require_holdout: bool = True
    # A passing challenger's canary (the [release] gate promotes or rolls it back).
    canary_percent: float = 10.0
    canary_steps: str = "10,50,100"
    # ship watch: retrain on dataset drift, or when accuracy from feedback falls below
    # min_accuracy (0: off) over the drift window with at least min_labelled_rows labels.
    on_drift: bool = True
    min_accuracy: float = 0.0
    interval_s: float = 60.0
    # After a rejected challenger, wait this long before the next try; doubled after each
    # further rejection, up to max_backoff_s.
    backoff_s: float = 600.0
    max_backoff_s: float = 86_400.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_workspace(cls, workspace: Workspace) -> LoopSettings:
        """``[loop]`` of ship.toml over the defaults; ConfigError names a bad value."""
        where = workspace.ship_dir / CONFIG_FILE
        values = typed_section(workspace, "loop", cls)
        settings = cls(**values)
        settings.check(str(where))
        return settings

    def check(self, where: str = "[loop]") -> None:
        if self.metric not in METRICS:
            raise ConfigError(f"[loop] metric in {where} must be one of {', '.join(METRICS)}, "
                              f"got {self.metric!r}.")
        if not 0 < self.recent_share < 1:
            raise ConfigError(f"[loop] recent_share in {where} must be between 0 and 1 "
                              f"(a share of the labelled rows), got {self.recent_share}.")
        if not 0.5 <= self.confidence < 1:
            raise ConfigError(f"[loop] confidence in {where} must be in [0.5, 1), got "
                              f"{self.confidence}.")
        if self.resamples < 100:
            raise ConfigError(f"[loop] resamples in {where} must be at least 100, got "
                              f"{self.resamples}.")
        if not 0 < self.canary_percent <= 100:
            raise ConfigError(f"[loop] canary_percent in {where} must be in (0, 100], got "
                              f"{self.canary_percent}.")
