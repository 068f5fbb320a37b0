"""Optional bearer tokens: inference needs SHIP_AUTH_TOKEN, ground truth its own token.

Real server, real clients (httpx and tritonclient with the header a gateway would add).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import tritonclient.http as triton

from kernel_magics.serving.bundle import Bundle

ROW = {"instances": [[0.0] * 64]}


@pytest.fixture
def guarded(monkeypatch: pytest.MonkeyPatch, start_server: Any, digits_bundle: Bundle) -> Any:
    monkeypatch.setenv("SHIP_AUTH_TOKEN", "predict-s3cret")
    monkeypatch.setenv("SHIP_FEEDBACK_TOKEN", "label-s3cret")
    return start_server(digits_bundle)


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def test_inference_needs_the_token(guarded: Any, digits_data: Any) -> None:
    url = guarded.url
    missing = httpx.post(url + "/invocations", json=ROW)
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert missing.json()["field"] == "authorization"
    assert "SHIP_AUTH_TOKEN" in missing.json()["error"]
    wrong = httpx.post(url + "/invocations", json=ROW, headers=bearer("guess"))
    assert wrong.status_code == 401
    assert httpx.post(url + "/invocations", json=ROW,
                      headers=bearer("predict-s3cret")).status_code == 200
    assert httpx.get(url + "/v2/models/digits").status_code == 401
    # The probes Kubernetes sends carry no token.
    for probe in ("/v2/health/live", "/v2/health/ready", "/ping", "/health"):
        assert httpx.get(url + probe).status_code == 200, probe
    x, _ = digits_data
    client = triton.InferenceServerClient(url.removeprefix("http://"))
    tensor = triton.InferInput("float_input", [2, 64], "FP32")
    tensor.set_data_from_numpy(x[:2])
    result = client.infer("digits", [tensor], headers=bearer("predict-s3cret"))
    assert result.as_numpy("label").shape == (2,)


def test_ground_truth_cannot_be_sent_with_the_inference_token(guarded: Any) -> None:
    url = guarded.url
    answer = httpx.post(url + "/invocations", json=ROW, headers=bearer("predict-s3cret"))
    feedback = {"request_id": answer.headers["x-request-id"], "ground_truth": 3}
    forged = httpx.post(url + "/feedback", json=feedback, headers=bearer("predict-s3cret"))
    assert forged.status_code == 401 and "SHIP_FEEDBACK_TOKEN" in forged.json()["error"]
    assert httpx.post(url + "/feedback", json=feedback).status_code == 401
    labelled = httpx.post(url + "/v2/models/digits/feedback", json=feedback,
                          headers=bearer("label-s3cret"))
    assert labelled.status_code == 200, labelled.text
