"""The reference profile: per-feature sketches of the training data, for drift.

A bundle carries it as ``reference.parquet``, one row per feature, kilobytes in all:

- numeric: count, nulls, mean, standard deviation, min, max, the 101 quantiles
  (0 %, 1 %, ..., 100 %) and the counts of the training rows in the bins those
  quantiles bound; a window of production traffic binned on the same edges gives
  PSI, and the quantiles approximate Wasserstein distance;
- numeric, also: the mean of the training values in each bin (``bin_means``), so
  Wasserstein distance sees where the mass sits inside a bin; and, when the reference
  holds fewer than ``SMALL_REFERENCE`` (1,000) values, those values sorted (``values``:
  still kilobytes) for the exact Kolmogorov-Smirnov test;
- categorical: the top-k values with their counts and the count of all others.

Counts on fixed edges and top-k counts add up across windows, so sketches of
production windows merge. Apart from a small reference's values, the rows themselves
never leave the notebook. Files written before ``bin_means``/``values`` existed still
load (those fields are None).

The model's predictions on the reference rows are profiled the same way, as the
extra feature ``PREDICTION`` (see :mod:`kernel_magics.monitor.predictions`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import ValidationError

QUANTILES = 101
TOP_K = 50
# Below this many values the reference keeps them raw and the exact tests (KS,
# chi-squared) decide; above it the effect sizes (Wasserstein/std, JS) do.
SMALL_REFERENCE = 1000
PREDICTION = "__prediction__"  # the profile row of the model's predictions
SCHEMA = pa.schema([
    ("feature", pa.string()),
    ("kind", pa.string()),
    ("count", pa.int64()),
    ("null_count", pa.int64()),
    ("mean", pa.float64()),
    ("std", pa.float64()),
    ("min", pa.float64()),
    ("max", pa.float64()),
    ("quantiles", pa.list_(pa.float64())),
    ("bin_counts", pa.list_(pa.int64())),
    ("categories", pa.list_(pa.string())),
    ("category_counts", pa.list_(pa.int64())),
    ("other_count", pa.int64()),
    ("bin_means", pa.list_(pa.float64())),
    ("values", pa.list_(pa.float64())),
])


@dataclass(frozen=True)
class FeatureProfile:
    """One feature's sketch (a row of reference.parquet)."""

    feature: str
    kind: str
    count: int
    null_count: int
    mean: float | None = None
    std: float | None = None
    min: float | None = None
    max: float | None = None
    quantiles: list[float] | None = None
    bin_counts: list[int] | None = None
    categories: list[str] | None = None
    category_counts: list[int] | None = None
    other_count: int | None = None
    bin_means: list[float] | None = None
    values: list[float] | None = None


def _numeric(name: str, values: np.ndarray) -> FeatureProfile:
    values = values.astype(np.float64, copy=False)
    present = values[~np.isnan(values)]
    nulls = int(values.size - present.size)
    if present.size == 0:
        return FeatureProfile(name, "numeric", 0, nulls)
    edges = np.quantile(present, np.linspace(0.0, 1.0, QUANTILES))
    # Bin on unique edges: a feature with few distinct values has repeated quantiles.
    unique = np.unique(edges)
    if unique.size > 1:
        counts, _ = np.histogram(present, bins=unique)
        sums, _ = np.histogram(present, bins=unique, weights=present)
        middles = (unique[:-1] + unique[1:]) / 2.0
    else:
        counts, sums, middles = np.array([present.size]), np.array([present.sum()]), unique
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(counts > 0, sums / np.maximum(counts, 1), middles)
    means = np.clip(means, unique[0], unique[-1])  # rounding must not leave the bin's range
    raw = [float(v) for v in np.sort(present)] if present.size < SMALL_REFERENCE else None
    return FeatureProfile(name, "numeric", int(present.size), nulls, float(present.mean()),
                          float(present.std(ddof=1)) if present.size > 1 else 0.0,
                          float(present.min()), float(present.max()),
                          [float(e) for e in edges], [int(c) for c in counts],
                          bin_means=[float(m) for m in means], values=raw)


def _categorical(name: str, values: Any) -> FeatureProfile:
    import pandas as pd

    series = pd.Series(values, copy=False)
    nulls = int(series.isna().sum())
    counts = series.dropna().astype(str).value_counts()
    top = counts.iloc[:TOP_K]
    return FeatureProfile(name, "categorical", int(counts.sum()), nulls,
                          categories=[str(v) for v in top.index],
                          category_counts=[int(c) for c in top.to_numpy()],
                          other_count=int(counts.iloc[TOP_K:].sum()))


def build_profile(data: Any, features: list[str]) -> list[FeatureProfile]:
    """Profile the `features` columns of a DataFrame (or a 2-D array in feature order)."""
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        missing = [f for f in features if f not in data.columns]
        if missing:
            raise ValidationError(f"the reference data lacks feature(s) {missing[:5]}; pass the "
                                  "training data with the service's feature columns.",
                                  field="reference")
        columns = {f: data[f].to_numpy() for f in features}
    else:
        array = np.asarray(data)
        if array.ndim != 2 or array.shape[1] != len(features):
            raise ValidationError(f"the reference array has shape {list(array.shape)}; the "
                                  f"service takes {len(features)} features.", field="reference")
        columns = {f: array[:, i] for i, f in enumerate(features)}
    profiles = []
    for name, values in columns.items():
        if values.dtype.kind in "biuf":
            profiles.append(_numeric(name, values))
        else:
            profiles.append(_categorical(name, values))
    return profiles


def write_reference(profiles: list[FeatureProfile], path: Path) -> Path:
    """Write the profiles as reference.parquet."""
    rows = {field.name: [getattr(p, field.name) for p in profiles] for field in SCHEMA}
    pq.write_table(pa.Table.from_pydict(rows, schema=SCHEMA), path, compression="zstd")
    return path


def read_reference(path: Path) -> list[FeatureProfile]:
    """Read reference.parquet back (files from older versions lack some columns)."""
    known = set(SCHEMA.names)
    return [FeatureProfile(**{k: v for k, v in row.items() if k in known})
            for row in pq.read_table(path).to_pylist()]


def load_reference_data(path: Path) -> Any:
    """Training data for a reference from a Parquet or CSV file."""
    import pandas as pd

    if not path.is_file():
        raise ValidationError(f"reference data {path} not found.", field="reference")
    if path.suffix.lower() in (".parquet", ".pq"):
        return pd.read_parquet(path)
    if path.suffix.lower() == ".csv":
        return pd.read_csv(path)
    raise ValidationError(f"reference data must be .parquet or .csv, got {path.name}.",
                          field="reference")
