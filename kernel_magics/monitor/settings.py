"""Drift settings: the `[drift]` section of ship.toml, validated, with per-call overrides."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ..errors import ConfigError, ValidationError
from ..serving.predlog import reader as logread
from ..workspace import CONFIG_FILE, Workspace

MAX_HISTORY = 10_000
NUMERIC_METHODS = ("auto", "wasserstein", "psi", "ks")
CATEGORICAL_METHODS = ("auto", "js", "chi2")


def parse_duration(value: str, *, field: str = "window") -> float:
    """``"90s"``, ``"15m"``, ``"1h"``, ``"1d"``, ``"1w"`` in seconds (> 0)."""
    delta = logread.parse_duration(value)  # the units of `ship logs --since`
    seconds = delta.total_seconds() if delta is not None else 0.0
    if seconds <= 0:
        raise ValidationError(f"{field} {value!r}: use a duration like 15m, 1h or 1d.",
                              field=field)
    return seconds


@dataclass(frozen=True)
class DriftSettings:
    """Window, history and thresholds; every figure of a report names the one it used."""

    window: str = "1h"
    history: int = 24
    numeric_method: str = "auto"
    categorical_method: str = "auto"
    wasserstein: float = 0.1
    psi: float = 0.2
    ks_p_value: float = 0.05
    js: float = 0.1
    chi2_p_value: float = 0.05
    dataset_share: float = 0.5
    require_significance: bool = True

    @property
    def window_s(self) -> float:
        return parse_duration(self.window)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_workspace(cls, workspace: Workspace, *, window: str | None = None,
                       history: int | None = None) -> DriftSettings:
        """`[drift]` of ship.toml (defaults for missing keys), then the call's overrides."""
        where = str(workspace.ship_dir / CONFIG_FILE)
        values: dict[str, Any] = {}
        for key, default in asdict(cls()).items():
            raw = workspace.setting("drift", key)
            if isinstance(default, bool):
                if not isinstance(raw, bool):
                    raise ConfigError(f"[drift] {key} must be true or false, got {raw!r}.",
                                      path=where)
            elif isinstance(default, str):
                if not isinstance(raw, str):
                    raise ConfigError(f"[drift] {key} must be a string, got {raw!r}.",
                                      path=where)
            elif key == "history":
                if not isinstance(raw, int) or isinstance(raw, bool) or not \
                        1 <= raw <= MAX_HISTORY:
                    raise ConfigError(f"[drift] history must be an integer from 1 to "
                                      f"{MAX_HISTORY}, got {raw!r}.", path=where)
            elif not isinstance(raw, int | float) or isinstance(raw, bool) or raw < 0:
                raise ConfigError(f"[drift] {key} must be a non-negative number, got "
                                  f"{raw!r}.", path=where)
            values[key] = float(raw) if isinstance(default, float) else raw
        for key in ("ks_p_value", "chi2_p_value", "dataset_share"):
            if not 0 < values[key] <= 1:
                raise ConfigError(f"[drift] {key} must be in (0, 1], got {values[key]!r}.",
                                  path=where)
        if values["numeric_method"] not in NUMERIC_METHODS:
            raise ConfigError(f"[drift] numeric_method must be one of {NUMERIC_METHODS}, got "
                              f"{values['numeric_method']!r}.", path=where)
        if values["categorical_method"] not in CATEGORICAL_METHODS:
            raise ConfigError(f"[drift] categorical_method must be one of "
                              f"{CATEGORICAL_METHODS}, got {values['categorical_method']!r}.",
                              path=where)
        try:
            parse_duration(values["window"])
        except ValidationError as exc:
            raise ConfigError(f"[drift] {exc.message}", path=where) from None
        if window is not None:
            parse_duration(window)
            values["window"] = window.strip()
        if history is not None:
            if isinstance(history, bool) or not 1 <= int(history) <= MAX_HISTORY:
                raise ValidationError(f"history must be from 1 to {MAX_HISTORY}, got "
                                      f"{history!r}.", field="history")
            values["history"] = int(history)
        return cls(**values)
