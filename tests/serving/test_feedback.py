"""Ground truth for a request id: recorded, joined in the log, unknown ids get 404."""

from __future__ import annotations

from typing import Any

from kernel_magics.serving.predlog import read_log

ROW = [1.0] * 64


def test_feedback_joins_by_request_id(server: Any) -> None:
    with server.client() as client:
        first = client.post("/invocations", json={"instances": [ROW]})
        second = client.post("/invocations", json={"instances": [ROW]})
        one, two = first.headers["x-request-id"], second.headers["x-request-id"]
        ok = client.post("/feedback", json={"request_id": one, "ground_truth": 3})
        assert ok.status_code == 200 and ok.json()["recorded"] == 1
        ok = client.post("/v2/models/digits/feedback",
                         json=[{"request_id": two, "ground_truth": [4]}])
        assert ok.status_code == 200, ok.text
        unknown = client.post("/feedback", json={"request_id": "nope", "ground_truth": 1})
        assert unknown.status_code == 404
        assert unknown.json()["field"] == "request_id" and "nope" in unknown.json()["error"]
        assert client.post("/v2/models/cats/feedback", json={
            "request_id": one, "ground_truth": 1}).status_code == 404
        assert client.post("/feedback", json={"request_id": one}).status_code == 400
        assert client.post("/feedback", json={"ground_truth": 1}).status_code == 400
        assert client.post("/feedback", content=b"[").status_code == 400
    server.stop()
    truth = {e.request_id: e.ground_truth for e in read_log(server.log_dir)}
    assert truth == {one: "3", two: "[4]"}


def test_ids_of_answers_that_are_no_prediction_are_unknown_to_feedback(server: Any) -> None:
    """/metrics, health, metadata and feedback answers carry ids too, but no prediction
    has them: ground truth for them is refused, not kept as an orphan."""
    with server.client() as client:
        ids = [client.get(path).headers["x-request-id"]
               for path in ("/metrics", "/v2/health/ready", "/v2/models/digits")]
        rid = client.post("/invocations", json={"instances": [ROW]}).headers["x-request-id"]
        ok = client.post("/feedback", json={"request_id": rid, "ground_truth": 3})
        assert ok.status_code == 200
        ids.append(ok.headers["x-request-id"])
        for other in ids:
            answer = client.post("/feedback", json={"request_id": other, "ground_truth": 1})
            assert answer.status_code == 404, (other, answer.text)
    server.stop()


def test_feedback_for_an_id_answered_before_a_restart(start_server: Any,
                                                      digits_bundle: Any) -> None:
    first = start_server(digits_bundle)
    with first.client() as client:
        rid = client.post("/invocations", json={"instances": [ROW]}).headers["x-request-id"]
    first.stop()
    # Another process (a restart, or another worker) finds the id in the log's segments.
    second = start_server(digits_bundle, log_dir=first.log_dir)
    with second.client() as client:
        answer = client.post("/feedback", json={"request_id": rid, "ground_truth": 5})
        assert answer.status_code == 200, answer.text
    second.stop()
    assert [e.ground_truth for e in read_log(first.log_dir)] == ["5"]


def test_feedback_without_a_log_is_refused_not_dropped(start_server: Any,
                                                       digits_bundle: Any) -> None:
    """`--no-log`: nothing could keep ground truth, so the service says so (409)."""
    running = start_server(digits_bundle, log=False)
    with running.client() as client:
        rid = client.post("/invocations", json={"instances": [ROW]}).headers["x-request-id"]
        answer = client.post("/feedback", json={"request_id": rid, "ground_truth": 5})
        assert answer.status_code == 409
        assert "without a prediction log" in answer.json()["error"]
        assert client.post("/invocations", json={"instances": [ROW]}).status_code == 200


def test_ids_this_process_issued_are_known_without_storing_them() -> None:
    from kernel_magics.serving.wire import issued_here, new_request_id, new_response_id, sign

    ids = [new_request_id() for _ in range(3)]
    assert all(issued_here(rid) for rid in ids)
    assert not issued_here(new_response_id())  # /metrics, health, feedback answers
    prefix, counter = ids[-1][:12], int(ids[-1][12:24], 16)
    assert not issued_here(sign(f"{prefix}{(counter + 1) & 0xFFFFFFFFFF:012x}"))  # not yet
    other = "0" * 12 if prefix != "0" * 12 else "1" * 12
    assert not issued_here(sign(f"{other}{ids[0][12:24]}"))
    assert not issued_here(ids[0][:-1] + "g") and not issued_here(ids[0][:-1])
    assert not issued_here(f"{prefix}_{ids[0][13:]}") and not issued_here("nope")
    # an issued counter with another hash: a guess, not an id this process handed out
    assert not issued_here(ids[0][:24] + ("0" * 8 if ids[0][24:] != "0" * 8 else "1" * 8))
