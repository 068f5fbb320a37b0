"""Benchmark: torch eager vs ONNX fp32 vs ONNX int8 for the demo MLP and a MatMul-heavy MLP.

    .venv/bin/python bench/export.py [--repeats 2000] [--threads 1]

Both models train on scikit-learn's digits exactly like examples/train.ipynb (Adam,
mini-batches of 64, seed 0, a stratified 25 % test split): the demo's 64 -> 64 -> 10 MLP,
and a 64 -> 512 -> 512 -> 10 MLP whose bytes are almost all Linear weights. Each goes
through Ship's own export path (`check_export`: dynamo export, parity gate, int8, profile),
so the figures are the ones a model version gets tagged with: p50 / p99 over `--repeats`
calls after a warm-up, for 1 row and 32 rows, every variant in this one process with the
same thread count for torch and onnxruntime. Accuracy is on the 450 test rows.

Goals printed next to the figures:
  - ONNX fp32 at least 2x as fast as torch eager for one row (the demo MLP);
  - int8 file at most 0.3x of fp32 for the MatMul-heavy model, with at most 0.5 points of
    accuracy lost.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

SEED = 0


@dataclass
class Case:
    name: str
    model: nn.Module
    checked: Any
    export_s: float


def digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The notebook's preprocessing: pixels / 16 as float32, stratified 25 % test split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y.astype(np.int64), test_size=0.25, random_state=SEED, stratify=y)
    return x_train, x_test, y_train, y_test


def train(model: nn.Module, x: np.ndarray, y: np.ndarray, *, lr: float, epochs: int) -> nn.Module:
    """The notebook's loop: Adam, shuffled mini-batches of 64, cross-entropy."""
    torch.manual_seed(SEED)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    xs, ys = torch.from_numpy(x), torch.from_numpy(y)
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(xs))
        for start in range(0, len(xs), 64):
            idx = order[start:start + 64]
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(xs[idx]), ys[idx]).backward()
            optimizer.step()
    return model.eval()


def kb(n: int) -> str:
    return f"{n / 1024:8.1f} KB"


def report(case: Case) -> None:
    from kernel_magics.export.profile import ONNX_FP32, ONNX_INT8, ORIGINAL

    checked = case.checked
    prof, parity, quant = checked.profile, checked.parity, checked.quantization
    fp32 = prof.get(ONNX_FP32)
    accuracy = {ORIGINAL: parity.metric_original, ONNX_FP32: parity.metric_onnx,
                ONNX_INT8: quant.int8_value if quant is not None else None}
    print(f"\n{case.name}: exported with {checked.graph.exporter} in {case.export_s:.1f} s "
          f"(parity gate: max abs error {parity.max_abs_error:.2g} on {parity.rows} rows)")
    print(f"  {'variant':<12} {'size':>11} {'vs fp32':>8}   {'1 row p50':>10} {'p99':>8} "
          f"{'speedup':>8}   {'32 rows p50':>11} {'p99':>8} {'speedup':>8}   {'accuracy':>8}")
    eager = prof.get(ORIGINAL)
    for v in prof.variants:
        label = "torch eager" if v.name == ORIGINAL else v.name
        acc = accuracy.get(v.name)
        print(f"  {label:<12} {kb(v.size_bytes):>11} {v.size_bytes / fp32.size_bytes:>7.2f}x   "
              f"{v.one_row.p50_ms * 1000:>7.1f} us {v.one_row.p99_ms * 1000:>5.1f} us "
              f"{eager.one_row.p50_ms / v.one_row.p50_ms:>7.2f}x   "
              f"{v.batch.p50_ms * 1000:>8.1f} us {v.batch.p99_ms * 1000:>5.1f} us "
              f"{eager.batch.p50_ms / v.batch.p50_ms:>7.2f}x   "
              f"{'-' if acc is None else f'{acc:.2%}':>8}")
    if quant is not None:
        print(f"  int8: {quant.quantized_nodes} MatMulInteger, size {quant.size_ratio:.2f}x of "
              f"fp32, one-row latency {quant.latency_ratio:.2f}x of fp32, accuracy "
              f"{quant.change:+.2f} points")


def goal(text: str, value: float, ok: bool) -> None:
    print(f"  {'MET   ' if ok else 'MISSED'} {text}: {value:.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2000, help="timed calls per figure")
    parser.add_argument("--threads", type=int, default=1, help="torch and onnxruntime threads")
    args = parser.parse_args()
    from kernel_magics.export.pipeline import ExportSettings, check_export
    from kernel_magics.export.profile import ONNX_FP32, ORIGINAL

    settings = ExportSettings(profile_repeats=args.repeats, profile_threads=args.threads)
    x_train, x_test, y_train, y_test = digits()
    torch.set_num_threads(args.threads)
    torch.manual_seed(SEED)
    models = [
        ("demo MLP 64-64-10", nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10)),
         0.05, 40),
        ("wide MLP 64-512-512-10", nn.Sequential(
            nn.Linear(64, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10)),
         0.001, 20),
    ]
    cases = []
    for name, model, lr, epochs in models:
        train(model, x_train, y_train, lr=lr, epochs=epochs)
        start = time.perf_counter()
        # force: the bench reports the accuracy change instead of refusing the variant.
        checked = check_export(model, x_test[:1], eval_x=x_test, eval_y=y_test,
                               quantize="int8", force=True, settings=settings)
        cases.append(Case(name, model, checked, time.perf_counter() - start))
    load = os.getloadavg()
    print(f"torch {torch.__version__}, {args.threads} thread(s), {args.repeats} calls per "
          f"figure, {os.cpu_count()} CPUs, load average {load[0]:.2f} at the end")
    for case in cases:
        report(case)
    demo, wide = cases[0].checked, cases[1].checked
    print("\nGoals")
    speedup = demo.profile.speedup(ORIGINAL, ONNX_FP32)
    goal("demo MLP: ONNX fp32 speedup over torch eager, one row (goal >= 2x)", speedup,
         speedup >= 2)
    goal("wide MLP: int8 file size / fp32 (goal <= 0.3x)", wide.quantization.size_ratio,
         wide.quantization.size_ratio <= 0.3)
    lost = -wide.quantization.change + 0.0  # + 0.0: no "-0.00"
    goal("wide MLP: accuracy points lost by int8 (goal <= 0.5)", lost, lost <= 0.5)
    print(f"  (for reference, the demo MLP's int8 file is {demo.quantization.size_ratio:.2f}x "
          f"of fp32: its biases and graph overhead weigh more next to 5k weights)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
