"""`ship review`: the human-review queue, labels, and Label Studio (review/)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from .output import emit_json
from .serving import LOG_DIR_HELP, check_log


@click.command("review")
@click.argument("name")
@click.option("--label", "label", nargs=2, default=None, metavar="REQUEST_ID VALUE",
              help="Label a routed prediction: VALUE is its true class (or number).")
@click.option("--row", type=click.IntRange(0), default=0, show_default=True,
              help="With --label or --clear: the row of a request of several rows.")
@click.option("--clear", "clear", default=None, metavar="REQUEST_ID",
              help="Take a label back: the row returns to the queue.")
@click.option("--export-label-studio", "export_file",
              type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Write the queue as Label Studio tasks (JSON) and, beside it, the "
                   "labelling interface (FILE.xml).")
@click.option("--import-label-studio", "import_file",
              type=click.Path(path_type=Path, dir_okay=False, exists=True), default=None,
              help="Read a Label Studio JSON export back as labels.")
@click.option("--limit", type=click.IntRange(1), default=20, show_default=True,
              help="Items listed (the text view; --json lists all).")
@click.option("--log-dir", default=None, metavar="URL", help=LOG_DIR_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print the queue (or the result) "
                                                      "as JSON.")
def review_cmd(name: str, label: tuple[str, str] | None, row: int, clear: str | None,
               export_file: Path | None, import_file: Path | None, limit: int,
               log_dir: str | None, as_json: bool) -> None:
    """The predictions routed to a person ([review] of ship.toml): the model was unsure,
    the input was unlike the training data, or a random audit. Labels are feedback:
    they reach accuracy, drift and the next retraining."""
    from ..review.labels import Label, write_labels
    from ..workspace import find_workspace

    if log_dir is not None:
        check_log(log_dir)
    workspace = find_workspace()
    if label is not None or clear is not None:
        wanted = [Label(label[0], label[1], row)] if label is not None else []
        if clear is not None:
            wanted.append(Label(clear, None, row))
        written = write_labels(workspace, name, wanted, log_dir=log_dir)
        _say(as_json, {"labelled": written},
             "\n".join(f"{w['request_id']}: ground truth {json.dumps(w['ground_truth'])}"
                       for w in written))
        return
    if import_file is not None:
        from ..review.labelstudio import import_labels

        try:
            document = json.loads(import_file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise click.BadParameter(f"{import_file} is not a JSON file: {exc}",
                                     param_hint="--import-label-studio") from exc
        labels, unlabelled = import_labels(document)
        written = write_labels(workspace, name, labels, log_dir=log_dir)
        _say(as_json, {"labelled": len(labels), "requests": len(written),
                       "unlabelled_tasks": unlabelled},
             f"{len(labels)} label(s) read into {len(written)} request(s); "
             f"{unlabelled} task(s) had no annotation.")
        return
    from ..review.queue import review_queue

    queue = review_queue(workspace, name, log_dir=log_dir)
    if export_file is not None:
        from ..review.labelstudio import export_tasks, label_config

        export_file.write_text(json.dumps(export_tasks(queue), indent=1), encoding="utf-8")
        config = export_file.with_suffix(".xml")
        config.write_text(label_config(queue), encoding="utf-8")
        _say(as_json, {"tasks": len(queue.items), "file": str(export_file),
                       "label_config": str(config)},
             f"{len(queue.items)} task(s) written to {export_file}; the labelling "
             f"interface for the project's settings: {config}")
        return
    if as_json:
        emit_json(queue.to_json())
        return
    click.echo(render_queue(queue.to_json(), limit))


def _say(as_json: bool, doc: dict[str, Any], text: str) -> None:
    if as_json:
        emit_json(doc)
    else:
        click.echo(text)


def render_queue(doc: dict[str, Any], limit: int) -> str:
    """The queue as text: the budget, then one line per item (oldest first)."""
    today = doc["today"]
    reasons = ", ".join(f"{r} {n}" for r, n in doc["by_reason"].items()) or "none"
    lines = [
        f"review queue of {doc['name']}: {doc['pending']} waiting, {doc['labelled']} "
        f"labelled, of {doc['routed']} routed from {doc['scored']} scored rows "
        f"(since {doc['settings']['since']})",
        f"today: {today['routed']} routed of a budget of {today['budget']} "
        f"({today['predictions']} predictions); by reason: {reasons}",
    ]
    if not doc["items"]:
        lines.append("nothing waits for a label.")
        return "\n".join(lines)
    lines.append("")
    lines.append(f"{'REQUEST_ID':<32}  {'ROW':>3}  {'REASON':<10}  {'PREDICTED':<10}  "
                 f"{'CONF':>5}  {'OOD':>5}  INPUTS")
    for item in doc["items"][:limit]:
        scores = item["scores"]
        inputs = ", ".join(f"{k}={_short(v)}" for k, v in list(item["inputs"].items())[:4])
        if len(item["inputs"]) > 4:
            inputs += f", … ({len(item['inputs'])} features)"
        ood = "" if scores["ood"] is None else f"{scores['ood']:.2f}"
        if scores.get("ood_feature") and item["reason"] == "ood":
            inputs = f"[{scores['ood_feature']}] {inputs}"
        lines.append(f"{item['request_id']:<32}  {item['row']:>3}  {item['reason']:<10}  "
                     f"{_short(item['prediction']):<10}  "
                     f"{_number(scores['confidence']):>5}  {ood:>5}  {inputs}")
    if len(doc["items"]) > limit:
        lines.append(f"… and {len(doc['items']) - limit} more (--limit, or --json)")
    lines.append("")
    lines.append(f"label one: ship review {doc['name']} --label REQUEST_ID VALUE")
    return "\n".join(lines)


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)[:10]


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"
