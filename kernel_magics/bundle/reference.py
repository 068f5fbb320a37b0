"""A bundle's reference profile and warm-up rows.

The reference (reference.parquet, for drift) comes from the training data given with
``--reference``; without it, from the profiles ``%%ship track`` made of the DataFrames
the model's run read or produced (``ship/profiles/NAME.parquet``): the one holding every
feature of the service, preferring a name that mentions "train", then the most rows.

The warm-up inference the runtime makes before it is ready uses a typical row of that
profile (medians, the most frequent category) instead of zeros, so a handler that
encodes categories (an OrdinalEncoder fitted on "north"/"south") warms up on a value it
knows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..monitor.reference import FeatureProfile, build_profile, read_reference
from ..tracking.record import RUN_PROFILES_PATH

WARMUP_FILE = "warmup.json"


@dataclass
class Reference:
    """The service's feature profiles and where they came from."""

    profiles: list[FeatureProfile]
    rows: int
    source: str
    data: Any = None  # the rows themselves, when given (for the prediction profile)


def resolve_reference(features: list[str], data: Any, client: Any, run_id: str | None,
                      tmp: Path) -> Reference | None:
    """From ``data`` (``--reference``) if given, else from the run's tracked profiles."""
    if data is not None:
        return from_data(features, data)
    return _from_run(features, client, run_id, tmp)


def from_data(features: list[str], data: Any) -> Reference:
    """The reference of training rows (a DataFrame, or a 2-D array in feature order)."""
    profiles = build_profile(data, features)
    return Reference(profiles, _rows(profiles), "--reference", data)


def _rows(profiles: list[FeatureProfile]) -> int:
    return max((p.count + p.null_count for p in profiles), default=0)


def _from_run(features: list[str], client: Any, run_id: str | None,
              tmp: Path) -> Reference | None:
    if not run_id:
        return None
    try:
        listed = [a.path for a in client.list_artifacts(run_id, RUN_PROFILES_PATH)
                  if a.path.endswith(".parquet")]
    except Exception:  # noqa: BLE001 - a run without artifacts, or a deleted one
        return None
    candidates = []
    tmp.mkdir(parents=True, exist_ok=True)
    for path in listed:
        local = Path(client.download_artifacts(run_id, path, str(tmp)))
        by_name = {p.feature: p for p in read_reference(local)}
        if all(f in by_name for f in features):
            profiles = [by_name[f] for f in features]
            candidates.append((Path(path).stem, profiles))
    if not candidates:
        return None
    candidates.sort(key=lambda c: ("train" not in c[0].lower(), -_rows(c[1]), c[0]))
    name, profiles = candidates[0]
    return Reference(profiles, _rows(profiles), f"{name} in run {run_id}")


def write_reference_file(folder: Path, reference: Reference | None) -> None:
    """The bundle's reference.parquet. With the training rows themselves (``--reference``)
    it also profiles the bundle's own predictions on them (the ``__prediction__`` row), for
    prediction drift; tracked profiles carry no rows to predict on."""
    if reference is None:
        return
    from ..monitor.predictions import profile_predictions
    from ..monitor.reference import write_reference

    predicted = profile_predictions(folder, reference.data) if reference.data is not None \
        else None
    write_reference([*reference.profiles, *([predicted] if predicted is not None else [])],
                    folder / "reference.parquet")


def with_training_nulls(schema: Any, reference: Reference | None) -> Any:
    """The schema with every feature the training data had nulls in marked nullable: the
    handler was written for them (a ``fillna`` in preprocess), so requests may carry them."""
    if reference is None:
        return schema
    from dataclasses import replace

    had_nulls = {p.feature for p in reference.profiles if p.null_count > 0}
    if not had_nulls:
        return schema
    return replace(schema, features=tuple(
        replace(f, nullable=True) if f.name in had_nulls else f for f in schema.features))


def warmup_body(reference: Reference | None, dtypes: dict[str, str]) -> dict[str, Any] | None:
    """An /invocations body with one typical row (None without a complete profile)."""
    if reference is None:
        return None
    row: list[Any] = []
    for profile in reference.profiles:
        value = _typical(profile, dtypes.get(profile.feature, "float32"))
        if value is None:
            return None
        row.append(value)
    return {"dataframe_split": {"columns": [p.feature for p in reference.profiles],
                                "data": [row]}}


def _typical(profile: FeatureProfile, dtype: str) -> Any:
    if profile.kind == "categorical":
        return profile.categories[0] if profile.categories else None
    if not profile.quantiles:
        return None
    median = profile.quantiles[len(profile.quantiles) // 2]
    if dtype == "bool":
        return bool(round(median))
    if dtype[0] in "iu":
        return int(round(median))
    return float(median)


def write_warmup(folder: Path, body: dict[str, Any]) -> str:
    """warmup.json in the bundle; its name for ship.yaml's runtime.warmup_input."""
    (folder / WARMUP_FILE).write_text(json.dumps(body) + "\n", encoding="utf-8")
    return WARMUP_FILE
