"""score_file: Parquet and CSV through the same handler and model as the service."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from kernel_magics.serving.batch import score_file
from kernel_magics.serving.bundle import Bundle
from kernel_magics.serving.errors import InputError

FEATURES = [f"pixel_{i}" for i in range(64)]


def digits_table(x: Any, count: int) -> pa.Table:
    columns = {name: x[:count, i] for i, name in enumerate(FEATURES)}
    return pa.table({"id": list(range(count)), **columns})


@pytest.mark.parametrize(("source", "target"), [("in.parquet", "out.parquet"),
                                                ("in.csv", "out.csv")])
def test_score_file_matches_the_service(server: Any, digits_bundle: Bundle, digits_data: Any,
                                        tmp_path: Path, source: str, target: str) -> None:
    x, _ = digits_data
    table = digits_table(x, 300)
    if source.endswith(".csv"):
        pacsv.write_csv(table, tmp_path / source)
    else:
        pq.write_table(table, tmp_path / source)
    result = score_file(digits_bundle.path, tmp_path / source, tmp_path / target,
                        batch_rows=128)
    assert result.rows == 300
    out = pacsv.read_csv(tmp_path / target) if target.endswith(".csv") else \
        pq.read_table(tmp_path / target)
    assert out.column("id").to_pylist() == list(range(300))  # passed through
    with server.client() as client:
        online = client.post("/invocations", json={"inputs": x[:300].tolist()}).json()
    assert out.column("prediction").to_pylist() == online["predictions"]


def test_score_file_with_handler(tabular_bundle: Bundle, tmp_path: Path) -> None:
    pq.write_table(pa.table({"age": [None, 40.0], "income": [100.0, -5.0],
                             "city": ["paris", "lyon"]}), tmp_path / "in.parquet")
    score_file(tabular_bundle.path, tmp_path / "in.parquet", tmp_path / "out.parquet")
    out = pq.read_table(tmp_path / "out.parquet")
    assert out.column_names == ["age", "income", "city", "prediction"]
    assert {p["label"] for p in out.column("prediction").to_pylist()} <= {"yes", "no"}


def test_score_file_bad_input(digits_bundle: Bundle, tmp_path: Path) -> None:
    pq.write_table(pa.table({"pixel_0": [1.0]}), tmp_path / "in.parquet")
    with pytest.raises(InputError, match="missing feature 'pixel_1'"):
        score_file(digits_bundle.path, tmp_path / "in.parquet", tmp_path / "out.parquet")
    with pytest.raises(InputError, match=r"\.parquet or \.csv"):
        score_file(digits_bundle.path, tmp_path / "in.json", tmp_path / "out.parquet")
