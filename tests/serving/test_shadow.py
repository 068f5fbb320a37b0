"""Shadow copies off the request path: bounded (dropped and counted when the shadow
falls behind), a shadow's failure logged as its own error, never raised."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kernel_magics.serving.bundle import Bundle
from kernel_magics.serving.inputs import Inputs
from kernel_magics.serving.predlog import PredictionLog, read_log
from kernel_magics.serving.router import Deployment
from kernel_magics.serving.shadow import Shadows


def test_copies_beyond_the_queue_are_dropped_and_counted(digits_bundle: Bundle,
                                                         tmp_path: Path) -> None:
    log = PredictionLog(str(tmp_path / "log"))
    shadow = Deployment(digits_bundle)
    shadow.load(workers=1)
    copies = Shadows(log, max_pending=2)
    inputs = Inputs(rows=1, matrix=np.zeros((1, 64), np.float32))
    for i in range(200):  # far faster than one thread scores them
        copies.submit((shadow,), request_id=f"{i:032x}", endpoint="invocations",
                      answered_by="2", inputs=inputs)
    copies.close()
    scored, dropped = copies.scored["3"], copies.dropped["3"]
    assert scored + dropped == 200 and dropped > 100 and scored >= 2
    log.close()
    rows = read_log(str(tmp_path / "log"), shadows=True)
    assert len(rows) == scored and {(r.version, r.shadow, r.status) for r in rows} == {
        ("3", "2", 200)}
    assert read_log(str(tmp_path / "log")) == []  # copies are not answers


def test_a_failing_shadow_is_logged_not_raised(digits_bundle: Bundle,
                                               tmp_path: Path) -> None:
    log = PredictionLog(str(tmp_path / "log"))
    cold = Deployment(digits_bundle)  # never loaded: not ready
    copies = Shadows(log)
    copies.submit((cold,), request_id="a" * 32, endpoint="v2_infer", answered_by="1",
                  inputs=Inputs(rows=1, matrix=np.zeros((1, 64), np.float32)))
    copies.close()
    log.close()
    (row,) = read_log(str(tmp_path / "log"), shadows=True)
    assert (row.status, row.shadow) == (503, "1") and "warming up" in (row.error or "")
