"""The prediction log's file names, and how a file appears in the log whole.

    LOG/<stream>/date=YYYY-MM-DD/part-<UTC time>-<pid>-<seq>.parquet   a segment (predlog)
    LOG/<stream>/date=YYYY-MM-DD/compact-<YYYYmmddTHH>.parquet          an hour merged (logcompact)
    LOG/<stream>/date=YYYY-MM-DD/.<name>.tmp                           being written
    LOG/request-key                                                     signs request ids

Writers (:mod:`.predlog`, :mod:`.logcompact`) name files here and publish them with
:func:`published`; readers (:mod:`.logread`, :mod:`.requestindex`) and compaction parse
the names with the patterns here. Light on purpose: the DuckDB reader imports it.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow.fs as pafs

HOUR_FORMAT = "%Y%m%dT%H"  # an hour's key in file names, UTC
# group 1: the hour the segment was written in
PART_NAME = re.compile(r"^part-(\d{8}T\d{2})\d{4}\.\d{6}-\d+-\d+\.parquet$")
# group 1: the hour merged
COMPACT_NAME = re.compile(r"^compact-(\d{8}T\d{2})\.parquet$")


def segment_name(written: datetime, seq: int) -> str:
    """A segment's name: when it was written (UTC), this process and its sequence number
    (so names never collide between processes, and sort by time)."""
    return f"part-{written:%Y%m%dT%H%M%S.%f}-{os.getpid()}-{seq:06d}.parquet"


def compact_name(hour: str) -> str:
    """The name of the file one hour (``HOUR_FORMAT``) is merged into."""
    return f"compact-{hour}.parquet"


def is_temporary(name: str) -> bool:
    """True for a file :func:`published` is still writing (or a killed writer left)."""
    return name.startswith(".") and name.endswith(".tmp")


@contextlib.contextmanager
def published(fs: pafs.FileSystem, path: str) -> Iterator[str]:
    """Where to write the file that appears at ``path`` once the block ends, whole.

    On a local file system that is a hidden temporary name beside it, renamed at the end
    and deleted if the block raises, so readers never see half a file; object stores
    publish whole objects by themselves, so there it is ``path``."""
    import pyarrow.fs as pafs

    if not isinstance(fs, pafs.LocalFileSystem):
        yield path
        return
    folder, _, name = path.rpartition("/")
    temporary = f"{folder}/.{name}.tmp"
    try:
        yield temporary
    except BaseException:
        with contextlib.suppress(OSError):
            fs.delete_file(temporary)
        raise
    fs.move(temporary, path)


KEY_FILE = "request-key"


def request_key(fs: pafs.FileSystem, root: str) -> bytes:
    """The key that signs the request ids of the log at ``root`` (wire.py), made on first
    use: every worker, every restart and every reader of the log shares it, so an id
    answered today still takes feedback next month. ``SHIP_REQUEST_KEY`` (hex) overrides
    it, for replicas that start together on an object store."""
    import secrets
    import time

    path = f"{root}/{KEY_FILE}"
    for _ in range(100):  # another worker may be writing it right now
        try:
            with fs.open_input_stream(path) as stream:
                text = stream.read().decode("ascii").strip()
        except FileNotFoundError:
            fs.create_dir(root, recursive=True)
            _create_key(fs, path, secrets.token_hex(16))
            continue
        if len(text) == 32:
            return bytes.fromhex(text)
        time.sleep(0.01)
    raise OSError(f"{path} does not hold a key (32 hex digits); delete it to make a new "
                  "one (request ids answered before then can take no more feedback).")


def _create_key(fs: pafs.FileSystem, path: str, key: str) -> None:
    import pyarrow.fs as pafs

    if isinstance(fs, pafs.LocalFileSystem):  # first writer wins, atomically
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return
        with os.fdopen(fd, "w") as out:
            out.write(key)
        return
    with fs.open_output_stream(path) as out:  # object stores: last writer wins
        out.write(key.encode("ascii"))
