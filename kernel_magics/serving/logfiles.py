"""The prediction log's file names, and how a file appears in the log whole.

    LOG/<stream>/date=YYYY-MM-DD/part-<UTC time>-<pid>-<seq>.parquet   a segment (predlog)
    LOG/<stream>/date=YYYY-MM-DD/compact-<YYYYmmddTHH>.parquet          an hour merged (logcompact)
    LOG/<stream>/date=YYYY-MM-DD/.<name>.tmp                           being written

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
