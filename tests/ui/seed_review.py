"""Seed a workspace for the Review panel, through Ship's real components:

1. the `digits` service: a LogisticRegression of scikit-learn's 8 x 8 digits as ONNX, its
   64 features named pixel_R_C (so the panel draws each item as an image), with a
   reference profile of its training rows;
2. the real serving runtime (uvicorn on 127.0.0.1, in a thread) answers real HTTP
   requests: clean test digits, then shifted ones (brightened, corners lit: pixels
   training kept dark); the log writer scores every answer, and the queue is built
   from the log by the [review] settings of ship.toml; then it stops.

    python tests/ui/seed_review.py FOLDER              seed (about 10 s)
    python tests/ui/seed_review.py FOLDER --more N     serve again, send N shifted
                                                       digits, stop; prints their ids
    python tests/ui/seed_review.py FOLDER --labels     prints the log's labels as JSON:
                                                       {"REQUEST_ID/ROW": value}
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import nbformat
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: live_server

from review_digits import FEATURES, NAME, TRAIN_ROWS, digits, shifted  # noqa: E402

CLEAN, SHIFTED = 40, 8
# Half of each day's predictions may reach a person, whatever the reason; no audit, so
# what is routed is the same on every run.
SETTINGS = ("[review]\ndaily_budget = 100\ndaily_share = 0.5\ncap_ood = 1.0\n"
            "audit_share = 0.0\n")


def serve_and_send(folder: Path, rows: np.ndarray) -> list[str]:
    """Serve the service, POST each row to /invocations, stop (the log flushes); the ids."""
    from live_server import serve_in_thread

    from kernel_magics.services import service_log
    from kernel_magics.workspace import find_workspace

    workspace = find_workspace(folder)
    server = serve_in_thread(workspace.services_dir / NAME / "1",
                             Path(service_log(workspace, NAME)))
    ids = []
    try:
        with server.client() as client:
            for row in rows:
                response = client.post("/invocations", json={"dataframe_split": {
                    "columns": FEATURES, "data": [row.tolist()]}})
                response.raise_for_status()
                ids.append(response.headers["x-request-id"])
    finally:
        server.stop()
    return ids


def seed(folder: Path) -> None:
    from review_digits import write_service

    from kernel_magics.workspace import init_workspace

    started = time.monotonic()
    folder = folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    workspace = init_workspace(folder)
    (workspace.ship_dir / "ship.toml").write_text(SETTINGS, encoding="utf-8")
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    notebook.cells.append(nbformat.v4.new_code_cell(f"!ship review {NAME}"))
    nbformat.write(notebook, folder / "digits.ipynb")
    write_service(workspace)
    x, _ = digits()
    test = x[TRAIN_ROWS:]
    serve_and_send(folder, np.vstack([test[:CLEAN], shifted(test[CLEAN:CLEAN + SHIFTED])]))
    print(f"seeded {folder} in {time.monotonic() - started:.1f} s")


def more(folder: Path, count: int) -> None:
    x, _ = digits()
    start = TRAIN_ROWS + CLEAN + SHIFTED
    print(json.dumps(serve_and_send(folder, shifted(x[start:start + count]))))


def labels(folder: Path) -> None:
    from kernel_magics.release.evidence import truth_rows
    from kernel_magics.services import service_log
    from kernel_magics.serving.predlog import read_log
    from kernel_magics.workspace import find_workspace

    workspace = find_workspace(folder)
    found = {}
    for entry in read_log(service_log(workspace, NAME), labelled=True):
        for row, value in enumerate(truth_rows(entry.ground_truth) or []):
            if value is not None:
                found[f"{entry.request_id}/{row}"] = value
    print(json.dumps(found))


if __name__ == "__main__":
    target = Path(sys.argv[1])
    if sys.argv[2:3] == ["--more"]:
        more(target, int(sys.argv[3]))
    elif sys.argv[2:3] == ["--labels"]:
        labels(target)
    else:
        seed(target)
