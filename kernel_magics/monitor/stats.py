"""The drift statistics, on counts and binned masses (what the sketches keep).

Each function takes what a sketch holds, not raw rows, and agrees with scipy on the
same inputs (tests/monitor/test_stats.py holds them to 1e-9):

- :func:`psi`: population stability index, ``sum((q - p) * ln(q / p))`` over bins, with
  empty bins' shares raised to ``PSI_EPSILON`` (no renormalisation); equals
  ``sum(rel_entr(q, p) + rel_entr(p, q))`` on those shares.
- :func:`wasserstein`: 1-Wasserstein distance between weighted point masses, as
  ``scipy.stats.wasserstein_distance(u, v, u_weights, v_weights)``.
- :func:`ks_statistic` / :func:`ks_p_value`: two-sample Kolmogorov-Smirnov from the
  reference's distinct values and the counts of current values ``<`` and ``<=`` each;
  the p-value as ``scipy.stats.ks_2samp`` (method ``auto``, two-sided) computes it.
- :func:`js_distance`: Jensen-Shannon distance, base 2, as
  ``scipy.spatial.distance.jensenshannon(p, q, base=2)``.
- :func:`chi2_test`: chi-squared test of homogeneity on the 2 x K table of counts, as
  ``scipy.stats.chi2_contingency`` (Yates' correction when there is one degree of freedom;
  Fisher's exact test when such a 2 x 2 table has an expected count below 5);
  :func:`pool_sparse` first merges the bins whose expected count is below 5 (Cochran's
  rule), without which sparse categories make the test fire far above its nominal rate.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

Array = np.ndarray[Any, Any]
PSI_EPSILON = 1e-4  # the share an empty bin counts as (both sides), so ln(q/p) is finite
KS_MAX_EXACT = 10_000  # ks_2samp's "auto": exact p-value when both samples are this small


def shares(counts: Array) -> Array:
    """Counts as shares of their total (zeros when the total is zero)."""
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    return counts / total if total > 0 else np.zeros_like(counts)


def psi(reference: Array, current: Array, *, epsilon: float = PSI_EPSILON) -> float:
    """PSI of two count vectors on the same bins."""
    p = np.maximum(shares(reference), epsilon)
    q = np.maximum(shares(current), epsilon)
    return float(np.sum((q - p) * np.log(q / p)))


def wasserstein(u_points: Array, u_weights: Array, v_points: Array,
                v_weights: Array) -> float:
    """W1 between two weighted sets of points: the integral of |F_u - F_v|."""
    u_points = np.asarray(u_points, dtype=np.float64)
    v_points = np.asarray(v_points, dtype=np.float64)
    u_w = np.asarray(u_weights, dtype=np.float64)
    v_w = np.asarray(v_weights, dtype=np.float64)
    u_order = np.argsort(u_points)
    v_order = np.argsort(v_points)
    everything = np.concatenate([u_points, v_points])
    everything.sort(kind="mergesort")
    deltas = np.diff(everything)
    u_cdf_index = np.searchsorted(u_points[u_order], everything[:-1], "right")
    v_cdf_index = np.searchsorted(v_points[v_order], everything[:-1], "right")
    u_cum = np.concatenate([[0.0], np.cumsum(u_w[u_order])])
    v_cum = np.concatenate([[0.0], np.cumsum(v_w[v_order])])
    u_cdf = u_cum[u_cdf_index] / u_cum[-1]
    v_cdf = v_cum[v_cdf_index] / v_cum[-1]
    return float(np.sum(np.abs(u_cdf - v_cdf) * deltas))


def ks_statistic(reference_counts: Array, current_lt: Array, current_le: Array,
                 current_total: int) -> float:
    """Exact two-sample KS statistic D = sup |F_ref - F_cur|.

    ``reference_counts[i]`` is how often the i-th distinct reference value (ascending)
    occurs; ``current_lt[i]`` / ``current_le[i]`` count current values ``<`` / ``<=`` it.
    Between consecutive reference values F_ref is constant and F_cur non-decreasing, so
    the supremum is reached at a reference value (F_cur right-continuous: ``<=``) or just
    below the next one (``<``); below the first and above the last value one side is 0
    or 1 and the same two counts bound it.
    """
    ref = np.asarray(reference_counts, dtype=np.float64)
    f_ref = np.cumsum(ref) / ref.sum()
    before = np.concatenate([[0.0], f_ref[:-1]])  # F_ref just below each value
    le = np.asarray(current_le, dtype=np.float64) / current_total
    lt = np.asarray(current_lt, dtype=np.float64) / current_total
    return float(max(np.max(np.abs(f_ref - le)), np.max(np.abs(before - lt))))


def ks_p_value(d: float, n1: int, n2: int) -> float:
    """Two-sided p-value of D for samples of n1 and n2, as ks_2samp(method='auto')."""
    from scipy.stats import kstwo

    if max(n1, n2) <= KS_MAX_EXACT:
        try:  # the exact distribution, through ks_2samp's own routine
            from scipy.stats._stats_py import _attempt_exact_2kssamp

            ok, _, prob = _attempt_exact_2kssamp(n1, n2, math.gcd(n1, n2), d, "two-sided")
            if ok:
                return float(np.clip(prob, 0.0, 1.0))
        except ImportError:  # pragma: no cover - a scipy without it: the asymptotic form
            pass
    m, n = sorted([float(n1), float(n2)], reverse=True)
    en = m * n / (m + n)
    return float(np.clip(kstwo.sf(d, np.round(en)), 0.0, 1.0))


def js_distance(reference: Array, current: Array) -> float:
    """Jensen-Shannon distance (base 2, in [0, 1]) of two count vectors."""
    p = shares(reference)
    q = shares(current)
    m = (p + q) / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        left = np.where(p > 0, p * np.log2(p / m), 0.0)
        right = np.where(q > 0, q * np.log2(q / m), 0.0)
    divergence = max(0.0, float(left.sum() + right.sum()) / 2.0)
    return math.sqrt(divergence)


def chi2_test(reference: Array, current: Array) -> tuple[float, float, int]:
    """(statistic, p-value, degrees of freedom) of the 2 x K homogeneity test."""
    from scipy.special import chdtrc  # chi2.sf, without importing scipy.stats (~1 s)

    table = np.array([reference, current], dtype=np.float64)
    table = table[:, table.sum(axis=0) > 0]  # categories neither side has
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 0.0, 1.0, max(0, table.shape[1] - 1)
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    dof = table.shape[1] - 1
    observed = table
    if dof == 1:  # Yates' continuity correction, as chi2_contingency(correction=True)
        diff = expected - observed
        observed = observed + np.minimum(0.5, np.abs(diff)) * np.sign(diff)
    statistic = float(np.sum((observed - expected) ** 2 / expected))
    if dof == 1 and (expected < MIN_EXPECTED).any():
        return statistic, fisher_exact_p(table), dof  # the approximation does not hold
    return statistic, float(chdtrc(dof, statistic)), dof


def fisher_exact_p(table: Array) -> float:
    """Two-sided p-value of Fisher's exact test on a 2 x 2 table of counts."""
    from scipy.stats import fisher_exact

    return float(fisher_exact(np.rint(table).astype(np.int64)).pvalue)


MIN_EXPECTED = 5.0


def pool_sparse(reference: Array, current: Array, *, min_expected: float = MIN_EXPECTED,
                pool_last: bool = False) -> tuple[Array, Array]:
    """Merge the bins whose expected count (under homogeneity) is below ``min_expected`` in
    either row into one bin; if that bin is still sparse, into the sparsest other bin.

    ``pool_last``: the last bin joins the pool whenever there is one. For categories that
    bin is "other", whose reference count is biased low when the top-k were chosen from
    a small sample (categories that happened to be frequent left it); pooling it with the
    sparse categories, the ones near the cut, cancels that selection."""
    table = np.array([reference, current], dtype=np.float64)
    keep = table.sum(axis=0) > 0
    total = table.sum()
    if total == 0 or keep.sum() < 2:
        return table[0, keep], table[1, keep]
    rows = table.sum(axis=1)
    expected = np.outer(rows, table.sum(axis=0)) / total
    sparse = keep & (expected < min_expected).any(axis=0)
    if pool_last and sparse.any():
        sparse[-1] = keep[-1]
    table = table[:, keep]
    sparse = sparse[keep]
    if not sparse.any():
        return table[0], table[1]
    kept = table[:, ~sparse]
    pooled = table[:, sparse].sum(axis=1, keepdims=True)
    # Merge a still-sparse pool into another bin only while two bins remain after it: a
    # small reference beside a large, concentrated window leaves one bin otherwise (chi2
    # 0, p 1: "no drift" on a window that is 99.7 % one class). chi2_test decides a
    # sparse 2 x 2 table exactly.
    if kept.shape[1] >= 2 and \
            (np.outer(rows, pooled.sum(axis=0)) / total < min_expected).any():
        smallest = int(np.argmin(kept.sum(axis=0)))
        kept = kept.copy()
        kept[:, smallest:smallest + 1] += pooled
        merged = kept
    else:
        merged = np.concatenate([kept, pooled], axis=1)
    return merged[0], merged[1]
