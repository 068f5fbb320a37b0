"""The drift statistics agree with scipy's on the same inputs (to 1e-9), and the sketch
feeds them what the raw samples would."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
import scipy.stats as ss
from scipy.spatial.distance import jensenshannon
from scipy.special import rel_entr

from kernel_magics.monitor import stats
from kernel_magics.monitor.drift import psi_bins
from kernel_magics.monitor.reference import build_profile
from kernel_magics.monitor.sketch import CategoricalSketch, NumericSketch

Array = np.ndarray[Any, Any]
TOL = 1e-9


def sketch_of(reference: Array, current: Array) -> NumericSketch:
    (profile,) = build_profile(pd.DataFrame({"x": reference}), ["x"])
    sketch = NumericSketch(profile, 1)
    for part in np.array_split(current, 3):  # several batches add up
        sketch.add(0, part)
    return sketch


@pytest.mark.parametrize("seed", range(5))
def test_psi_is_symmetric_kl_on_the_epsilon_shares(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ref, cur = rng.integers(0, 40, 10), rng.integers(0, 40, 10)
    ref[seed % 10] = 0  # an empty bin: its share counts as epsilon
    p = np.maximum(ref / ref.sum(), stats.PSI_EPSILON)
    q = np.maximum(cur / cur.sum(), stats.PSI_EPSILON)
    expected = float(np.sum(rel_entr(q, p)) + np.sum(rel_entr(p, q)))
    assert stats.psi(ref, cur) == pytest.approx(expected, abs=TOL)
    assert stats.psi(ref, ref) == 0.0


@pytest.mark.parametrize("seed", range(5))
def test_wasserstein_matches_scipy_on_weighted_points(seed: int) -> None:
    rng = np.random.default_rng(seed)
    u, v = rng.normal(size=30), rng.normal(0.3, 2, size=45)
    uw, vw = rng.random(30), rng.random(45)
    assert stats.wasserstein(u, uw, v, vw) == pytest.approx(
        ss.wasserstein_distance(u, v, uw, vw), abs=TOL)


def test_sketch_wasserstein_is_scipy_on_the_binned_masses_and_close_to_exact() -> None:
    rng = np.random.default_rng(3)
    reference, current = rng.normal(0, 1, 50_000), rng.normal(0.3, 1.2, 30_000)
    sketch = sketch_of(reference, current)
    profile = sketch.profile
    counts = sketch.counts[0]
    present = counts > 0
    points = sketch.sums[0][present] / counts[present]
    ours = stats.wasserstein(np.asarray(profile.bin_means), np.asarray(profile.bin_counts),
                             points, counts[present])
    scipy_binned = ss.wasserstein_distance(profile.bin_means, points, profile.bin_counts,
                                           counts[present])
    assert ours == pytest.approx(scipy_binned, abs=TOL)
    exact = ss.wasserstein_distance(reference, current)
    assert abs(ours - exact) < 0.02 * np.std(reference)  # the collapse-to-bin-means error
    # values outside the reference's range land in the end bins with their own means
    assert counts[0] == np.sum(current < reference.min())
    assert counts[-1] == np.sum(current > reference.max())


def test_sketch_counts_are_the_reference_histogram() -> None:
    rng = np.random.default_rng(4)
    reference, current = rng.normal(size=5_000), rng.normal(size=7_000)
    current[:10] = reference.max()  # the top edge is inside the last bin, as np.histogram
    current[10:15] = np.nan
    sketch = sketch_of(reference, current)
    expected, _ = np.histogram(current[~np.isnan(current)], bins=sketch.edges)
    inside = sketch.counts[0][1:-1]
    assert inside.tolist() == expected.tolist()
    assert inside.sum() + sketch.counts[0][0] + sketch.counts[0][-1] == 6_995
    assert int(sketch.nulls[0]) == 5
    ref_deciles, cur_deciles = psi_bins(sketch, 0)
    assert len(ref_deciles) == 10 and ref_deciles.sum() == 5_000 and cur_deciles.sum() == 6_995


@pytest.mark.parametrize(("n_ref", "n_cur", "shift"), [
    (300, 500, 0.0), (999, 4_000, 0.2), (150, 20_000, 0.1),  # exact / asymptotic p-values
    (500, 500, 0.5)])
def test_ks_from_the_sketch_equals_ks_2samp(n_ref: int, n_cur: int, shift: float) -> None:
    rng = np.random.default_rng(n_ref + n_cur)
    reference = rng.normal(size=n_ref).round(2)  # ties between and within samples
    current = rng.normal(shift, 1, size=n_cur).round(2)
    sketch = sketch_of(reference, current)
    assert sketch.multiplicity is not None
    d = stats.ks_statistic(sketch.multiplicity, sketch.lt[0], sketch.le[0], n_cur)
    expected = ss.ks_2samp(reference, current)
    assert d == pytest.approx(expected.statistic, abs=TOL)
    assert stats.ks_p_value(d, n_ref, n_cur) == pytest.approx(expected.pvalue, abs=TOL)


@pytest.mark.parametrize("seed", range(5))
def test_js_distance_matches_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    p, q = rng.integers(0, 100, 12), rng.integers(0, 100, 12)
    q[0] = 0
    assert stats.js_distance(p, q) == pytest.approx(jensenshannon(p, q, base=2), abs=TOL)
    assert stats.js_distance(p, p) == pytest.approx(0.0, abs=TOL)


@pytest.mark.parametrize("categories", [2, 3, 7])
def test_chi2_matches_chi2_contingency(categories: int) -> None:
    rng = np.random.default_rng(categories)
    ref, cur = rng.integers(5, 200, categories), rng.integers(5, 200, categories)
    statistic, p, dof = stats.chi2_test(ref, cur)
    expected = ss.chi2_contingency(np.array([ref, cur]))  # Yates at one degree of freedom
    assert statistic == pytest.approx(expected.statistic, abs=TOL)
    assert p == pytest.approx(expected.pvalue, abs=TOL)
    assert dof == expected.dof
    # categories neither side has are dropped, as they must be for the test to exist
    padded = stats.chi2_test(np.append(ref, 0), np.append(cur, 0))
    assert padded[0] == pytest.approx(statistic, abs=TOL)


def test_categorical_sketch_counts_top_k_other_and_unseen() -> None:
    import pyarrow as pa

    (profile,) = build_profile(pd.DataFrame({"c": ["a"] * 5 + ["b"] * 3}), ["c"])
    sketch = CategoricalSketch(profile, 2)
    sketch.add(1, pa.array(["a", "b", "z", None, "z"]))
    sketch.add(1, pa.array(["a"]))
    assert sketch.counts[1].tolist() == [2, 1, 2] and int(sketch.nulls[1]) == 1
    assert sketch.unseen[1] == {"z": 2}
    assert sketch.counts[0].sum() == 0


def test_pooling_sparse_bins_keeps_totals_and_clears_the_rule() -> None:
    reference = np.array([200, 150, 3, 2, 1, 40])
    current = np.array([400, 310, 1, 4, 0, 90])
    pooled_ref, pooled_cur = stats.pool_sparse(reference, current)
    assert pooled_ref.sum() == reference.sum() and pooled_cur.sum() == current.sum()
    table = np.array([pooled_ref, pooled_cur])
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    # 3 + 2 + 1 is still sparse once pooled: it joins the smallest other bin
    assert (expected >= stats.MIN_EXPECTED).all() and table.shape[1] == 3
    assert pooled_ref.tolist() == [200, 150, 3 + 2 + 1 + 40]
    # "other" (the last bin) joins the pool of sparse categories
    with_other = stats.pool_sparse(np.array([300, 200, 2, 50]), np.array([300, 200, 3, 80]),
                                   pool_last=True)
    assert with_other[0].tolist() == [300, 200, 52]
    assert stats.pool_sparse(np.array([5, 5]), np.array([5, 5]))[0].tolist() == [5, 5]


def test_a_small_reference_and_a_concentrated_window_still_test() -> None:
    # 120 reference rows over four classes; a window of 10,000 that is 99.7 % one class.
    # Pooling every bin whose expected count is below 5 once left a single bin: chi2 0,
    # p 1, "no drift". Two bins always remain, and a sparse 2 x 2 is decided exactly.
    reference = np.array([30, 30, 30, 30])
    current = np.array([9970, 10, 10, 10])
    pooled_ref, pooled_cur = stats.pool_sparse(reference, current, pool_last=True)
    assert len(pooled_ref) >= 2
    statistic, p, _ = stats.chi2_test(pooled_ref, pooled_cur)
    assert statistic > 100 and p < 1e-10
    # The same window against itself is no drift.
    same = stats.pool_sparse(np.array([2991, 3, 3, 3]), current, pool_last=True)
    assert stats.chi2_test(*same)[1] > 0.05


def test_a_sparse_two_by_two_uses_fishers_exact_test() -> None:
    import scipy.stats as ss

    table = np.array([[3, 1], [0, 40]])
    _, p, dof = stats.chi2_test(table[0], table[1])
    assert dof == 1 and p == pytest.approx(ss.fisher_exact(table).pvalue)
