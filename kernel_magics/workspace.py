"""The workspace: where `.ship/` lives, what `ship.toml` says, which MLflow store to use.

The root is the nearest parent of the starting folder that has `.ship/`, else the
nearest that has `.git`, else the starting folder itself (like git finds `.git`).
Reading the workspace never imports MLflow: this runs on the kernel's critical path.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError

SHIP_DIR = ".ship"
CONFIG_FILE = "ship.toml"

# Prices are on-demand list prices of a general-purpose cloud VM (memory included in
# the vCPU price) and of one mid-range data-centre GPU. They are estimates: put your
# own contract prices in .ship/ship.toml.
DEFAULT_CONFIG: dict[str, dict[str, Any]] = {
    "tracking": {
        "uri": "",
        "experiment": "",
        "ui_url": "",
        "max_metrics": 200,
    },
    "cost": {
        "currency": "USD",
        "cpu_core_hour": 0.048,
        "memory_gb_hour": 0.0,
        "gpu_hour": 2.50,
    },
    "export": {
        "rtol": 1e-3,
        "atol": 1e-5,
        "max_accuracy_drop": 0.5,
        "max_rmse_increase": 0.05,
        "profile_repeats": 200,
        "profile_threads": 1,
        "experiment": "ship-export",
    },
    "drift": {
        "window": "1h",
        "history": 24,
        "numeric_method": "auto",
        "categorical_method": "auto",
        "wasserstein": 0.1,
        "psi": 0.2,
        "ks_p_value": 0.05,
        "js": 0.1,
        "chi2_p_value": 0.05,
        "dataset_share": 0.5,
        "require_significance": True,
    },
    "serve": {
        "replicas": 1,
        "autoscaling": False,
        "min_replicas": 1,
        "max_replicas": 2,
        "target_ongoing_requests": 2.0,
        "max_ongoing_requests": 32,
        "replica_cpus": 1.0,
    },
}

DEFAULT_TOML = """\
# Ship workspace configuration. Every key is optional; these are the defaults.

[tracking]
# MLflow tracking URI. Empty: sqlite:///<workspace>/.ship/mlflow.db with artifacts in
# .ship/artifacts/. MLFLOW_TRACKING_URI in the environment takes precedence.
uri = ""
# Experiment for %%ship track runs when --experiment is not given. Empty: the notebook's name.
experiment = ""
# Base URL of an MLflow UI, for run links in summaries (e.g. "http://127.0.0.1:5000").
ui_url = ""
# At most this many automatically collected metrics per run (the rest are listed, not logged).
max_metrics = 200

[cost]
# Price table for cost estimates: money per hour of one CPU core, one GB of memory
# and one GPU. Every cost Ship shows from these says it is an estimate.
currency = "USD"
cpu_core_hour = 0.048
memory_gb_hour = 0.0
gpu_hour = 2.50

[export]
# Parity gate: an exported value passes when |onnx - original| <= atol + rtol * |original|,
# on the example rows plus the --eval rows. A failure registers nothing.
rtol = 1e-3
atol = 1e-5
# int8 (dynamic quantization) is refused when it costs more than this many points of
# accuracy (classifiers), or raises RMSE by more than this fraction (regressors);
# `--force` registers it anyway.
max_accuracy_drop = 0.5
max_rmse_increase = 0.05
# Latency profile: timed calls per figure (after a warm-up) and the thread count given to
# both torch and onnxruntime, so the figures compare like with like.
profile_repeats = 200
profile_threads = 1
# MLflow experiment for the run an export creates when it is not linked to a training run.
experiment = "ship-export"

[drift]
# `ship drift` compares windows of the prediction log with the bundle's reference profile
# (built with --reference). Windows end now: the current one is the last `window`
# ("15m", "1h", "1d"), and the report charts `history` windows, the current one included.
window = "1h"
history = 24
# Which test decides per feature. "auto": below 1,000 reference rows the exact tests
# (KS for numbers, chi-squared for categories), else the effect sizes (Wasserstein/sigma,
# Jensen-Shannon). Others: "wasserstein", "psi", "ks" / "js", "chi2". Every test is
# reported either way.
numeric_method = "auto"
categorical_method = "auto"
# Wasserstein distance divided by the reference's standard deviation: drift at >= 0.1,
# a shift of the whole distribution by a tenth of a standard deviation.
wasserstein = 0.1
# Population stability index on the reference's deciles: >= 0.2 is the usual
# "significant shift" (0.1-0.2 moderate).
psi = 0.2
# Two-sample Kolmogorov-Smirnov and chi-squared tests: drift when p < 0.05.
ks_p_value = 0.05
chi2_p_value = 0.05
# Jensen-Shannon distance (base 2, 0..1) on the top-50 categories plus "other".
js = 0.1
# Dataset drift when at least this share of the features drift.
dataset_share = 0.5
# A distance above its threshold counts only when the chi-squared test on the same bins
# rejects too (p < chi2_p_value): small windows' noise alone reaches the thresholds.
require_significance = true

[serve]
# `ship serve NAME --engine ray`: the service as a Ray Serve deployment (docs/serving.md,
# "On Ray Serve"); keys as Ray Serve names them. `ship serve` without --engine ray
# ignores them (it has --workers). Replicas answering, a fixed number:
replicas = 1
# Or Ray Serve's autoscaling: from `replicas` at the start, between min_replicas and
# max_replicas, aiming at target_ongoing_requests requests in flight per replica.
autoscaling = false
min_replicas = 1
max_replicas = 2
target_ongoing_requests = 2.0
# Requests one replica takes at once; Ray Serve queues the rest. Ray's own default (5)
# suits slow models: a fast one at more concurrent clients than that gets requests
# rejected and retried between Ray's processes (a quarter of the throughput, bench/).
max_ongoing_requests = 32
# CPUs Ray reserves for each replica; its onnxruntime threads follow.
replica_cpus = 1.0
"""


@dataclass(frozen=True)
class PriceTable:
    """Money per resource-hour, from `[cost]` in ship.toml."""

    currency: str
    cpu_core_hour: float
    memory_gb_hour: float
    gpu_hour: float


@dataclass(frozen=True)
class Workspace:
    """A project root holding `.ship/` and its parsed configuration."""

    root: Path
    config: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def ship_dir(self) -> Path:
        return self.root / SHIP_DIR

    @property
    def spool_dir(self) -> Path:
        return self.ship_dir / "spool"

    @property
    def artifacts_dir(self) -> Path:
        return self.ship_dir / "artifacts"

    @property
    def services_dir(self) -> Path:
        return self.ship_dir / "services"

    def setting(self, section: str, key: str) -> Any:
        """A config value, falling back to the documented default."""
        value = self.config.get(section, {}).get(key)
        return DEFAULT_CONFIG[section][key] if value is None else value

    def tracking_uri(self) -> str:
        """MLFLOW_TRACKING_URI, else ship.toml's `tracking.uri`, else the workspace sqlite store."""
        env = os.environ.get("MLFLOW_TRACKING_URI", "").strip()
        if env:
            return env
        configured = str(self.setting("tracking", "uri")).strip()
        if configured:
            return configured
        return f"sqlite:///{self.ship_dir / 'mlflow.db'}"

    def uses_local_store(self) -> bool:
        """True when runs go to the workspace's own sqlite store (artifacts under .ship/)."""
        return self.tracking_uri() == f"sqlite:///{self.ship_dir / 'mlflow.db'}"

    def ui_url(self) -> str | None:
        """MLflow UI base URL for links: ship.toml's `ui_url`, else an http(s) tracking URI."""
        configured = str(self.setting("tracking", "ui_url")).strip()
        if configured:
            return configured.rstrip("/")
        uri = self.tracking_uri()
        if uri.startswith(("http://", "https://")):
            return uri.rstrip("/")
        return None

    def prices(self) -> PriceTable:
        """The `[cost]` price table, validated."""
        values = {}
        for key in ("cpu_core_hour", "memory_gb_hour", "gpu_hour"):
            raw = self.setting("cost", key)
            if not isinstance(raw, int | float) or isinstance(raw, bool) or raw < 0:
                raise ConfigError(
                    f"[cost] {key} must be a non-negative number, got {raw!r}.",
                    path=str(self.ship_dir / CONFIG_FILE),
                )
            values[key] = float(raw)
        return PriceTable(currency=str(self.setting("cost", "currency")), **values)

    def ray_serve(self) -> RayServeSettings:
        """`[serve]`, validated; ConfigError names the key and what it may be."""
        where = str(self.ship_dir / CONFIG_FILE)
        section = self.config.get("serve", {})
        unknown = sorted(set(section) - set(DEFAULT_CONFIG["serve"]))
        if unknown:
            raise ConfigError(f"[serve] has unknown keys {unknown}; known: "
                              f"{sorted(DEFAULT_CONFIG['serve'])}.", path=where)
        values: dict[str, Any] = {}
        for key, default in DEFAULT_CONFIG["serve"].items():
            raw = self.setting("serve", key)
            if isinstance(default, bool):
                if not isinstance(raw, bool):
                    raise ConfigError(f"[serve] {key} must be true or false, got {raw!r}.",
                                      path=where)
                values[key] = raw
                continue
            whole = isinstance(default, int)
            # counts from 1 (min_replicas from 0: Ray Serve may scale to zero); sizes > 0
            low = 0 if key == "min_replicas" else 1
            if isinstance(raw, bool) or not isinstance(raw, int | float) \
                    or (whole and (not float(raw).is_integer() or raw < low)) \
                    or (not whole and raw <= 0):
                kind = f"a whole number >= {low}" if whole else "a number above 0"
                raise ConfigError(f"[serve] {key} must be {kind}, got {raw!r}.", path=where)
            values[key] = int(raw) if whole else float(raw)
        settings = RayServeSettings(**values)
        if settings.autoscaling and not (settings.min_replicas <= settings.replicas
                                         <= settings.max_replicas):
            raise ConfigError(
                f"[serve] with autoscaling = true needs min_replicas <= replicas <= "
                f"max_replicas, got {settings.min_replicas}, {settings.replicas}, "
                f"{settings.max_replicas}.", path=where)
        return settings


@dataclass(frozen=True)
class RayServeSettings:
    """`[serve]` of ship.toml: a service's replicas on Ray Serve."""

    replicas: int
    autoscaling: bool
    min_replicas: int
    max_replicas: int
    target_ongoing_requests: float
    max_ongoing_requests: int
    replica_cpus: float

    def deployment_options(self) -> dict[str, Any]:
        """The options of ``ray.serve.deployment`` these settings stand for."""
        options: dict[str, Any] = {"max_ongoing_requests": self.max_ongoing_requests,
                                   "ray_actor_options": {"num_cpus": self.replica_cpus}}
        if self.autoscaling:
            options["autoscaling_config"] = {
                "min_replicas": self.min_replicas, "max_replicas": self.max_replicas,
                "initial_replicas": self.replicas,
                "target_ongoing_requests": self.target_ongoing_requests}
        else:
            options["num_replicas"] = self.replicas
        return options


def typed_section(workspace: Workspace, section: str, cls: type) -> dict[str, Any]:
    """``[section]`` of ship.toml as keyword arguments of dataclass ``cls`` (its fields'
    annotations say each key's type: bool, str, int or float; numbers >= 0).
    ConfigError names an unknown key or a bad value, and the file."""
    from dataclasses import fields

    where = workspace.ship_dir / CONFIG_FILE
    found = workspace.config.get(section, {})
    known = {spec.name: spec for spec in fields(cls)}
    unknown = sorted(set(found) - set(known))
    if unknown:
        raise ConfigError(f"[{section}] in {where} has unknown keys {unknown}; known: "
                          f"{sorted(known)}.")
    values: dict[str, Any] = {}
    for key, raw in found.items():
        kind = known[key].type
        if kind in ("bool", bool):
            if not isinstance(raw, bool):
                raise ConfigError(f"[{section}] {key} in {where} must be true or false, "
                                  f"got {raw!r}.")
        elif kind in ("str", str):
            if not isinstance(raw, str):
                raise ConfigError(f"[{section}] {key} in {where} must be a string, "
                                  f"got {raw!r}.")
        elif isinstance(raw, bool) or not isinstance(raw, int | float) or raw < 0 or (
                kind in ("int", int) and not float(raw).is_integer()):
            whole = "whole " if kind in ("int", int) else ""
            raise ConfigError(f"[{section}] {key} in {where} must be a {whole}number >= 0, "
                              f"got {raw!r}.")
        else:
            raw = int(raw) if kind in ("int", int) else float(raw)
        values[key] = raw
    return values


def find_root(start: Path) -> Path:
    """The nearest parent with `.ship/`, else with `.git`, else `start` itself."""
    start = start.resolve()
    if start.is_file():
        start = start.parent
    chain = [start, *start.parents]
    for marker in (SHIP_DIR, ".git"):
        for folder in chain:
            if (folder / marker).exists():
                return folder
    return start


def load_config(root: Path) -> dict[str, dict[str, Any]]:
    """Parse `.ship/ship.toml`; a missing file means all defaults."""
    path = root / SHIP_DIR / CONFIG_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML ({exc}).", path=str(path),
                          hint="Fix the file or delete it to get the defaults back.") from exc
    for section, values in data.items():
        if section in DEFAULT_CONFIG and not isinstance(values, dict):
            raise ConfigError(f"[{section}] must be a table.", path=str(path))
    return data


def find_workspace(start: Path | None = None) -> Workspace:
    """The workspace containing `start` (default: the current directory)."""
    root = find_root(start or Path.cwd())
    return Workspace(root=root, config=load_config(root))


def init_workspace(root: Path) -> Workspace:
    """Create `.ship/` with a commented default ship.toml (idempotent)."""
    ship_dir = root / SHIP_DIR
    ship_dir.mkdir(parents=True, exist_ok=True)
    config = ship_dir / CONFIG_FILE
    if not config.exists():
        config.write_text(DEFAULT_TOML, encoding="utf-8")
    gitignore = ship_dir / ".gitignore"
    if not gitignore.exists():
        # Runs, artifacts and spooled records are data, not source.
        gitignore.write_text("*\n!ship.toml\n!.gitignore\n", encoding="utf-8")
    return Workspace(root=root.resolve(), config=load_config(root))


# The longest service name: a folder name, a Kubernetes name (63) with room to spare.
MAX_NAME_LENGTH = 63


def slug(name: str) -> str:
    """A file-system-safe form of an experiment or service name (at most 100 characters)."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")[:100].strip("-.")
    return cleaned or "default"


def check_service_name(name: str) -> str:
    """``name`` if it can name a service; ValidationError says what would."""
    from .errors import ValidationError

    if len(name) > MAX_NAME_LENGTH:
        raise ValidationError(f"service name {name[:40]!r}... is {len(name)} characters long; "
                              f"use at most {MAX_NAME_LENGTH}.", field="name")
    if slug(name) != name:
        raise ValidationError(f"service name {name!r} may use letters, digits, '.', '_' and "
                              f"'-' only; try {slug(name)!r}.", field="name")
    return name
