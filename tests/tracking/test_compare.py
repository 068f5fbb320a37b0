"""Comparing runs: the pure differences, and ids parsing."""

from __future__ import annotations

import pytest

from kernel_magics.errors import ValidationError
from kernel_magics.tracking.catalog import DataInput, RunCost
from kernel_magics.tracking.compare import ComparedRun, compare_runs, parse_ids, parse_lock
from kernel_magics.tracking.detail import EnvironmentInfo, RunDetail


def _run(name: str, *, params: dict[str, str], metrics: dict[str, float | None],
         digest: str, cell: str | None, lock: str | None, python: str = "3.11.7",
         written: bool = True) -> ComparedRun:
    detail = RunDetail(id=name, run_id=name, record_id=None, name=name, experiment="e",
                       experiment_id="1", status="FINISHED", start_time_ms=0,
                       end_time_ms=1, written=written, params=params, metrics=metrics,
                       data=[DataInput(name="df", digest=digest, shape=[10, 2])],
                       cost=RunCost(wall_s=1.0, amount=0.001),
                       environment=EnvironmentInfo(python=python, platform="Linux"),
                       cell_source=cell)
    return ComparedRun(detail=detail, lock=lock)


def test_parse_lock_skips_comments_and_normalises_names() -> None:
    text = "# python 3.11\nNumPy==2.4.6\nscikit_learn==1.9.1  # pinned\n\n-e ./local\n"
    assert parse_lock(text) == {"numpy": "2.4.6", "scikit-learn": "1.9.1"}


def test_every_section_differs_where_it_should() -> None:
    a = _run("a", params={"lr": "0.1", "epochs": "3"}, metrics={"acc": 0.9}, digest="d1",
             cell="lr = 0.1\nepochs = 3\nfit()\n", lock="numpy==2.4.6\npandas==3.1.1\n")
    b = _run("b", params={"lr": "0.2", "epochs": "3"}, metrics={"acc": 0.8, "f1": 0.7},
             digest="d1", cell="lr = 0.2\nepochs = 3\nfit()\nsave()\n",
             lock="numpy==2.4.6\npandas==3.2.0\ntorch==2.13.0\n", python="3.12.1")

    result = compare_runs([a, b])

    assert [(r.key, r.values, r.differs) for r in result.params] == [
        ("epochs", ["3", "3"], False), ("lr", ["0.1", "0.2"], True)]
    assert [(r.key, r.values) for r in result.metrics] == [("acc", [0.9, 0.8]),
                                                          ("f1", [None, 0.7])]
    assert {r.key: r.differs for r in result.cost}["wall_s"] is False
    env = result.environment
    assert env.python.values == ["3.11.7", "3.12.1"] and env.python.differs
    assert env.platform.differs is False
    assert [(p.name, p.versions) for p in env.packages] == [
        ("pandas", ["3.1.1", "3.2.0"]), ("torch", [None, "2.13.0"])]
    assert env.same_count == 1 and env.locked == [True, True]
    assert [(row.name, row.differs) for row in result.data] == [("df", False)]
    code = result.code
    assert not code.identical and code.diffs[0] is None
    assert code.diffs[1] is not None and "+save()" in code.diffs[1]
    assert code.changed_lines == [[1], [1, 4]]
    assert result.notes == []


def test_missing_lock_files_and_cells_are_marked_not_invented() -> None:
    a = _run("a", params={}, metrics={}, digest="d1", cell=None, lock=None)
    b = _run("b", params={}, metrics={}, digest="d2", cell="x = 1\n", lock="numpy==1\n",
             written=False)

    result = compare_runs([a, b])

    assert result.environment.locked == [False, True]
    assert result.environment.packages == [] and result.environment.same_count == 1
    assert result.data[0].differs is True
    assert result.code.sources == [None, "x = 1\n"]
    assert result.notes  # one run is still pending


def test_compare_needs_two_runs() -> None:
    a = _run("a", params={}, metrics={}, digest="d", cell=None, lock=None)
    with pytest.raises(ValidationError):
        compare_runs([a])


@pytest.mark.parametrize("raw", ["", "a", "a,a", ",".join("abcdefghijklm")])
def test_parse_ids_refuses_bad_lists(raw: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_ids(raw)
    assert info.value.field == "ids"


def test_parse_ids() -> None:
    assert parse_ids(" a, b ,c,") == ["a", "b", "c"]
