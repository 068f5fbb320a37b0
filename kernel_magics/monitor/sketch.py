"""Per-window sketches of production values, on the reference's own bins.

A sketch is a few arrays of counts per window; adding a batch adds to them (so two
sketches of the same feature would merge by adding their arrays). Nothing else is kept:

- numeric (:class:`NumericSketch`): per window, the count and the sum of the values in
  each bin between the reference's distinct quantile edges, plus one bin below the
  reference's minimum and one above its maximum; nulls (NaN) and infinities are counted
  apart. When the reference kept its raw values (fewer than 1,000), also the counts of
  values ``<`` and ``<=`` each distinct reference value: the exact KS statistic.
- categorical (:class:`CategoricalSketch`): per window, the count of each reference
  category (its top 50) and of everything else ("other"), nulls apart, and the most
  frequent values the reference does not list (for the report's note).

Adding sorts the batch once (numpy's sort: ~14 ms per million values) and finds every
edge in the sorted values by binary search: cheaper than searching each value among the
edges, and it gives the ``<``/``<=`` counts for KS for free.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .reference import FeatureProfile

Array = np.ndarray[Any, Any]
UNSEEN_KEPT = 200  # distinct unlisted categories remembered per window (the most frequent)


class NumericSketch:
    """Counts and sums per window on the reference's bins."""

    def __init__(self, profile: FeatureProfile, windows: int) -> None:
        self.profile = profile
        quantiles = np.asarray(profile.quantiles or [0.0], dtype=np.float64)
        self.edges = np.unique(quantiles)
        # Bins are [e0, e1), ..., [e_{k-1}, e_k] as np.histogram made them; probing the
        # last edge just above it puts the maximum itself in the last bin.
        probes = self.edges.copy() if self.edges.size > 1 else \
            np.array([self.edges[0], self.edges[0]])
        probes[-1] = np.nextafter(probes[-1], np.inf)
        self.probes = probes
        # the reference's own counts on those bins (one bin: a reference without them)
        self.reference_counts = np.asarray(profile.bin_counts or [profile.count],
                                           dtype=np.int64)
        bins = probes.size + 1  # below, k bins, above
        self.counts = np.zeros((windows, bins), dtype=np.int64)
        self.sums = np.zeros((windows, bins), dtype=np.float64)
        self.nulls = np.zeros(windows, dtype=np.int64)
        self.nonfinite = np.zeros(windows, dtype=np.int64)
        self.distinct: Array | None = None
        self.multiplicity: Array | None = None
        if profile.values:
            self.distinct, multiplicity = np.unique(np.asarray(profile.values),
                                                    return_counts=True)
            self.multiplicity = multiplicity.astype(np.int64)
            self.lt = np.zeros((windows, self.distinct.size), dtype=np.int64)
            self.le = np.zeros((windows, self.distinct.size), dtype=np.int64)

    def add_sorted(self, window: int, values: Array) -> None:
        """Add values sorted ascending (NaN last, as np.sort leaves them)."""
        n = values.size
        if n == 0:
            return
        valid = int(np.searchsorted(values, np.inf, "right"))  # NaN sort after +inf
        low = int(np.searchsorted(values, -np.inf, "right"))
        high = int(np.searchsorted(values, np.inf, "left"))
        self.nulls[window] += n - valid
        self.nonfinite[window] += low + valid - high
        finite = values[low:high]
        if finite.size == 0:
            return
        bounds = np.empty(self.probes.size + 2, dtype=np.int64)
        bounds[0] = 0
        bounds[1:-1] = np.searchsorted(finite, self.probes, "left")
        bounds[-1] = finite.size
        cumulative = np.empty(finite.size + 1, dtype=np.float64)
        cumulative[0] = 0.0
        np.cumsum(finite, out=cumulative[1:])
        self.counts[window] += np.diff(bounds)
        self.sums[window] += cumulative[bounds[1:]] - cumulative[bounds[:-1]]
        if self.distinct is not None:
            self.lt[window] += np.searchsorted(finite, self.distinct, "left")
            self.le[window] += np.searchsorted(finite, self.distinct, "right")

    def add(self, window: int, values: Array) -> None:
        """Add values in any order."""
        self.add_sorted(window, np.sort(np.asarray(values, dtype=np.float64)))

    def seen(self, window: int) -> int:
        """Values of the window, nulls included."""
        return int(self.counts[window].sum() + self.nulls[window] + self.nonfinite[window])


class CategoricalSketch:
    """Counts per window of the reference's categories and of "other"."""

    def __init__(self, profile: FeatureProfile, windows: int) -> None:
        self.profile = profile
        self.categories = list(profile.categories or [])
        self.value_set = pa.array(self.categories, pa.string())
        self.counts = np.zeros((windows, len(self.categories) + 1), dtype=np.int64)
        self.nulls = np.zeros(windows, dtype=np.int64)
        self.unseen: list[dict[str, int]] = [{} for _ in range(windows)]

    def add(self, window: int, values: pa.Array) -> None:
        """Add an Arrow array of values (cast to text)."""
        if len(values) == 0:
            return
        if not pa.types.is_string(values.type):
            values = _as_text(values)
        self.nulls[window] += values.null_count
        encoded = pc.dictionary_encode(values)
        if isinstance(encoded, pa.ChunkedArray):
            encoded = encoded.combine_chunks()
        dictionary = encoded.dictionary
        if len(dictionary) == 0:
            return
        indices = encoded.indices
        if indices.null_count:
            indices = pc.drop_null(indices)
        local = np.bincount(indices.to_numpy(zero_copy_only=False),
                            minlength=len(dictionary))
        other = len(self.categories)
        codes = pc.fill_null(pc.index_in(dictionary, value_set=self.value_set), other)
        code_array = codes.to_numpy(zero_copy_only=False).astype(np.intp)
        np.add.at(self.counts[window], code_array, local)
        unseen = np.flatnonzero(code_array == other)
        if unseen.size:
            if unseen.size > UNSEEN_KEPT:
                unseen = unseen[np.argsort(-local[unseen], kind="stable")[:UNSEEN_KEPT]]
            self._remember(window, [str(v) for v in dictionary.take(pa.array(unseen))
                                    .to_pylist()], local[unseen])

    def _remember(self, window: int, names: list[str], counts: Array) -> None:
        kept = self.unseen[window]
        for name, count in zip(names, counts.tolist(), strict=True):
            kept[name] = kept.get(name, 0) + int(count)
        if len(kept) > 2 * UNSEEN_KEPT:
            top = sorted(kept.items(), key=lambda item: -item[1])[:UNSEEN_KEPT]
            self.unseen[window] = dict(top)

    def seen(self, window: int) -> int:
        """Values of the window, nulls included."""
        return int(self.counts[window].sum() + self.nulls[window])


def _as_text(values: pa.Array) -> pa.Array:
    """Values as strings, the way the reference wrote categories (str(value))."""
    if pa.types.is_floating(values.type):
        numbers = values.to_numpy(zero_copy_only=False)
        return pa.array([None if np.isnan(v) else str(v) for v in numbers.tolist()],
                        pa.string())
    if pa.types.is_boolean(values.type):
        return pa.array([None if v is None else str(v) for v in values.to_pylist()],
                        pa.string())
    return pc.cast(values, pa.string())


Sketch = NumericSketch | CategoricalSketch


def sketch_for(profile: FeatureProfile, windows: int) -> Sketch:
    """The sketch that matches a reference profile's kind."""
    if profile.kind == "numeric":
        return NumericSketch(profile, windows)
    return CategoricalSketch(profile, windows)
