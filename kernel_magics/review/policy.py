"""The review policy: which predictions reach a person, within a budget.

A row is a candidate for each reason whose threshold it crosses: low ``confidence``,
small ``margin``, high ``entropy``, high ``ood`` score, and a deterministic random
``audit`` share (a hash of the request id and row, so a row is in or out for good and
confident mistakes are found too).

Per day (UTC), in arrival order: the day's budget at any moment is a count, or a share
of the day's predictions so far, whichever is smaller. An audited row takes a free slot
as it arrives (it is a sample: choosing among them would bias it). Other candidates
wait; whenever a slot is free, the most doubtful waiting candidate takes it: the model
unsure before the input unfamiliar (:data:`PRIORITY`), and within a reason the lowest
confidence or margin, the highest entropy or ood score. Each reason takes at most its
cap (a share of the budget). So the budget is never exceeded, and a row, once routed,
stays routed: a decision depends only on the rows before it.
"""

from __future__ import annotations

import hashlib
import heapq
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ConfigError
from ..serving.predlog.reader import parse_duration
from ..workspace import CONFIG_FILE, Workspace, typed_section

REASONS = ("confidence", "margin", "entropy", "ood", "audit")
# who takes a free slot first (audited rows take theirs as they come): bench/review.py
# found low-confidence candidates twice as often wrong as unfamiliar inputs
PRIORITY = ("confidence", "margin", "entropy", "ood")
# within a reason, the most doubtful first: +1 the lowest value, -1 the highest
DOUBT = {"confidence": 1.0, "margin": 1.0, "entropy": -1.0, "ood": -1.0}


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
    # the most of the day's budget each reason may take
    cap_confidence: float = 1.0
    cap_margin: float = 1.0
    cap_entropy: float = 1.0
    cap_ood: float = 0.5  # a burst of unfamiliar traffic leaves room for the rest
    cap_audit: float = 0.2
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
                    "daily_share", *(f"cap_{r}" for r in REASONS)):
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

    def cap(self, reason: str, budget: int) -> int:
        """How many of ``budget`` items ``reason`` may take."""
        return int(np.floor(getattr(self, f"cap_{reason}") * budget + 1e-9))


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
    """The routed rows of ``rows`` (columns request_id, row, time and the scores), in
    the order they were routed, with ``reason`` (the module's docstring says how)."""
    ordered = rows.sort_values("time", kind="stable").reset_index(drop=True)
    if ordered.empty:
        return ordered.assign(reason=pd.Series(dtype=object))
    crossed = candidates(ordered, settings)
    flags = crossed[list(PRIORITY)].to_numpy()
    audit = crossed["audit"].to_numpy()
    doubt = {r: np.nan_to_num(sign * ordered[r].to_numpy(np.float64, na_value=np.nan))
             for r, sign in DOUBT.items()}
    day = ordered["time"].dt.floor("D")
    seen = ordered.groupby(day).cumcount().to_numpy() + 1  # the row's place in its day
    picked: list[int] = []
    why: list[str] = []
    for rows_of_day in ordered.groupby(day, sort=True).indices.values():
        _route_day(rows_of_day, seen, flags, audit, doubt, settings, picked, why)
    return ordered.iloc[picked].assign(reason=why)


def _route_day(rows: np.ndarray[Any, Any], seen: np.ndarray[Any, Any],
               flags: np.ndarray[Any, Any], audit: np.ndarray[Any, Any],
               doubt: dict[str, np.ndarray[Any, Any]], settings: ReviewSettings,
               picked: list[int], why: list[str]) -> None:
    """One day's routing (``rows``: its row numbers, in arrival order), appended to
    ``picked`` and ``why``."""
    waiting: dict[str, list[tuple[float, int]]] = {r: [] for r in PRIORITY}
    routed: set[int] = set()
    taken: dict[str, int] = {}

    def take(i: int, reason: str) -> None:
        routed.add(i)
        taken[reason] = taken.get(reason, 0) + 1
        picked.append(i)
        why.append(reason)

    def fill(budget: int) -> None:  # free slots to the most doubtful waiting rows
        while sum(taken.values()) < budget:
            for reason in PRIORITY:
                heap = waiting[reason]
                while heap and heap[0][1] in routed:
                    heapq.heappop(heap)
                if heap and taken.get(reason, 0) < settings.cap(reason, budget):
                    take(heapq.heappop(heap)[1], reason)
                    break
            else:
                return

    for i in rows[flags[rows].any(axis=1) | audit[rows]].tolist():
        fill(settings.budget(int(seen[i]) - 1))  # the slots that opened before it came
        budget = settings.budget(int(seen[i]))
        if audit[i] and sum(taken.values()) < budget and \
                taken.get("audit", 0) < settings.cap("audit", budget):
            take(i, "audit")
            continue
        for j in np.flatnonzero(flags[i]).tolist():
            reason = PRIORITY[j]
            heapq.heappush(waiting[reason], (float(doubt[reason][i]), i))
        fill(budget)
    fill(settings.budget(int(seen[rows[-1]])))  # the slots that opened since
