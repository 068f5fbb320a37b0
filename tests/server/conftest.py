"""A Jupyter root holding a real workspace: runs written to a sqlite MLflow store by the
real RecordWriter, and one record left pending in the spool.

Writing runs costs seconds (MLflow's schema, then tens of ms per call), so the
workspace is built once per module and every test's server is rooted in it; the
handlers only read. (Modules with a workspace of their own override `jp_root_dir`.)

- ``api``: the Ship REST API of the test's server (``ShipAPI``): answers, JSON errors,
  and bodies checked against docs/openapi.yaml.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from referencing import Registry
from referencing.jsonschema import DRAFT202012
from tornado.httpclient import HTTPClientError

from kernel_magics.tracking.record import (
    Cost,
    DataFingerprint,
    EnvironmentChange,
    EnvironmentState,
    GitState,
    Resources,
    RunRecord,
)
from kernel_magics.tracking.spool import Spool
from kernel_magics.tracking.writer import RecordWriter
from kernel_magics.workspace import init_workspace

LOCK_A = "# python 3.11.7\nnumpy==2.4.6\npandas==3.1.1\ntorch==2.13.0\n"
LOCK_B = "# python 3.11.7\nnumpy==2.4.6\npandas==3.2.0\nscikit-learn==1.9.1\n"


@dataclass
class SeededWorkspace:
    """The Jupyter root: `train.ipynb` with two written runs and one pending, `other.ipynb`
    with one written run in another experiment."""

    root: Path
    records: dict[str, RunRecord] = field(default_factory=dict)
    run_ids: dict[str, str] = field(default_factory=dict)

    @property
    def tracking_uri(self) -> str:
        return f"sqlite:///{self.root / '.ship' / 'mlflow.db'}"


def _notebook(path: Path, source: str) -> Path:
    cells = [{"cell_type": "code", "execution_count": None, "id": "c0", "metadata": {},
              "outputs": [], "source": source}]
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4,
                                "nbformat_minor": 5}), encoding="utf-8")
    return path


def _record(seeded: SeededWorkspace, key: str, *, notebook: Path, experiment: str, start_s: int,
            params: dict[str, str], metrics: dict[str, float], digest: str,
            lock: str, cell: str, change: EnvironmentChange | None = None) -> RunRecord:
    spool = Spool(seeded.root / ".ship" / "spool")
    spool.ensure()
    start_ms = 1_700_000_000_000 + start_s * 1000
    record = RunRecord(
        record_id=f"{start_ms:x}-{key}", experiment=experiment, run_name=f"run-{key}",
        tracking_uri=seeded.tracking_uri, workspace=str(seeded.root), status="RUNNING",
        start_time_ms=start_ms, notebook_path=str(notebook), params=params)
    folder = spool.open_record(record)
    record.status = "FINISHED"
    record.end_time_ms = start_ms + 2500
    record.metrics = metrics
    record.data = [DataFingerprint(name="df", kind="pandas", digest=digest, shape=[1000, 2],
                                   schema={"x": "float64", "label": "object"}, nbytes=16000,
                                   seconds=0.001)]
    record.environment = EnvironmentState(python="3.11.7", platform="Linux-x86_64",
                                          package_count=lock.count("=="), lock_digest=key * 4,
                                          change=change or EnvironmentChange())
    record.resources = Resources(wall_s=2.5, cpu_s=2.0, peak_memory_bytes=300 * 2**20)
    record.cost = Cost(amount=0.0000267, currency="USD", estimated=True,
                       basis="cpu_s/3600 x 0.048")
    record.git = GitState(commit="abc123", branch="main", dirty=True, root=str(seeded.root))
    (folder / "cell.py").write_text(cell, encoding="utf-8")
    (folder / "requirements.lock").write_text(lock, encoding="utf-8")
    (folder / "notebook.ipynb").write_text(notebook.read_text(encoding="utf-8"),
                                           encoding="utf-8")
    spool.save_record(record)
    seeded.records[key] = record
    return record


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeededWorkspace]:
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    root = tmp_path_factory.mktemp("jupyter-root")
    init_workspace(root)
    seeded = SeededWorkspace(root=root)
    train = _notebook(root / "train.ipynb", "%%ship track\nlr = 0.1")
    other = _notebook(root / "other.ipynb", "%%ship track\nk = 3")
    base_cell = "lr = 0.1\nepochs = 3\nacc = 0.9\n"
    _record(seeded, "a", notebook=train, experiment="train", start_s=10,
            params={"lr": "0.1", "epochs": "3"}, metrics={"acc": 0.9, "loss": 0.3},
            digest="d" * 32, lock=LOCK_A, cell=base_cell)
    _record(seeded, "b", notebook=train, experiment="train", start_s=20,
            params={"lr": "0.01", "epochs": "3", "batch": "64"},
            metrics={"acc": 0.93, "loss": 0.25}, digest="e" * 32, lock=LOCK_B,
            cell="lr = 0.01\nepochs = 3\nbatch = 64\nacc = 0.93\n",
            change=EnvironmentChange(previous_record="a", added={"scikit-learn": "1.9.1"},
                                     removed={"torch": "2.13.0"},
                                     changed={"pandas": ["3.1.1", "3.2.0"]}))
    _record(seeded, "o", notebook=other, experiment="other", start_s=15,
            params={"k": "3"}, metrics={"score": 0.5}, digest="f" * 32, lock=LOCK_A,
            cell="k = 3\n")
    writer = RecordWriter(Spool(root / ".ship" / "spool"))
    for key in ("a", "b", "o"):
        seeded.run_ids[key] = writer.write(seeded.records[key].record_id).run_id
    # Left in the spool: the newest run of train.ipynb, not yet in MLflow.
    _record(seeded, "p", notebook=train, experiment="train", start_s=30,
            params={"lr": "0.001", "epochs": "3"}, metrics={"acc": 0.95}, digest="d" * 32,
            lock=LOCK_A, cell=base_cell)
    yield seeded


@pytest.fixture
def jp_root_dir(seeded: SeededWorkspace, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test's Jupyter server is rooted in the seeded workspace."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return seeded.root


@functools.cache
def _openapi() -> Registry[Any]:
    spec = yaml.safe_load((Path(__file__).parents[2] / "docs" / "openapi.yaml").read_text())
    return Registry().with_resource("urn:ship-api", DRAFT202012.create_resource(spec))


class ShipAPI:
    """`/ship/api/...` of the test's Jupyter server, through pytest-jupyter's `jp_fetch`."""

    def __init__(self, fetch: Any) -> None:
        self._fetch = fetch

    async def call(self, *parts: str, method: str = "GET", body: Any = None,
                   **params: str) -> Any:
        """The JSON answer of a request that succeeds (200; 201 too unless a GET)."""
        response = await self._fetch("ship", "api", *parts, **_request(method, body, params))
        assert response.code == 200 if method == "GET" else response.code in (200, 201)
        assert response.headers["Content-Type"].startswith("application/json")
        return json.loads(response.body)

    async def error(self, *parts: str, method: str = "GET", body: Any = None,
                    headers: dict[str, str] | None = None, raw: bytes | None = None,
                    **params: str) -> tuple[int, str]:
        """The status and the JSON body's `error` of a request that fails (``raw``: a body
        sent as it is)."""
        request = _request(method, body, params)
        if raw is not None:
            request["body"] = raw
        with pytest.raises(HTTPClientError) as info:
            await self._fetch("ship", "api", *parts, headers=headers or {}, **request)
        response = info.value.response
        assert response is not None
        payload = json.loads(response.body) if response.body else {}
        return info.value.code, str(payload.get("error", ""))

    @staticmethod
    def check(body: Any, schema_name: str) -> None:
        """`body` is a `schema_name` of docs/openapi.yaml."""
        schema = {"$ref": f"urn:ship-api#/components/schemas/{schema_name}"}
        jsonschema.Draft202012Validator(schema, registry=_openapi()).validate(body)


def _request(method: str, body: Any, params: dict[str, str]) -> dict[str, Any]:
    request: dict[str, Any] = {"method": method, "params": params}
    if body is not None:
        request["body"] = json.dumps(body)
    elif method in ("POST", "PUT"):
        request["body"] = ""
    return request


@pytest.fixture
def api(jp_fetch: Any) -> ShipAPI:
    return ShipAPI(jp_fetch)
