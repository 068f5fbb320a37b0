"""The reference profile a bundle carries: correct sketches, small, mergeable counts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kernel_magics.errors import ValidationError
from kernel_magics.monitor.reference import (
    QUANTILES,
    TOP_K,
    build_profile,
    read_reference,
    write_reference,
)


@pytest.fixture
def training() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    n = 100_000
    age = rng.normal(40, 12, n)
    age[:50] = np.nan
    return pd.DataFrame({
        "age": age,
        "visits": rng.poisson(3, n).astype("int64"),
        "city": rng.choice([f"city{i}" for i in range(80)], n),
    })


def test_numeric_sketch_matches_the_data(training: pd.DataFrame) -> None:
    age, visits, _ = build_profile(training, ["age", "visits", "city"])
    present = training["age"].dropna().to_numpy()
    assert (age.kind, age.count, age.null_count) == ("numeric", present.size, 50)
    assert age.quantiles == pytest.approx(np.quantile(present, np.linspace(0, 1, QUANTILES)))
    assert age.mean == pytest.approx(present.mean()) and age.std == pytest.approx(
        present.std(ddof=1))
    assert sum(age.bin_counts or []) == present.size  # every row in exactly one bin
    # A discrete feature: repeated quantiles collapse into the distinct edges.
    assert sum(visits.bin_counts or []) == len(training)
    assert len(visits.bin_counts or []) < QUANTILES - 1


def test_categorical_sketch_keeps_top_k_and_other(training: pd.DataFrame) -> None:
    (city,) = build_profile(training, ["city"])
    counts = training["city"].value_counts()
    assert city.kind == "categorical" and len(city.categories or []) == TOP_K
    assert city.categories == [str(v) for v in counts.index[:TOP_K]]
    assert city.other_count == int(counts.iloc[TOP_K:].sum())
    assert sum(city.category_counts or []) + (city.other_count or 0) == len(training)


def test_round_trip_and_size(training: pd.DataFrame, tmp_path: Path) -> None:
    profiles = build_profile(training, ["age", "visits", "city"])
    path = write_reference(profiles, tmp_path / "reference.parquet")
    assert read_reference(path) == profiles
    assert path.stat().st_size < 10_000 * len(profiles)  # kilobytes per feature, not rows


def test_arrays_and_errors(training: pd.DataFrame) -> None:
    (a, b) = build_profile(np.ones((10, 2)), ["a", "b"])
    assert a.count == b.count == 10
    with pytest.raises(ValidationError, match="lacks feature"):
        build_profile(training, ["age", "income"])
    with pytest.raises(ValidationError, match="service takes 3 features"):
        build_profile(np.ones((10, 2)), ["a", "b", "c"])
