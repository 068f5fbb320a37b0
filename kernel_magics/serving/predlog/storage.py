"""Where a prediction log lives: a local folder or any filesystem pyarrow or fsspec knows.

:class:`LogLocation` is the one way every part of Ship reaches a log: the writer
(writer.py), compaction, the request index, and every reader (``ship logs``, drift,
cost, the Services panel's traffic, retraining data, review). A location is a path, a
``file://`` URL, or a URL pyarrow's filesystems understand (``s3://`` honouring
``AWS_ENDPOINT_URL``, ``gs://``, ``hdfs://``); other schemes go through fsspec when it is
installed, or through a factory given to :func:`register_filesystem`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.fs as pafs

from .format import is_temporary, stale_segments

FilesystemFactory = Callable[[str], tuple[pafs.FileSystem, str]]
_FACTORIES: dict[str, FilesystemFactory] = {}


def register_filesystem(scheme: str, factory: FilesystemFactory) -> None:
    """Use ``factory(url) -> (pyarrow filesystem, path)`` for log URLs with ``scheme``."""
    _FACTORIES[scheme] = factory


def open_filesystem(location: str | os.PathLike[str]) -> tuple[pafs.FileSystem, str]:
    """The filesystem and root path for a log location (path or URL)."""
    text = os.fspath(location)
    scheme = text.split("://", 1)[0] if "://" in text else ""
    if scheme in ("", "file"):
        path = text[len("file://"):] if scheme else text
        return pafs.LocalFileSystem(), os.path.abspath(os.path.expanduser(path))
    if scheme in _FACTORIES:
        return _FACTORIES[scheme](text)
    try:
        fs, path = pafs.FileSystem.from_uri(text)
        return fs, str(path).rstrip("/")
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        import fsspec  # optional: only for schemes pyarrow lacks

        fs, path = fsspec.core.url_to_fs(text)
        return pafs.PyFileSystem(pafs.FSSpecHandler(fs)), str(path).rstrip("/")


class LogLocation:
    """A prediction log's filesystem and root, and how its files are found."""

    def __init__(self, url: str | os.PathLike[str]) -> None:
        self.url = os.fspath(url)
        self.fs, self.root = open_filesystem(self.url)
        self.local = isinstance(self.fs, pafs.LocalFileSystem)

    def __repr__(self) -> str:
        return f"LogLocation({self.url!r})"

    def __str__(self) -> str:
        return self.url

    def exists(self) -> bool:
        """True once anything was written there (object stores have no empty folders)."""
        return bool(self.fs.get_file_info(self.root).type == pafs.FileType.Directory)

    def files(self, stream: str, since: datetime | None = None, *,
              suffix: str = ".parquet") -> list[str]:
        """A stream's files, oldest day first: whole days before ``since`` skipped,
        files being written skipped, and the segments of an hour already merged into
        its ``compact-`` file (a compaction stopped half-way) skipped."""
        first_day = None if since is None else \
            f"date={since.astimezone(UTC).date().isoformat()}"
        days = self.fs.get_file_info(pafs.FileSelector(f"{self.root}/{stream}",
                                                       allow_not_found=True))
        found: list[str] = []
        for day in sorted((d for d in days if d.type == pafs.FileType.Directory),
                          key=lambda d: d.base_name):
            if not day.base_name.startswith("date=") or \
                    (first_day is not None and day.base_name < first_day):
                continue
            infos = self.fs.get_file_info(pafs.FileSelector(day.path))
            names = {i.base_name: i.mtime for i in infos if i.type == pafs.FileType.File
                     and i.base_name.endswith(suffix) and not is_temporary(i.base_name)}
            stale = stale_segments(names)
            found += [f"{day.path}/{n}" for n in sorted(names) if n not in stale]
        return found

    def open(self, path: str) -> pa.NativeFile:
        """A file of the log, for reading (pyarrow's random-access file)."""
        return self.fs.open_input_file(path)

    def published(self, path: str) -> contextlib.AbstractContextManager[str]:
        """See :func:`published`."""
        return published(self.fs, path)

    def request_key(self) -> bytes:
        """See :func:`request_key`."""
        return request_key(self.fs, self.root)


@contextlib.contextmanager
def published(fs: pafs.FileSystem, path: str) -> Iterator[str]:
    """Where to write the file that appears at ``path`` once the block ends, whole.

    On a local file system that is a hidden temporary name beside it, renamed at the end
    and deleted if the block raises, so readers never see half a file; object stores
    publish whole objects by themselves, so there it is ``path``."""
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
