"""Which model version a build serves, and why: never the wrong one silently.

    --model-version V            that version
    the `champion` alias         the version the team chose
    one version                  that one
    several, no champion         the best by the task's held-out metric (accuracy higher,
                                 rmse lower), fp32 before int8 on a tie, then the newest;
                                 with no metric recorded on any of them, the build asks
                                 for --model-version

"Newest" alone is not a rule: after `%ship export ... --quantize int8` the newest version
is the int8 one, not the fp32 model the user compared it with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import NotFoundError, ValidationError

LOWER_IS_BETTER = {"rmse", "mae", "mse", "loss", "log_loss"}


@dataclass(frozen=True)
class Choice:
    """The version a build takes, what it is, and the reason it was taken."""

    version: Any  # mlflow.entities.model_registry.ModelVersion
    reason: str
    precision: str | None
    metric_name: str | None
    metric: float | None


def choose_version(client: Any, name: str, requested: str | None) -> Choice:
    """The version of registered model `name` to build; NotFoundError/ValidationError say
    what to pass instead."""
    from mlflow.exceptions import MlflowException

    hint = f"`ship models {name}` lists its versions."
    if requested is not None:
        try:
            return _choice(client.get_model_version(name, requested), "asked for with "
                           "--model-version")
        except MlflowException:
            raise NotFoundError("registered", f"version {requested} of model {name!r}",
                                hint=hint) from None
    try:
        return _choice(client.get_model_version_by_alias(name, "champion"),
                       "the champion alias")
    except MlflowException:
        pass
    try:
        versions = list(client.search_model_versions(f"name='{name}'"))
    except MlflowException:
        versions = []
    if not versions:
        raise NotFoundError("registered", f"model {name!r}", hint="Export one first: `%ship "
                            f"export MODEL --name {name} --example ROWS`, or pass --model-version.")
    if len(versions) == 1:
        return _choice(versions[0], "the only version; no champion alias")
    scored = [c for c in (_choice(v, "") for v in versions) if c.metric is not None]
    if not scored:
        listed = ", ".join(str(v.version) for v in sorted(versions, key=lambda v: int(v.version)))
        raise ValidationError(
            f"model {name!r} has {len(versions)} versions ({listed}), no champion alias and no "
            "held-out metric to compare them by; pass --model-version V, or set the champion: "
            f"ship models alias {name} VERSION champion.", field="model_version")
    metric = scored[0].metric_name or "metric"
    sign = 1.0 if metric in LOWER_IS_BETTER else -1.0
    best = min(scored, key=lambda c: (sign * (c.metric or 0.0), c.precision == "int8",
                                      -int(c.version.version)))
    return Choice(best.version, f"the best {metric} of {len(versions)} versions; no champion "
                  f"alias (set one: ship models alias {name} VERSION champion)",
                  best.precision, best.metric_name, best.metric)


def _choice(version: Any, reason: str) -> Choice:
    tags = dict(version.tags or {})
    try:
        metric = float(tags["ship.metric.value"])
    except (KeyError, ValueError):
        metric = None
    return Choice(version, reason, tags.get("ship.export.precision"),
                  tags.get("ship.metric.name"), metric)


def describe_choice(choice: Choice) -> str:
    """`iris version 2 (fp32, accuracy 0.967): the champion alias`."""
    facts = [f for f in (choice.precision, f"{choice.metric_name} {choice.metric:.4g}"
                         if choice.metric is not None else None) if f]
    return (f"{choice.version.name} version {choice.version.version}"
            + (f" ({', '.join(facts)})" if facts else "") + f": {choice.reason}")
