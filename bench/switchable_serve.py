"""`python -m kernel_magics.serving serve ...` whose prediction log can be switched off and on
again while it serves: SIGUSR2 switches it off, SIGUSR1 on (bench/log_cost.py).

    PYTHONPATH=. python bench/switchable_serve.py serve BUNDLE --log-dir DIR [--port P]

Off, :meth:`PredictionLog.append` returns at once: the request path of a server started
with ``--no-log``. The log's background step keeps its timer (with nothing queued it
finds nothing to copy or write). Only for one-worker servers: uvicorn's worker processes
would not inherit the handlers. Not part of the runtime: a measuring aid.
"""

from __future__ import annotations

import signal
import sys
from typing import Any

from kernel_magics.serving.__main__ import main
from kernel_magics.serving.predlog import writer as predlog

_logs: list[predlog.PredictionLog] = []
_init = predlog.PredictionLog.__init__


def _remembered(self: predlog.PredictionLog, *args: Any, **kwargs: Any) -> None:
    _init(self, *args, **kwargs)
    if self.enabled:  # a --no-log server's log stays off
        _logs.append(self)


def _switch(signum: int, _frame: object) -> None:
    for log in _logs:
        log.enabled = signum == signal.SIGUSR1


if __name__ == "__main__":
    predlog.PredictionLog.__init__ = _remembered  # type: ignore[method-assign]
    signal.signal(signal.SIGUSR1, _switch)
    signal.signal(signal.SIGUSR2, _switch)
    sys.exit(main())
