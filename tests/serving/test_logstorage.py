"""The log's file names, and files that appear whole or not at all."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow.fs as pafs
import pytest

from kernel_magics.serving.predlog.format import (
    COMPACT_NAME,
    PART_NAME,
    compact_name,
    is_temporary,
    segment_name,
)
from kernel_magics.serving.predlog.storage import published


def test_names_parse_back_to_their_hour() -> None:
    name = segment_name(datetime(2026, 11, 20, 10, 15, 0, 123456, tzinfo=UTC), 7)
    match = PART_NAME.match(name)
    assert match is not None and match.group(1) == "20261120T10"
    whole = COMPACT_NAME.match(compact_name("20261120T10"))
    assert whole is not None and whole.group(1) == "20261120T10"
    assert not is_temporary(name) and not PART_NAME.match(f".{name}.tmp")


def test_a_local_file_appears_whole(tmp_path: Path) -> None:
    fs, target = pafs.LocalFileSystem(), f"{tmp_path}/part.parquet"
    with published(fs, target) as path:
        assert is_temporary(Path(path).name) and Path(path).parent == tmp_path
        Path(path).write_text("half")
        assert not Path(target).exists()  # readers see nothing yet
    assert Path(target).read_text() == "half" and [p.name for p in tmp_path.iterdir()] == [
        "part.parquet"]


def test_a_failed_write_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(OSError, match="disk full"), \
            published(pafs.LocalFileSystem(), f"{tmp_path}/part.parquet") as path:
        Path(path).write_text("half")
        raise OSError("disk full")
    assert list(tmp_path.iterdir()) == []


def test_an_object_store_is_written_in_place(tmp_path: Path) -> None:
    store = pafs.SubTreeFileSystem(str(tmp_path), pafs.LocalFileSystem())  # no rename
    with published(store, "part.parquet") as path:
        assert path == "part.parquet"
