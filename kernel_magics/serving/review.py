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

import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

logger = logging.getLogger(__name__)

LOW, HIGH = 1, 99  # the percentiles whose distance is a feature's typical spread
CHUNK_ROWS = 1024  # rows scored at a time (256 kB buffers at 64 features)


def probabilities(outputs: dict[str, NDArray[Any]]) -> NDArray[np.float32] | None:
    """Class probabilities (n, k), k >= 2, float32, from the model's outputs; None for a
    model with no such output (a regressor)."""
    for values in outputs.values():
        if values.dtype.kind != "f" or values.ndim not in (1, 2) or len(values) == 0:
            continue
        scores = np.asarray(values.reshape(len(values), -1), np.float32)
        if scores.shape[1] == 1:
            p = scores[:, 0]
            if np.all((p >= 0) & (p <= 1)):
                return np.column_stack([1 - p, p])
            continue
        sums = scores.sum(axis=1)
        if scores.min() >= 0 and np.abs(sums - 1).max() <= 1e-3:
            return scores
        shifted = np.exp(scores - scores.max(axis=1, keepdims=True))  # logits
        return np.asarray(shifted / shifted.sum(axis=1, keepdims=True), np.float32)
    return None


def uncertainty(probs: NDArray[np.floating[Any]]) -> dict[str, NDArray[np.float32]]:
    """confidence, margin and normalised entropy of each row's class probabilities."""
    two = -np.partition(-probs, 1, axis=1)[:, :2]  # the top two, largest first
    top, second = two[:, 0], two[:, 1]
    logs = np.log(np.maximum(probs, np.float32(1e-30)))  # 0 log 0 = 0
    entropy = -np.einsum("ij,ij->i", probs, logs) / np.float32(math.log(probs.shape[1]))
    return {"confidence": top, "margin": top - second,
            "entropy": np.clip(entropy, 0, 1).astype(np.float32)}


class OodScorer:
    """Out-of-distribution scores against a reference profile (reference.parquet)."""

    def __init__(self, numeric: dict[str, tuple[float, float, float]],
                 categorical: dict[str, frozenset[str]]) -> None:
        self.numeric = numeric  # feature -> (low, high, span)
        self.categorical = categorical  # feature -> every category training had
        bounds = np.array(list(numeric.values()), np.float64).reshape(-1, 3)
        low, high, span = bounds[:, 0], bounds[:, 1], bounds[:, 2]
        self._centre32 = ((low + high) / 2).astype(np.float32)
        self._half32 = ((high - low) / 2).astype(np.float32)
        self._inverse32 = (1 / span).astype(np.float32)
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

    def score_index(self, columns: dict[str, Any] | None = None, *,
                    matrix: NDArray[Any] | None = None, names: list[str] | None = None
                    ) -> tuple[NDArray[np.float32], NDArray[np.intp]]:
        """Per row: the score of its most unusual feature, and that feature's index in
        :attr:`names` (-1 where every feature is inside the training data). The rows are
        ``columns`` (feature -> values) or ``matrix`` (rows x ``names``, all numeric);
        features they lack count as inside. float32, in place, CHUNK_ROWS at a time."""
        if matrix is not None:
            assert names is not None
            rows = len(matrix)
            position = {n: j for j, n in enumerate(names)}
            x = _numeric_block(rows, [matrix[:, position[n]] if n in position else None
                                      for n in self.numeric],
                               whole=matrix if list(self.numeric) == names else None)
            columns = {}
        else:
            columns = columns or {}
            rows = len(next(iter(columns.values()))) if columns else 0
            x = _numeric_block(rows, [columns.get(n) for n in self.numeric])
        n_numeric = len(self.numeric)
        best = np.zeros(rows, np.float32)
        worst = np.full(rows, -1)  # -1: no feature outside
        if n_numeric:  # in chunks: a small buffer, reused (fresh megabytes cost page faults)
            chunk = min(rows, CHUNK_ROWS)
            # columns padded to a multiple of 8 (-1: inside), so a row's "> 0" flags are
            # whole 64-bit words
            buffer = np.full((chunk, -(-n_numeric // 8) * 8), -1.0, np.float32)
            for start in range(0, rows, chunk):
                part = x[start:start + chunk]
                t = self._beyond(part, buffer[:len(part), :n_numeric])
                outside = _rows_above_zero(buffer[:len(part)])  # few: scored exactly
                if len(outside):
                    found = np.nan_to_num(t[outside], nan=-1.0)  # NaN (missing): inside
                    where = found.argmax(axis=1)
                    best[start + outside] = found[np.arange(len(outside)), where]
                    worst[start + outside] = where
        for j, (name, known) in enumerate(self.categorical.items(), n_numeric):
            values = columns.get(name)
            if values is not None:
                unseen = np.array([v is not None and str(v) not in known for v in values])
                higher = unseen & (best < 1.0)
                best[higher], worst[higher] = 1.0, j
        worst[best <= 0] = -1
        return best, worst

    def _beyond(self, x: NDArray[np.float32], out: NDArray[np.float32]
                ) -> NDArray[np.float32]:
        """How far each value lies outside [low, high] (negative: inside), in units of
        its feature's spread: |x - centre| - half width, over the spread."""
        np.subtract(x, self._centre32, out=out)
        np.abs(out, out=out)
        out -= self._half32
        out *= self._inverse32
        return out

    @property
    def names(self) -> list[str]:
        """The features, in the order :meth:`score_index`'s indexes count them."""
        return self._names



def _rows_above_zero(t: NDArray[np.float32]) -> NDArray[np.intp]:
    """The rows of ``t`` (columns a multiple of 8) with a value above 0: their flags
    OR-ed as 64-bit words, column by column. numpy's reductions along a short row are
    slow (a row max of 1,024 x 64 float32 takes 55 us, this 20)."""
    words = (t > 0).view(np.uint64)
    found = words[:, 0].copy()
    for j in range(1, words.shape[1]):
        found |= words[:, j]
    return np.flatnonzero(found)


def _numeric_block(rows: int, values: list[Any], whole: NDArray[Any] | None = None
                   ) -> NDArray[np.float32]:
    """The numeric features as one float32 rows x features block (NaN where absent)."""
    if whole is not None:
        return np.asarray(whole, np.float32)
    block = np.full((rows, len(values)), np.nan, np.float32)
    for j, column in enumerate(values):
        if column is not None:
            block[:, j] = np.asarray(column, np.float32)
    return block


# the scores of a row, in the order the log's blocks hold them (format.SCORES) and the
# response's ``review`` objects name them
SCORES = FIELDS = ("confidence", "margin", "entropy", "ood", "ood_feature")


class Reviewer:
    """One model version's scorer: uncertainty from its outputs (classifiers), and
    out-of-distribution scores from its bundle's reference profile (when it has one)."""

    def __init__(self, feature_names: list[str], classifier: bool,
                 ood: OodScorer | None) -> None:
        self.feature_names = feature_names
        self.classifier = classifier
        self.ood = ood
        self._layouts: dict[int, str] = {}

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

    def block(self, outputs: list[dict[str, NDArray[Any]] | None],
              columns: dict[str, Any] | None, counts: list[int], *,
              matrix: NDArray[Any] | None = None) -> NDArray[np.float32]:
        """The scores of several requests' rows, one after another, as one float32
        block: rows x (confidence, margin, entropy, ood, ood_feature's index in
        :attr:`features`, then each class's probability), NaN where not known.
        ``outputs``: the model outputs of each request (None: not at hand); ``counts``:
        its rows; the features as ``columns`` (feature -> values) or ``matrix`` (rows x
        the schema's features, all numeric)."""
        rows = sum(counts)
        probs = self._probabilities(outputs, counts) if self.classifier else None
        classes = 0 if probs is None else probs.shape[1]
        block = np.full((rows, len(SCORES) + classes), np.nan, np.float32)
        if probs is not None:
            for j, values in enumerate(uncertainty(probs).values()):
                block[:, j] = values
            block[:, len(SCORES):] = probs
        if self.ood is not None and (matrix is not None or columns is not None):
            best, worst = self.ood.score_index(columns, matrix=matrix,
                                               names=self.feature_names)
            block[:, 3] = best
            block[:, 4] = np.where(worst >= 0, worst, np.nan)
        return block

    @property
    def features(self) -> list[str]:
        """The features ``ood_feature`` indexes."""
        return [] if self.ood is None else self.ood.names

    def layout(self, width: int) -> str:
        """The ``review_layout`` of this version's blocks ``width`` columns wide."""
        found = self._layouts.get(width)
        if found is None:
            found = self._layouts[width] = json.dumps({
                "scores": list(SCORES), "classes": width - len(SCORES),
                "features": self.features})
        return found

    def score(self, outputs: list[dict[str, NDArray[Any]] | None],
              columns: dict[str, Any] | None, counts: list[int], *,
              matrix: NDArray[Any] | None = None) -> dict[str, Any]:
        """:meth:`block` by name: one float32 array per score (``ood_feature``: names,
        None where none), ``probabilities`` rows x classes or None."""
        block = self.block(outputs, columns, counts, matrix=matrix)
        names = np.array([*self.features, None], dtype=object)
        index = block[:, 4]
        found: dict[str, Any] = {name: block[:, j] for j, name in enumerate(SCORES[:4])}
        found["ood_feature"] = names[np.where(np.isnan(index), -1, index).astype(np.intp)]
        found["probabilities"] = block[:, len(SCORES):] if block.shape[1] > len(SCORES) \
            else None
        return found

    @staticmethod
    def _probabilities(outputs: list[dict[str, NDArray[Any]] | None], counts: list[int]
                       ) -> NDArray[np.float32] | None:
        """Class probabilities of every row: the first float output the requests have,
        stacked (NaN rows for requests without it), then as :func:`probabilities`."""
        first = next((o for o in outputs if o), None)
        name = None if first is None else \
            next((n for n, v in first.items() if v.dtype.kind == "f"), None)
        if first is None or name is None:
            return None
        width = first[name].reshape(len(first[name]), -1).shape[1]
        blocks = [None if o is None else o.get(name) for o in outputs]
        fits = [b is not None and len(b) == n and b.size == n * width
                for b, n in zip(blocks, counts, strict=True)]
        stacked = np.concatenate([b.reshape(n, width) for b, n, ok in  # type: ignore[union-attr]
                                  zip(blocks, counts, fits, strict=True) if ok]) \
            if any(fits) else None
        if all(fits):  # the common case
            return probabilities({name: stacked})  # type: ignore[dict-item]
        # a request without this output: its rows stay NaN
        known = np.concatenate([np.full(n, ok) for n, ok in zip(counts, fits, strict=True)])
        found = None if stacked is None else probabilities({name: stacked})
        if found is None:
            return None
        probs = np.full((len(known), found.shape[1]), np.nan, np.float32)
        probs[known] = found
        return probs

    def rows(self, scores: dict[str, Any]) -> list[dict[str, Any]]:
        """``scores`` as one JSON-ready object per row (null where a score is missing)."""
        columns = [[None if v != v else round(float(v), 6) for v in scores[f].tolist()]
                   if f != "ood_feature" else list(scores[f]) for f in FIELDS]
        return [dict(zip(FIELDS, values, strict=True)) for values in zip(*columns, strict=True)]
