"""The queue in Label Studio's formats, for teams that already label there.

Export: Label Studio's import format (a JSON list of tasks). Each task's ``data`` holds
the row's features, ``ship_request_id`` and ``ship_row`` (how its annotation finds its
way back), ``image`` (a PNG data URL) when the features are an image, and ``text`` (the
features, one per line) otherwise; ``predictions`` holds the model's answer as a
pre-annotation. :func:`label_config` is the labelling interface to paste into the
project's settings: Choices named ``label`` over the model's classes.

Import: Label Studio's JSON export (a list of tasks with ``annotations``). Per task, the
latest annotation that was not cancelled gives the choice; tasks nobody annotated are
left alone. The labels are written as :mod:`.labels` writes any label.
"""

from __future__ import annotations

import base64
import io
from typing import Any
from xml.sax.saxutils import quoteattr

import numpy as np

from ..errors import ValidationError
from .labels import Label
from .queue import ReviewItem, ReviewQueue

FROM_NAME = "label"  # the Choices control of label_config()


def export_tasks(queue: ReviewQueue) -> list[dict[str, Any]]:
    """The queue's items as Label Studio tasks (its JSON import format)."""
    tasks = []
    to_name = "image" if queue.image is not None else "text"
    for item in queue.items:
        data: dict[str, Any] = {**item.inputs, "ship_request_id": item.request_id,
                                "ship_row": item.row, "ship_reason": item.reason}
        if queue.image is not None:
            data["image"] = png_data_url(item, queue)
        else:
            data["text"] = "\n".join(f"{k}: {v}" for k, v in item.inputs.items())
        task: dict[str, Any] = {"data": data}
        if item.prediction is not None:
            confidence = item.scores.get("confidence")
            task["predictions"] = [{
                "model_version": item.version,
                **({"score": confidence} if confidence is not None else {}),
                "result": [{"from_name": FROM_NAME, "to_name": to_name, "type": "choices",
                            "value": {"choices": [str(item.prediction)]}}]}]
        tasks.append(task)
    return tasks


def label_config(queue: ReviewQueue) -> str:
    """The Label Studio labelling interface for these tasks (XML)."""
    if queue.image is not None:
        shown = '  <Image name="image" value="$image" zoom="true"/>'
        to_name = "image"
    else:
        shown = '  <Text name="text" value="$text"/>'
        to_name = "text"
    classes = queue.classes or sorted({str(i.prediction) for i in queue.items
                                       if i.prediction is not None})
    choices = "\n".join(f"    <Choice value={quoteattr(str(c))}/>" for c in classes)
    return (f"<View>\n{shown}\n  <Choices name=\"{FROM_NAME}\" toName=\"{to_name}\" "
            f"choice=\"single\" showInLine=\"true\">\n{choices}\n  </Choices>\n</View>\n")


def png_data_url(item: ReviewItem, queue: ReviewQueue) -> str:
    """An item's features drawn as a grey PNG (the darkest pixel the largest value)."""
    from PIL import Image

    layout = queue.image
    assert layout is not None
    values = np.array([float(item.inputs.get(f) or 0.0) for f in layout.features])
    top = values.max() if values.size and values.max() > 0 else 1.0
    grey = (255 - np.clip(values / top, 0, 1) * 255).astype(np.uint8)
    picture = Image.fromarray(grey.reshape(layout.height, layout.width), mode="L")
    picture = picture.resize((layout.width * 16, layout.height * 16), Image.Resampling.NEAREST)
    out = io.BytesIO()
    picture.save(out, format="PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


def import_labels(export: Any) -> tuple[list[Label], int]:
    """The labels in a Label Studio JSON export, and how many tasks had none. InputError
    when the document is not such an export, or a task is not one of Ship's."""
    if not isinstance(export, list):
        raise ValidationError("a Label Studio export is a JSON list of tasks (Export → JSON); "
                         f"this is a {type(export).__name__}.", field="file")
    labels: list[Label] = []
    unlabelled = 0
    for number, task in enumerate(export, 1):
        data = task.get("data") if isinstance(task, dict) else None
        if not isinstance(data, dict) or not isinstance(data.get("ship_request_id"), str):
            raise ValidationError(f"task {number} has no data.ship_request_id: it was not "
                             "exported by `ship review --export-label-studio`.",
                             field="file")
        choice = _choice(task.get("annotations") or [])
        if choice is None:
            unlabelled += 1
            continue
        labels.append(Label(data["ship_request_id"], choice, int(data.get("ship_row", 0))))
    return labels, unlabelled


def _choice(annotations: list[Any]) -> str | None:
    """The choice of the latest annotation not cancelled (None: there is none)."""
    done = [a for a in annotations if isinstance(a, dict) and not a.get("was_cancelled")]
    done.sort(key=lambda a: str(a.get("updated_at") or a.get("created_at") or ""))
    for annotation in reversed(done):
        for result in annotation.get("result") or []:
            choices = (result.get("value") or {}).get("choices") \
                if isinstance(result, dict) else None
            if choices:
                return str(choices[0])
    return None


__all__ = ["export_tasks", "import_labels", "label_config", "png_data_url"]
