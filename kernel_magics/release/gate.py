"""The canary gate: compare a canary with the champion on the same traffic, then decide.

Each check turns two samples into a :class:`Check`: both values, the test, its p-value,
both sample sizes, the threshold, and ``passed`` (True, False, or None: not enough data
to say). A check fails only when the difference is both significant and larger than
its margin. Significant means p below ``alpha`` shared out over every test the gate
may make during a release (Bonferroni: ``alpha`` / (checks x steps x looks per step),
:meth:`GateSettings.level`), so the gate looking again every ``interval_s`` does not
add up to false rollbacks: an identical canary is rolled back in at most ``alpha`` of
releases (bench/release.py counts it), and a small difference that does not matter
passes.

    error_rate      Fisher's exact test, one-sided; fails on significance and an
                    increase above ``max_error_increase`` (absolute)
    latency_p50_ms  Mann-Whitney U, one-sided; fails on significance and a p50 ratio
                    above ``max_latency_ratio``
    latency_p99_ms  from ``min_tail_requests`` on: Fisher's exact test on the requests
                    slower than ``max_latency_ratio`` x the champion's p99; fails on
                    significance and a p99 ratio above ``max_latency_ratio``
    disagreement    the canary's predictions against the champion's on the same
                    requests (the champion scores a copy of each canary request):
                    binomial test against ``max_disagreement``
    accuracy        once both have ``min_labels`` labelled predictions: Fisher's exact
                    test, one-sided; fails on significance and a drop above
                    ``max_accuracy_drop``

:func:`decide` makes the release's next move from the checks: roll back on any failed
check; step up (or promote from the last step below 100 %) once error rate and latency have
``min_requests`` on both sides and the canary spent ``step_seconds`` at its step;
otherwise wait, saying for what. No data, a NaN, or a zero baseline never passes.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..workspace import CONFIG_FILE, Workspace


@dataclass(frozen=True)
class GateSettings:
    """``[release]`` of ship.toml; the defaults are in docs/releases.md."""

    alpha: float = 0.01
    min_requests: int = 30
    min_tail_requests: int = 100
    step_seconds: float = 60.0
    max_error_increase: float = 0.01
    max_latency_ratio: float = 1.5
    max_disagreement: float = 0.05
    min_labels: int = 30
    max_accuracy_drop: float = 0.02
    regression_tolerance: float = 1e-3
    interval_s: float = 2.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def level(self, steps: int = 4) -> float:
        """The significance level of one test: ``alpha`` over every test of a release of
        ``steps`` steps (each check, at each look; a step's looks counted twice over,
        for a step that waits for data)."""
        looks = 2 * max(1, math.ceil(self.step_seconds / max(self.interval_s, 1e-3)))
        return self.alpha / (len(CHECKS) * max(1, steps) * looks)

    @classmethod
    def from_workspace(cls, workspace: Workspace) -> GateSettings:
        """``[release]`` of ship.toml, defaults for missing keys; ConfigError names a bad
        value."""
        values: dict[str, Any] = {}
        where = workspace.ship_dir / CONFIG_FILE
        section = workspace.config.get("release", {})
        known = {spec.name: spec for spec in fields(cls)}
        unknown = sorted(set(section) - set(known))
        if unknown:
            raise ConfigError(f"[release] in {where} has unknown keys {unknown}; known: "
                              f"{sorted(known)}.")
        for key, raw in section.items():
            kind = int if known[key].type in ("int", int) else float
            if isinstance(raw, bool) or not isinstance(raw, int | float) or raw < 0 \
                    or (kind is int and not float(raw).is_integer()):
                raise ConfigError(f"[release] {key} in {where} must be a "
                                  f"{'whole ' if kind is int else ''}number >= 0, "
                                  f"got {raw!r}.")
            values[key] = kind(raw)
        if values.get("alpha", 0.01) >= 1 or values.get("alpha", 0.01) <= 0:
            raise ConfigError(f"[release] alpha in {where} must be between 0 and 1.")
        return cls(**values)


@dataclass(frozen=True)
class Check:
    """One metric compared: what was measured, how it was tested, and the verdict."""

    metric: str
    champion: float | None
    canary: float | None
    test: str
    p_value: float | None
    n_champion: int
    n_canary: int
    threshold: str
    passed: bool | None  # None: not enough data yet
    required: bool = True  # a step waits for it to pass
    level: float | None = None  # fails only below this p-value (GateSettings.level)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        del data["required"]
        return data

    def reason(self, candidate: str = "canary") -> str:
        """One line a person understands."""
        name = NAMES.get(self.metric, self.metric)
        if self.passed is None:
            return f"{name}: not enough data ({self.n_canary} on the {candidate}, " \
                   f"{self.n_champion} on the champion)"
        verdict = "within" if self.passed else "beyond"
        return (f"{name} {show_value(self.metric, self.canary)} on the {candidate} against "
                f"{show_value(self.metric, self.champion)} on the champion, {verdict} "
                f"{self.threshold} ({self.test} p={_p(self.p_value)}"
                f"{'' if self.passed or self.level is None else f' < {self.level:.2g}'}, "
                f"{self.n_canary} and "
                f"{self.n_champion} {'labels' if self.metric == 'accuracy' else 'requests'})")


NAMES = {"error_rate": "error rate", "latency_p50_ms": "p50 latency",
         "latency_p99_ms": "p99 latency", "disagreement": "disagreement with the champion",
         "accuracy": "accuracy"}


def show_value(metric: str, value: float | None, missing: str = "n/a") -> str:
    """A check's figure as people read it: a share in %, a latency in ms."""
    if value is None or math.isnan(value):
        return missing
    if metric in ("error_rate", "disagreement", "accuracy"):
        return f"{value:.1%}"
    return f"{value:.2f} ms"


def _p(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2g}"


@dataclass(frozen=True)
class Samples:
    """What the log says of the champion and the canary since the canary's step began."""

    champion_latency: np.ndarray[Any, Any]  # ms, one per answered request
    champion_failed: np.ndarray[Any, Any]  # bool, one per answered request
    canary_latency: np.ndarray[Any, Any]
    canary_failed: np.ndarray[Any, Any]
    compared_rows: int = 0  # rows both scored (canary answers, the champion's copies)
    disagreeing_rows: int = 0
    champion_correct: np.ndarray[Any, Any] | None = None  # bool, one per labelled row
    canary_correct: np.ndarray[Any, Any] | None = None
    # a canary at 100 %: the champion's side is its copies of the canary's requests,
    # whose latency (no HTTP, a background thread) does not compare with answers'
    champion_copies: bool = False


def error_rate(s: Samples, settings: GateSettings, level: float) -> Check:
    from scipy.stats import fisher_exact

    n_champ, n_can = len(s.champion_failed), len(s.canary_failed)
    e_champ, e_can = int(s.champion_failed.sum()), int(s.canary_failed.sum())
    threshold = f"+{settings.max_error_increase:.1%}"
    if min(n_champ, n_can) < settings.min_requests:
        return Check("error_rate", _rate(e_champ, n_champ), _rate(e_can, n_can),
                     "Fisher's exact test (one-sided)", None, n_champ, n_can, threshold, None)
    p = float(fisher_exact([[e_can, n_can - e_can], [e_champ, n_champ - e_champ]],
                           alternative="greater").pvalue)
    worse = e_can / n_can - e_champ / n_champ > settings.max_error_increase
    return Check("error_rate", e_champ / n_champ, e_can / n_can,
                 "Fisher's exact test (one-sided)", p, n_champ, n_can, threshold,
                 not (worse and p < level))


NOT_COMPARABLE = "not compared: at 100 % the champion answers no request"


def latency(s: Samples, settings: GateSettings, level: float) -> Check:
    """The median: Mann-Whitney U on all latencies, and the ratio of the p50s."""
    from scipy.stats import mannwhitneyu

    champ, can = s.champion_latency, s.canary_latency
    threshold = f"{settings.max_latency_ratio:g}x the champion"
    c_value, k_value = _quantile(champ, 0.5), _quantile(can, 0.5)
    test = "Mann-Whitney U (one-sided)"
    if s.champion_copies:
        return Check("latency_p50_ms", None, k_value, NOT_COMPARABLE, None, 0, len(can),
                     threshold, None, required=False)
    if min(len(champ), len(can)) < settings.min_requests or c_value is None \
            or k_value is None:
        return Check("latency_p50_ms", c_value, k_value, test, None, len(champ), len(can),
                     threshold, None)
    p = float(mannwhitneyu(can, champ, alternative="greater").pvalue)
    return Check("latency_p50_ms", c_value, k_value, test, p, len(champ), len(can), threshold,
                 not (_ratio(k_value, c_value) > settings.max_latency_ratio
                      and p < level))


def tail_latency(s: Samples, settings: GateSettings, level: float) -> Check:
    """The tail: the share of requests slower than ``max_latency_ratio`` times the
    champion's p99, canary against champion (Fisher's exact test), and the p99 ratio.
    A few slow first requests of a new version do not make a tail."""
    from scipy.stats import fisher_exact

    champ, can = s.champion_latency, s.canary_latency
    threshold = f"{settings.max_latency_ratio:g}x the champion"
    c_value, k_value = _quantile(champ, 0.99), _quantile(can, 0.99)
    test = "Fisher's exact test on requests beyond the threshold (one-sided)"
    if s.champion_copies:
        return Check("latency_p99_ms", None, k_value, NOT_COMPARABLE, None, 0, len(can),
                     threshold, None, required=False)
    if min(len(champ), len(can)) < settings.min_tail_requests or c_value is None \
            or k_value is None:
        return Check("latency_p99_ms", c_value, k_value, test, None, len(champ), len(can),
                     threshold, None, required=False)
    limit = settings.max_latency_ratio * c_value
    k_slow, c_slow = int((can > limit).sum()), int((champ > limit).sum())
    p = float(fisher_exact([[k_slow, len(can) - k_slow], [c_slow, len(champ) - c_slow]],
                           alternative="greater").pvalue)
    return Check("latency_p99_ms", c_value, k_value, test, p, len(champ), len(can), threshold,
                 not (_ratio(k_value, c_value) > settings.max_latency_ratio
                      and p < level), required=False)


def _quantile(values: np.ndarray[Any, Any], q: float) -> float | None:
    """The quantile of finite values; None when there are none (never NaN)."""
    finite = values[np.isfinite(values)] if len(values) else values
    return float(np.quantile(finite, q)) if len(finite) else None


def _ratio(value: float, baseline: float) -> float:
    """value / baseline; a zero baseline makes any slower value infinitely slower."""
    if baseline > 0:
        return value / baseline
    return math.inf if value > 0 else 1.0


def disagreement(s: Samples, settings: GateSettings, level: float) -> Check:
    from scipy.stats import binomtest

    n, k = s.compared_rows, s.disagreeing_rows
    threshold = f"{settings.max_disagreement:.0%} of rows"
    test = "binomial test (one-sided)"
    if n < settings.min_requests:
        return Check("disagreement", 0.0 if n else None, _rate(k, n), test, None, n, n,
                     threshold, None, required=False)
    p = float(binomtest(k, n, settings.max_disagreement, alternative="greater").pvalue)
    return Check("disagreement", 0.0, k / n, test, p, n, n, threshold,
                 not (k / n > settings.max_disagreement and p < level),
                 required=False)


def accuracy(s: Samples, settings: GateSettings, level: float) -> Check:
    from scipy.stats import fisher_exact

    champ = s.champion_correct if s.champion_correct is not None else np.zeros(0, bool)
    can = s.canary_correct if s.canary_correct is not None else np.zeros(0, bool)
    threshold = f"-{settings.max_accuracy_drop:.1%}"
    test = "Fisher's exact test (one-sided)"
    c_ok, k_ok = int(champ.sum()), int(can.sum())
    if min(len(champ), len(can)) < settings.min_labels:
        return Check("accuracy", _rate(c_ok, len(champ)), _rate(k_ok, len(can)), test, None,
                     len(champ), len(can), threshold, None, required=False)
    p = float(fisher_exact([[k_ok, len(can) - k_ok], [c_ok, len(champ) - c_ok]],
                           alternative="less").pvalue)
    drop = c_ok / len(champ) - k_ok / len(can)
    return Check("accuracy", c_ok / len(champ), k_ok / len(can), test, p, len(champ),
                 len(can), threshold, not (drop > settings.max_accuracy_drop
                                           and p < level), required=False)


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


CHECKS = (error_rate, latency, tail_latency, disagreement, accuracy)


def checks(samples: Samples, settings: GateSettings, steps: int = 4) -> list[Check]:
    """Every check of the gate, in the order a person reads them, each at
    :meth:`GateSettings.level` for a release of ``steps`` steps."""
    level = settings.level(steps)
    return [replace(check(samples, settings, level), level=level) for check in CHECKS]


@dataclass(frozen=True)
class Verdict:
    """The gate's next move: ``rollback``, ``step``, ``promote``, or None (wait)."""

    action: str | None
    status: str  # failing | passing | waiting
    reason: str
    checks: list[Check]
    percent: float | None = None  # the canary's next share, for ``step``

    def to_json(self, version: str) -> dict[str, Any]:
        return {"version": version, "status": self.status, "reason": self.reason,
                "checks": [c.to_json() for c in self.checks]}


def decide(found: list[Check], *, version: str, percent: float, next_step: float | None,
           seconds_at_step: float, settings: GateSettings) -> Verdict:
    """What to do with canary ``version`` at ``percent`` % given its checks."""
    failed = [c for c in found if c.passed is False]
    if failed:
        return Verdict("rollback", "failing",
                       f"rolled back canary {version}: {failed[0].reason()}", found)
    waiting = [c for c in found if c.required and c.passed is None]
    if waiting:
        return Verdict(None, "waiting", f"canary {version} at {percent:g}%: waiting for "
                       + "; ".join(c.reason() for c in waiting), found)
    if seconds_at_step < settings.step_seconds:
        return Verdict(None, "passing", f"canary {version} at {percent:g}% passes so far; "
                       f"{seconds_at_step:.0f} s of {settings.step_seconds:g} s at this step",
                       found)
    passed = "; ".join(c.reason() for c in found if c.passed)
    if next_step is None or next_step >= 100:  # all traffic to it: that is promotion
        return Verdict("promote", "passing", f"promoted canary {version} after "
                       f"{settings.step_seconds:g} s at {percent:g}%: {passed}", found)
    return Verdict("step", "passing", f"canary {version} from {percent:g}% to "
                   f"{next_step:g}%: {passed}", found, percent=next_step)
