"""Compaction of the prediction log: one file per closed hour instead of a file a second.

A serving process writes a segment every flush interval (1 s) in which it logged
anything, so a service with steady traffic, however light, leaves 86,400 files a day per
process. Readers pay per file (DuckDB about 0.2 ms, a pyarrow read about 1.8 ms): a week
of segments takes minutes to scan. :func:`compact_log` merges each closed hour's
segments of a stream into one file, zstd-compressed (about half the size of the
segments' snappy), in row groups of up to ``ROW_GROUP_ROWS`` requests, then deletes them:

    LOG/predictions/date=D/part-20261122T101500.123456-<pid>-<seq>.parquet   (3,600 of them)
    LOG/predictions/date=D/compact-20261122T10.parquet                        (one)

It is safe to run beside the servers and the readers:

- only hours that ended at least ``older_than`` ago (default 1 h, at least 5 min) are
  touched: segments are named when they are written, so no process writes into them
  any more (hosts writing one log must agree on the time within ``older_than``);
- the merged file appears whole (a hidden temporary name, then a rename; object stores
  publish whole objects) before any segment is deleted;
- while a compacted hour still has segments (between the rename and the deletes, or
  after a crash there), this package's readers skip them
  (:meth:`~.storage.LogLocation.files`); a plain DuckDB glob counts them twice until the
  next run deletes them;
- one compaction at a time per local log (a lock file; object stores: run one, say a
  Kubernetes CronJob with ``concurrencyPolicy: Forbid``);
- an hour whose segments cannot share a file (a feature that is numbers in one version
  and text in another) or cannot be read is left as it is, and reported.

Feature sets that differ (two model versions) share the file: their ``inputs`` structs
are merged, a feature a request did not have is null.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from ..errors import InputError
from .format import (
    COMPACT_NAME,
    HOUR_FORMAT,
    PARQUET_OPTIONS,
    PART_NAME,
    SCHEMA_VERSION,
    VERSION_KEY,
    compact_name,
    is_temporary,
    typed_schema,
    with_inputs,
)
from .reader import parse_duration
from .storage import LogLocation, published

STREAMS = ("predictions", "feedback")
MIN_AGE = timedelta(minutes=5)
ROW_GROUP_ROWS = 131_072
COMPACT_OPTIONS: dict[str, Any] = {**PARQUET_OPTIONS, "compression": "zstd"}


@dataclass(frozen=True)
class Hour:
    """The segments of one stream named in one closed hour, and its merged file if any."""

    stream: str
    folder: str
    key: str  # YYYYmmddTHH, UTC
    parts: tuple[str, ...]
    merged: str | None  # an existing compact-<key>.parquet

    @property
    def start(self) -> datetime:
        return datetime.strptime(self.key, HOUR_FORMAT).replace(tzinfo=UTC)

    @property
    def target(self) -> str:
        return f"{self.folder}/{compact_name(self.key)}"


@dataclass
class HourResult:
    """What compaction did with one hour (``note``: why it was left, or what it found)."""

    stream: str
    hour: str  # ISO start, UTC
    segments: int = 0  # merged into the file
    rows: int = 0  # rows of the file written
    deleted: int = 0  # segments deleted
    path: str | None = None  # the file written
    note: str | None = None
    compacted: bool = False


@dataclass
class CompactResult:
    """One compaction of a log folder."""

    location: str
    cutoff: str  # ISO time, UTC: hours that ended before it were looked at
    hours: list[HourResult] = field(default_factory=list)
    temporary_removed: int = 0
    missing: bool = False  # no log there yet (compact_log with missing_ok)

    @property
    def segments(self) -> int:
        return sum(h.segments for h in self.hours)

    @property
    def deleted(self) -> int:
        return sum(h.deleted for h in self.hours)

    @property
    def files(self) -> list[str]:
        return [h.path for h in self.hours if h.path is not None]

    @property
    def skipped(self) -> list[HourResult]:
        return [h for h in self.hours if not h.compacted]

    def summary(self) -> str:
        """What was done, for people (the CLIs print it)."""
        if self.missing:
            return f"no prediction log at {self.location} yet: nothing to compact"
        if not self.hours and not self.temporary_removed:
            return (f"nothing to merge in {self.location}: no segments in hours that "
                    f"ended before {self.cutoff}")
        files = len(self.files)
        lines = [f"merged {self.segments} segments into {files} file{'' if files == 1 else 's'}"
                 f" in {self.location}"]
        if self.deleted > self.segments:
            lines.append(f"deleted {self.deleted - self.segments} segments an earlier "
                         "compaction had already merged")
        if self.temporary_removed:
            lines.append(f"removed {self.temporary_removed} temporary files of killed writers")
        lines += [f"left {h.stream} of {h.hour}: {h.note}" for h in self.skipped]
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {"location": self.location, "cutoff": self.cutoff, "segments": self.segments,
                "deleted": self.deleted, "files": self.files,
                "temporary_removed": self.temporary_removed, "missing": self.missing,
                "hours": [vars(h) for h in self.hours]}


def parse_age(value: str | timedelta) -> timedelta:
    """``older_than`` as a timedelta (a duration such as ``"90m"``), at least MIN_AGE."""
    age = value if isinstance(value, timedelta) else parse_duration(value)
    if age is None:
        raise InputError(f"--older-than {value!r}: use a duration like 30m, 1h or 1d.",
                         field="older_than")
    if age < MIN_AGE:
        raise InputError(f"--older-than {value!r} is too recent: at least 5m. Segments are "
                         "named when they are written; an hour is merged once no process "
                         "can still write into it.", field="older_than")
    return age


class LogCompactor:
    """Plans and runs the compaction of one log (a folder or a pyarrow filesystem URL)."""

    def __init__(self, location: str | os.PathLike[str], *,
                 older_than: str | timedelta = timedelta(hours=1),
                 now: datetime | None = None, missing_ok: bool = False) -> None:
        """``missing_ok``: no log there (yet) is not an error; :attr:`missing` says so."""
        self.location = os.fspath(location)
        log = LogLocation(self.location)
        self.fs, self.root = log.fs, log.root
        self.cutoff = (now or datetime.now(UTC)) - parse_age(older_than)
        # on an object store a "folder" is there once anything is under it
        self.missing = self.fs.get_file_info(self.root).type != pafs.FileType.Directory
        if self.missing and not missing_ok:
            raise InputError(f"no prediction log at {self.location}: the folder holds "
                             "predictions/ and feedback/ (`ship serve` writes "
                             ".ship/services/NAME/log/).", field="log")

    def listing(self) -> tuple[list[Hour], list[str]]:
        """One pass over the streams: the closed hours (oldest first), and the hidden
        temporary files older than the cutoff (left by writers killed mid-write)."""
        found: dict[tuple[str, str, str], list[str]] = {}
        merged: dict[tuple[str, str, str], str] = {}
        stale: list[str] = []
        for stream in STREAMS:
            selector = pafs.FileSelector(f"{self.root}/{stream}", recursive=True,
                                         allow_not_found=True)
            for info in self.fs.get_file_info(selector):
                if info.type != pafs.FileType.File:
                    continue
                folder, _, name = info.path.rpartition("/")
                if is_temporary(name):
                    if info.mtime is not None and info.mtime.astimezone(UTC) < self.cutoff:
                        stale.append(info.path)
                    continue
                part, whole = PART_NAME.match(name), COMPACT_NAME.match(name)
                if part is not None:
                    found.setdefault((stream, folder, part.group(1)), []).append(info.path)
                elif whole is not None:
                    merged[(stream, folder, whole.group(1))] = info.path
        hours = [Hour(stream, folder, key, tuple(sorted(parts)), merged.get((stream, folder, key)))
                 for (stream, folder, key), parts in found.items()]
        closed = sorted((h for h in hours if h.start + timedelta(hours=1) <= self.cutoff),
                        key=lambda h: (h.key, h.stream, h.folder))
        return closed, stale

    def compact(self, hour: Hour) -> HourResult:
        """Merge one hour's segments into its file, then delete them."""
        result = HourResult(hour.stream, hour.start.isoformat())
        if hour.merged is not None:  # an earlier run wrote the file, then stopped
            result.deleted = self.delete(hour.parts)
            result.compacted = True
            result.note = f"deleted {result.deleted} segments already in {hour.merged}"
            return result
        try:
            schema = pa.unify_schemas(
                [self._read(p, schema_only=True) for p in hour.parts],
                promote_options="permissive").with_metadata(
                    {VERSION_KEY: SCHEMA_VERSION.encode()})
        except (pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
            result.note = f"left as it is: its segments cannot share one file ({exc})"
            return result
        except (OSError, pa.ArrowException) as exc:  # vanished (another compactor), unreadable
            result.note = f"left as it is: a segment could not be read ({exc})"
            return result
        try:
            result.rows = self._write(hour, schema)
        except (OSError, pa.ArrowException) as exc:
            result.note = f"left as it is: {exc}"
            return result
        result.segments, result.path, result.compacted = len(hour.parts), hour.target, True
        result.deleted = self.delete(hour.parts)
        return result

    def _write(self, hour: Hour, schema: pa.Schema) -> int:
        """Stream the segments into the hour's file (temporary name, then renamed)."""
        rows, pending, pending_rows = 0, [], 0
        with published(self.fs, hour.target) as path, \
                pq.ParquetWriter(path, schema, filesystem=self.fs, **COMPACT_OPTIONS) as writer:
            for part in hour.parts:
                table = _conform(self._read(part), schema)
                pending.append(table)
                pending_rows += table.num_rows
                if pending_rows >= ROW_GROUP_ROWS:
                    writer.write_table(pa.concat_tables(pending), ROW_GROUP_ROWS)
                    rows, pending, pending_rows = rows + pending_rows, [], 0
            if pending:
                writer.write_table(pa.concat_tables(pending), ROW_GROUP_ROWS)
                rows += pending_rows
        return rows

    def _read(self, path: str, *, schema_only: bool = False) -> Any:
        """A segment's table, or its schema, with typed ``inputs`` (a segment's matrix
        becomes the struct here: :func:`~.format.with_inputs`). A plain file read:
        pq.read_table's dataset setup costs 1.4 ms more per file."""
        with self.fs.open_input_file(path) as handle:
            file = pq.ParquetFile(handle)
            if not schema_only:
                return with_inputs(file.read())
            schema = file.schema_arrow
            if "matrix" not in schema.names:
                return schema
            # the struct's type from the layout column alone (a few bytes)
            return typed_schema(schema, file.read(columns=["matrix_layout"]).column(0))

    def delete(self, paths: Iterable[str]) -> int:
        """Delete files (merged segments, temporary ones of killed writers); how many
        were there."""
        deleted = 0
        for path in paths:
            with contextlib.suppress(FileNotFoundError):
                self.fs.delete_file(path)
                deleted += 1
        return deleted

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """One compaction at a time for a local log (a no-op for object stores)."""
        if not isinstance(self.fs, pafs.LocalFileSystem):
            yield
            return
        import fcntl

        try:
            handle = open(Path(self.root) / ".compact.lock", "a")  # noqa: SIM115
        except OSError as exc:
            raise InputError(f"cannot compact {self.location}: {exc.strerror}; compaction "
                             "rewrites the log, so it needs write access.",
                             field="log") from None
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise InputError(f"another compaction of {self.location} is running; "
                                 "try again when it has finished.", field="log") from None
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def compact_log(location: str | os.PathLike[str], *,
                older_than: str | timedelta = timedelta(hours=1), now: datetime | None = None,
                progress: Callable[[list[Hour]], Iterable[Hour]] | None = None,
                missing_ok: bool = False) -> CompactResult:
    """Merge every closed hour's segments of a log into one file per hour and stream.
    ``progress`` wraps the list of hours (say in a tqdm bar); ``missing_ok``: no log
    there yet (nothing served so far) is an empty result, not an error."""
    compactor = LogCompactor(location, older_than=older_than, now=now, missing_ok=missing_ok)
    result = CompactResult(compactor.location, compactor.cutoff.isoformat(),
                           missing=compactor.missing)
    if compactor.missing:
        return result
    with compactor.lock():
        hours, stale = compactor.listing()
        for hour in progress(hours) if progress is not None else hours:
            result.hours.append(compactor.compact(hour))
        result.temporary_removed = compactor.delete(stale)
    return result


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` in the merged schema (missing columns and struct fields null)."""
    if table.schema.equals(schema, check_metadata=False):
        return table
    merged = pa.concat_tables([schema.empty_table(), table], promote_options="permissive")
    return merged.select(schema.names).cast(schema)
