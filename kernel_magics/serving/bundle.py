"""The bundle folder the runtime serves: ship.yaml, model.onnx, handler.py, schema.json.

    ship.yaml
        format: 1
        name: digits                      # the V2 model name, /v2/models/digits
        version: "3"                      # the version that answers
        model: model.onnx
        created: "2026-05-01T12:00:00Z"
        lineage:                          # opaque to the runtime; logged with predictions
          registered_model: digits
          model_version: "3"
          run_id: 0f3c...
        runtime:
          max_body_bytes: 8388608         # larger bodies get 413
          log_flush_interval_s: 1.0       # kill -9 loses at most this much of the log
          warmup_rows: 1                  # synthetic rows for the warm-up inference
          warmup_input: null              # or a JSON file (MLflow /invocations body)
          threads: 0                      # onnxruntime intra-op threads; 0 = CPU quota / workers
          inline_max_rows: 256            # larger batches run off the event loop
          header_timeout_s: 10            # request headers complete within (else 408)
          body_timeout_s: 30              # request body arrives within (else 408)
          max_header_bytes: 65536         # larger header sections get 431
          max_connections: 1000           # past this, new connections get 503
          shutdown_timeout_s: 20          # SIGTERM: in-flight requests get this long
          review_scores: true             # score every answer for human review (review.py)
    model.onnx
    handler.py      optional: preprocess(df) -> array | dict[str, array];
                    postprocess(outputs: dict[str, np.ndarray]) -> predictions
    schema.json     see schema.py

Other files (reference.parquet, requirements.txt, Dockerfile, k8s/ ...) belong to other
stages; the runtime ignores them. The bundle builder calls :func:`write_bundle`.
"""

from __future__ import annotations

import ast
import json
import shutil
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from .errors import BundleError
from .schema import Schema

FORMAT = 1
MANIFEST = "ship.yaml"
SCHEMA = "schema.json"
HANDLER = "handler.py"


@dataclass(frozen=True)
class Lineage:
    """Where the model came from; opaque strings the runtime only logs and reports."""

    registered_model: str | None = None
    model_version: str | None = None
    run_id: str | None = None


@dataclass(frozen=True)
class RuntimeSettings:
    """Per-bundle knobs of the service runtime."""

    max_body_bytes: int = 8 * 1024 * 1024
    log_flush_interval_s: float = 1.0
    warmup_rows: int = 1
    warmup_input: str | None = None
    threads: int = 0
    inline_max_rows: int = 256
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    max_header_bytes: int = 64 * 1024
    max_connections: int = 1000
    # Below the Deployment's terminationGracePeriodSeconds (30): the log's final flush
    # fits in what is left.
    shutdown_timeout_s: int = 20
    # where the prediction log goes (a folder or URL, `ship build --log-dir`); None:
    # log/ beside the bundle (.ship/services/NAME/log/)
    log_dir: str | None = None
    # score every answer for human review (serving/review.py), into the log's ``review``
    # column; false: no scores (the queue stays empty)
    review_scores: bool = True

    def validate(self) -> None:
        """Raise BundleError naming the first out-of-range setting."""
        where = f"{MANIFEST} runtime"
        if self.max_body_bytes < 1024:
            raise BundleError("max_body_bytes must be at least 1024.", path=where)
        if not 0 < self.log_flush_interval_s <= 60:
            raise BundleError("log_flush_interval_s must be in (0, 60] seconds.", path=where)
        if self.warmup_rows < 1 or self.threads < 0 or self.inline_max_rows < 1:
            raise BundleError("warmup_rows and inline_max_rows must be >= 1, threads >= 0.",
                              path=where)
        if min(self.header_timeout_s, self.body_timeout_s) <= 0 or self.shutdown_timeout_s < 1:
            raise BundleError("header_timeout_s, body_timeout_s and shutdown_timeout_s must "
                              "be positive.", path=where)
        if self.max_header_bytes < 1024 or self.max_connections < 1:
            raise BundleError("max_header_bytes must be at least 1024 and max_connections at "
                              "least 1.", path=where)


@dataclass(frozen=True)
class Manifest:
    """ship.yaml, parsed."""

    name: str
    version: str
    model: str = "model.onnx"
    created: str = ""
    lineage: Lineage = field(default_factory=Lineage)
    runtime: RuntimeSettings = field(default_factory=RuntimeSettings)
    format: int = FORMAT

    def validate(self) -> None:
        """Raise BundleError naming the first bad field."""
        if self.format != FORMAT:
            raise BundleError(f"format {self.format} is not supported by this runtime "
                              f"(expected {FORMAT}); rebuild the bundle.", path=MANIFEST)
        for key, value in (("name", self.name), ("version", self.version)):
            if not value or "/" in value or value.strip() != value:
                raise BundleError(f"{key} must be a non-empty string without '/' or "
                                  "surrounding spaces.", path=MANIFEST)
        if Path(self.model).name != self.model:
            raise BundleError("model must be a file name inside the bundle.", path=MANIFEST)
        self.runtime.validate()

    def to_dict(self) -> dict[str, Any]:
        """The ship.yaml document."""
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: Any) -> Manifest:
        """Parse ship.yaml; BundleError names a missing or mistyped key."""
        if not isinstance(doc, dict):
            raise BundleError("must hold a mapping.", path=MANIFEST)
        try:
            lineage = Lineage(**{k: None if v is None else str(v)
                                 for k, v in (doc.get("lineage") or {}).items()})
            runtime = RuntimeSettings(**(doc.get("runtime") or {}))
            manifest = cls(name=str(doc["name"]), version=str(doc["version"]),
                           model=str(doc.get("model", "model.onnx")),
                           created=str(doc.get("created", "")), lineage=lineage,
                           runtime=runtime, format=int(doc.get("format", FORMAT)))
        except KeyError as exc:
            raise BundleError(f"missing key {exc}.", path=MANIFEST) from None
        except (TypeError, ValueError) as exc:
            raise BundleError(f"malformed: {exc}.", path=MANIFEST) from None
        manifest.validate()
        return manifest


@dataclass(frozen=True)
class Bundle:
    """A bundle folder, loaded and checked (files present, settings consistent)."""

    path: Path
    manifest: Manifest
    schema: Schema
    handler_functions: frozenset[str] = frozenset()

    @property
    def model_path(self) -> Path:
        """The ONNX model file."""
        return self.path / self.manifest.model

    @property
    def handler_path(self) -> Path | None:
        """handler.py, or None when the bundle has none (identity handler)."""
        path = self.path / HANDLER
        return path if path.is_file() else None

    @property
    def needs_pandas(self) -> bool:
        """True when handler.py defines preprocess(df), which receives a pandas DataFrame."""
        return "preprocess" in self.handler_functions

    @property
    def log_dir(self) -> str:
        """Where this bundle's service logs: ``runtime.log_dir`` of ship.yaml (``ship build
        --log-dir URL``), else ``log/`` beside the bundle (.ship/services/NAME/log)."""
        return self.manifest.runtime.log_dir or str(self.path.resolve().parent / "log")

    @classmethod
    def load(cls, path: str | Path) -> Bundle:
        """Read and validate a bundle folder; BundleError says what to fix."""
        root = Path(path)
        if not (root / MANIFEST).is_file():
            raise BundleError(f"no {MANIFEST}: not a bundle folder.", path=str(root))
        try:
            manifest = Manifest.from_dict(yaml.safe_load((root / MANIFEST).read_text()))
            schema = Schema.from_dict(json.loads((root / SCHEMA).read_text()))
        except FileNotFoundError as exc:
            raise BundleError(f"missing {Path(str(exc.filename)).name}.",
                              path=str(root)) from None
        except (yaml.YAMLError, json.JSONDecodeError) as exc:
            raise BundleError(f"unreadable: {exc}", path=str(root)) from None
        bundle = cls(path=root, manifest=manifest, schema=schema,
                     handler_functions=_top_level_functions(root / HANDLER))
        bundle.validate()
        return bundle

    def validate(self) -> None:
        """Check the files and the handler/schema contract without running anything."""
        self.manifest.validate()
        self.schema.validate()
        if not self.model_path.is_file():
            raise BundleError(f"model file {self.manifest.model!r} is missing.",
                              path=str(self.path))
        if "preprocess" not in self.handler_functions and not self.schema.inputs_by_feature:
            if len(self.schema.inputs) != 1:
                raise BundleError(
                    f"the model takes {len(self.schema.inputs)} inputs; handler.py must "
                    "define preprocess(df) returning a dict of arrays.", path=str(self.path))
            strings = [f.name for f in self.schema.features if not f.numeric]
            if strings:
                raise BundleError(f"string features {strings} need a preprocess(df) in "
                                  "handler.py to become numbers.", path=str(self.path))
            spec = self.schema.inputs[0]
            width = len(self.schema.features)
            if len(spec.shape) != 2 or spec.shape[1] not in (-1, width):
                raise BundleError(
                    f"without preprocess the features are stacked into {spec.name!r} as "
                    f"[-1, {width}], but its shape is {list(spec.shape)}.",
                    path=str(self.path))
        warm = self.manifest.runtime.warmup_input
        if warm is not None and not (self.path / warm).is_file():
            raise BundleError(f"warmup_input {warm!r} is missing.", path=str(self.path))


def _top_level_functions(path: Path) -> frozenset[str]:
    """Names of the functions handler.py defines, found without executing it."""
    if not path.is_file():
        return frozenset()
    try:
        tree = ast.parse(path.read_text(), filename=str(path))
    except SyntaxError as exc:
        raise BundleError(f"does not parse: {exc.msg} (line {exc.lineno}).",
                          path=str(path)) from None
    return frozenset(node.name for node in tree.body
                     if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef))


def write_bundle(dest: str | Path, *, manifest: Manifest, schema: Schema,
                 model: str | Path | bytes, handler_source: str | None = None) -> Bundle:
    """Write ship.yaml, the model, schema.json and handler.py into ``dest``; load it back."""
    root = Path(dest)
    root.mkdir(parents=True, exist_ok=True)
    if not manifest.created:
        manifest = replace(manifest, created=datetime.now(UTC).isoformat(timespec="seconds"))
    manifest.validate()
    schema.validate()
    target = root / manifest.model
    if isinstance(model, bytes):
        target.write_bytes(model)
    elif Path(model).resolve() != target.resolve():
        shutil.copyfile(model, target)
    (root / SCHEMA).write_text(json.dumps(schema.to_dict(), indent=2) + "\n")
    if handler_source is not None:
        (root / HANDLER).write_text(handler_source)
    (root / MANIFEST).write_text(yaml.safe_dump(manifest.to_dict(), sort_keys=False))
    return Bundle.load(root)
