"""The run record: everything `%%ship track` captured about one cell, as plain data.

A record is written to the spool (JSON) by the kernel and read back by the writer,
so every field is JSON-serialisable and the classes carry no behaviour beyond
(de)serialisation. Bulky captures (code, notebook, lock file, diffs, traceback,
model) are files next to `record.json`, named by the ``ARTIFACT_*`` constants.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

Status = Literal["RUNNING", "FINISHED", "FAILED", "KILLED"]
FINAL_STATUSES: frozenset[str] = frozenset({"FINISHED", "FAILED", "KILLED"})

# Files inside a spooled record folder, and where each lands in the MLflow run.
ARTIFACT_PATHS: dict[str, str] = {
    "cell.py": "code",
    "history.py": "code",
    "notebook.ipynb": "code",
    "executed.ipynb": "code",
    "requirements.lock": "environment",
    "git.diff": "git",
    "traceback.txt": "error",
}
STEPS_FILE = "steps.jsonl"
MODEL_DIR = "model"
# Profiles of the DataFrames the cell read or produced (monitor/reference.py's format),
# logged under ship/profiles/: a bundle's default drift reference.
PROFILES_DIR = "profiles"
RUN_PROFILES_PATH = "ship/profiles"


@dataclass
class DataFingerprint:
    """A full-content digest of one DataFrame, array or tensor the cell read."""

    name: str
    kind: str
    digest: str
    shape: list[int]
    schema: dict[str, str]
    nbytes: int
    seconds: float


@dataclass
class DataFile:
    """A file the cell's code named that existed before the cell ran (datafiles.py)."""

    path: str  # as the code named it
    resolved: str  # absolute, when the cell ran
    size: int
    # XXH3-128 of every byte; None for a file over datafiles.MAX_FILE_BYTES (size only).
    digest: str | None
    seconds: float = 0.0


@dataclass
class Resources:
    """What the cell consumed, measured in the kernel process."""

    wall_s: float = 0.0
    cpu_s: float = 0.0
    gpu_s: float = 0.0
    peak_memory_bytes: int = 0
    gpu_source: str = "none"


@dataclass
class Cost:
    """Money for the resources, from the workspace price table (always an estimate)."""

    amount: float
    currency: str
    estimated: bool
    basis: str


@dataclass
class GitState:
    """The repository around the notebook when the cell ran."""

    commit: str | None = None
    branch: str | None = None
    dirty: bool = False
    repo_url: str | None = None
    root: str | None = None
    changed_files: list[str] = field(default_factory=list)
    untracked_files: list[str] = field(default_factory=list)
    diffed_files: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass
class EnvironmentChange:
    """Packages added, removed or changed since the experiment's previous run."""

    previous_record: str | None = None
    added: dict[str, str] = field(default_factory=dict)
    removed: dict[str, str] = field(default_factory=dict)
    changed: dict[str, list[str]] = field(default_factory=dict)
    python_changed: bool = False

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed or self.python_changed)


@dataclass
class EnvironmentState:
    """Interpreter, platform, packages (lock file as an artifact) and accelerators."""

    python: str = ""
    implementation: str = ""
    platform: str = ""
    executable: str = ""
    package_count: int = 0
    lock_digest: str = ""
    gpus: list[str] = field(default_factory=list)
    change: EnvironmentChange = field(default_factory=EnvironmentChange)


@dataclass
class ModelRef:
    """A model object serialised by the kernel, for the writer to log with its flavor."""

    variable: str
    flavor: str
    file: str
    class_name: str
    library_version: str | None = None


@dataclass
class RunRecord:
    """One tracked cell execution, from start to final status."""

    record_id: str
    experiment: str
    run_name: str
    tracking_uri: str
    workspace: str
    status: Status
    start_time_ms: int
    end_time_ms: int | None = None
    notebook_path: str | None = None
    execution_count: int | None = None
    params: dict[str, str] = field(default_factory=dict)
    papermill_params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    skipped_metrics: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    data: list[DataFingerprint] = field(default_factory=list)
    data_files: list[DataFile] = field(default_factory=list)
    environment: EnvironmentState | None = None
    git: GitState | None = None
    resources: Resources | None = None
    cost: Cost | None = None
    model: ModelRef | None = None
    error: str | None = None
    end_reason: str | None = None
    kernel_pid: int = 0
    kernel_started: float = 0.0
    batch_id: str | None = None
    ship_version: str = ""
    # True from the cell's end until git and the captured files are spooled: the outcome
    # is on disk first, so a kernel that dies meanwhile loses only those extras.
    completing: bool = False

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunRecord:
        data = dict(data)
        data["data"] = [DataFingerprint(**d) for d in data.get("data", [])]
        data["data_files"] = [DataFile(**d) for d in data.get("data_files", [])]
        env = data.get("environment")
        if env is not None:
            env = dict(env)
            env["change"] = EnvironmentChange(**env.get("change", {}))
            data["environment"] = EnvironmentState(**env)
        for key, kind in (("git", GitState), ("resources", Resources), ("cost", Cost),
                          ("model", ModelRef)):
            if data.get(key) is not None:
                data[key] = kind(**data[key])
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class WrittenRun:
    """Where a record landed in MLflow; kept in the spool's done/ folder."""

    record_id: str
    run_id: str
    experiment_id: str
    experiment: str
    run_name: str
    status: str
    tracking_uri: str
    url: str | None
    written_at_ms: int
    batch_id: str | None = None
