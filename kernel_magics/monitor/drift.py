"""Judging one window of a sketch against the reference profile.

Numeric features (every test is reported; the configured one decides):

- ``wasserstein/std``: W1 between the reference and the window, each as masses at the
  mean of its values in each bin (the reference's ``bin_means``, or bin midpoints for
  files that predate them; the window's own per-bin means, with values outside the
  reference's range in one bin below and one above), divided by the reference's standard
  deviation (the absolute distance when that is 0). What is approximated: each
  distribution inside a bin is collapsed to its mean, so W1 is exact outside the
  reference's range and between bins, and may be under-estimated by at most the
  spread of the values inside each bin.
- ``psi``: PSI on the reference's deciles (its 0 %, 10 %, ..., 100 % quantiles; values
  below or above its range count in the first or last decile), empty bins as 1e-4.
- ``chi2``: chi-squared homogeneity test on those deciles (sparse bins pooled).
- ``ks``: exact two-sample Kolmogorov-Smirnov statistic and its p-value, when the
  reference kept its raw values (fewer than 1,000).

Categorical features: ``js`` (Jensen-Shannon distance, base 2) and ``chi2`` (homogeneity
test, categories expected fewer than 5 times pooled) on the reference's top-50
categories plus "other".

An effect size (``wasserstein/std``, ``psi``, ``js``) that decides counts as drift only
when the ``chi2`` test on the same bins also rejects (``require_significance``, default
on): at a few hundred rows sampling noise alone reaches the distance thresholds.

For distances the feature's ``score`` is the distance (drift at ``score >= threshold``);
for tests it is the p-value (drift at ``score < threshold``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import stats
from .reference import PREDICTION, SMALL_REFERENCE, FeatureProfile
from .settings import DriftSettings
from .sketch import CategoricalSketch, NumericSketch, Sketch

Array = np.ndarray[Any, Any]
DISPLAY_BINS = 20  # numeric histograms in the JSON: the reference's 5 % quantiles
DISPLAY_CATEGORIES = 20
PSI_BINS = 10
P_VALUE_TESTS = ("ks", "chi2")
OUTSIDE_NOTE = 0.001  # note values outside the reference's range above this share


@dataclass
class TestResult:
    """One statistic: its method, value, p-value (tests), threshold and verdict."""

    method: str
    score: float | None
    threshold: float
    drifted: bool
    p_value: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"method": self.method, "score": _finite(self.score),
                "p_value": _finite(self.p_value), "threshold": self.threshold,
                "drifted": self.drifted}


@dataclass
class FeatureResult:
    """One feature in one window."""

    feature: str
    kind: str
    status: str  # ok | drift | empty | missing | new
    method: str
    score: float | None
    threshold: float
    drifted: bool
    tests: list[TestResult] = field(default_factory=list)
    note: str | None = None
    reference: dict[str, Any] | None = None
    current: dict[str, Any] | None = None
    rows: int = 0
    nulls: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"feature": self.feature, "kind": self.kind, "status": self.status,
                "method": self.method, "score": _finite(self.score),
                "threshold": self.threshold, "drifted": self.drifted,
                "tests": [t.to_json() for t in self.tests], "note": self.note,
                "reference": self.reference, "current": self.current,
                "rows": self.rows, "nulls": self.nulls}


def _finite(value: float | None) -> float | None:
    if value is None or not np.isfinite(value):
        return None
    return float(value)


def primary_method(profile: FeatureProfile, settings: DriftSettings) -> str:
    """The method that decides for this feature."""
    small = profile.count < SMALL_REFERENCE
    if profile.kind == "numeric":
        chosen = settings.numeric_method
        if chosen == "auto":
            chosen = "ks" if small and profile.values else "wasserstein"
        if chosen == "ks" and not profile.values:
            chosen = "wasserstein"
        return "wasserstein/std" if chosen == "wasserstein" else chosen
    chosen = settings.categorical_method
    if chosen == "auto":
        chosen = "chi2" if small else "js"
    return chosen


def threshold_of(method: str, settings: DriftSettings) -> float:
    return {"wasserstein/std": settings.wasserstein, "psi": settings.psi,
            "ks": settings.ks_p_value, "js": settings.js,
            "chi2": settings.chi2_p_value}[method]


def _distance(method: str, value: float, settings: DriftSettings) -> TestResult:
    threshold = threshold_of(method, settings)
    return TestResult(method, value, threshold, bool(value >= threshold))


def _test(method: str, statistic: float, p_value: float, settings: DriftSettings
          ) -> TestResult:
    threshold = threshold_of(method, settings)
    return TestResult(method, statistic, threshold, bool(p_value < threshold), p_value)


def evaluate(sketch: Sketch, window: int, window_rows: int, settings: DriftSettings,
             *, detail: bool = True) -> FeatureResult:
    """The feature's verdict for one window (``detail``: histograms and notes too)."""
    profile = sketch.profile
    method = primary_method(profile, settings)
    threshold = threshold_of(method, settings)
    seen = sketch.seen(window)
    result = FeatureResult(profile.feature, profile.kind, "ok", method, None, threshold,
                           False, rows=seen, nulls=int(sketch.nulls[window]))
    if detail:
        result.reference, result.current = histograms(sketch, window)
    if seen == 0:
        if window_rows > 0 and profile.feature != PREDICTION:
            result.status = "missing"
            result.note = "not in the logged inputs of this window (not sent, or a " \
                "version without this feature)."
        else:
            result.status = "empty"
            result.note = "no values in this window."
        return result
    if profile.count == 0:
        result.status = "empty"
        result.note = "the reference has no values of this feature: nothing to compare."
        return result
    if isinstance(sketch, NumericSketch):
        _numeric(sketch, window, settings, result, detail)
    else:
        _categorical(sketch, window, settings, result, detail)
    return result


def _decide(result: FeatureResult, tests: list[TestResult], settings: DriftSettings,
            rows: int) -> None:
    """The primary test decides; an effect size only counts when the chi-squared test on
    the same bins also rejects (``require_significance``): a small window's noise alone
    must not read as drift."""
    result.tests = tests
    primary = next(t for t in tests if t.method == result.method)
    result.score = primary.p_value if primary.method in P_VALUE_TESTS else primary.score
    drifted = primary.drifted
    if drifted and primary.method not in P_VALUE_TESTS and settings.require_significance:
        gate = next(t for t in tests if t.method == "chi2")
        if not gate.drifted:
            drifted = False
            result.note = f"{primary.method} {primary.score:.3g} >= {primary.threshold:g} " \
                f"but not significant with {rows:,} rows (chi2 p {gate.p_value:.2g} >= " \
                f"{gate.threshold:g}): no drift."
    result.drifted = drifted
    result.status = "drift" if drifted else "ok"


def _chi2(reference: Array, current: Array, settings: DriftSettings, *,
          categories: bool = False) -> TestResult:
    pooled_reference, pooled_current = stats.pool_sparse(reference, current,
                                                         pool_last=categories)
    statistic, p, _ = stats.chi2_test(pooled_reference, pooled_current)
    return _test("chi2", statistic, p, settings)


def _numeric(sketch: NumericSketch, window: int, settings: DriftSettings,
             result: FeatureResult, detail: bool) -> None:
    profile = sketch.profile
    counts = sketch.counts[window]
    total = int(counts.sum())
    notes: list[str] = []
    if total == 0:
        result.status = "empty"
        result.note = "only nulls in this window." if sketch.nulls[window] else \
            "only infinite values in this window."
        return
    ref_counts = sketch.reference_counts
    edges = sketch.edges
    if profile.bin_means is not None and len(profile.bin_means) == ref_counts.size:
        ref_points = np.asarray(profile.bin_means, dtype=np.float64)
    else:  # references written before bin means: the bins' midpoints
        ref_points = (edges[:-1] + edges[1:]) / 2.0 if edges.size > 1 else edges
    current = counts > 0
    cur_points = sketch.sums[window][current] / counts[current]
    distance = stats.wasserstein(ref_points, ref_counts, cur_points, counts[current])
    std = profile.std or 0.0
    if std > 0:
        normed = distance / std
    else:
        normed = distance
        notes.append("the reference is constant (std 0): absolute Wasserstein distance.")
    tests = [_distance("wasserstein/std", normed, settings)]
    ref_deciles, cur_deciles = psi_bins(sketch, window)
    tests.append(_distance("psi", stats.psi(ref_deciles, cur_deciles), settings))
    tests.append(_chi2(ref_deciles, cur_deciles, settings))
    if sketch.distinct is not None and sketch.multiplicity is not None:
        d = stats.ks_statistic(sketch.multiplicity, sketch.lt[window], sketch.le[window],
                               total)
        p = stats.ks_p_value(d, int(sketch.multiplicity.sum()), total)
        tests.append(_test("ks", d, p, settings))
    _decide(result, tests, settings, total)
    if result.note:
        notes.insert(0, result.note)
    if detail:
        below, above = int(counts[0]), int(counts[-1])
        if below + above > OUTSIDE_NOTE * total:
            notes.append(f"{below + above} value(s) outside the reference's range "
                         f"[{profile.min:g}, {profile.max:g}]: {below} below, {above} above.")
        if sketch.nonfinite[window]:
            notes.append(f"{int(sketch.nonfinite[window])} infinite value(s) left out.")
        result.note = " ".join(notes) or None


def psi_bins(sketch: NumericSketch, window: int) -> tuple[Array, Array]:
    """Reference and window counts on the reference's deciles (outliers in the end bins)."""
    ref_counts = sketch.reference_counts
    counts = sketch.counts[window]
    inner = counts[1:-1].copy()
    inner[0] += counts[0]
    inner[-1] += counts[-1]
    starts = _group_starts(sketch, PSI_BINS)
    return np.add.reduceat(ref_counts, starts), np.add.reduceat(inner, starts)


def _group_starts(sketch: NumericSketch, groups: int) -> Array:
    """First reference bin of each of ``groups`` equal-frequency groups of bins."""
    quantiles = np.asarray(sketch.profile.quantiles or [0.0], dtype=np.float64)
    bins = max(sketch.edges.size - 1, 1)
    if quantiles.size < 2 or sketch.edges.size < 2:
        return np.array([0])
    picks = quantiles[np.linspace(0, quantiles.size - 1, groups + 1).round().astype(int)]
    starts = np.unique(np.searchsorted(sketch.edges, picks[:-1], "left"))
    return starts[starts < bins]


def _categorical(sketch: CategoricalSketch, window: int, settings: DriftSettings,
                 result: FeatureResult, detail: bool) -> None:
    profile = sketch.profile
    reference = np.array([*(profile.category_counts or []), profile.other_count or 0],
                         dtype=np.int64)
    current = sketch.counts[window]
    if int(current.sum()) == 0:
        result.status = "empty"
        result.note = "only nulls in this window."
        return
    tests = [_distance("js", stats.js_distance(reference, current), settings),
             _chi2(reference, current, settings, categories=True)]
    _decide(result, tests, settings, int(current.sum()))
    if detail:
        unseen = sorted(sketch.unseen[window].items(), key=lambda item: -item[1])
        if unseen:
            listed = ", ".join(f"{name!r} ({count})" for name, count in unseen[:5])
            more = f" and {len(unseen) - 5} more" if len(unseen) > 5 else ""
            if (profile.other_count or 0) == 0:
                found = f"new categories: {listed}{more}."
            else:
                found = f"values outside the reference's top {len(sketch.categories)}" \
                    f" (counted as other): {listed}{more}."
            result.note = f"{result.note} {found}" if result.note else found


def histograms(sketch: Sketch, window: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Small reference and window histograms for charts, on the same bins."""
    profile = sketch.profile
    if isinstance(sketch, NumericSketch):
        if not profile.quantiles:
            return {"edges": [], "counts": []}, {"edges": [], "counts": [], "below": 0,
                                                 "above": 0}
        starts = _group_starts(sketch, DISPLAY_BINS)
        edges = [*sketch.edges[starts].tolist(), float(sketch.edges[-1])]
        ref_counts = sketch.reference_counts
        counts = sketch.counts[window]
        return ({"edges": edges, "counts": np.add.reduceat(ref_counts, starts).tolist()},
                {"edges": edges, "counts": np.add.reduceat(counts[1:-1], starts).tolist(),
                 "below": int(counts[0]), "above": int(counts[-1])})
    names = list(sketch.categories[:DISPLAY_CATEGORIES])
    ref = [*(profile.category_counts or [])]
    cur = sketch.counts[window].tolist()
    shown = len(names)
    ref_other = sum(ref[shown:]) + (profile.other_count or 0)
    cur_other = sum(cur[shown:])
    return ({"categories": [*names, "other"], "counts": [*ref[:shown], ref_other]},
            {"categories": [*names, "other"], "counts": [*cur[:shown], cur_other]})
