"""Retraining gate (issue 21): does the champion/challenger gate stop what it should?

    .venv/bin/python bench/loop.py [--seeds 50] [--quick]

Goals (issue 21):
- "on injected forgetting (a challenger trained only on new data), the holdout check
  rejects it in 100 % of at least 50 seeds;
- a challenger equal to the champion is rejected on the recent check (no promotion
  without gain) in at least 95 %;
- a real improvement passes in at least 90 %."
Peer (issue 21): "TFX's Evaluator compares point estimates and lets empty slices pass;
MLflow's validation checks one dataset with no intervals". In the same run, on the same
seeds, models and rows, the peer's gate is MLflow's own `mlflow.validate_evaluation_results`
with `MetricThreshold(min_relative_change=0.0, greater_is_better=True)` on `accuracy_score`
(sklearn's, as `mlflow.evaluate` logs it) over ONE dataset, the recent rows: the challenger
passes when its accuracy is >= the champion's (TFX's template change threshold,
`absolute={'value': -1e-10}, HIGHER_IS_BETTER`, is the same rule). A stricter variant,
`min_absolute_change=1e-9` (MLflow wants a positive number: "strictly better"), is shown too.

The scenario, per seed (splits and model seeds vary with it): scikit-learn's digits.
The historical holdout is a stratified 25 % of the images (examples/train.ipynb's test
split, its `--eval` rows); of the other images, 60 % are the old training data and 40 %
are production after drift: each image moved one pixel to the right (demo.shift_traffic,
the demo's scanner offset), in a random order of arrival; Ship's own split_recent keeps
the newest recent_share of them as the gate's recent rows. Models: MLPClassifier with 64
hidden units (as the example notebook's torch model), 100 epochs of Adam.
- champion: trained on the old training data;
- forgetting: trained only on the new training rows (drift), nothing old;
- equal, identical: the champion itself as the challenger (same predictions);
- equal, reseeded: the champion's recipe on the same old data, another random seed: as
  good as the champion in expectation, not row by row;
- improvement: trained on the old training data plus the new training rows (what
  `ship retrain` does).
Each challenger is scored with gate.per_row_scores, judged with gate.compare on the recent
rows and the holdout (LoopSettings defaults) and gate.decide. Printed: rates per scenario
against the goals, the peer's rates, the sizes, the mean accuracies and intervals, the
holdout check's pass rate at other max_forgetting values and confidences and the recent
check's at other min_gain values (the models are the same), each challenger's gain on the
holdout's images shifted (drifted rows neither the gate nor any model saw), and the time
taken. One thread for BLAS (the machine is shared). Exit status 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from kernel_magics.demo import shift_traffic
from kernel_magics.retrain import gate
from kernel_magics.retrain.data import REQUEST_ID, TARGET, TIME, split_recent
from kernel_magics.retrain.settings import LoopSettings

HOLDOUT_SHARE = 0.25  # examples/train.ipynb: test_size=0.25, stratified
NEW_SHARE = 0.4  # of the images outside the holdout: production after drift
HIDDEN, EPOCHS, PIXEL_SCALE = 64, 100, 16.0
SWEEP = (0.01, 0.02, 0.03, 0.05)  # max_forgetting values tried on the same models
CONFIDENCES = (0.95, 0.90)  # and at these confidences
GAINS = (0.0, 0.01, 0.02, 0.05)  # min_gain values tried on the recent rows
METRIC = "accuracy"
# scenario -> (the goal's wording, what counts toward it, the goal's share)
FORGETTING, IDENTICAL, RESEEDED, IMPROVEMENT = (
    "forgetting", "equal, identical", "equal, reseeded", "improvement")
GOALS: dict[str, tuple[str, str, float]] = {
    FORGETTING: ("holdout check rejects", "holdout_rejected", 1.0),
    IDENTICAL: ("recent check rejects", "recent_rejected", 0.95),
    RESEEDED: ("recent check rejects", "recent_rejected", 0.95),
    IMPROVEMENT: ("released (canary)", "released", 0.90),
}


@dataclass
class Tally:
    """One scenario's counts over the seeds."""

    seeds: int = 0
    released: int = 0
    recent_rejected: int = 0
    holdout_rejected: int = 0
    peer_not_worse: int = 0
    peer_better: int = 0
    # (confidence, max_forgetting) -> holdout passes
    sweep: dict[tuple[float, float], int] = field(default_factory=dict)
    gains: dict[float, int] = field(default_factory=dict)  # min_gain -> recent rejections
    accuracy: list[tuple[float, float, float, float]] = field(default_factory=list)
    # per seed: released by the gate, and challenger - champion accuracy on the holdout's
    # images shifted (drifted rows that neither the gate nor any model saw)
    elsewhere: list[tuple[bool, float]] = field(default_factory=list)
    intervals: dict[str, list[tuple[float, float]]] = field(
        default_factory=lambda: {gate.RECENT: [], gate.HOLDOUT: []})


class Peer:
    """MLflow's model validation on one dataset's point estimates (imported once)."""

    def __init__(self) -> None:
        import mlflow
        from mlflow.models import MetricThreshold
        from mlflow.models.evaluation import EvaluationResult
        from mlflow.models.evaluation.validation import ModelValidationFailedException

        logging.getLogger("mlflow.models.evaluation.validation").setLevel(logging.WARNING)
        self.validate: Any = mlflow.validate_evaluation_results  # MLflow is untyped
        self.result: Any = EvaluationResult
        self.failed = ModelValidationFailedException
        threshold: Any = MetricThreshold
        self.not_worse = {"accuracy_score": threshold(min_relative_change=0.0,
                                                      greater_is_better=True)}
        self.better = {"accuracy_score": threshold(min_absolute_change=1e-9,
                                                   greater_is_better=True)}

    def passes(self, thresholds: dict[str, Any], champion: float, challenger: float) -> bool:
        try:
            self.validate(thresholds, self.result({"accuracy_score": challenger}, {}),
                          self.result({"accuracy_score": champion}, {}))
        except self.failed:
            return False
        return True


@dataclass(frozen=True)
class Split:
    old_x: np.ndarray
    old_y: np.ndarray
    new_x: np.ndarray  # the new rows the challenger may train on (shifted)
    new_y: np.ndarray
    recent: pd.DataFrame  # the newest new rows: features and target
    holdout: pd.DataFrame
    drifted: pd.DataFrame  # the holdout's images shifted: the drifted world, other rows


def split(frame: pd.DataFrame, features: list[str], seed: int,
          settings: LoopSettings) -> Split:
    from sklearn.model_selection import train_test_split

    rest, holdout = train_test_split(frame, test_size=HOLDOUT_SHARE, random_state=seed,
                                     stratify=frame[TARGET])
    old, new = train_test_split(rest, test_size=NEW_SHARE, random_state=seed + 1,
                                stratify=rest[TARGET])
    new = new.sample(frac=1.0, random_state=seed + 2)  # the order of arrival
    new = pd.concat([shift_traffic(new[features]), new[[TARGET]]], axis=1)
    new[REQUEST_ID] = [f"r{i}" for i in range(len(new))]
    new[TIME] = np.arange(len(new), dtype=np.float64)
    older, recent = split_recent(new.reset_index(drop=True), settings.recent_share)
    return Split(old[features].to_numpy(np.float64), old[TARGET].to_numpy(),
                 older[features].to_numpy(np.float64), older[TARGET].to_numpy(),
                 recent, holdout,
                 pd.concat([shift_traffic(holdout[features]), holdout[[TARGET]]], axis=1))


def fit(x: np.ndarray, y: np.ndarray, seed: int) -> Any:
    from sklearn.neural_network import MLPClassifier

    model = MLPClassifier(hidden_layer_sizes=(HIDDEN,), max_iter=EPOCHS, random_state=seed)
    return model.fit(x / PIXEL_SCALE, y)


def predict(model: Any, rows: pd.DataFrame, features: list[str]) -> list[Any]:
    return list(model.predict(rows[features].to_numpy(np.float64) / PIXEL_SCALE).tolist())


def run_seed(frame: pd.DataFrame, features: list[str], seed: int, settings: LoopSettings,
             peer: Peer, tallies: dict[str, Tally], timing: dict[str, float]) -> Split:
    from sklearn.metrics import accuracy_score

    start = time.process_time()
    data = split(frame, features, seed, settings)
    champion = fit(data.old_x, data.old_y, seed)
    challengers: dict[str, Callable[[], Any]] = {
        FORGETTING: lambda: fit(data.new_x, data.new_y, 20_000 + seed),
        IDENTICAL: lambda: champion,
        RESEEDED: lambda: fit(data.old_x, data.old_y, 10_000 + seed),
        IMPROVEMENT: lambda: fit(np.vstack([data.old_x, data.new_x]),
                                 np.concatenate([data.old_y, data.new_y]), 30_000 + seed),
    }
    models = {name: make() for name, make in challengers.items()}
    timing["fit"] += time.process_time() - start

    start = time.process_time()
    sets = {gate.RECENT: data.recent, gate.HOLDOUT: data.holdout}
    targets = {name: rows[TARGET].tolist() for name, rows in sets.items()}
    predicted = {name: predict(champion, rows, features) for name, rows in sets.items()}
    baseline = {name: gate.per_row_scores(METRIC, predicted[name], targets[name])
                for name in sets}
    drifted = predict(champion, data.drifted, features)
    for scenario, model in models.items():
        tally = tallies[scenario]
        mine = {name: predict(model, rows, features) for name, rows in sets.items()}
        scores = {name: gate.per_row_scores(METRIC, mine[name], targets[name])
                  for name in sets}
        checks = [gate.compare(name, METRIC, baseline[name], scores[name], settings)
                  for name in sets]
        recent, holdout = checks
        tally.seeds += 1
        released = gate.decide(checks, settings) == gate.CANARY
        tally.released += released
        tally.recent_rejected += recent.passed is False
        tally.holdout_rejected += holdout.passed is False
        for check in checks:
            assert check.interval is not None
            tally.intervals[check.name].append(check.interval)
        for level in CONFIDENCES:
            for limit in SWEEP:
                again = gate.compare(gate.HOLDOUT, METRIC, baseline[gate.HOLDOUT],
                                     scores[gate.HOLDOUT],
                                     replace(settings, confidence=level, max_forgetting=limit))
                key = (level, limit)
                tally.sweep[key] = tally.sweep.get(key, 0) + bool(again.passed)
        for gain in GAINS:
            again = gate.compare(gate.RECENT, METRIC, baseline[gate.RECENT],
                                 scores[gate.RECENT], replace(settings, min_gain=gain))
            tally.gains[gain] = tally.gains.get(gain, 0) + (again.passed is False)
        tally.elsewhere.append((released, float(
            accuracy_score(data.drifted[TARGET], predict(model, data.drifted, features)) -
            accuracy_score(data.drifted[TARGET], drifted))))
        # The peer: accuracy_score on the recent rows only, no interval, no holdout.
        champion_accuracy = float(accuracy_score(targets[gate.RECENT], predicted[gate.RECENT]))
        challenger_accuracy = float(accuracy_score(targets[gate.RECENT], mine[gate.RECENT]))
        tally.peer_not_worse += peer.passes(peer.not_worse, champion_accuracy,
                                            challenger_accuracy)
        tally.peer_better += peer.passes(peer.better, champion_accuracy, challenger_accuracy)
        tally.accuracy.append((float(recent.champion or 0.0), float(recent.challenger or 0.0),
                               float(holdout.champion or 0.0),
                               float(holdout.challenger or 0.0)))
    timing["gate"] += time.process_time() - start
    return data


def report(tallies: dict[str, Tally], data: Split, settings: LoopSettings,
           seeds: int, timing: dict[str, float], wall: float, command: str) -> bool:
    old_rows, new_rows = len(data.old_y), len(data.new_y)
    print(f"\nrows per seed: champion trains on {old_rows} old images; the improvement on "
          f"{old_rows} old + {new_rows} new (shifted); recent: the {len(data.recent)} newest "
          f"new rows (recent_share {settings.recent_share}); holdout: {len(data.holdout)} "
          f"old images")
    print(f"gate: LoopSettings defaults: {settings.confidence:.0%} paired percentile "
          f"bootstrap, {settings.resamples} resamples, min_gain {settings.min_gain}, "
          f"max_forgetting {settings.max_forgetting}")
    print("peer: MLflow validate_evaluation_results, accuracy_score on the recent rows "
          "only; '>=' min_relative_change=0.0 (TFX's template: absolute -1e-10), "
          "'>' min_absolute_change=1e-9\n")
    head = (f"{'challenger':<18} {'goal':<32} {'ship':>7} {'':<4} {'released: ship':>15} "
            f"{'peer >=':>8} {'peer >':>7}")
    print(head)
    print("-" * len(head))
    met = True
    for scenario, tally in tallies.items():
        wording, attribute, share = GOALS[scenario]
        hits = int(getattr(tally, attribute))
        ok = hits >= share * tally.seeds - 1e-9
        met &= ok
        goal = f"{wording} >= {share:.0%}"
        print(f"{scenario:<18} {goal:<32} {hits:>3}/{tally.seeds:<3} "
              f"{'PASS' if ok else 'MISS':<4} {tally.released:>11}/{tally.seeds:<3} "
              f"{tally.peer_not_worse:>4}/{tally.seeds:<3} {tally.peer_better:>3}/{tally.seeds}")
    wrong = [tallies[s] for s in (FORGETTING, IDENTICAL, RESEEDED)]
    total = sum(t.seeds for t in wrong)
    good = tallies[IMPROVEMENT]
    print(f"\nwrong releases (forgetting + equal): ship {sum(t.released for t in wrong)}/"
          f"{total}, peer >= {sum(t.peer_not_worse for t in wrong)}/{total}, peer > "
          f"{sum(t.peer_better for t in wrong)}/{total}; improvements held back: ship "
          f"{good.seeds - good.released}/{good.seeds}, peer >= "
          f"{good.seeds - good.peer_not_worse}/{good.seeds}, peer > "
          f"{good.seeds - good.peer_better}/{good.seeds}")

    print("\nmeans over the seeds: accuracy champion -> challenger, and the 95 % interval of "
          "challenger - champion")
    for scenario, tally in tallies.items():
        acc = np.mean(np.array(tally.accuracy), axis=0)
        spans = {name: np.mean(np.array(v), axis=0) for name, v in tally.intervals.items()}
        lows = np.array([low for low, _ in tally.intervals[gate.HOLDOUT]])
        print(f"  {scenario:<18} recent {acc[0]:.3f} -> {acc[1]:.3f} "
              f"[{spans[gate.RECENT][0]:+.3f}, {spans[gate.RECENT][1]:+.3f}]   holdout "
              f"{acc[2]:.3f} -> {acc[3]:.3f} [{spans[gate.HOLDOUT][0]:+.3f}, "
              f"{spans[gate.HOLDOUT][1]:+.3f}] (lower end: median {np.median(lows):+.3f})")
    print("\nholdout check passed at other max_forgetting values and confidences (same "
          "models, same rows):")
    for scenario in (FORGETTING, RESEEDED, IMPROVEMENT):
        tally = tallies[scenario]
        for level in CONFIDENCES:
            cells = ", ".join(f"{limit}: {tally.sweep[level, limit]:>2}/{tally.seeds}"
                              for limit in SWEEP)
            print(f"  {scenario:<18} at {level:.0%}: {cells}")
    print("\nrecent check rejected at other min_gain values (same models, same rows):")
    for scenario in (RESEEDED, IMPROVEMENT):
        tally = tallies[scenario]
        cells = ", ".join(f"{gain}: {tally.gains[gain]:>2}/{tally.seeds}" for gain in GAINS)
        print(f"  {scenario:<18} {cells}")
    print(f"\nchallenger - champion accuracy on the {len(data.drifted)} holdout images "
          "shifted (drifted rows that neither the gate nor any model saw):")
    for scenario, tally in tallies.items():
        every = np.array([gain for _, gain in tally.elsewhere])
        line = (f"  {scenario:<18} all seeds: median {np.median(every):+.3f}, 10-90 % "
                f"[{np.quantile(every, 0.1):+.3f}, {np.quantile(every, 0.9):+.3f}]")
        recent = np.array([challenger - champion for champion, challenger, _, _ in
                           tally.accuracy])
        if scenario == RESEEDED and every.std() > 0 and recent.std() > 0:
            # ~0 if the reseeded model were as good as the champion on drifted rows: its
            # gain on the recent rows would be noise, unrelated to its gain on other rows
            line += f"; correlation with its recent gain {np.corrcoef(recent, every)[0, 1]:.2f}"
        gains = np.array([gain for released, gain in tally.elsewhere if released])
        if len(gains):
            line += (f"; the {len(gains)} released: better {int((gains > 0).sum())}, worse "
                     f"{int((gains < 0).sum())}, min {gains.min():+.3f}")
        print(line)
    print(f"\n{seeds} seeds in {wall:.0f} s wall; CPU {timing['fit']:.0f} s training "
          f"({timing['fit'] / seeds / 4:.2f} s a model), {timing['gate']:.1f} s scoring and "
          f"judging (gate and peer)")
    print(f"goals {'all met' if met else 'NOT all met'}; reproduce: {command}")
    return met


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=50, help="seeds (default 50)")
    parser.add_argument("--quick", action="store_true", help="10 seeds: a smoke run")
    args = parser.parse_args()
    seeds = 10 if args.quick else args.seeds
    from sklearn.datasets import load_digits
    from sklearn.exceptions import ConvergenceWarning
    from threadpoolctl import threadpool_limits

    warnings.simplefilter("ignore", ConvergenceWarning)  # 100 epochs, by design
    wall = time.perf_counter()
    digits = load_digits(as_frame=True)
    frame = digits.frame
    features = [c for c in frame.columns if c.startswith("pixel_")]
    settings = LoopSettings()
    peer = Peer()
    tallies = {name: Tally() for name in GOALS}
    timing = {"fit": 0.0, "gate": 0.0}
    print(f"Retraining gate (issue 21): {seeds} seeds, digits ({len(frame)} images), "
          f"MLPClassifier({HIDDEN}) x {EPOCHS} epochs")
    data = None
    with threadpool_limits(1):
        for seed in range(seeds):
            data = run_seed(frame, features, seed, settings, peer, tallies, timing)
            if (seed + 1) % 10 == 0:
                print(f"  {seed + 1} seeds, {time.perf_counter() - wall:.0f} s", flush=True)
    assert data is not None
    command = "nice -n 10 .venv/bin/python bench/loop.py" + (
        " --quick" if args.quick else f" --seeds {seeds}" if seeds != 50 else "")
    met = report(tallies, data, settings, seeds, timing, time.perf_counter() - wall, command)
    sys.exit(0 if met else 1)


if __name__ == "__main__":
    main()
