"""Full-content fingerprints: every value counts, equal content gives an equal digest."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
import torch

from kernel_magics.tracking.fingerprint import fingerprint, is_data

ROWS = 1_000_000


def digest(value: object) -> str:
    fp = fingerprint("value", value)
    assert fp is not None
    return fp.digest


@pytest.fixture(scope="module")
def big_frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({
        "id": np.arange(ROWS, dtype="int64"),
        "amount": rng.normal(size=ROWS),
        "city": pd.Series(rng.choice(["Paris", "Oslo", "Lima"], size=ROWS)).astype("str"),
        "note": pd.Series([f"n{i}" for i in range(ROWS)], dtype=object),
    })


def test_million_rows_equal_copy_has_equal_fingerprint(big_frame: pd.DataFrame) -> None:
    fp = fingerprint("df", big_frame)
    assert fp is not None
    assert fp.kind == "pandas"
    assert fp.shape == [ROWS, 4]
    assert fp.schema == {"id": "int64", "amount": "float64", "city": str(big_frame["city"].dtype),
                         "note": "object"}
    assert fp.nbytes >= ROWS * (8 + 8)
    assert digest(big_frame.copy(deep=True)) == fp.digest


@pytest.mark.parametrize(("column", "new_value"), [
    ("amount", 123.456),  # numeric column
    ("id", -1),
    ("city", "Lyon"),  # string column (pandas' default string dtype)
    ("note", "changed"),  # object column of Python strings
])
def test_million_rows_fingerprint_sees_the_last_value(big_frame: pd.DataFrame, column: str,
                                                     new_value: object) -> None:
    changed = big_frame.copy(deep=True)
    changed.loc[ROWS - 1, column] = new_value
    assert changed[column].dtype == big_frame[column].dtype
    assert digest(changed) != digest(big_frame)


def test_a_tiny_float_change_in_the_last_row_changes_the_fingerprint(
        big_frame: pd.DataFrame) -> None:
    changed = big_frame.copy(deep=True)
    changed.loc[ROWS - 1, "amount"] = np.nextafter(changed.loc[ROWS - 1, "amount"], np.inf)
    assert digest(changed) != digest(big_frame)


def test_frame_structure_is_part_of_the_fingerprint() -> None:
    frame = pd.DataFrame({"a": [1, 2, 3], "b": [0.5, 0.25, 0.125]})
    base = digest(frame)
    assert digest(frame.rename(columns={"b": "c"})) != base  # column name
    assert digest(frame.astype({"a": "float64"})) != base  # dtype, same values
    assert digest(frame.set_axis([10, 11, 12])) != base  # index labels
    assert digest(frame[["b", "a"]]) != base  # column order
    assert digest(frame.iloc[:2]) != base  # fewer rows


def test_series_and_categoricals() -> None:
    series = pd.Series(np.arange(10.0), name="x")
    assert digest(series) == digest(series.copy())
    assert digest(series.rename("y")) != digest(series)

    cat = pd.Series(pd.Categorical(["lo", "hi", "lo", "mid"], categories=["lo", "mid", "hi"]))
    same = pd.Series(pd.Categorical(["lo", "hi", "lo", "mid"], categories=["lo", "mid", "hi"]))
    assert digest(cat) == digest(same)
    last_changed = cat.copy()
    last_changed.iloc[-1] = "hi"
    assert digest(last_changed) != digest(cat)
    reordered = pd.Series(pd.Categorical(["lo", "hi", "lo", "mid"],
                                         categories=["hi", "mid", "lo"]))
    assert digest(reordered) != digest(cat)  # same labels, different codes and categories
    frame = pd.DataFrame({"c": cat})
    fp = fingerprint("frame", frame)
    assert fp is not None and fp.schema == {"c": "category"}


def test_datetimes_with_time_zone() -> None:
    times = pd.Series(pd.date_range("2024-01-01", periods=1000, freq="h", tz="Europe/Paris"))
    changed = times.copy()
    changed.iloc[-1] = changed.iloc[-1] + pd.Timedelta(seconds=1)
    assert digest(times) == digest(times.copy())
    assert digest(changed) != digest(times)
    assert digest(times.dt.tz_convert("UTC")) != digest(times)  # the dtype carries the zone


def test_ndarray_layout_does_not_matter_but_content_shape_and_dtype_do() -> None:
    array = np.arange(24, dtype="float32").reshape(4, 6)
    fp = fingerprint("array", array)
    assert fp is not None
    assert (fp.kind, fp.shape, fp.schema, fp.nbytes) == ("numpy", [4, 6], {"dtype": "float32"}, 96)
    assert digest(np.asfortranarray(array)) == fp.digest
    assert digest(array.reshape(6, 4)) != fp.digest
    assert digest(array.astype("float64")) != fp.digest
    changed = array.copy()
    changed[-1, -1] += 1
    assert digest(changed) != fp.digest
    # A strided view is hashed by its values, like a copy of it.
    assert digest(array[:, ::2]) == digest(array[:, ::2].copy())


def test_object_ndarray() -> None:
    array = np.array(["a", 1, None, 2.5], dtype=object)
    changed = array.copy()
    changed[-1] = 2.75
    assert digest(array) == digest(array.copy())
    assert digest(changed) != digest(array)


def test_torch_tensors() -> None:
    tensor = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    fp = fingerprint("t", tensor)
    assert fp is not None
    assert (fp.kind, fp.shape, fp.nbytes) == ("torch", [3, 4], 48)
    assert fp.schema == {"dtype": "torch.float32", "device": "cpu"}
    assert digest(tensor.t()) == digest(tensor.t().contiguous())  # non-contiguous view
    assert digest(tensor.reshape(4, 3)) != fp.digest
    changed = tensor.clone()
    changed[-1, -1] = 99.0
    assert digest(changed) != fp.digest
    param = torch.nn.Parameter(tensor.clone())  # requires grad: still fingerprinted
    assert digest(param) == fp.digest
    assert digest(torch.tensor([True, False, True])) != digest(torch.tensor([1, 0, 1],
                                                                           dtype=torch.uint8))


def test_what_is_not_data() -> None:
    assert not is_data(np.float64(1.5))
    assert not is_data(np.array(3.0))  # 0-d: a scalar, a metric candidate
    assert not is_data(torch.tensor(0.5))
    assert not is_data([1, 2, 3])
    assert fingerprint("x", {"a": 1}) is None


def test_fingerprint_of_a_200_mb_array(capsys: pytest.CaptureFixture[str]) -> None:
    array = np.random.default_rng(1).random(25_000_000)  # 200 MB of float64
    start = time.perf_counter()
    fp = fingerprint("big", array)
    elapsed = time.perf_counter() - start
    assert fp is not None and fp.nbytes == 200_000_000 and fp.shape == [25_000_000]
    array[-1] += 1.0
    assert digest(array) != fp.digest
    with capsys.disabled():
        print(f"\nfingerprint of 200 MB float64: {elapsed:.3f} s "
              f"({0.2 / max(elapsed, 1e-9):.1f} GB/s; the record says {fp.seconds:.3f} s)")
