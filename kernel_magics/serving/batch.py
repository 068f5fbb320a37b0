"""Batch scoring: a Parquet or CSV file through the bundle's handler and model.

The same validation and pipeline as /invocations, in record batches, so a bundle
scores the same online and offline. Columns that are not features (ids, targets)
pass through to the output untouched; prediction columns are appended:
``prediction`` for one value per row, ``prediction_0..k`` for several, or the keys of
a dict (or the columns of a DataFrame) that postprocess returns.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from .bundle import Bundle
from .errors import HandlerError, InputError
from .inputs import from_columns
from .mlflow_codec import arrow_columns
from .pipeline import Pipeline

BATCH_ROWS = 65_536


@dataclass(frozen=True)
class ScoreResult:
    """What score_file wrote."""

    rows: int
    seconds: float
    output: Path


def _batches(path: Path, rows: int) -> Any:
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        yield from pq.ParquetFile(path).iter_batches(batch_size=rows)
    elif suffix == ".csv":
        with pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=1 << 22)) as reader:
            yield from reader
    else:
        raise InputError(f"{path.name}: score reads .parquet or .csv files.", field="input")


def predictions_table(predictions: Any, rows: int) -> dict[str, Any]:
    """Columns for postprocess's result (array, list, dict of columns or DataFrame)."""
    if hasattr(predictions, "columns") and hasattr(predictions, "to_dict"):  # DataFrame
        columns = {str(c): predictions[c].to_numpy() for c in predictions.columns}
    elif isinstance(predictions, dict):
        columns = {str(k): v for k, v in predictions.items()}
    else:
        array = np.asarray(predictions)
        if array.ndim == 2 and array.dtype != object:
            columns = {f"prediction_{i}": array[:, i] for i in range(array.shape[1])}
        else:
            columns = {"prediction": list(predictions) if array.ndim != 1 else array}
    out: dict[str, Any] = {}
    for name, values in columns.items():
        values = np.asarray(values)
        if len(values) != rows:
            raise HandlerError(f"predictions column {name!r} has {len(values)} values for "
                               f"{rows} rows.")
        out[name] = values.tolist() if values.dtype == object else values
    return out


def score_file(bundle_dir: str | Path, input_path: str | Path, output_path: str | Path, *,
               batch_rows: int = BATCH_ROWS) -> ScoreResult:
    """Score ``input_path`` (.parquet/.csv) into ``output_path`` (.parquet/.csv)."""
    started = time.perf_counter()
    bundle = Bundle.load(bundle_dir)
    pipeline = Pipeline(bundle)
    schema = bundle.schema
    source, target = Path(input_path), Path(output_path)
    if target.suffix.lower() not in (".parquet", ".pq", ".csv"):
        raise InputError(f"{target.name}: score writes .parquet or .csv files.", field="output")
    writer: pq.ParquetWriter | pacsv.CSVWriter | None = None
    total = 0
    try:
        for batch in _batches(source, batch_rows):
            table = pa.Table.from_batches([batch])
            columns = arrow_columns(table)
            features = {n: v for n, v in columns.items() if schema.feature(n) is not None}
            try:
                inputs = from_columns(schema, features)
            except InputError as exc:
                raise InputError(f"{source.name}, rows {total}-{total + len(table) - 1}: "
                                 f"{exc.message}", field=exc.field) from None
            predicted = predictions_table(pipeline.predict(inputs), len(table))
            clash = sorted(set(predicted) & set(table.column_names))
            if clash:
                raise InputError(f"{source.name} already has a column {clash[0]!r}; rename "
                                 "it to keep the predictions apart.", field=clash[0])
            for name, values in predicted.items():
                table = table.append_column(name, pa.array(values))
            if writer is None:
                writer = pacsv.CSVWriter(target, table.schema) if target.suffix.lower() == \
                    ".csv" else pq.ParquetWriter(target, table.schema, compression="zstd")
            writer.write_table(table)
            total += len(table)
    finally:
        if writer is not None:
            writer.close()
    if writer is None:
        raise InputError(f"{source.name} holds no rows.", field="input")
    return ScoreResult(rows=total, seconds=time.perf_counter() - started, output=target)
