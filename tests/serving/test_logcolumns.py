"""Records copied into columns several times between two segments come out as the same
rows they were, whatever mix of pieces the copies made (runs, numbers, joined text,
Arrow arrays, rows in the inputs buffer, struct columns); the buffer's memory is reused
only once the segment made of it is written."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from kernel_magics.serving import logcolumns
from kernel_magics.serving.bundle import Bundle
from kernel_magics.serving.inputs import Inputs
from kernel_magics.serving.logcolumns import BASE_FIELDS, Columns, Prediction
from kernel_magics.serving.loglayout import FeatureLayout
from kernel_magics.serving.logread import read_log
from kernel_magics.serving.predlog import PredictionLog
from kernel_magics.serving.schema import Feature, Schema, TensorSpec


def record(log: PredictionLog, request_id: str, *, version: str = "3", status: int = 200,
           inputs: Inputs | None = None, outputs: Any = b"[7]", error: str | None = None,
           client_id: str | None = None, raw: Any = None) -> None:
    log.record(request_id, time.time(), "digits", version, "invocations", status, 1.25,
               client_id, inputs, raw, outputs, error)


def one_row(value: float, dtype: Any = np.float32) -> Inputs:
    return Inputs(rows=1, matrix=np.full((1, 64), value, dtype=dtype))


def test_copies_of_every_kind_make_one_segment_in_order(tmp_path: Path,
                                                        digits_bundle: Bundle) -> None:
    log = PredictionLog(tmp_path)
    log.register("digits", "3", digits_bundle.schema, identity=True)
    # copy 1: the common case (runs, joined ids and answers, one matrix)
    record(log, "a1", inputs=one_row(1.0))
    record(log, "a2", inputs=one_row(2.0))
    log._compact()
    # copy 2: a batch of 3 rows in float64, a client id, an answer that is not bytes
    record(log, "b1", inputs=Inputs(rows=3, matrix=np.arange(192.0).reshape(3, 64)),
           client_id="client-é", outputs={"label": [1, 2, 3]})
    log._compact()
    # copy 3: a failed request without inputs, a status that differs, a raw body
    record(log, "c1", status=400, outputs=None, error="feature 'pixel_0': missing",
           raw=b'{"broken"')
    record(log, "c2", inputs=one_row(5.0))
    log._compact()
    assert log.flush() == 5

    files = list(tmp_path.rglob("*.parquet"))
    assert len(files) == 1  # one segment for one model version
    entries = read_log(tmp_path)
    assert [e.request_id for e in entries] == ["a1", "a2", "b1", "c1", "c2"]
    by_id = {e.request_id: e for e in entries}
    assert by_id["a2"].inputs is not None and by_id["a2"].inputs["pixel_0"] == [2.0]
    assert by_id["b1"].inputs is not None and by_id["b1"].inputs["pixel_1"] == [1.0, 65.0, 129.0]
    assert by_id["b1"].rows == 3 and by_id["b1"].client_id == "client-é"
    assert by_id["b1"].outputs == '{"label":[1,2,3]}'
    assert by_id["c1"].inputs is None and by_id["c1"].status == 400
    assert by_id["c1"].error == "feature 'pixel_0': missing"
    assert by_id["c1"].raw_inputs == '{"broken"'
    assert by_id["c2"].inputs is not None and by_id["c2"].inputs["pixel_63"] == [5.0]
    assert all(e.outputs == "[7]" for e in (by_id["a1"], by_id["a2"], by_id["c2"]))
    table = pq.read_table(files[0])  # the registered layout, whatever the copies held
    assert table.schema.field("inputs").type.field("pixel_0").type.value_type == pa.float32()
    assert table.column("status").to_pylist() == [200, 200, 200, 400, 200]


def test_answers_that_are_not_utf8_are_kept_readable(tmp_path: Path,
                                                     digits_bundle: Bundle) -> None:
    log = PredictionLog(tmp_path)
    log.register("digits", "3", digits_bundle.schema, identity=True)
    record(log, "ok", inputs=one_row(1.0), outputs=b'{"a":1}')
    record(log, "bad", inputs=one_row(1.0), outputs=b"\xff\xfe[1]")
    assert log.flush() == 2
    outputs = {e.request_id: e.outputs for e in read_log(tmp_path)}
    assert outputs == {"ok": '{"a":1}', "bad": "\ufffd\ufffd[1]"}


def test_versions_without_features_get_the_base_columns(tmp_path: Path,
                                                        digits_bundle: Bundle) -> None:
    log = PredictionLog(tmp_path)
    log.register("digits", "3", digits_bundle.schema, identity=True)
    record(log, "v3", inputs=one_row(1.0))
    record(log, "v9", version="9", inputs=one_row(4.0))  # never registered
    log._compact()
    record(log, "v9b", version="9", inputs=one_row(6.0))
    assert log.flush() == 3
    assert len(list(tmp_path.rglob("*.parquet"))) == 2  # one segment per layout
    by_id = {e.request_id: e for e in read_log(tmp_path)}
    assert by_id["v3"].inputs is not None and by_id["v3"].inputs["pixel_0"] == [1.0]
    assert by_id["v9b"].inputs is None  # no typed columns: the inputs as JSON
    assert by_id["v9b"].raw_inputs is not None and '"column_0":[6.0]' in by_id["v9b"].raw_inputs


def test_a_record_that_cannot_be_copied_costs_only_its_own_copy(
        tmp_path: Path, digits_bundle: Bundle) -> None:
    log = PredictionLog(tmp_path)
    log.register("digits", "3", digits_bundle.schema, identity=True)
    record(log, "kept", inputs=one_row(1.0))
    log._compact()
    log.record(object(), time.time(), "digits", "3", "invocations",  # type: ignore[arg-type]
               200, 1.0, None, one_row(1.0), None, b"[1]", None)
    log._compact()  # rendering fails: this copy is dropped and counted, not the log
    record(log, "after", inputs=one_row(2.0))
    assert log.flush() == 2
    assert log.dropped == 1
    assert [e.request_id for e in read_log(tmp_path)] == ["kept", "after"]


def test_warm_up_writes_nothing_and_counts_nothing(tmp_path: Path, digits_bundle: Bundle,
                                                   tabular_bundle: Bundle) -> None:
    log = PredictionLog(tmp_path)
    log.register("digits", "3", digits_bundle.schema, identity=True)  # all numeric
    log.register("churn", "1", tabular_bundle.schema, identity=False)  # mixed features
    log.warm_up()
    assert not list(tmp_path.rglob("*")) and log.written == 0 and log.dropped == 0
    assert log.cpu_s == {"build": 0.0, "write": 0.0}
    record(log, "after", inputs=one_row(1.0))
    assert log.flush() == 1
    assert [e.request_id for e in read_log(tmp_path)] == ["after"]


def pixel(table: pa.Table, feature: str = "pixel_0") -> list[float]:
    """One feature's values, all rows of all records in order."""
    return pc.list_flatten(pc.struct_field(table.column("inputs"), feature)).to_pylist()


def test_inputs_grow_past_the_buffer_and_keep_their_order(digits_bundle: Bundle) -> None:
    layout = FeatureLayout(digits_bundle.schema, True, BASE_FIELDS)
    columns = Columns(layout)
    batches = [np.arange(700 * 64, dtype=np.float64).reshape(700, 64) + 1e6 * k
               for k in range(3)]  # 2,100 rows: twice past the first buffer's 1,024
    for k, batch in enumerate(batches):
        columns.add([Prediction(f"r{k}", time.time(), "digits", "3", "invocations", 200,
                                1.0, 700, None, Inputs(rows=700, matrix=batch), None,
                                b"[1]", None)])
    table = columns.table()
    assert table.column("inputs").type.field("pixel_5").type.value_type == pa.float32()
    assert pixel(table, "pixel_5") == np.concatenate(batches)[:, 5].tolist()
    assert [len(v) for v in pc.struct_field(table.column("inputs"), "pixel_5").to_pylist()] \
        == [700, 700, 700]


def test_a_segment_not_yet_written_keeps_its_rows(tmp_path: Path,
                                                  digits_bundle: Bundle) -> None:
    """Rows copied after a failed write go to new memory; once segments are written, the
    next ones reuse it."""
    blocker = tmp_path / "log"
    blocker.write_text("a file where the log folder should be")
    log = PredictionLog(blocker)
    log.register("digits", "3", digits_bundle.schema, identity=True)
    record(log, "r1", inputs=one_row(1.0))
    assert log.flush() == 0  # kept for retry, with its rows
    record(log, "r2", inputs=one_row(2.0))
    assert log.flush() == 0
    blocker.unlink()
    record(log, "r3", inputs=one_row(3.0))
    assert log.flush() == 3
    record(log, "r4", inputs=one_row(4.0))
    assert log.flush() == 1
    values = {e.request_id: e.inputs["pixel_9"] for e in read_log(blocker) if e.inputs}
    assert values == {"r1": [1.0], "r2": [2.0], "r3": [3.0], "r4": [4.0]}


def test_released_columns_reuse_their_memory(digits_bundle: Bundle) -> None:
    layout = FeatureLayout(digits_bundle.schema, True, BASE_FIELDS)
    columns = Columns(layout)

    def segment(value: float) -> pa.Table:
        columns.add([Prediction("r", time.time(), "digits", "3", "invocations", 200, 1.0,
                                1, None, one_row(value), None, b"[1]", None)] * 3)
        return columns.table()

    def address(table: pa.Table) -> int:
        return pc.struct_field(table.column("inputs"), "pixel_0").chunk(0).values \
            .buffers()[1].address

    kept = segment(1.0)
    second = segment(2.0)  # the first was not released: new memory
    assert address(second) != address(kept)
    assert pixel(kept) == [1.0] * 3 and pixel(second) == [2.0] * 3
    used = address(second)
    del second
    columns.release()
    third = segment(3.0)
    assert address(third) == used and pixel(third) == [3.0] * 3
    assert pixel(kept) == [1.0] * 3


def test_a_segment_that_fails_to_render_is_lost_whole(tmp_path: Path, digits_bundle: Bundle,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The inputs start over with the other columns: the next segment stays aligned."""
    log = PredictionLog(tmp_path)
    log.register("digits", "3", digits_bundle.schema, identity=True)
    record(log, "lost", inputs=one_row(1.0))
    def broken(*args: Any) -> pa.Array:
        raise RuntimeError("a rendering bug")

    with monkeypatch.context() as patch:
        patch.setattr(logcolumns, "_column", broken)
        assert log.flush() == 0 and log.dropped == 1
    record(log, "next", inputs=one_row(2.0))
    assert log.flush() == 1
    assert [(e.request_id, e.inputs["pixel_0"] if e.inputs else None)
            for e in read_log(tmp_path)] == [("next", [2.0])]


def test_numeric_features_of_several_dtypes_share_the_buffer_with_failed_requests() -> None:
    """int64, float32 and nullable int features: the request path's matrix is float64,
    and the log writes each feature in its own type; a failed request between two others
    is a null, not a reason to gather the copy feature by feature."""
    schema = Schema(features=(Feature("count", "int64"), Feature("score", "float32"),
                              Feature("age", "int32", nullable=True)),
                    inputs=(TensorSpec("x", "FP32", (-1, 3)),),
                    outputs=(TensorSpec("y", "FP32", (-1,)),))
    layout = FeatureLayout(schema, True, BASE_FIELDS)
    assert layout.buffer_dtype == np.float64
    columns = Columns(layout)

    def request(rid: str, matrix: Any) -> Prediction:
        inputs = None if matrix is None else Inputs(rows=len(matrix), matrix=np.array(matrix))
        return Prediction(rid, time.time(), "m", "1", "invocations",
                          200 if inputs else 400, 1.0, 0 if inputs is None else len(matrix),
                          None, inputs, None if inputs else b"{", b"[1]", None)

    columns.add([request("a", [[7.0, 0.5, np.nan]]), request("bad", None),
                 request("b", [[8.0, 1.5, 30.0], [9.0, 2.5, 31.0]])])
    # one copy into the buffer, not a struct gathered feature by feature
    assert not any(isinstance(p, pa.StructArray) for p in columns._inputs._pieces)
    table = columns.table()
    inputs = table.column("inputs").to_pylist()
    assert inputs[1] is None
    assert inputs[0]["count"] == [7] and inputs[0]["score"] == [0.5]
    assert math.isnan(inputs[0]["age"][0])  # a nullable int arrives as NaN in the matrix
    assert inputs[2] == {"count": [8, 9], "score": [1.5, 2.5], "age": [30.0, 31.0]}
    types = table.schema.field("inputs").type
    assert [types.field(n).type.value_type for n in ("count", "score", "age")] == \
        [pa.int64(), pa.float32(), pa.float64()]


def test_columnar_inputs_and_buffer_rows_make_one_column_in_order(
        digits_bundle: Bundle) -> None:
    """Inputs without a matrix (columns) are gathered feature by feature; in a segment
    they join the buffer's rows in record order."""
    layout = FeatureLayout(digits_bundle.schema, True, BASE_FIELDS)
    columns = Columns(layout)
    by_columns = Inputs(rows=1, columns={n: np.array([9.0], np.float32)
                                         for n in layout.names})
    for rid, inputs in (("m1", one_row(1.0)), ("c", by_columns), ("m2", one_row(2.0))):
        columns.add([Prediction(rid, time.time(), "digits", "3", "invocations", 200, 1.0, 1,
                                None, inputs, None, b"[1]", None)])
    assert pixel(columns.table(), "pixel_63") == [1.0, 9.0, 2.0]
