"""MLflow's own scoring-server test payloads, replayed against a real Ship server.

The bodies are built the way MLflow's tests/pyfunc/test_scoring_server.py builds them
(pandas ``to_dict``/``to_json``/``to_csv``/``to_parquet``, the same malformed inputs and
content types); the answers are checked the way those tests check MLflow's: status,
``error_code`` and ``message``. Ship's own ``error``, ``field`` and ``request_id`` stay.
"""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np
import pandas as pd
import pytest

FEATURES = [f"pixel_{i}" for i in range(64)]
JSON = "application/json"


@pytest.fixture
def frame(digits_data: Any) -> pd.DataFrame:
    x, _ = digits_data
    return pd.DataFrame(x[:5], columns=FEATURES)


def post(server: Any, body: str | bytes, content_type: str = JSON) -> Any:
    with server.client() as client:
        return client.post("/invocations", content=body,
                           headers={"content-type": content_type})


def assert_bad_request(response: Any, status: int = 400, *, message: str = "") -> None:
    assert response.status_code == status, response.text
    doc = response.json()
    assert doc["error_code"] == "BAD_REQUEST"
    assert message in doc["message"] and doc["message"] == doc["error"]
    assert doc["request_id"] == response.headers["x-request-id"]


def test_malformed_json_has_an_error_code_and_message(server: Any) -> None:
    assert_bad_request(post(server, "this is,,,, not valid json"), message="JSON")


@pytest.mark.parametrize("body", [1, "1", [1], {"not": "a serialized dataframe"},
                                  {"dataframe_records": [], "dataframe_split": {"data": []}}])
def test_not_exactly_one_input_field(server: Any, body: Any) -> None:
    assert_bad_request(post(server, json.dumps(body)),
                       message="exactly one of the input fields")


def test_wrong_pandas_orientations(server: Any, frame: pd.DataFrame) -> None:
    split_as_records = {"dataframe_split": frame.to_dict(orient="records")}
    records_as_split = {"dataframe_records": frame.to_dict(orient="split")}
    assert_bad_request(post(server, json.dumps(split_as_records)), message="dataframe_split")
    assert_bad_request(post(server, json.dumps(records_as_split)),
                       message="dataframe_records")


def test_split_index_must_match_the_rows(server: Any) -> None:
    body = {"dataframe_split": {"index": [1, 2], "data": [[1], [2], [3]]}}
    assert_bad_request(post(server, json.dumps(body)), message="not a valid dataframe")


def test_empty_csv_is_a_bad_request(server: Any) -> None:
    assert_bad_request(post(server, "", "text/csv"), message="empty")


def test_records_and_split_with_and_without_charset(server: Any, frame: pd.DataFrame) -> None:
    records = json.dumps({"dataframe_records": frame.to_dict(orient="records")})
    split = json.dumps({"dataframe_split": frame.to_dict(orient="split")})  # with its index
    answers = [post(server, body, ctype) for body in (records, split)
               for ctype in (JSON, JSON + "; charset=UTF-8")]
    assert [a.status_code for a in answers] == [200] * 4
    assert len({json.dumps(a.json()["predictions"]) for a in answers}) == 1


def test_tf_serving_instances_and_inputs(server: Any, frame: pd.DataFrame) -> None:
    rows = frame.to_numpy().tolist()
    expected = post(server, json.dumps({"instances": rows})).json()["predictions"]
    by_column = {"inputs": {name: frame[name].tolist() for name in FEATURES}}
    assert post(server, json.dumps(by_column)).json()["predictions"] == expected
    # One row as its scalars: a flat list, or an object of scalars.
    first = rows[0]
    assert post(server, json.dumps({"instances": first})).json()["predictions"] == expected[:1]
    scalars = {"inputs": dict(zip(FEATURES, first, strict=True))}
    assert post(server, json.dumps(scalars)).json()["predictions"] == expected[:1]


def test_unknown_top_level_keys_are_ignored(server: Any, frame: pd.DataFrame) -> None:
    body = {"dataframe_split": frame.to_dict(orient="split"), "params": {"t": 1},
            "client": "batch-7"}
    assert post(server, json.dumps(body)).status_code == 200


def test_csv_from_pandas_defaults_and_parquet(server: Any, frame: pd.DataFrame) -> None:
    expected = post(server, frame.to_csv(index=False), "text/csv").json()["predictions"]
    with_index = post(server, frame.to_csv(), "text/csv")  # pandas' default: index column
    assert with_index.status_code == 200, with_index.text
    assert with_index.json()["predictions"] == expected
    shifted = frame.set_axis(np.arange(10, 15))
    buffer = io.BytesIO()
    shifted.to_parquet(buffer)  # its index becomes __index_level_0__
    parquet = post(server, buffer.getvalue(), "application/vnd.apache.parquet")
    assert parquet.status_code == 200, parquet.text
    assert parquet.json()["predictions"] == expected
    broken = post(server, b"PAR1 not parquet", "application/vnd.apache.parquet")
    assert_bad_request(broken, message="Parquet")


@pytest.mark.parametrize("content_type", ["not_a_supported_content_type",
                                          JSON + "; something=something",
                                          JSON + "; charset=latin-1", "text/plain"])
def test_unsupported_content_types_are_415(server: Any, frame: pd.DataFrame,
                                           content_type: str) -> None:
    response = post(server, frame.to_json(orient="split"), content_type)
    assert response.status_code == 415, response.text
    assert response.json()["field"] == "content-type"
    assert response.json()["error_code"] == "BAD_REQUEST"
