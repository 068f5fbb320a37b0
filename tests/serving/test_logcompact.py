"""Compaction of the prediction log: a closed hour's segments become one file, and every
reader (read_log, the drift scan's segment list, plain DuckDB) sees the same requests."""

from __future__ import annotations

import json
import os
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from onnx_models import classifier_schema

from kernel_magics.cli import main as ship
from kernel_magics.serving.__main__ import main as runtime
from kernel_magics.serving.bundle import Bundle, write_bundle
from kernel_magics.serving.errors import InputError
from kernel_magics.serving.inputs import Inputs
from kernel_magics.serving.predlog import (
    Prediction,
    PredictionLog,
    read_log,
    register_filesystem,
)
from kernel_magics.serving.predlog.compact import LogCompactor, compact_log
from kernel_magics.serving.predlog.format import PART_NAME
from kernel_magics.serving.predlog.storage import LogLocation
from kernel_magics.serving.schema import Feature, Schema

HOUR = datetime(2026, 11, 20, 10, tzinfo=UTC)  # the hour the tests' segments are moved into
LATER = datetime(2026, 11, 22, tzinfo=UTC)  # "now" for compaction: that hour is long closed


def write_segments(log_dir: Path, schema: Schema, count: int, *, first: int = 0,
                   model: str = "digits", version: str = "3",
                   feedback: bool = False) -> list[str]:
    """``count`` requests, one segment each (a real log, flushed after every request)."""
    log = PredictionLog(log_dir)
    log.register(model, version, schema, identity=True)
    ids = []
    for i in range(first, first + count):
        rid = f"{model}-{version}-r{i}"
        width = len(schema.feature_names)
        log.append(Prediction(rid, time.time(), model, version, "invocations", 200, 1.0, None,
                   Inputs(rows=1, matrix=np.full((1, width), float(i), np.float32)), None,
                   f"[{i % 10}]".encode(), None))
        if feedback:
            log.feedback(rid, model, i % 10)
        log.flush()
        ids.append(rid)
    log.close()
    return ids


def move_into(log_dir: Path, hour: datetime) -> None:
    """Rename every segment as if it had been written in ``hour`` (same seconds, pid, seq)."""
    for path in list(log_dir.rglob("part-*.parquet")):
        match = PART_NAME.match(path.name)
        assert match is not None
        folder = path.parent.parent / f"date={hour:%Y-%m-%d}"
        folder.mkdir(exist_ok=True)
        path.rename(folder / path.name.replace(match.group(1), f"{hour:%Y%m%dT%H}", 1))
    for folder in log_dir.glob("*/date=*"):
        if not any(folder.iterdir()):
            folder.rmdir()


def duckdb_count(log_dir: Path, stream: str = "predictions") -> int:
    [(count,)] = duckdb.sql(  # the query users type: a plain glob, no Ship code
        f"SELECT count(*) FROM read_parquet('{log_dir}/{stream}/*/*.parquet', "
        "union_by_name=true)").fetchall()
    return int(count)


@pytest.fixture
def digits_schema(digits_bundle: Bundle) -> Schema:
    return digits_bundle.schema


def test_a_closed_hour_becomes_one_file_and_reads_the_same(tmp_path: Path,
                                                           digits_schema: Schema) -> None:
    ids = write_segments(tmp_path, digits_schema, 40, feedback=True)
    move_into(tmp_path, HOUR)
    before = read_log(tmp_path)
    assert len(list(tmp_path.rglob("part-*.parquet"))) == 80  # predictions + feedback

    result = compact_log(tmp_path, now=LATER)

    assert [h.compacted for h in result.hours] == [True, True]
    assert result.segments == 80 and result.deleted == 80 and not result.skipped
    assert not list(tmp_path.rglob("part-*.parquet"))
    merged = tmp_path / "predictions" / "date=2026-11-20" / "compact-20261120T10.parquet"
    assert merged.is_file() and str(merged) in result.files
    assert (tmp_path / "feedback" / "date=2026-11-20" / "compact-20261120T10.parquet").is_file()
    assert pq.ParquetFile(merged).metadata.row_group(0).column(0).compression == "ZSTD"
    after = read_log(tmp_path)
    assert [e.request_id for e in after] == ids == [e.request_id for e in before]
    assert after == before  # inputs, outputs and the joined ground truth alike
    assert after[7].inputs == {n: [7.0] for n in digits_schema.feature_names}
    assert after[7].ground_truth == "7"
    assert duckdb_count(tmp_path) == 40
    assert LogLocation(tmp_path).files("predictions") == [str(merged)]

    again = compact_log(tmp_path, now=LATER)  # nothing left to do
    assert again.hours == [] and merged.is_file() and duckdb_count(tmp_path) == 40


def test_hours_not_yet_closed_are_left_alone(tmp_path: Path, digits_schema: Schema) -> None:
    write_segments(tmp_path, digits_schema, 3)
    parts = sorted(tmp_path.rglob("part-*.parquet"))

    result = compact_log(tmp_path)  # now: this hour has not ended an hour ago

    assert result.hours == [] and sorted(tmp_path.rglob("part-*.parquet")) == parts
    assert not list(tmp_path.rglob("compact-*"))


def test_a_compaction_that_stopped_before_deleting_is_finished(
        tmp_path: Path, digits_schema: Schema) -> None:
    write_segments(tmp_path, digits_schema, 10)
    move_into(tmp_path, HOUR)
    copies = tmp_path / "copies"
    shutil.copytree(tmp_path / "predictions", copies)
    compact_log(tmp_path, now=LATER)
    shutil.copytree(copies, tmp_path / "predictions", dirs_exist_ok=True)  # as if stopped
    assert len(list((tmp_path / "predictions").rglob("part-*.parquet"))) == 10

    # readers skip the segments of a merged hour: no request counted twice
    assert len(read_log(tmp_path)) == 10
    assert [Path(p).name for p in LogLocation(tmp_path).files("predictions")] == \
        ["compact-20261120T10.parquet"]

    result = compact_log(tmp_path, now=LATER)
    assert result.deleted == 10 and result.hours[0].note is not None
    assert "already in" in result.hours[0].note
    assert not list((tmp_path / "predictions").rglob("part-*.parquet"))
    assert duckdb_count(tmp_path) == 10


def test_versions_with_different_features_share_the_file(tmp_path: Path,
                                                        digits_schema: Schema) -> None:
    write_segments(tmp_path, digits_schema, 3)
    numeric = classifier_schema([Feature("age", "float64"), Feature("income", "float64")], 2)
    write_segments(tmp_path, numeric, 2, model="churn", version="1")
    move_into(tmp_path, HOUR)

    result = compact_log(tmp_path, now=LATER)

    assert result.segments == 5 and len(result.files) == 1
    entries = {e.request_id: e for e in read_log(tmp_path)}
    assert entries["churn-1-r1"].inputs is not None
    assert entries["churn-1-r1"].inputs["age"] == [1.0]
    assert entries["churn-1-r1"].inputs["pixel_0"] is None  # not a feature of that version
    assert entries["digits-3-r2"].inputs is not None
    assert entries["digits-3-r2"].inputs["pixel_63"] == [2.0]
    assert entries["digits-3-r2"].inputs["age"] is None


def test_segments_that_cannot_share_a_file_are_left_as_they_are(tmp_path: Path) -> None:
    write_segments(tmp_path, classifier_schema([Feature("x", "float64")], 1), 1,
                   model="a", version="1")
    log = PredictionLog(tmp_path)
    log.register("b", "1", classifier_schema([Feature("x", "string")], 1), identity=False)
    log.append(Prediction("b-1", time.time(), "b", "1", "invocations", 200, 1.0, None,
               Inputs(rows=1, columns={"x": np.array(["paris"], dtype=object)}), None,
               b"[0]", None))
    log.close()
    move_into(tmp_path, HOUR)
    parts = sorted(tmp_path.rglob("part-*.parquet"))

    result = compact_log(tmp_path, now=LATER)

    [hour] = result.hours
    assert not hour.compacted and hour.note is not None
    assert "cannot share one file" in hour.note and "x" in hour.note
    assert sorted(tmp_path.rglob("part-*.parquet")) == parts
    assert not list(tmp_path.rglob("compact-*")) and not list(tmp_path.rglob("*.tmp"))
    assert len(read_log(tmp_path)) == 2


def test_a_segment_that_vanished_leaves_the_hour_untouched(tmp_path: Path,
                                                           digits_schema: Schema) -> None:
    write_segments(tmp_path, digits_schema, 4)
    move_into(tmp_path, HOUR)
    compactor = LogCompactor(tmp_path, now=LATER)
    [hour], _ = compactor.listing()
    Path(hour.parts[1]).unlink()  # another compactor got there first

    result = compactor.compact(hour)

    assert not result.compacted and result.note is not None
    assert "could not be read" in result.note
    assert not list(tmp_path.rglob("compact-*")) and not list(tmp_path.rglob("*.tmp"))
    assert len(list(tmp_path.rglob("part-*.parquet"))) == 3


def test_temporary_files_of_killed_writers_are_removed(tmp_path: Path,
                                                       digits_schema: Schema) -> None:
    write_segments(tmp_path, digits_schema, 1)
    folder = next((tmp_path / "predictions").glob("date=*"))
    stale = folder / ".part-20261120T100000.000000-1-000001.parquet.tmp"
    fresh = folder / ".part-20261122T000000.000000-1-000002.parquet.tmp"
    for path in (stale, fresh):
        path.write_bytes(b"PAR1 half")
    old = (LATER - timedelta(hours=5)).timestamp()
    os.utime(stale, (old, old))
    os.utime(fresh, (LATER.timestamp(), LATER.timestamp()))

    result = compact_log(tmp_path, now=LATER)

    assert result.temporary_removed == 1 and not stale.exists() and fresh.exists()


def test_bad_arguments_say_what_to_do(tmp_path: Path, digits_schema: Schema) -> None:
    with pytest.raises(InputError, match="no prediction log at"):
        compact_log(tmp_path / "nowhere")
    nothing_yet = compact_log(tmp_path / "nowhere", missing_ok=True)
    assert nothing_yet.missing and nothing_yet.to_json()["hours"] == []
    assert not (tmp_path / "nowhere").exists()  # nothing made, no lock file
    write_segments(tmp_path, digits_schema, 1)
    with pytest.raises(InputError, match=r"--older-than 'soon': use a duration like 30m"):
        compact_log(tmp_path, older_than="soon")
    with pytest.raises(InputError, match="too recent: at least 5m"):
        compact_log(tmp_path, older_than="1m")


def test_one_compaction_at_a_time(tmp_path: Path, digits_schema: Schema) -> None:
    write_segments(tmp_path, digits_schema, 2)
    move_into(tmp_path, HOUR)
    with LogCompactor(tmp_path, now=LATER).lock(), \
            pytest.raises(InputError, match="another compaction .* is running"):
        compact_log(tmp_path, now=LATER)
    assert len(list(tmp_path.rglob("part-*.parquet"))) == 2
    assert compact_log(tmp_path, now=LATER).segments == 2  # the lock was let go


def test_ship_logs_compact_and_the_runtime_command(tmp_path: Path, digits_bundle: Bundle,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    bundle = write_bundle(tmp_path / "svc" / "3", manifest=digits_bundle.manifest,
                          schema=digits_bundle.schema, model=digits_bundle.model_path)
    log_dir = tmp_path / "svc" / "log"
    write_segments(log_dir, digits_bundle.schema, 5, feedback=True)
    move_into(log_dir, HOUR)

    cli = CliRunner()
    refused = cli.invoke(ship, ["logs", str(bundle.path), "--compact", "--since", "1h"])
    assert refused.exit_code == 2 and "--since does not apply" in refused.output
    refused = cli.invoke(ship, ["logs", str(bundle.path), "--compact", "--errors",
                                "--limit", "5"])
    assert refused.exit_code == 2 and "--limit, --errors do not apply" in refused.output
    alone = cli.invoke(ship, ["logs", str(bundle.path), "--older-than", "2h"])
    assert alone.exit_code == 2 and "--older-than goes with --compact" in alone.output
    bad = cli.invoke(ship, ["logs", str(bundle.path), "--compact", "--older-than", "1m"])
    assert bad.exit_code == 1 and "at least 5m" in bad.output
    done = cli.invoke(ship, ["logs", str(bundle.path), "--compact"])
    assert done.exit_code == 0, done.output
    assert "merged 10 segments into 2 files" in done.output
    nothing = cli.invoke(ship, ["logs", str(bundle.path), "--compact", "--json"])
    assert nothing.exit_code == 0 and json.loads(nothing.output)["hours"] == []
    assert not list(log_dir.rglob("part-*.parquet")) and duckdb_count(log_dir) == 5
    shown = cli.invoke(ship, ["logs", str(bundle.path), "--since", "1000d"])
    assert shown.exit_code == 0 and shown.output.count("digits-3-r") == 5

    write_segments(log_dir, digits_bundle.schema, 2, first=5)
    move_into(log_dir, HOUR + timedelta(hours=1))
    assert runtime(["compact", str(log_dir)]) == 0
    assert "merged 2 segments into 1 file" in capsys.readouterr().out
    assert duckdb_count(log_dir) == 7
    assert runtime(["compact", str(tmp_path / "missing")]) == 1
    assert "no prediction log at" in capsys.readouterr().err


def test_an_object_store_log_is_compacted_by_the_runtime_command(
        tmp_path: Path, digits_schema: Schema, capsys: pytest.CaptureFixture[str]) -> None:
    """What k8s/compact-log.yaml runs against a log URL: every replica's segments merged,
    and a run before the service logged anything succeeds (--missing-ok)."""
    store = tmp_path / "bucket"
    register_filesystem("compactstore", lambda url: (
        pafs.SubTreeFileSystem(str(store), pafs.LocalFileSystem()),
        url.split("://", 1)[1].split("/", 1)[1]))
    url = "compactstore://bucket/ship/digits"
    assert runtime(["compact", url, "--missing-ok"]) == 0
    assert "no prediction log at compactstore://bucket/ship/digits yet" in \
        capsys.readouterr().out
    assert runtime(["compact", url]) == 1  # without the flag, a missing log is an error
    assert "no prediction log at" in capsys.readouterr().err
    log = PredictionLog(url)  # not a local folder: the log writes whole objects
    assert not log.location.local
    log.register("digits", "3", digits_schema, identity=True)
    for i in range(3):
        log.append(Prediction(f"r{i}", time.time(), "digits", "3", "invocations", 200, 1.0, None,
                   Inputs(rows=1, matrix=np.full((1, 64), float(i), np.float32)), None,
                   b"[0]", None))
        log.flush()
    move_into(store / "ship" / "digits", HOUR)
    assert runtime(["compact", url, "--missing-ok"]) == 0
    assert "merged 3 segments into 1 file" in capsys.readouterr().out
    assert [p.name for p in (store / "ship" / "digits").rglob("*.parquet")] == \
        ["compact-20261120T10.parquet"]
    assert duckdb_count(store / "ship" / "digits") == 3
