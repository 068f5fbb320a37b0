"""Review scores for every prediction, computed in the service (issue 23, work in progress).

Two kinds of doubt, per row:

- the model is unsure: ``confidence`` (the top class probability), ``margin`` (top
  minus second), ``entropy`` (of the class probabilities, divided by log k: 0 sure, 1
  uniform). Read from the model's probability-like output: probabilities as they are
  (rows in [0, 1] summing to 1), logits through a softmax, one probability column p as
  [1 - p, p];
- the input is unfamiliar: ``ood``, how far the row's most unusual feature falls
  outside the training data's central 98 % (the reference profile's 1st and 99th
  percentiles), in units of that range: 0 inside, 0.5 half a range beyond. A category
  the training data never had scores 1 (when the profile lists every category).

Cheap by design (numpy on arrays the pipeline already holds; the profile read once),
so every prediction can carry them. Imports nothing of Ship: the runtime is copied into
every bundle.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

LOW, HIGH = 1, 99  # the percentiles that bound "inside the training data"


def probabilities(outputs: dict[str, NDArray[Any]]) -> NDArray[np.float64] | None:
    """Class probabilities (n, k), k >= 2, from the model's outputs; None for a model
    with no such output (a regressor)."""
    for values in outputs.values():
        if values.dtype.kind != "f" or values.ndim not in (1, 2) or len(values) == 0:
            continue
        scores = values.reshape(len(values), -1).astype(np.float64)
        if scores.shape[1] == 1:
            p = scores[:, 0]
            if np.all((p >= 0) & (p <= 1)):
                return np.column_stack([1 - p, p])
            continue
        sums = scores.sum(axis=1)
        if np.all(scores >= 0) and np.allclose(sums, 1.0, atol=1e-3):
            return np.asarray(scores / sums[:, None])
        shifted = np.exp(scores - scores.max(axis=1, keepdims=True))  # logits
        return np.asarray(shifted / shifted.sum(axis=1, keepdims=True))
    return None


def uncertainty(probs: NDArray[np.float64]) -> dict[str, NDArray[np.float64]]:
    """confidence, margin and normalised entropy of each row's class probabilities."""
    ordered = np.sort(probs, axis=1)
    top, second = ordered[:, -1], ordered[:, -2]
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.where(probs > 0, np.log(probs), 0.0)
    entropy = -(probs * logs).sum(axis=1) / math.log(probs.shape[1])
    return {"confidence": top, "margin": top - second, "entropy": np.clip(entropy, 0, 1)}


@dataclass(frozen=True)
class _Numeric:
    low: float
    high: float
    span: float


@dataclass(frozen=True)
class _Categorical:
    known: frozenset[str]


class OodScorer:
    """Out-of-distribution scores against a reference profile (reference.parquet)."""

    def __init__(self, features: dict[str, _Numeric | _Categorical]) -> None:
        self.features = features

    @classmethod
    def from_reference(cls, path: Path) -> OodScorer:
        """The scorer of a bundle's reference.parquet (every feature it profiles)."""
        import pyarrow.parquet as pq

        features: dict[str, _Numeric | _Categorical] = {}
        for row in pq.read_table(path).to_pylist():
            if row["feature"].startswith("__"):  # the predictions' own profile
                continue
            if row["kind"] == "numeric" and row.get("quantiles"):
                q = row["quantiles"]
                low, high = float(q[LOW]), float(q[HIGH])
                span = high - low
                if span <= 0:  # a near-constant feature: the whole range, else its std
                    span = float(row.get("max") or 0) - float(row.get("min") or 0) or \
                        float(row.get("std") or 0) or 1.0
                features[row["feature"]] = _Numeric(low, high, span)
            elif row["kind"] == "categorical" and row.get("categories") and \
                    not row.get("other_count"):
                features[row["feature"]] = _Categorical(frozenset(row["categories"]))
        return cls(features)

    def score(self, columns: dict[str, Any]) -> tuple[NDArray[np.float64], list[str | None]]:
        """Per row: the score of its most unusual feature, and that feature's name
        (None where every feature is inside the training data)."""
        rows = len(next(iter(columns.values()))) if columns else 0
        best = np.zeros(rows)
        worst: list[str | None] = [None] * rows
        for name, reference in self.features.items():
            values = columns.get(name)
            if values is None:
                continue
            if isinstance(reference, _Numeric):
                x = np.asarray(values, dtype=np.float64)
                beyond = np.maximum(reference.low - x, x - reference.high)
                scores = np.nan_to_num(np.maximum(beyond, 0.0) / reference.span)
            else:
                scores = np.array([0.0 if v is None or str(v) in reference.known else 1.0
                                   for v in values])
            higher = scores > best
            best = np.where(higher, scores, best)
            for i in np.flatnonzero(higher):
                worst[int(i)] = name
        return best, worst
