"""Review scores for every prediction, computed in the service.

Two kinds of doubt, per row:

- the model is unsure: ``confidence`` (the top class probability), ``margin`` (top
  minus second), ``entropy`` (of the class probabilities, divided by log k: 0 sure, 1
  uniform). Read from the model's probability-like output: probabilities as they are
  (rows in [0, 1] summing to 1), logits through a softmax, one probability column p as
  [1 - p, p];
- the input is unfamiliar: ``ood``, how far the row's most unusual feature falls
  outside the range the training data covered (the reference profile's minimum and
  maximum), in units of the feature's typical spread (its 1st to 99th percentile): 0
  inside, 0.5 half a spread beyond. A category the training data never had scores 1
  (when the profile lists every category). The outermost values, not central
  percentiles, bound "inside": with 64 features, a per-feature 1 % tail would put most
  ordinary rows outside somewhere.

Cheap by design: :class:`Reviewer` scores a whole batch of requests at once (the log
writer calls it every 100 ms with what accumulated; a client that asks for its scores
gets its own request scored inline), numpy over arrays the pipeline already holds, the
profile read once per version. Imports nothing of Ship: the runtime is copied into
every bundle.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

logger = logging.getLogger(__name__)

LOW, HIGH = 1, 99  # the percentiles whose distance is a feature's typical spread


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


class OodScorer:
    """Out-of-distribution scores against a reference profile (reference.parquet)."""

    def __init__(self, numeric: dict[str, tuple[float, float, float]],
                 categorical: dict[str, frozenset[str]]) -> None:
        self.numeric = numeric  # feature -> (low, high, span)
        self.categorical = categorical  # feature -> every category training had
        bounds = np.array(list(numeric.values()), np.float64).reshape(-1, 3)
        self._low, self._high, self._span = bounds[:, 0], bounds[:, 1], bounds[:, 2]
        self._names = [*numeric, *categorical]

    @classmethod
    def from_reference(cls, path: Path) -> OodScorer:
        """The scorer of a bundle's reference.parquet (every feature it profiles)."""
        import pyarrow.parquet as pq

        numeric: dict[str, tuple[float, float, float]] = {}
        categorical: dict[str, frozenset[str]] = {}
        for row in pq.read_table(path).to_pylist():
            if row["feature"].startswith("__"):  # the predictions' own profile
                continue
            if row["kind"] == "numeric" and row.get("quantiles"):
                q = row["quantiles"]
                low, high = float(row.get("min", q[0])), float(row.get("max", q[-1]))
                span = float(q[HIGH]) - float(q[LOW])
                if span <= 0:  # a near-constant feature: the whole range, else its std
                    span = high - low or float(row.get("std") or 0) or 1.0
                numeric[row["feature"]] = (low, high, span)
            elif row["kind"] == "categorical" and row.get("categories") and \
                    not row.get("other_count"):
                categorical[row["feature"]] = frozenset(row["categories"])
        return cls(numeric, categorical)

    def score(self, columns: dict[str, Any]) -> tuple[NDArray[np.float64], list[str | None]]:
        """Per row: the score of its most unusual feature, and that feature's name
        (None where every feature is inside the training data). ``columns``: feature ->
        values; features it lacks count as inside."""
        rows = len(next(iter(columns.values()))) if columns else 0
        table = np.zeros((rows, len(self._names)))
        if self.numeric:
            present = [name in columns for name in self.numeric]
            x = np.column_stack([np.asarray(columns[n], dtype=np.float64) if here
                                 else np.full(rows, np.nan)
                                 for n, here in zip(self.numeric, present, strict=True)])
            beyond = np.maximum(self._low - x, x - self._high) / self._span
            table[:, :len(self.numeric)] = np.nan_to_num(np.maximum(beyond, 0.0))
        for j, (name, known) in enumerate(self.categorical.items(), len(self.numeric)):
            values = columns.get(name)
            if values is not None:
                table[:, j] = [0.0 if v is None or str(v) in known else 1.0 for v in values]
        if not self._names:
            return np.zeros(rows), [None] * rows
        worst = table.argmax(axis=1)
        best = table[np.arange(rows), worst]
        return best, [self._names[j] if b > 0 else None
                      for j, b in zip(worst.tolist(), best.tolist(), strict=True)]


# the log's ``review`` struct and the response's ``review`` objects: one value per row
FIELDS = ("confidence", "margin", "entropy", "ood", "ood_feature")


class Reviewer:
    """One model version's scorer: uncertainty from its outputs (classifiers), and
    out-of-distribution scores from its bundle's reference profile (when it has one)."""

    def __init__(self, feature_names: list[str], classifier: bool,
                 ood: OodScorer | None) -> None:
        self.feature_names = feature_names
        self.classifier = classifier
        self.ood = ood

    @classmethod
    def for_bundle(cls, path: Path, feature_names: list[str], task: str) -> Reviewer:
        """The reviewer of a bundle at ``path`` (its reference.parquet, if any)."""
        reference = path / "reference.parquet"
        ood = None
        if reference.is_file():
            try:
                ood = OodScorer.from_reference(reference)
            except Exception:  # an unreadable profile costs the ood score, not the service
                logger.exception("%s: unreadable; predictions get no ood score", reference)
        return cls(feature_names, task == "classification", ood)

    def score(self, outputs: list[dict[str, NDArray[Any]] | None],
              columns: dict[str, Any] | None, counts: list[int]) -> dict[str, Any]:
        """The scores of several requests' rows, one after another: ``outputs`` the
        model outputs of each request (None: not at hand), ``counts`` its rows,
        ``columns`` their features (feature -> values). Missing scores are NaN
        (ood_feature None); ``probabilities`` is (rows, k), or None."""
        rows = sum(counts)
        nan = np.full(rows, np.nan)
        scores: dict[str, Any] = {"confidence": nan, "margin": nan, "entropy": nan,
                                  "ood": nan, "ood_feature": [None] * rows,
                                  "probabilities": None}
        if self.classifier:
            probs = self._probabilities(outputs, counts)
            if probs is not None:
                scores.update(uncertainty(probs), probabilities=probs)
        if self.ood is not None and columns is not None:
            scores["ood"], scores["ood_feature"] = self.ood.score(columns)
        return scores

    @staticmethod
    def _probabilities(outputs: list[dict[str, NDArray[Any]] | None], counts: list[int]
                       ) -> NDArray[np.float64] | None:
        """Class probabilities of every row: the first float output the requests have,
        stacked (NaN rows for requests without it), then as :func:`probabilities`."""
        present = [o for o in outputs if o]
        if not present:
            return None
        name = next((n for n, v in present[0].items() if v.dtype.kind == "f"), None)
        if name is None:
            return None
        blocks = []
        width = None
        for o in outputs:
            value = None if o is None else o.get(name)
            if value is not None:
                value = value.reshape(len(value), -1)
                width = value.shape[1]
            blocks.append(value)
        if width is None:
            return None
        full: list[NDArray[Any]] = [  # a request without this output: NaN rows
            b if b is not None and b.shape == (n, width) else np.full((n, width), np.nan)
            for b, n in zip(blocks, counts, strict=True)]
        stacked: NDArray[Any] = np.concatenate(full)
        rows = len(stacked)
        known = ~np.isnan(stacked).any(axis=1)
        probs = np.full((rows, max(width, 2)), np.nan)
        found = probabilities({name: stacked[known]}) if known.any() else None
        if found is None:
            return None
        probs[known] = found
        return probs

    def rows(self, scores: dict[str, Any]) -> list[dict[str, Any]]:
        """``scores`` as one JSON-ready object per row (null where a score is missing)."""
        columns = [[None if v != v else round(float(v), 6) for v in scores[f].tolist()]
                   if f != "ood_feature" else scores[f] for f in FIELDS]
        return [dict(zip(FIELDS, values, strict=True)) for values in zip(*columns, strict=True)]
