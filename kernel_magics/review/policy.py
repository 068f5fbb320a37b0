"""The review policy: which predictions reach a person, within a budget.

A row is a candidate for each reason whose threshold it crosses: low ``confidence``,
small ``margin``, high ``entropy``, high ``ood`` score, and a deterministic random
``audit`` share (a hash of the request id, so a request is in or out for good and
confident mistakes are found too). Per day (UTC), in arrival order, candidates are
routed until the day's budget (a count, or a share of the day's predictions so far) is
spent, and each reason's cap: so the queue of a past moment never changes, and the
budget is never exceeded.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ConfigError
from ..serving.predlog.reader import parse_duration
from ..workspace import CONFIG_FILE, Workspace, typed_section

# a row crossing several thresholds is routed for the first whose cap has room
REASONS = ("ood", "confidence", "margin", "entropy", "audit")


@dataclass(frozen=True)
class ReviewSettings:
    """``[review]`` of ship.toml: when a prediction is a candidate for review, and how
    many a day reach a person (0 turns a reason or a limit off; docs/review.md)."""

    min_confidence: float = 0.6  # route when the top class probability is below
    min_margin: float = 0.1  # route when top minus second probability is below
    max_entropy: float = 0.0  # route when normalised entropy (0..1) is above
    max_ood: float = 0.25  # route when a feature falls this many ranges outside training
    audit_share: float = 0.005  # a random share of everything: finds confident mistakes
    daily_budget: int = 200  # at most this many items a day (UTC) ...
    daily_share: float = 0.05  # ... and at most this share of the day's predictions so far
    reason_cap: float = 0.5  # no reason takes more than this share of the day's budget
    since: str = "7d"  # the queue shows what was routed this long ago at most

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_workspace(cls, workspace: Workspace) -> ReviewSettings:
        """``[review]`` of ship.toml over the defaults; ConfigError names a bad value."""
        settings = cls(**typed_section(workspace, "review", cls))
        settings.check(str(workspace.ship_dir / CONFIG_FILE))
        return settings

    def check(self, where: str = "ship.toml") -> None:
        for key in ("min_confidence", "min_margin", "max_entropy", "audit_share",
                    "daily_share", "reason_cap"):
            if not 0 <= getattr(self, key) <= 1:
                raise ConfigError(f"[review] {key} in {where} must be between 0 and 1, "
                                  f"got {getattr(self, key)}.")
        if self.daily_budget == 0 and self.daily_share == 0:
            raise ConfigError(f"[review] in {where}: daily_budget and daily_share are both "
                              "0 (no limit at all); set a count, a share, or both.")
        if parse_duration(self.since) is None:
            raise ConfigError(f"[review] since in {where} must be a duration such as "
                              f"'7d' or '12h', got {self.since!r}.")

    def budget(self, seen: int) -> int:
        """How many items a day may hold after ``seen`` predictions."""
        limits = []
        if self.daily_budget > 0:
            limits.append(self.daily_budget)
        if self.daily_share > 0:
            limits.append(int(np.floor(self.daily_share * seen + 1e-9)))
        return min(limits)


def audited(request_id: str, row: int, share: float) -> bool:
    """In the audit sample: a fixed hash of the request and row below ``share``."""
    digest = hashlib.blake2b(f"{request_id}/{row}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2 ** 64 < share


def candidates(rows: pd.DataFrame, settings: ReviewSettings) -> pd.DataFrame:
    """For each scored row, whether it crosses each reason's threshold (one boolean
    column per reason, in :data:`REASONS` order; a missing score crosses nothing)."""
    def below(column: str, threshold: float) -> np.ndarray[Any, Any]:
        values = rows[column].to_numpy(np.float64, na_value=np.nan)
        return np.asarray(values < threshold)  # NaN: False

    def above(column: str, threshold: float) -> np.ndarray[Any, Any]:
        values = rows[column].to_numpy(np.float64, na_value=np.nan)
        return np.asarray(values > threshold) if threshold > 0 else np.zeros(len(rows), bool)

    audit = np.zeros(len(rows), bool)
    if settings.audit_share > 0:
        audit = np.fromiter((audited(str(r), int(n), settings.audit_share) for r, n in
                             zip(rows["request_id"], rows["row"], strict=True)), bool,
                            len(rows))
    return pd.DataFrame({"ood": above("ood", settings.max_ood),
                         "confidence": below("confidence", settings.min_confidence),
                         "margin": below("margin", settings.min_margin),
                         "entropy": above("entropy", settings.max_entropy),
                         "audit": audit}, index=rows.index)


def route(rows: pd.DataFrame, settings: ReviewSettings) -> pd.DataFrame:
    """The routed rows of ``rows`` (columns request_id, row, time and the scores), with
    ``reason``: per UTC day, in time order, within the day's budget and each reason's
    cap. Only rows that cross a threshold are looked at one by one."""
    ordered = rows.sort_values("time", kind="stable").reset_index(drop=True)
    if ordered.empty:
        return ordered.assign(reason=pd.Series(dtype=object))
    crossed = candidates(ordered, settings)
    day = ordered["time"].dt.floor("D")
    seen = ordered.groupby(day).cumcount().to_numpy() + 1  # the row's place in its day
    picked: list[int] = []
    why: list[str] = []
    current = None
    taken = 0
    per_reason: dict[str, int] = {}
    for i in np.flatnonzero(crossed.to_numpy().any(axis=1)).tolist():
        if day.iat[i] != current:
            current, taken, per_reason = day.iat[i], 0, {}
        budget = settings.budget(int(seen[i]))
        if taken >= budget:
            continue
        cap = max(1, int(settings.reason_cap * budget)) if settings.reason_cap else budget
        for reason in REASONS:
            if crossed[reason].iat[i] and per_reason.get(reason, 0) < cap:
                per_reason[reason] = per_reason.get(reason, 0) + 1
                taken += 1
                picked.append(i)
                why.append(reason)
                break
    return ordered.iloc[picked].assign(reason=why)
