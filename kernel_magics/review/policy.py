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
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

REASONS = ("confidence", "margin", "entropy", "ood", "audit")


@dataclass(frozen=True)
class ReviewSettings:
    """``[review]`` of ship.toml (0 turns a reason off)."""

    min_confidence: float = 0.6  # route when the top probability is below
    min_margin: float = 0.1  # route when top minus second is below
    max_entropy: float = 0.0  # route when normalised entropy is above (0: off)
    max_ood: float = 0.25  # route when a feature falls this many ranges outside
    audit_share: float = 0.005  # a random share of everything, to find confident errors
    daily_budget: int = 200  # at most this many items a day ...
    daily_share: float = 0.05  # ... and at most this share of the day's predictions
    reason_cap: float = 0.5  # no reason takes more than this share of the budget


def audited(request_id: str, row: int, share: float) -> bool:
    """In the audit sample: a fixed hash of the request and row below ``share``."""
    digest = hashlib.blake2b(f"{request_id}/{row}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2 ** 64 < share


def reasons(row: dict[str, Any], settings: ReviewSettings) -> list[str]:
    """The reasons one scored row is a candidate for, most telling first."""
    found = []
    if row.get("ood") is not None and settings.max_ood > 0 and row["ood"] > settings.max_ood:
        found.append("ood")
    if row.get("confidence") is not None and row["confidence"] < settings.min_confidence:
        found.append("confidence")
    if row.get("margin") is not None and row["margin"] < settings.min_margin:
        found.append("margin")
    if row.get("entropy") is not None and settings.max_entropy > 0 and \
            row["entropy"] > settings.max_entropy:
        found.append("entropy")
    if audited(str(row["request_id"]), int(row.get("row", 0)), settings.audit_share):
        found.append("audit")
    return found


def route(rows: pd.DataFrame, settings: ReviewSettings) -> pd.DataFrame:
    """The routed rows of ``rows`` (columns request_id, row, time and the scores), with
    ``reason``: per UTC day, in time order, within the day's budget and each reason's
    cap."""
    picked: list[dict[str, Any]] = []
    ordered = rows.sort_values("time", kind="stable")
    for _, day in ordered.groupby(ordered["time"].dt.floor("D"), sort=True):
        seen = taken = 0
        per_reason: dict[str, int] = {}
        for row in day.to_dict("records"):
            seen += 1
            budget = min(settings.daily_budget, int(np.floor(settings.daily_share * seen)))
            if taken >= budget:
                continue
            cap = max(1, int(settings.reason_cap * settings.daily_budget))
            for reason in reasons(row, settings):
                if per_reason.get(reason, 0) < cap:
                    per_reason[reason] = per_reason.get(reason, 0) + 1
                    taken += 1
                    picked.append({**row, "reason": reason})
                    break
    return pd.DataFrame(picked, columns=[*rows.columns, "reason"])
