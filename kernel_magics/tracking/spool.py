"""The spool: run records on disk until MLflow has them.

    .ship/spool/pending/<record_id>/record.json   the record (RUNNING, then final)
    .ship/spool/pending/<record_id>/state.json    the writer's progress (run id, attempts)
    .ship/spool/pending/<record_id>/...           captured files (see record.ARTIFACT_PATHS)
    .ship/spool/done/<record_id>.json             where the record landed (WrittenRun)

`record.json` is replaced atomically (write, fsync, rename), so a reader sees the
previous version or the new one, never half a file. A record leaves `pending/`
only after every MLflow call for it succeeded.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .record import FINAL_STATUSES, RunRecord, WrittenRun

RECORD_FILE = "record.json"
STATE_FILE = "state.json"


def new_record_id() -> str:
    """A unique id that sorts by creation time."""
    return f"{time.time_ns():x}-{uuid.uuid4().hex[:8]}"


def write_json_atomic(path: Path, data: Any, *, durable: bool = True) -> None:
    """Replace `path` with `data` as JSON; with `durable`, survive a power cut too."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, separators=(",", ":"), default=str)
        if durable:
            fh.flush()
            os.fsync(fh.fileno())
    os.replace(tmp, path)


class _BackgroundFsync:
    """Flushes files to stable storage off the caller's thread.

    A written (not yet fsynced) file already survives a crash of the kernel
    process; the fsync, which costs milliseconds, only guards against power loss,
    so it need not delay the user's cell.
    """

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Path] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, path: Path) -> None:
        self._queue.put(path)
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="ship-fsync", daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        while True:
            path = self._queue.get()
            try:
                fd = os.open(path, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            except OSError:
                pass  # replaced or written already; the newer version gets its own fsync


background_fsync = _BackgroundFsync()


def read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


@dataclass
class WriteState:
    """The writer's progress on one record, so a retry resumes instead of duplicating."""

    run_id: str | None = None
    attempts: int = 0
    last_error: str | None = None
    next_attempt_at: float = 0.0


class Spool:
    """Durable queue of run records under `.ship/spool/`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.pending_dir = directory / "pending"
        self.done_dir = directory / "done"

    def ensure(self) -> None:
        self.pending_dir.mkdir(parents=True, exist_ok=True)
        self.done_dir.mkdir(parents=True, exist_ok=True)

    # -- the kernel side -------------------------------------------------------------
    def record_dir(self, record_id: str) -> Path:
        return self.pending_dir / record_id

    def open_record(self, record: RunRecord) -> Path:
        """Create the record's folder and write its first (RUNNING) version."""
        folder = self.record_dir(record.record_id)
        folder.mkdir(parents=True, exist_ok=False)
        path = folder / RECORD_FILE
        # First version: nothing to replace, so no rename; a reader that catches it
        # half-written skips it (it is RUNNING, not ready) and reads it again later.
        with open(path, "x", encoding="utf-8") as fh:
            json.dump(record.to_json(), fh, separators=(",", ":"), default=str)
        background_fsync.submit(path)
        return folder

    def save_record(self, record: RunRecord) -> None:
        path = self.record_dir(record.record_id) / RECORD_FILE
        write_json_atomic(path, record.to_json(), durable=False)
        background_fsync.submit(path)

    # -- the writer side -------------------------------------------------------------
    def pending(self) -> Iterator[str]:
        """Record ids waiting to be written, oldest first."""
        try:
            names = sorted(p.name for p in self.pending_dir.iterdir() if p.is_dir())
        except FileNotFoundError:
            return
        yield from names

    def load(self, record_id: str) -> RunRecord:
        return RunRecord.from_json(read_json(self.record_dir(record_id) / RECORD_FILE))

    def load_state(self, record_id: str) -> WriteState:
        try:
            return WriteState(**read_json(self.record_dir(record_id) / STATE_FILE))
        except FileNotFoundError:
            return WriteState()

    def save_state(self, record_id: str, state: WriteState) -> None:
        write_json_atomic(self.record_dir(record_id) / STATE_FILE, asdict(state))

    def mark_done(self, written: WrittenRun) -> None:
        """Record where the run landed, keep its final record, drop its other files."""
        folder = self.record_dir(written.record_id)
        shutil.copyfile(folder / RECORD_FILE, self.done_dir / f"{written.record_id}.record.json")
        write_json_atomic(self.done_dir / f"{written.record_id}.json", asdict(written))
        shutil.rmtree(folder, ignore_errors=True)

    def written_record(self, record_id: str) -> RunRecord | None:
        """The final record of a run already written to MLflow."""
        try:
            return RunRecord.from_json(read_json(self.done_dir / f"{record_id}.record.json"))
        except FileNotFoundError:
            return None

    def written(self, record_id: str) -> WrittenRun | None:
        try:
            return WrittenRun(**read_json(self.done_dir / f"{record_id}.json"))
        except FileNotFoundError:
            return None

    def all_written(self) -> list[WrittenRun]:
        try:
            files = sorted(f for f in self.done_dir.glob("*.json")
                           if not f.name.endswith(".record.json"))
        except FileNotFoundError:
            return []
        return [WrittenRun(**read_json(f)) for f in files]

    def is_ready(self, record: RunRecord) -> bool:
        """A final record is ready once its files are captured; a RUNNING or still
        completing one is ready once its kernel is gone (what it captured is written)."""
        if record.status in FINAL_STATUSES and not record.completing:
            return True
        return not kernel_alive(record)


def kernel_alive(record: RunRecord) -> bool:
    """Whether the process that opened the record still runs (pid reuse guarded)."""
    import psutil

    try:
        proc = psutil.Process(record.kernel_pid)
        return bool(abs(proc.create_time() - record.kernel_started) < 1.0)
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return False
