"""Plain-text renderings shared by `%ship export`, `ship export` and `ship models`."""

from __future__ import annotations

from .api import ExportResult
from .profile import ORIGINAL
from .registry import AliasChange, LeaderboardRow, ModelSummary


def size(n: int | None) -> str:
    """Bytes in B / KB / MB (powers of 1024)."""
    if n is None:
        return "-"
    if n < 1024:
        return f"{n} B"
    if n < 1024**2:
        return f"{n / 1024:.1f} KB"
    return f"{n / 1024**2:.1f} MB"


def render_export(result: ExportResult) -> str:
    """What an export did, in a dozen lines: version, exporter, gate, int8, profile."""
    run = "new run" if result.run_created else "run"
    lines = [f"Registered {result.name} version {result.version} ({result.model_uri}), "
             f"{run} {result.run_id}"]
    if result.reused:
        lines = [f"Already registered: {result.name} version {result.version} is this very "
                 f"model (the same ONNX bytes; run {result.run_id}); nothing new registered."]
    exporter = result.exporter
    if result.fallback_reason:
        exporter += f" (fallback: {result.fallback_reason})"
    lines.append(f"  exporter   {exporter}; precision {result.precision}; task {result.task}")
    p = result.parity
    gate = (f"  parity     passed on {p.rows} rows (rtol {p.rtol:g}, atol {p.atol:g}): "
            f"max abs error {p.max_abs_error:.2g}, max rel error {p.max_rel_error:.2g}")
    if p.agreement is not None:
        gate += f"; argmax agreement {p.agreement:.1%}"
    if p.metric_name and p.metric_onnx is not None and p.metric_original is not None:
        gate += f"; {p.metric_name} {p.metric_onnx:.4f} (original {p.metric_original:.4f})"
    lines.append(gate)
    q = result.quantization
    if q is not None:
        change = (f"{q.measure} {q.change:+.2f} points (bound -{q.bound:g})" if q.unit == "points"
                  else f"{q.measure} {q.change:+.1%} (bound +{q.bound:.0%})")
        latency = f"{q.latency_ratio:.2f}x" if q.latency_ratio is not None else "-"
        lines.append(f"  int8       size {q.size_ratio:.2f}x of fp32, latency {latency} of fp32, "
                     f"{change} vs {q.reference}; {q.quantized_nodes} integer ops"
                     + (f", kept float: {', '.join(q.float_ops_kept)}" if q.float_ops_kept else "")
                     + (" [FORCED beyond the bound]" if q.forced else ""))
    prof = result.profile
    if prof is not None:
        lines.append(f"  profile    {prof.threads} thread(s), {prof.repeats} calls per figure; "
                     f"p50 / p99 in ms")
        lines.append(f"             {'variant':<20} {'size':>9}  {'1 row':>15}  "
                     f"{f'{prof.batch_size} rows':>15}")
        for v in prof.variants:
            label = f"original ({result.flavor})" if v.name == ORIGINAL else v.name
            lines.append(f"             {label:<20} {size(v.size_bytes):>9}  "
                         f"{v.one_row.p50_ms:>6.3f} / {v.one_row.p99_ms:<6.3f}  "
                         f"{v.batch.p50_ms:>6.3f} / {v.batch.p99_ms:<6.3f}")
        speedup = prof.speedup(ORIGINAL, "onnx-fp32")
        if speedup is not None:
            lines.append(f"             ONNX fp32 runs one row {speedup:.1f}x as fast as the "
                         "original")
    for warning in result.warnings:
        lines.append(f"  warning    {warning}")
    return "\n".join(line.rstrip() for line in lines)


def render_models(models: list[ModelSummary]) -> str:
    """`ship models`: one line per registered model."""
    if not models:
        return "No registered models yet. Export one: %ship export VAR --name NAME --example X"
    lines = [f"{'MODEL':<28} {'VERSIONS':>8} {'LATEST':>6}  ALIASES"]
    for m in models:
        aliases = ", ".join(f"{a}=v{v}" for a, v in sorted(m.aliases.items())) or "-"
        lines.append(f"{m.name[:28]:<28} {m.versions:>8} {m.latest_version or '-':>6}  {aliases}")
    return "\n".join(lines)


def render_leaderboard(name: str, rows: list[LeaderboardRow]) -> str:
    """`ship models NAME`: versions side by side; '*' marks the best value of each column."""
    if not rows:
        return f"{name} has no versions."
    metric_name = next((r.metric_name for r in rows if r.metric_name), "metric")
    higher = metric_name != "rmse"
    best_metric = _best([r.metric for r in rows], higher)
    best_p50 = _best([r.p50_ms for r in rows], False)
    best_size = _best([float(r.size_bytes) if r.size_bytes is not None else None for r in rows],
                      False)
    best_cost = _best([r.training_cost for r in rows], False)
    header = (f"{'VERSION':<8} {'ALIASES':<20} {'PRECISION':<9} {'EXPORTER':<18} "
              f"{metric_name.upper():>10} {'P50 MS':>9} {'P99 MS':>8} {'SIZE':>10} "
              f"{'TRAIN COST':>14}  PARITY")
    lines = [f"{name}", header]
    for r in rows:
        cost = "-" if r.training_cost is None else f"{r.training_cost:.4f} {r.cost_currency or ''}"
        metric = "-" if r.metric is None else f"{r.metric:.4f}"
        p50 = "-" if r.p50_ms is None else f"{r.p50_ms:.3f}"
        p99 = "-" if r.p99_ms is None else f"{r.p99_ms:.3f}"
        lines.append(
            f"{r.version:<8} {', '.join(r.aliases) or '-':<20} {r.precision or '-':<9} "
            f"{r.exporter or '-':<18} {_mark(r.metric, best_metric, metric):>10} "
            f"{_mark(r.p50_ms, best_p50, p50):>9} {p99:>8} "
            f"{_mark(r.size_bytes, best_size, size(r.size_bytes)):>10} "
            f"{_mark(r.training_cost, best_cost, cost.strip()):>14}  {r.parity}{_int8(r)}")
        if r.run_id:
            params = ", ".join(f"{k}={v}" for k, v in list(r.params.items())[:6])
            lines.append(f"{'':<8} run {r.run_name or r.run_id}"
                         + (f" ({params})" if params else ""))
    lines.append("* best in its column; latency is the registered variant's, one row, "
                 "in one process")
    return "\n".join(lines)


def render_alias(change: AliasChange) -> str:
    """`ship models alias`: what moved where."""
    moved = f" (was version {change.previous})" if change.previous not in (None,
                                                                           change.version) else ""
    return f"{change.name}@{change.alias} -> version {change.version}{moved}"


def _int8(row: LeaderboardRow) -> str:
    if row.int8_change is None:
        return ""
    if row.int8_change_unit == "points":
        return f" (int8 {row.int8_change:+.2f} pts)"
    return f" (int8 {row.int8_change:+.1%} error)"


def _best(values: list[float | None], higher: bool) -> float | None:
    present = [v for v in values if v is not None]
    if len(present) < 2:
        return None
    return max(present) if higher else min(present)


def _mark(value: float | int | None, best: float | None, text: str) -> str:
    if value is not None and best is not None and float(value) == best:
        return f"*{text}"
    return text
