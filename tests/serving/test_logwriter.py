"""Requests turned into record batches several times between two segments come out as
the same rows they were, whatever mix of inputs the batches held (one matrix per
request, columns, model tensors, failed requests)."""

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

from kernel_magics.serving.bundle import Bundle
from kernel_magics.serving.inputs import Inputs
from kernel_magics.serving.predlog import Prediction, PredictionLog, read_log, writer
from kernel_magics.serving.predlog.format import SCHEMA_VERSION, VERSION_KEY, with_inputs
from kernel_magics.serving.predlog.writer import Layout
from kernel_magics.serving.schema import Feature, Schema, TensorSpec


def record(log: PredictionLog, request_id: str, *, version: str = "3", status: int = 200,
           inputs: Inputs | None = None, outputs: Any = b"[7]", error: str | None = None,
           client_id: str | None = None, raw: Any = None) -> None:
    log.append(Prediction(request_id, time.time(), "digits", version, "invocations", status,
                          1.25, client_id, inputs, raw, outputs, error))


def one_row(value: float, dtype: Any = np.float32) -> Inputs:
    return Inputs(rows=1, matrix=np.full((1, 64), value, dtype=dtype))


def test_batches_of_every_kind_make_one_segment_in_order(tmp_path: Path,
                                                        digits_bundle: Bundle) -> None:
    log = PredictionLog(tmp_path)
    log.register("digits", "3", digits_bundle.schema, identity=True)
    # copy 1: the common case (runs, joined ids and answers, one matrix)
    record(log, "a1", inputs=one_row(1.0))
    record(log, "a2", inputs=one_row(2.0))
    log._batch()
    # copy 2: a batch of 3 rows in float64, a client id, an answer that is not bytes
    record(log, "b1", inputs=Inputs(rows=3, matrix=np.arange(192.0).reshape(3, 64)),
           client_id="client-é", outputs={"label": [1, 2, 3]})
    log._batch()
    # copy 3: a failed request without inputs, a status that differs, a raw body
    record(log, "c1", status=400, outputs=None, error="feature 'pixel_0': missing",
           raw=b'{"broken"')
    record(log, "c2", inputs=one_row(5.0))
    log._batch()
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
    written = pq.read_table(files[0])  # the registered layout, whatever the batches held
    assert {"matrix", "matrix_layout"} <= set(written.column_names)  # numbers as bytes
    assert "inputs" not in written.column_names
    table = with_inputs(written)  # typed by readers and compaction
    assert table.schema.field("inputs").type.field("pixel_0").type.value_type == pa.float32()
    assert table.schema.metadata[VERSION_KEY] == SCHEMA_VERSION.encode()
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
    log._batch()
    record(log, "v9b", version="9", inputs=one_row(6.0))
    assert log.flush() == 3
    assert len(list(tmp_path.rglob("*.parquet"))) == 2  # one segment per layout
    by_id = {e.request_id: e for e in read_log(tmp_path)}
    assert by_id["v3"].inputs is not None and by_id["v3"].inputs["pixel_0"] == [1.0]
    assert by_id["v9b"].inputs is None  # no typed columns: the inputs as JSON
    assert by_id["v9b"].raw_inputs is not None and '"column_0":[6.0]' in by_id["v9b"].raw_inputs


def test_a_record_that_cannot_be_rendered_costs_only_its_own_batch(
        tmp_path: Path, digits_bundle: Bundle) -> None:
    log = PredictionLog(tmp_path)
    log.register("digits", "3", digits_bundle.schema, identity=True)
    record(log, "kept", inputs=one_row(1.0))
    log._batch()
    log.append(Prediction(object(), time.time(), "digits", "3",  # type: ignore[arg-type]
                          "invocations", 200, 1.0, None, one_row(1.0), None, b"[1]", None))
    log._batch()  # rendering fails: this batch is dropped and counted, not the log
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


def test_large_requests_keep_their_order(digits_bundle: Bundle) -> None:
    layout = Layout(digits_bundle.schema)
    batches = [np.arange(700 * 64, dtype=np.float64).reshape(700, 64) + 1e6 * k
               for k in range(3)]
    table = with_inputs(pa.Table.from_batches([layout.record_batch([
        Prediction(f"r{k}", time.time(), "digits", "3", "invocations", 200, 1.0, None,
                   Inputs(rows=700, matrix=batch), None, b"[1]", None)
        for k, batch in enumerate(batches)])]))
    assert table.column("inputs").type.field("pixel_5").type.value_type == pa.float32()
    assert pixel(table, "pixel_5") == np.concatenate(batches)[:, 5].tolist()
    assert table.column("rows").to_pylist() == [700, 700, 700]


def test_a_segment_not_yet_written_keeps_its_rows(tmp_path: Path,
                                                  digits_bundle: Bundle) -> None:
    """Storage that fails keeps the batches and writes them with the next flush."""
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


def test_a_batch_that_fails_to_render_is_lost_whole(tmp_path: Path, digits_bundle: Bundle,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Counted as dropped; the next batch is written as usual."""
    log = PredictionLog(tmp_path)
    log.register("digits", "3", digits_bundle.schema, identity=True)
    record(log, "lost", inputs=one_row(1.0))
    def broken(*args: Any) -> pa.Array:
        raise RuntimeError("a rendering bug")

    with monkeypatch.context() as patch:
        patch.setattr(writer, "_outputs", broken)
        assert log.flush() == 0 and log.dropped == 1
    record(log, "next", inputs=one_row(2.0))
    assert log.flush() == 1
    assert [(e.request_id, e.inputs["pixel_0"] if e.inputs else None)
            for e in read_log(tmp_path)] == [("next", [2.0])]


def test_numeric_features_of_several_dtypes_with_failed_requests() -> None:
    """int64, float32 and nullable int features: the request path's matrix is float64,
    and the log writes each feature in its own type; a failed request between two others
    is a null."""
    schema = Schema(features=(Feature("count", "int64"), Feature("score", "float32"),
                              Feature("age", "int32", nullable=True)),
                    inputs=(TensorSpec("x", "FP32", (-1, 3)),),
                    outputs=(TensorSpec("y", "FP32", (-1,)),))
    layout = Layout(schema)
    assert layout.features is not None and layout.features.matrix_dtype == np.float64

    def request(rid: str, matrix: Any) -> Prediction:
        inputs = None if matrix is None else Inputs(rows=len(matrix), matrix=np.array(matrix))
        return Prediction(rid, time.time(), "m", "1", "invocations",
                          200 if inputs else 400, 1.0, None, inputs,
                          None if inputs else b"{", b"[1]", None)

    table = with_inputs(pa.Table.from_batches([layout.record_batch([
        request("a", [[7.0, 0.5, np.nan]]), request("bad", None),
        request("b", [[8.0, 1.5, 30.0], [9.0, 2.5, 31.0]])])]))
    inputs = table.column("inputs").to_pylist()
    assert inputs[1] is None
    assert inputs[0]["count"] == [7] and inputs[0]["score"] == [0.5]
    assert math.isnan(inputs[0]["age"][0])  # a nullable int arrives as NaN in the matrix
    assert inputs[2] == {"count": [8, 9], "score": [1.5, 2.5], "age": [30.0, 31.0]}
    types = table.schema.field("inputs").type
    assert [types.field(n).type.value_type for n in ("count", "score", "age")] == \
        [pa.int64(), pa.float32(), pa.float64()]


def test_columnar_inputs_and_matrices_make_one_column_in_order(
        digits_bundle: Bundle) -> None:
    """Inputs without a matrix (columns) are gathered feature by feature, in record
    order with the matrices around them."""
    layout = Layout(digits_bundle.schema)
    by_columns = Inputs(rows=1, columns={n: np.array([9.0], np.float32)
                                         for n in digits_bundle.schema.feature_names})
    batch = layout.record_batch([
        Prediction(rid, time.time(), "digits", "3", "invocations", 200, 1.0, None, inputs,
                   None, b"[1]", None)
        for rid, inputs in (("m1", one_row(1.0)), ("c", by_columns), ("m2", one_row(2.0)))])
    assert pixel(with_inputs(pa.Table.from_batches([batch])), "pixel_63") == [1.0, 9.0, 2.0]


def test_model_tensors_of_a_bundle_with_preprocess_are_typed(tabular_bundle: Bundle) -> None:
    """A bundle with preprocess sent model tensors: the ``tensors`` struct holds them
    flattened, ``inputs`` is null; features sent as columns fill ``inputs``."""
    layout = Layout(tabular_bundle.schema, identity=False)
    features = Inputs(rows=1, columns={"age": np.array([30.0]), "income": np.array([1.0]),
                                       "city": np.array(["paris"], object)})
    tensors = Inputs(rows=2, tensors={"float_input": np.arange(6, dtype=np.float32)
                                      .reshape(2, 3)})
    table = pa.Table.from_batches([layout.record_batch([
        Prediction(rid, time.time(), "churn", "1", "v2_infer", 200, 1.0, None, inputs,
                   None, b"[1]", None)
        for rid, inputs in (("f", features), ("t", tensors), ("bad", None))])])
    assert table.column("inputs").to_pylist()[0] == {"age": [30.0], "income": [1.0],
                                                     "city": ["paris"]}
    assert table.column("inputs").to_pylist()[1:] == [None, None]
    assert table.column("tensors").to_pylist() == [
        None, {"float_input": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]}, None]
    assert table.column("raw_inputs").to_pylist() == [None, None, None]


def test_per_feature_tensors_of_a_tabular_model_are_its_features() -> None:
    """A model taking one input per feature, without preprocess: the V2 tensors are the
    features; tensors of any other shape are not guessed at (null, not garbage)."""
    schema = Schema(features=(Feature("age", "float64"), Feature("income", "float64")),
                    inputs=(TensorSpec("age", "FP64", (-1, 1)),
                            TensorSpec("income", "FP64", (-1, 1))),
                    outputs=(TensorSpec("y", "FP32", (-1,)),))
    layout = Layout(schema)
    per_feature = Inputs(rows=2, tensors={"income": np.array([[10.0], [20.0]]),
                                          "age": np.array([[30.0], [40.0]])})
    odd = Inputs(rows=2, tensors={"other": np.zeros((2, 5))})
    table = with_inputs(pa.Table.from_batches([layout.record_batch([
        Prediction(rid, time.time(), "m", "1", "v2_infer", 200, 1.0, None, inputs, None,
                   b"[1]", None) for rid, inputs in (("per-feature", per_feature),
                                                     ("odd", odd))])]))
    assert table.column("inputs").to_pylist() == [
        {"age": [30.0, 40.0], "income": [10.0, 20.0]}, None]
