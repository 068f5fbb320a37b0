"""The background writer: one process per workspace drains the spool into MLflow.

Kernels call `ensure_writer()` after spooling a record; it starts
``python -m kernel_magics.tracking.daemon SPOOL`` unless one already holds
``spool/writer.lock``. The writer polls the spool, writes ready records oldest
first, retries failures with exponential backoff (a down MLflow server delays
runs, never loses them), and exits after a quiet spell. `ship sync` asks a
running writer to stop, takes the lock, and drains the spool in the foreground.

Keeping MLflow in another process keeps ``import mlflow`` (seconds), sqlite
writes (tens of ms each) and the GIL off the kernel's critical path.
"""

from __future__ import annotations

import argparse
import fcntl
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from .record import WrittenRun
from .spool import Spool

LOCK_FILE = "writer.lock"
LOG_FILE = "writer.log"
POLL_S = 0.2
IDLE_EXIT_S = float(os.environ.get("SHIP_WRITER_IDLE_S", "60"))
# A writer whose records keep failing gives up after this long; the next tracked
# cell or `ship sync` starts a new one.
STUCK_EXIT_S = 600.0

log = logging.getLogger("kernel_magics.writer")


def _try_lock(path: Path) -> IO[str] | None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fh = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held for the writer's lifetime
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.close()
        return None
    return fh


def writer_pid(spool_dir: Path) -> int | None:
    """The pid of the writer holding the lock, or None when no writer runs."""
    lock = spool_dir / LOCK_FILE
    if not lock.exists():
        return None
    fh = _try_lock(lock)
    if fh is not None:
        fh.close()
        return None
    try:
        return int(lock.read_text(encoding="utf-8").strip() or "0") or None
    except (OSError, ValueError):
        return None


def ensure_writer(spool_dir: Path) -> None:
    """Start a background writer for this spool unless one is running. Costs ~1 ms."""
    if writer_pid(spool_dir) is not None:
        return
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "PYTHONUNBUFFERED": "1"}
    with open(spool_dir / LOG_FILE, "ab") as out:
        subprocess.Popen(
            [sys.executable, "-m", "kernel_magics.tracking.daemon", str(spool_dir)],
            stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env,
            start_new_session=True, close_fds=True)


@dataclass
class DrainResult:
    """What one pass over the spool did."""

    written: list[WrittenRun] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    waiting: list[str] = field(default_factory=list)


def drain(spool: Spool, *, force: bool = False,
          on_record: Callable[[str], None] | None = None,
          should_stop: Callable[[], bool] = lambda: False) -> DrainResult:
    """Write every ready record; `force` ignores backoff timers."""
    from .writer import RecordWriter

    writer = RecordWriter(spool)
    result = DrainResult()
    for record_id in list(spool.pending()):
        if should_stop():
            break
        try:
            record = spool.load(record_id)
        except (FileNotFoundError, ValueError) as exc:
            if _young(spool.record_dir(record_id)):
                result.waiting.append(record_id)  # its kernel is writing it right now
            else:
                result.failed[record_id] = f"unreadable record: {exc}"
            continue
        if not spool.is_ready(record):
            result.waiting.append(record_id)
            continue
        state = spool.load_state(record_id)
        if not force and state.next_attempt_at > time.time():
            result.failed[record_id] = state.last_error or "waiting to retry"
            continue
        try:
            result.written.append(writer.write(record_id))
        except Exception as exc:  # noqa: BLE001 - retried later, reported by `ship sync`
            log.warning("record %s not written: %s", record_id, exc)
            result.failed[record_id] = f"{type(exc).__name__}: {exc}"
        if on_record is not None:
            on_record(record_id)
    return result


def _young(folder: Path, seconds: float = 10.0) -> bool:
    try:
        return time.time() - folder.stat().st_mtime < seconds
    except FileNotFoundError:
        return False


def serve(spool_dir: Path) -> int:
    """The writer loop; returns when idle, stuck, or asked to stop (SIGTERM)."""
    lock = None
    deadline = time.monotonic() + 1.0
    while lock is None and time.monotonic() < deadline:
        lock = _try_lock(spool_dir / LOCK_FILE)
        if lock is None:
            time.sleep(0.05)
    if lock is None:
        return 0  # another writer has it
    lock.seek(0)
    lock.truncate()
    lock.write(str(os.getpid()))
    lock.flush()
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    spool = Spool(spool_dir)
    idle_since = time.monotonic()
    failing_since: float | None = None
    log.info("writer %d started for %s", os.getpid(), spool_dir)
    _prepare_store(spool_dir)
    while not stop["now"]:
        result = drain(spool, should_stop=lambda: stop["now"])
        now = time.monotonic()
        if result.written:
            log.info("wrote %d run(s)", len(result.written))
        if result.written or result.waiting:
            idle_since = now
        if result.failed and not result.written:
            failing_since = failing_since or now
            if now - failing_since > STUCK_EXIT_S:
                log.warning("giving up for now on %d record(s)", len(result.failed))
                break
        else:
            failing_since = None
        if not result.failed and not result.waiting and now - idle_since > IDLE_EXIT_S:
            break
        time.sleep(POLL_S)
    log.info("writer %d exiting", os.getpid())
    lock.close()
    return 0


def _prepare_store(spool_dir: Path) -> None:
    """Create the workspace's sqlite store now (seconds of MLflow migrations), while the
    cell that started this writer still runs, not when its record arrives."""
    from ..workspace import find_workspace
    from .local_store import ensure_store, sqlite_path

    try:
        path = sqlite_path(find_workspace(spool_dir.parent.parent).tracking_uri())
        if path is not None:
            ensure_store(path)
    except Exception as exc:  # noqa: BLE001 - the first write tries again and reports
        log.warning("could not prepare the MLflow store: %s", exc)


@contextmanager
def exclusive(spool_dir: Path, timeout: float = 120.0) -> Iterator[None]:
    """Stop a running background writer and hold the spool lock (for `ship sync`)."""
    lock_path = spool_dir / LOCK_FILE
    deadline = time.monotonic() + timeout
    lock = _try_lock(lock_path)
    while lock is None:
        pid = writer_pid(spool_dir)
        if pid:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        if time.monotonic() > deadline:
            raise TimeoutError(f"the background writer (pid {pid}) did not stop; "
                               f"stop it with `kill {pid}` and run `ship sync` again.")
        time.sleep(0.1)
        lock = _try_lock(lock_path)
    try:
        lock.seek(0)
        lock.truncate()
        lock.write(str(os.getpid()))
        lock.flush()
        yield
    finally:
        lock.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kernel_magics.tracking.daemon")
    parser.add_argument("spool_dir", type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(message)s")
    return serve(args.spool_dir)


if __name__ == "__main__":
    raise SystemExit(main())
