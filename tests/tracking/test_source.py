"""The static reading of a cell: which names are params, metric candidates and reads."""

from __future__ import annotations

from kernel_magics.tracking.source import analyse, format_param, papermill_parameters


def test_literal_assignments_are_params_with_their_values() -> None:
    cell = """
lr = 3e-4
momentum = -0.9
offset = -2
layers = [64, -32, 16]
shape = (28, 28)
opts = {"optimizer": "adam", "betas": [0.9, 0.999], "eps": -1e-8}
name = "baseline"
use_gpu = False
seed = None
batch: int = 32
a = b = 7
"""
    result = analyse(cell)
    assert result.params == {
        "lr": 3e-4, "momentum": -0.9, "offset": -2, "layers": [64, -32, 16],
        "shape": (28, 28), "opts": {"optimizer": "adam", "betas": [0.9, 0.999], "eps": -1e-8},
        "name": "baseline", "use_gpu": False, "seed": None, "batch": 32, "a": 7, "b": 7,
    }
    assert result.assigned == []
    assert [format_param(result.params[k]) for k in ("lr", "momentum", "layers", "name")] == [
        "0.0003", "-0.9", "[64, -32, 16]", "baseline"]


def test_a_name_reassigned_from_computation_is_a_metric_candidate_not_a_param() -> None:
    cell = """
best = 0.0
for acc in [0.5, 0.7, 0.6]:
    best = max(best, acc)
total = 0
total += 3
threshold = 0.5
threshold = threshold * 2
"""
    result = analyse(cell)
    assert "best" not in result.params
    assert "total" not in result.params
    assert "threshold" not in result.params
    assert result.assigned == ["best", "total", "threshold"]


def test_loop_and_comprehension_variables_are_not_candidates() -> None:
    cell = """
epochs = 3
for epoch in range(epochs):
    loss = 1.0 / (epoch + 1)
for i, (x, y) in enumerate([(1, 2)]):
    pass
squares = [k * k for k in range(4)]
step = 0
for step in range(2):
    pass
"""
    result = analyse(cell)
    assert result.params == {"epochs": 3}
    assert result.assigned == ["loss", "squares"]
    for name in ("epoch", "i", "x", "y", "k", "step"):
        assert name not in result.params and name not in result.assigned, name
    assert {"epoch", "i", "x", "y", "step"} <= result.loop_vars


def test_a_comprehension_variable_does_not_shadow_a_cell_level_param() -> None:
    cell = """
lr = 0.1
grid = {lr: lr * 2 for lr in [1, 2]}
def evaluate(xs):
    return [acc for acc in xs]
acc = evaluate([0.5])
"""
    result = analyse(cell)
    assert result.params == {"lr": 0.1}
    assert result.assigned == ["grid", "acc"]


def test_inputs_are_read_before_bound_and_produced_data_is_bound_outside_loops() -> None:
    cell = """
train = raw.dropna()
features = train[cols]
for batch in loader:
    shuffled = batch.sample(frac=1.0)
    model.step(shuffled)
model.fit(features)
raw = raw.iloc[:10]
"""
    result = analyse(cell)
    assert result.inputs == ["raw", "cols", "loader", "model"]
    assert result.produced == ["train", "features"]  # not `shuffled` nor `batch`


def test_function_and_class_bodies_are_ignored_but_their_reads_count() -> None:
    cell = """
def train(data):
    inner_lr = 0.1
    inner_loss = data.sum() * inner_lr
    return inner_loss
class Config:
    hidden = 128
scale = lambda v: v * 2
result = train(features)
"""
    result = analyse(cell)
    assert result.params == {}
    assert result.assigned == ["scale", "result"]
    assert "inner_lr" not in result.assigned and "hidden" not in result.params
    assert "features" in result.reads  # read at the top level
    assert "data" in result.reads  # read inside the function body


def test_private_names_unpacking_and_walrus() -> None:
    cell = """
_cache = 5
left, right = 1, 2
if (n := 10) > 5:
    pass
"""
    result = analyse(cell)
    assert result.params == {}
    assert result.assigned == ["left", "right", "n"]


def test_ipython_syntax_errors_give_an_empty_analysis() -> None:
    result = analyse("x = (1,\n")
    assert result.params == {} and result.assigned == [] and result.reads == []


def test_papermill_parameters_come_from_the_injected_cell() -> None:
    history = [
        "import pandas as pd",
        "# parameters (defaults, tagged by the author)\nalpha = 0.1\nepochs = 5",
        "# Parameters\nalpha = 0.5\nepochs = 20\ndata_path = \"s3://bucket/x.csv\"\n",
        "model = fit(alpha)",
    ]
    assert papermill_parameters(history) == {
        "alpha": 0.5, "epochs": 20, "data_path": "s3://bucket/x.csv"}


def test_papermill_parameters_use_the_latest_injected_cell_and_default_to_none() -> None:
    assert papermill_parameters(["x = 1", "y = x + 1"]) == {}
    history = ["# Parameters\nalpha = 0.5\n", "z = 3", "# Parameters\nalpha = -0.25\n"]
    assert papermill_parameters(history) == {"alpha": -0.25}


def test_long_param_values_are_cut_to_mlflow_limits() -> None:
    text = format_param(list(range(5000)))
    assert len(text) == 6000 and text.endswith("...")
