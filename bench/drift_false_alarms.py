"""False alarms: how often drift is declared on data that did not drift, at the defaults.

    .venv/bin/python bench/drift_false_alarms.py [--seeds 200] [--windows 100,1000,10000,100000]

For each seed, a reference sample and a current window are drawn from the same
distributions (normal, log-normal, uniform, Poisson counts; categories with 5, 20 and
80 values, the last beyond the top-50 kept), the reference is profiled as a bundle's
reference.parquet is, the window is sketched as the prediction log's would be, and each
feature is judged with the default [drift] settings. Printed: the share of
(seed, feature) pairs flagged, per method and window size, and the share of seeds whose
dataset-drift verdict fired (half the features or more). Two reference sizes: 100,000
rows (Wasserstein/std and Jensen-Shannon decide) and 500 rows (KS and chi-squared).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from kernel_magics.monitor.drift import evaluate
from kernel_magics.monitor.reference import build_profile
from kernel_magics.monitor.settings import DriftSettings
from kernel_magics.monitor.sketch import NumericSketch, sketch_for

Draw = Callable[[np.random.Generator, int], Any]
NUMERIC: dict[str, Draw] = {
    "normal": lambda rng, n: rng.normal(50.0, 10.0, n),
    "lognormal": lambda rng, n: rng.lognormal(0.0, 1.0, n),
    "uniform": lambda rng, n: rng.uniform(0.0, 1.0, n),
    "poisson": lambda rng, n: rng.poisson(4.0, n).astype(np.float64),
}
CATEGORICAL = {f"cat{k}": k for k in (5, 20, 80)}


def draw(rng: np.random.Generator, n: int) -> pd.DataFrame:
    columns: dict[str, Any] = {name: make(rng, n) for name, make in NUMERIC.items()}
    for name, k in CATEGORICAL.items():
        weights = 1.0 / np.arange(1, k + 1)  # Zipf-like: a few common values, a long tail
        labels = np.array([f"v{i}" for i in range(k)], dtype=object)
        columns[name] = labels[rng.choice(k, n, p=weights / weights.sum())]
    return pd.DataFrame(columns)


def trial(rng: np.random.Generator, reference_rows: int, window_rows: int,
          settings: DriftSettings) -> list[tuple[str, str, bool]]:
    """(feature, method, drifted) for one reference and one window of the same data."""
    reference = draw(rng, reference_rows)
    current = draw(rng, window_rows)
    out = []
    for profile in build_profile(reference, list(reference.columns)):
        sketch = sketch_for(profile, 1)
        values = current[profile.feature]
        if isinstance(sketch, NumericSketch):
            sketch.add(0, values.to_numpy(dtype=np.float64))
        else:
            sketch.add(0, pa.array(values.to_numpy(dtype=object), pa.string()))
        result = evaluate(sketch, 0, window_rows, settings, detail=False)
        out.append((profile.feature, result.method, result.drifted))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=200)
    parser.add_argument("--windows", default="100,1000,10000,100000")
    parser.add_argument("--references", default="100000,500")
    args = parser.parse_args()
    settings = DriftSettings()
    windows = [int(w) for w in args.windows.split(",")]
    print(f"defaults: wasserstein/std >= {settings.wasserstein}, psi >= {settings.psi}, "
          f"ks p < {settings.ks_p_value}, js >= {settings.js}, chi2 p < "
          f"{settings.chi2_p_value}, dataset share >= {settings.dataset_share}; "
          f"{args.seeds} seeds per cell")
    for reference_rows in (int(r) for r in args.references.split(",")):
        print(f"\nreference of {reference_rows:,} rows")
        print(f"{'window rows':>12}  {'numeric':>22}  {'categorical':>22}  "
              f"{'any feature':>11}  {'dataset':>7}  worst feature")
        for window_rows in windows:
            rng = np.random.default_rng([reference_rows, window_rows])
            results = [trial(rng, reference_rows, window_rows, settings)
                       for _ in range(args.seeds)]
            flat = [r for seed in results for r in seed]
            numeric = [r for r in flat if r[0] in NUMERIC]
            categorical = [r for r in flat if r[0] in CATEGORICAL]
            per_feature = {name: np.mean([d for f, _, d in flat if f == name])
                           for name in [*NUMERIC, *CATEGORICAL]}
            worst = max(per_feature, key=lambda k: per_feature[k])
            any_feature = np.mean([any(d for _, _, d in seed) for seed in results])
            dataset = np.mean([np.mean([d for _, _, d in seed]) >= settings.dataset_share
                               for seed in results])
            num_method = numeric[0][1]
            cat_method = categorical[0][1]
            print(f"{window_rows:>12,}  {num_method:>15} {np.mean([d for *_, d in numeric]):>6.1%}"
                  f"  {cat_method:>15} {np.mean([d for *_, d in categorical]):>6.1%}"
                  f"  {any_feature:>11.1%}  {dataset:>7.1%}  {worst} "
                  f"{per_feature[worst]:.1%}")


if __name__ == "__main__":
    main()
