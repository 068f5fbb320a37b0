"""Benchmark: releases (issue 20): the canary gate, routing and shadows on a real service.

    .venv/bin/python bench/release.py [--quick] [--pct 10] [--canaries 300] [--rounds 4]

About 8 minutes on a 2-core machine (``--quick``: about 4, fewer rounds and canaries,
for development). One workspace, built as tests/release/test_release.py builds its own:
one LogisticRegression (4 features) exported to the registry, the service ``churn``
built from real notebooks whose serve cells differ:

    1  the champion
    2  identical to 1 (same model, same serve cell)
    3  broken: its postprocess raises on the rows its model is surest are class 1, a
       third of them (the threshold is the 2/3 quantile of P(class 1) over the rows the
       clients send)
    4  slow: its postprocess busy-waits twice the champion's median latency, measured on
       the running service just before it is built, so that its latency is about 3x

Then, each against ``ship serve churn`` started as a subprocess (stopped at the end,
also on Ctrl-C or an error) and changed with ``ship deploy churn ...`` as a person
would:

1. a broken canary (``--canary PCT``) under paced load of 20 requests/s: the time from
   the deploy to the gate's rollback (both decisions' times in releases.jsonl) and the
   client failures from 1.5 s after the rollback on (the workers follow the file);
2. a slow canary is rolled back (its measured latency ratio printed), an identical one
   promoted step by step (``[release] step_seconds`` set small for this);
3. false rollbacks of identical canaries: the gate's own functions (``gate.checks``,
   ``gate.decide``, default GateSettings, steps 5, 25, 50, 100) on simulated traffic of
   20 requests/s whose latencies are drawn from those the champion logged in step 1;
   and the power side (canaries failing a third of requests, 3x slower);
4. the throughput of one version against a version with an identical canary at 50 %,
   closed loop at saturation, 1-row and 100-row requests, interleaved rounds;
5. the champion's p50 with and without an identical shadow at half the measured
   capacity;
6. ``ship deploy --promote`` / ``--rollback`` / ``--version V --promote`` by hand, again
   and again, under continuous load: non-2xx answers counted.

Servers: steps 1, 2 and 6 run ``ship serve churn --workers 2`` (two workers following
release.json; the gate runs in the supervisor); steps 4 and 5 run ``--workers 1`` pinned
to core 0 with the load generator on core 1 (as bench/serving.py), the gate then in the
server's process. Paced and promote/rollback loads use httpx clients in threads; the
saturating loads of steps 4 and 5 use a minimal keep-alive HTTP/1.1 client on asyncio
(httpx in one process cannot saturate the server from one core). Run it on a quiet
machine: steps 4 and 5 measure percents.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from serving import Server, free_port, load_runner, pinned  # noqa: E402

PY = sys.executable
SHIP = str(Path(PY).with_name("ship"))
NAME = "churn"
FEATURES = ["feature_0", "feature_1", "feature_2", "feature_3"]  # as the export names them
RATE = 20.0  # requests/s of the canary goals
FOLLOW_S = 1.5  # what the workers are given to follow a release.json change

SERVE = '''%%ship serve
import time


def postprocess(outputs):
    return [int(label) for label in outputs["label"]]
'''
BROKEN = SERVE.replace("    return [int", """    sure = outputs["probabilities"][:, 1]
    if (sure > {threshold}).any():
        raise ValueError("this version cannot answer for confident class 1")
    return [int""")
SLOW = SERVE.replace("    return [int", """    end = time.perf_counter() + {busy_s!r}
    while time.perf_counter() < end:
        pass
    return [int""")


# -- the workspace and its versions ----------------------------------------------------------
@dataclass
class Bench:
    """The workspace, its service's folders and what the steps hand each other."""

    root: Path
    base_toml: str
    champion_latencies: np.ndarray[Any, Any] = field(default_factory=lambda: np.zeros(0))
    figures: list[tuple[str, str, str, bool | None]] = field(default_factory=list)

    @property
    def service(self) -> Path:
        return self.root / ".ship" / "services" / NAME

    @property
    def log(self) -> Path:
        return self.service / "log"

    def figure(self, what: str, value: str, goal: str, met: bool | None) -> None:
        self.figures.append((what, value, goal, met))
        mark = "" if met is None else ("PASS" if met else "MISS")
        print(f"  => {what}: {value}   (goal {goal}) {mark}", flush=True)


def write_notebook(path: Path, cell: str) -> Path:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.cells.append(nbformat.v4.new_code_cell(cell))
    nbformat.write(nb, path)
    return path


def random_rows(rng: np.random.Generator, n: int) -> list[list[float]]:
    """What every client sends: standard normal features, 4 decimals."""
    rows: list[list[float]] = rng.standard_normal((n, 4)).round(4).tolist()
    return rows


def build_workspace(root: Path) -> Bench:
    """Export the model and build versions 1 (champion), 2 (identical), 3 (broken)."""
    from sklearn.linear_model import LogisticRegression

    from kernel_magics.export.api import export_model
    from kernel_magics.workspace import init_workspace

    started = time.perf_counter()
    workspace = init_workspace(root)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((400, 4)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("int64")
    model = LogisticRegression().fit(x, y)
    export_model(model, NAME, x[:8], workspace=workspace)
    # a third of the rows clients send are above this: version 3 fails on them
    sure = model.predict_proba(np.asarray(random_rows(np.random.default_rng(7), 20000),
                                          "float32"))[:, 1]
    threshold = round(float(np.quantile(sure, 2 / 3)), 4)
    for version, cell in (("1", SERVE), ("2", SERVE),
                          ("3", BROKEN.format(threshold=threshold))):
        build(root, version, cell)
    config = workspace.ship_dir / "ship.toml"
    print(f"workspace {root}: versions 1, 2 (identical), 3 (fails above P(class 1) = "
          f"{threshold}) built in {time.perf_counter() - started:.0f} s", flush=True)
    return Bench(root=root, base_toml=config.read_text(encoding="utf-8"))


def build(root: Path, version: str, cell: str) -> None:
    from kernel_magics.bundle.build import build_service
    from kernel_magics.workspace import Workspace

    built = build_service(write_notebook(root / f"v{version}.ipynb", cell), NAME,
                          workspace=Workspace(root=root), model_version="1")
    if built.version != version:
        raise SystemExit(f"built version {built.version}, expected {version}")


# -- ship serve, ship deploy, the release's record ------------------------------------------
@contextlib.contextmanager
def serving(bench: Bench, release: dict[str, float], workers: int,
            core: int | None = None) -> Any:
    """``ship serve churn --workers N`` from a release of champion 1 alone, with ``release``
    as ``[release]`` of ship.toml (the gate reads it when the service starts)."""
    (bench.root / ".ship" / "ship.toml").write_text(
        bench.base_toml + "\n[release]\n" + "".join(f"{k} = {v!r}\n"
                                                   for k, v in release.items()),
        encoding="utf-8")
    view = deploy(bench, check=False)
    if view.get("canary"):
        deploy(bench, "--rollback")
    if view.get("champion") != "1":
        deploy(bench, "--version", "1", "--promote")
    port = free_port()
    server = Server(pinned([SHIP, "serve", NAME, "--port", str(port), "--workers",
                            str(workers)], core), port, "/v2/health/ready", cwd=bench.root)
    print(f"ship serve {NAME} --workers {workers}"
          + (f" (core {core})" if core is not None else "") + f", [release] {release}",
          flush=True)
    try:
        yield server
    finally:
        server.stop()


def deploy(bench: Bench, *args: str, check: bool = True) -> dict[str, Any]:
    """``ship deploy churn ARGS --json``: the release after the change."""
    done = subprocess.run([SHIP, "deploy", NAME, *args, "--json"], cwd=bench.root,
                          capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        if check:
            raise SystemExit(f"ship deploy {' '.join(args)}: {done.stderr.strip()}")
        return {"error": done.stderr.strip()}
    view: dict[str, Any] = json.loads(done.stdout)
    return view


def release_now(bench: Bench) -> dict[str, Any]:
    """release.json as it is (the gate rewrites it)."""
    for _ in range(5):  # replaced atomically; read again if it vanished mid-rename
        with contextlib.suppress(FileNotFoundError, ValueError):
            data: dict[str, Any] = json.loads((bench.service / "release.json").read_text())
            return data
        time.sleep(0.05)
    raise SystemExit("release.json unreadable")


def decisions(bench: Bench) -> list[dict[str, Any]]:
    path = bench.service / "releases.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def ended(bench: Bench) -> bool:
    """Whether the last decision ended a canary (release.json changes a moment before
    its decision is appended to releases.jsonl)."""
    last = decisions(bench)
    return bool(last) and last[-1]["action"] in ("promote", "rollback")


def epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def wait_until(condition: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def logged(bench: Bench, since: float, until: float = float("inf")) -> list[tuple[Any, ...]]:
    """(time, version, shadow, status, latency_ms) of every logged request in a window,
    shadow copies included (their ``shadow`` names the answering version)."""
    import duckdb

    from kernel_magics.serving.predlog import LogLocation

    files = LogLocation(str(bench.log)).files("predictions")
    if not files:
        return []
    rows = duckdb.connect().execute(
        "SELECT epoch_us(time) / 1e6, version, shadow, status, latency_ms FROM "
        "read_parquet(?, union_by_name=true) WHERE epoch_us(time) / 1e6 BETWEEN ? AND ?",
        [files, since, min(until, 1e11)]).fetchall()
    return rows


def p50(values: Any) -> float:
    return float(np.median(values)) if len(values) else float("nan")


# -- paced and closed-loop clients ------------------------------------------------------------
class Paced:
    """httpx clients in threads sending one-row /invocations requests, ``rate`` a second
    in all (``rate`` None: each thread sends its next request when the last answered);
    every answer kept as (wall time sent, status, answering version, latency s)."""

    def __init__(self, url: str, rate: float | None, threads: int = 2) -> None:
        self.url = url
        self.rate = rate
        self.answers: list[tuple[float, int, str, float]] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i, threads), daemon=True)
                         for i in range(threads)]

    def __enter__(self) -> Paced:
        self.started = time.monotonic()
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def _run(self, index: int, threads: int) -> None:
        rng = np.random.default_rng(100 + index)
        period = None if self.rate is None else threads / self.rate
        due = self.started + (0 if period is None else index * period / threads)
        with httpx.Client(base_url=self.url, timeout=30) as client:
            while not self._stop.is_set():
                if period is not None:
                    pause = due - time.monotonic()
                    if pause > 0:
                        self._stop.wait(pause)
                        continue
                    due += period
                body = {"dataframe_split": {"columns": FEATURES, "data": random_rows(rng, 1)}}
                sent, begun = time.time(), time.perf_counter()
                try:
                    reply = client.post("/invocations", json=body)
                    status, version = reply.status_code, reply.headers.get(
                        "x-ship-model-version", "?")
                except httpx.HTTPError:
                    status, version = 0, "?"  # no answer at all: a failure too
                self.answers.append((sent, status, version, time.perf_counter() - begun))

    def between(self, since: float, until: float = float("inf")
                ) -> list[tuple[float, int, str, float]]:
        return [a for a in self.answers if since <= a[0] < until]


@dataclass
class Window:
    """One timed run of the raw client: answers, statuses, versions, latencies (s)."""

    seconds: float
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    versions: Counter[str] = field(default_factory=Counter)
    cpu_s: float = 0.0

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds

    @property
    def p50_ms(self) -> float:
        return p50(self.latencies) * 1000


def invocation(port: int, rows: int) -> bytes:
    rng = np.random.default_rng(rows)
    body = json.dumps({"dataframe_split": {"columns": FEATURES,
                                           "data": random_rows(rng, rows)}}).encode()
    return (f"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode() + body


async def _connection(port: int, payload: bytes, window: Window, until: float,
                      period: float | None, first: float) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    due = first
    try:
        while True:
            if period is not None:
                if due >= until:
                    break
                pause = due - time.perf_counter()
                if pause > 0:
                    await asyncio.sleep(pause)
                due += period
            elif time.perf_counter() >= until:
                break
            begun = time.perf_counter()
            writer.write(payload)
            head = await reader.readuntil(b"\r\n\r\n")
            length, version = 0, "?"
            for line in head.split(b"\r\n")[1:]:
                key, _, value = line.partition(b":")
                key = key.strip().lower()
                if key == b"content-length":
                    length = int(value)
                elif key == b"x-ship-model-version":
                    version = value.strip().decode()
            await reader.readexactly(length)
            window.latencies.append(time.perf_counter() - begun)
            window.statuses[int(head[9:12])] += 1
            window.versions[version] += 1
    finally:
        writer.close()


async def _load(port: int, payload: bytes, seconds: float, connections: int,
                rate: float | None) -> Window:
    window = Window(seconds)
    start = time.perf_counter()
    period = None if rate is None else connections / rate
    await asyncio.gather(*(_connection(port, payload, window, start + seconds, period,
                                       start + (0 if period is None else i * period
                                                / connections))
                           for i in range(connections)))
    window.seconds = time.perf_counter() - start
    return window


def drive(server: Server, rows: int, seconds: float, warmup: float, *,
          rate: float | None = None, connections: int = 16) -> Window:
    """Warm up, then a timed window: closed loop over ``connections`` (``rate`` None)
    or paced at ``rate`` requests/s."""
    payload = invocation(server.port, rows)
    runner = load_runner()
    runner(_load(server.port, payload, warmup, connections, rate))
    cpu = server.cpu_seconds()
    window: Window = runner(_load(server.port, payload, seconds, connections, rate))
    window.cpu_s = server.cpu_seconds() - cpu
    return window


# -- 1. a broken canary -----------------------------------------------------------------------
def broken_canary(bench: Bench, url: str, pct: float) -> None:
    print(f"\n1. broken canary (version 3) at {pct:g} %, paced load {RATE:g} requests/s",
          flush=True)
    with Paced(url, RATE) as load:
        time.sleep(4.0)
        called = time.time()
        deploy(bench, "--version", "3", "--canary", f"{pct:g}")
        rolled = wait_until(lambda: ended(bench), 120)
        time.sleep(FOLLOW_S + 6.0)
    last = decisions(bench)
    started = next(d for d in reversed(last) if d["action"] == "canary")
    move = last[-1]
    if not rolled or move["action"] != "rollback":
        bench.figure("broken canary rolled back", f"no: {move['reason']}", "<= 30 s", False)
        return
    seconds = epoch(move["time"]) - epoch(started["time"])
    t_rollback = epoch(move["time"])
    live = load.between(epoch(started["time"]), t_rollback)
    on_canary = [a for a in live if a[2] == "3"]
    canary_failed = sum(a[1] != 200 for a in on_canary)
    following = load.between(t_rollback, t_rollback + FOLLOW_S)
    after = load.between(t_rollback + FOLLOW_S)
    failed_after = sum(a[1] != 200 for a in after)
    failed = [c for c in move["evidence"] if c["passed"] is False]
    print(f"  canary answered {len(on_canary)} of {len(live)} requests while live "
          f"({len(on_canary) / max(len(live), 1):.0%}), failed {canary_failed} "
          f"({canary_failed / max(len(on_canary), 1):.0%})")
    print(f"  gate: {move['reason']}")
    print(f"  from the deploy's command line started: {t_rollback - called:.1f} s; from its "
          f"decision: {seconds:.1f} s")
    print(f"  failures in the {FOLLOW_S:g} s the workers have to follow: "
          f"{sum(a[1] != 200 for a in following)} of {len(following)}; after: "
          f"{failed_after} of {len(after)} (versions {dict(Counter(a[2] for a in after))})")
    bench.figure(f"broken canary at {pct:g} %: deploy -> rollback", f"{seconds:.1f} s",
                 "<= 30 s", seconds <= 30 and bool(failed))
    bench.figure(f"client failures from rollback + {FOLLOW_S:g} s on",
                 f"{failed_after} of {len(after)}", "0", failed_after == 0 and len(after) > 0)
    champion = [r[4] for r in logged(bench, time.time() - 3600)
                if r[1] == "1" and r[2] is None and r[3] == 200]
    bench.champion_latencies = np.asarray(champion, float)


# -- 2. a slow canary and an identical one ----------------------------------------------------
def slow_and_identical(bench: Bench, url: str, pct: float, step_s: float) -> None:
    busy_ms = 2 * p50(bench.champion_latencies)
    print(f"\n2. slow canary (version 4: busy-waits {busy_ms:.2f} ms, twice the champion's "
          f"logged p50 of {p50(bench.champion_latencies):.2f} ms) at {pct:g} %", flush=True)
    build(bench.root, "4", SLOW.format(busy_s=round(busy_ms / 1000, 6)))
    with Paced(url, RATE) as load:
        time.sleep(2.0)
        deploy(bench, "--version", "4", "--canary", f"{pct:g}")
        wait_until(lambda: ended(bench), 120)
    started = next(d for d in reversed(decisions(bench)) if d["action"] == "canary")
    move = decisions(bench)[-1]
    live = logged(bench, epoch(started["time"]), epoch(move["time"]))
    server = {v: p50([r[4] for r in live if r[1] == v and r[2] is None and r[3] == 200])
              for v in ("1", "4")}
    clients = load.between(epoch(started["time"]), epoch(move["time"]))
    client = {v: p50([a[3] for a in clients if a[2] == v and a[1] == 200]) * 1000
              for v in ("1", "4")}
    checks = {c["metric"]: c for c in move["evidence"]}
    gate_p50 = checks.get("latency_p50_ms", {})
    ratio = server["4"] / server["1"]
    print(f"  p50 logged by the server: champion {server['1']:.2f} ms, canary "
          f"{server['4']:.2f} ms ({ratio:.2f}x); seen by the client: {client['1']:.2f} and "
          f"{client['4']:.2f} ms ({client['4'] / client['1']:.2f}x); in the gate's evidence: "
          f"{gate_p50.get('champion') or float('nan'):.2f} and "
          f"{gate_p50.get('canary') or float('nan'):.2f} ms")
    print(f"  gate: {move['reason']}")
    seconds = epoch(move["time"]) - epoch(started["time"])
    bench.figure(f"slow canary ({ratio:.2f}x p50) rolled back", f"{move['action']} after "
                 f"{seconds:.1f} s", "rollback", move["action"] == "rollback")

    print(f"\n2b. identical canary (version 2) at {pct:g} %, [release] step_seconds = "
          f"{step_s:g}", flush=True)
    with Paced(url, RATE):
        time.sleep(1.0)
        deploy(bench, "--version", "2", "--canary", f"{pct:g}")
        wait_until(lambda: ended(bench), 240)
    history = decisions(bench)
    start = max(i for i, d in enumerate(history) if d["action"] == "canary")
    moves = history[start:]
    t0 = epoch(moves[0]["time"])
    print("  " + "; ".join(
        d["action"] + ("" if d["percent"] is None else f" {d['percent']:g} %")
        + f" at +{epoch(d['time']) - t0:.1f} s" for d in moves))
    if moves[-1]["action"] != "promote":
        print(f"  gate: {moves[-1]['reason']}")
    bench.figure(f"identical canary promoted (step_seconds {step_s:g})",
                 f"{moves[-1]['action']} after {epoch(moves[-1]['time']) - t0:.1f} s",
                 "promote", moves[-1]["action"] == "promote")


# -- 3. false rollbacks, simulated with the gate's functions ---------------------------------
def simulate(latencies: np.ndarray[Any, Any], canaries: int, *, error: float = 0.005,
             canary_error: float | None = None, slower: float = 1.0, seed: int = 0,
             rate: float = RATE, once_per_step: bool = False
             ) -> tuple[Counter[str], list[float]]:
    """Run ``canaries`` simulated canaries through the real gate (default GateSettings,
    steps 5, 25, 50, 100; a look every ``interval_s`` as the Gatekeeper looks, or with
    ``once_per_step`` from the step's end on only) until it promotes or rolls back; the
    outcomes (and ``looks``: how many times the gate looked in all) and the simulated
    seconds to each rollback."""
    from kernel_magics.release import gate

    settings = gate.GateSettings()
    steps = (5.0, 25.0, 50.0, 100.0)
    rng = np.random.default_rng(seed)
    outcomes: Counter[str] = Counter()
    times: list[float] = []
    per_look = rate * settings.interval_s
    for _ in range(canaries):
        percent, clock = steps[0], 0.0
        while True:
            champ_lat: list[np.ndarray[Any, Any]] = []
            champ_err: list[np.ndarray[Any, Any]] = []
            can_lat: list[np.ndarray[Any, Any]] = []
            can_err: list[np.ndarray[Any, Any]] = []
            at_step = 0.0
            verdict = None
            while verdict is None or verdict.action is None:
                n = rng.poisson(per_look)
                k = rng.binomial(n, percent / 100)
                champ_lat.append(rng.choice(latencies, n - k))
                champ_err.append(rng.random(n - k) < error)
                can_lat.append(rng.choice(latencies, k) * slower)
                can_err.append(rng.random(k) < (error if canary_error is None
                                                else canary_error))
                at_step += settings.interval_s
                clock += settings.interval_s
                if once_per_step and at_step < settings.step_seconds:
                    continue
                outcomes["looks"] += 1
                failed = np.concatenate(can_err)
                samples = gate.Samples(
                    champion_latency=np.concatenate(champ_lat),
                    champion_failed=np.concatenate(champ_err),
                    canary_latency=np.concatenate(can_lat), canary_failed=failed,
                    # identical predictions: every answered canary row agrees
                    compared_rows=int((~failed).sum()), disagreeing_rows=0)
                higher = [s for s in steps if s > percent]
                verdict = gate.decide(gate.checks(samples, settings), version="2",
                                      percent=percent,
                                      next_step=min(higher) if higher else None,
                                      seconds_at_step=at_step, settings=settings)
            if verdict.action == "step":
                assert verdict.percent is not None
                percent = verdict.percent
                continue
            outcomes[verdict.action] += 1
            if verdict.action == "rollback":
                first = next(c for c in verdict.checks if c.passed is False)
                outcomes[f"{first.metric} at {percent:g} %"] += 1
                times.append(clock)
            break
    return outcomes, times


def false_rollbacks(bench: Bench, canaries: int, power_canaries: int) -> None:
    pool = bench.champion_latencies
    print(f"\n3. simulated canaries: the gate's functions, default GateSettings, steps "
          f"5, 25, 50, 100, {RATE:g} requests/s, latencies drawn from {len(pool)} the "
          f"champion logged in step 1 (p50 {p50(pool):.2f} ms, p99 "
          f"{np.quantile(pool, 0.99):.2f} ms), errors 0.5 %", flush=True)
    started = time.perf_counter()
    same, _ = simulate(pool, canaries)
    share = same["rollback"] / canaries
    print(f"  identical: {dict(same)} in {time.perf_counter() - started:.0f} s")
    bench.figure(f"false rollbacks of identical canaries ({canaries})",
                 f"{same['rollback']} ({share:.1%})", "<= 1 %", share <= 0.01)
    once, _ = simulate(pool, canaries, once_per_step=True)
    print(f"  identical, had the gate looked once per step (at its end) instead of every "
          f"2 s: {dict(once)} ({once['rollback'] / canaries:.1%} rolled back)")
    for label, canary_error, slower in (("failing 1/3", 0.005 + 1 / 3, 1.0),
                                        ("3x slower", None, 3.0)):
        found, times = simulate(pool, power_canaries, seed=1, canary_error=canary_error,
                                slower=slower)
        share = found["rollback"] / power_canaries
        print(f"  {label}: {dict(found)}; simulated time to rollback: median "
              f"{p50(times):.0f} s, max {max(times, default=float('nan')):.0f} s")
        bench.figure(f"canaries {label} rolled back ({power_canaries}, simulated)",
                     f"{share:.1%} (median {p50(times):.0f} s)", "(power)", None)


# -- 4. routing with a canary live ------------------------------------------------------------
def routing_cost(bench: Bench, server: Server, rounds: int, seconds: float,
                 sizes: list[int]) -> float:
    """Closed-loop throughput, champion alone against an identical canary at 50 %; the
    champion's 1-row throughput alone (step 5's capacity)."""
    print(f"\n4. routing cost: closed loop, 16 connections, {rounds} interleaved rounds "
          f"of {seconds:g} s per condition and request size", flush=True)
    results: dict[tuple[int, str], list[Window]] = {}
    looks: list[tuple[float, float, int]] = []
    drive(server, 1, 5.0, 0.0)  # a fresh server speeds up over its first seconds
    for i in range(rounds):
        for condition in (("alone", "canary") if i % 2 == 0 else ("canary", "alone")):
            # a fresh canary for each of its windows: the gate reads the log since the
            # canary's step began, so its cost grows with the canary's age
            if condition == "canary":
                deploy(bench, "--version", "2", "--canary", "50", "--steps", "50,100")
            elif release_now(bench).get("canary") is not None:
                deploy(bench, "--rollback")
            time.sleep(FOLLOW_S)
            for rows in sizes:
                window = drive(server, rows, seconds, 1.5)
                results.setdefault((rows, condition), []).append(window)
                shares = {v: f"{n / len(window.latencies):.0%}"
                          for v, n in sorted(window.versions.items())}
                bad = sum(n for s, n in window.statuses.items() if s != 200)
                print(f"  round {i + 1} {rows:>3} row(s) {condition:<7}{window.rps:8.0f} "
                      f"req/s  p50 {window.p50_ms:6.2f} ms  server CPU "
                      f"{window.cpu_s / len(window.latencies) * 1e6:6.0f} us/req  versions "
                      f"{shares}  non-200 {bad}", flush=True)
            if condition == "canary":
                if release_now(bench).get("canary") is None:
                    print("  (the gate took the canary out during the round: "
                          f"{decisions(bench)[-1]['reason']})")
                else:
                    looks.append(gate_look(bench))
                    deploy(bench, "--rollback")
    time.sleep(FOLLOW_S)
    interval = 2.0  # GateSettings().interval_s
    if looks:
        cpu, wall, answers = (max(x) for x in zip(*looks, strict=True))
        print(f"  the gate's look (controller.evaluate, in this process) at the end of a "
              f"canary's rounds: up to {cpu * 1000:.0f} ms CPU ({wall * 1000:.0f} ms) over "
              f"{answers} logged answers; every {interval:g} s that is "
              f"{cpu / interval:.0%} of a core")
    for rows in sizes:
        alone, canary = results[rows, "alone"], results[rows, "canary"]
        paired = [1 - c.rps / a.rps for a, c in zip(alone, canary, strict=True)]
        total = 1 - sum(c.rps for c in canary) / sum(a.rps for a in alone)
        cpu = (sum(c.cpu_s for c in canary) / sum(len(c.latencies) for c in canary)) / (
            sum(a.cpu_s for a in alone) / sum(len(a.latencies) for a in alone)) - 1
        print(f"  {rows} row(s): {np.mean([a.rps for a in alone]):.0f} req/s alone, "
              f"{np.mean([c.rps for c in canary]):.0f} with the canary; paired rounds "
              f"{', '.join(f'{p:.1%}' for p in paired)}; server CPU per request "
              f"{cpu:+.1%}")
        bench.figure(f"throughput cost of a 50 % canary, {rows} row(s)", f"{total:.1%} "
                     f"(ratio {1 - total:.3f})", "<= 3 %", total <= 0.03)
    return float(np.median([a.rps for a in results[1, "alone"]]))


def gate_look(bench: Bench) -> tuple[float, float, int]:
    """What one look of the gate costs now: (CPU s, wall s, answers read), measured by
    running the gate's evaluation here on the same release and log."""
    from kernel_magics.release import controller, gate, rollout
    from kernel_magics.workspace import Workspace

    workspace = Workspace(root=bench.root)
    release = rollout.current_release(workspace, NAME)
    cpu, wall = time.process_time(), time.perf_counter()
    verdict = controller.evaluate(workspace, NAME, release, gate.GateSettings(),
                                  str(bench.log))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    answers = 0 if verdict is None else next(
        c.n_champion + c.n_canary for c in verdict.checks if c.metric == "error_rate")
    return cpu, wall, answers


# -- 5. a shadow's cost to the champion's latency --------------------------------------------
def shadow_cost(bench: Bench, server: Server, capacity: float, rounds: int,
                seconds: float) -> None:
    rate = capacity / 2
    print(f"\n5. shadow cost: paced at {rate:.0f} requests/s (half of the {capacity:.0f} "
          f"measured in step 4), {rounds} interleaved rounds of {seconds:g} s", flush=True)
    results: dict[str, list[tuple[Window, float]]] = {}
    shadowed = False
    for i in range(rounds):
        for condition in (("alone", "shadow") if i % 2 == 0 else ("shadow", "alone")):
            if condition == "shadow" and not shadowed:
                deploy(bench, "--version", "2", "--shadow")
            elif condition == "alone" and shadowed:
                deploy(bench, "--version", "2", "--no-shadow")
            shadowed = condition == "shadow"
            time.sleep(FOLLOW_S)
            begun = time.time()
            window = drive(server, 1, seconds, 1.5, rate=rate)
            time.sleep(1.2)  # the log's segment
            rows = logged(bench, begun + 1.5, time.time())
            mine = [r[4] for r in rows if r[1] == "1" and r[2] is None]
            copies = sum(1 for r in rows if r[2] is not None)
            results.setdefault(condition, []).append((window, p50(mine)))
            print(f"  round {i + 1} {condition:<7}{window.rps:7.0f} req/s  p50 client "
                  f"{window.p50_ms:6.3f} ms, server {p50(mine):6.3f} ms  server CPU "
                  f"{window.cpu_s / len(window.latencies) * 1e6:4.0f} us/req  shadow "
                  f"copies logged {copies}", flush=True)
    if shadowed:
        deploy(bench, "--version", "2", "--no-shadow")
    pooled = {c: p50([x for w, _ in results[c] for x in w.latencies]) for c in results}
    client = pooled["shadow"] / pooled["alone"]
    paired = sorted(s.p50_ms / a.p50_ms for (a, _), (s, _) in
                    zip(results["alone"], results["shadow"], strict=True))
    server_ratio = p50([s for _, s in results["shadow"]]) / p50(
        [s for _, s in results["alone"]])
    cpu = {c: sum(w.cpu_s for w, _ in results[c]) / sum(len(w.latencies)
                                                       for w, _ in results[c]) * 1e6
           for c in results}
    print(f"  client p50 over all rounds: {pooled['alone'] * 1000:.3f} ms alone, "
          f"{pooled['shadow'] * 1000:.3f} ms with the shadow ({client:.3f}); paired rounds "
          f"{', '.join(f'{r:.2f}' for r in paired)}; logged by the server (median rounds) "
          f"{server_ratio:.3f}; server CPU per request {cpu['alone']:.0f} and "
          f"{cpu['shadow']:.0f} us")
    bench.figure("champion p50 with a shadow / without, at 50 % capacity",
                 f"{client:.3f} (server-logged {server_ratio:.3f})", "<= 1.10",
                 client <= 1.10)


# -- 6. promote and rollback by hand under load ----------------------------------------------
def switches_under_load(bench: Bench, url: str, cycles: int, rate: float) -> None:
    print(f"\n6. promote / rollback by hand under load ({rate:g} requests/s, 4 client "
          f"threads), {cycles} cycle(s) of 5 changes", flush=True)
    changes: list[tuple[float, float, tuple[str, ...], str]] = []
    refused: list[str] = []
    with Paced(url, rate, threads=4) as load:
        time.sleep(2.0)
        champion, other = "1", "2"
        for _ in range(cycles):
            plan: tuple[tuple[tuple[str, ...], str], ...] = (
                (("--version", other, "--canary", "50"), "1, 2"),
                (("--promote",), other),
                (("--version", champion, "--canary", "50"), "1, 2"),
                (("--rollback",), other),
                (("--version", champion, "--promote"), champion))
            for args, expect in plan:
                called = time.time()
                view = deploy(bench, *args, check=False)
                if "error" in view:
                    refused.append(f"{' '.join(args)}: {view['error'][:120]}")
                changes.append((called, time.time(), args, expect))
                time.sleep(FOLLOW_S + 1.0)
        time.sleep(1.0)
    answers = load.answers
    bad = [a for a in answers if not 200 <= a[1] < 300]
    seconds = answers[-1][0] - answers[0][0]
    ends = [c[0] for c in changes[1:]] + [answers[-1][0]]
    for (called, done, args, expect), end in zip(changes, ends, strict=True):
        seen = Counter(a[2] for a in load.between(done + FOLLOW_S, end))
        mark = "" if ", ".join(sorted(seen)) == expect else f"  (expected {expect})"
        print(f"  ship deploy {' '.join(args):<26} {done - called:4.1f} s; answers from "
              f"{FOLLOW_S:g} s after it: {dict(sorted(seen.items()))}{mark}")
    print(f"  {len(answers)} requests in {seconds:.0f} s ({len(answers) / seconds:.0f} "
          f"req/s); statuses {dict(Counter(a[1] for a in answers))}")
    for text in refused:
        print(f"  refused: {text}")
    bench.figure(f"non-2xx answers across {len(changes)} promotes/rollbacks under load",
                 f"{len(bad)} of {len(answers)}", "0", not bad and not refused)


# -- the run --------------------------------------------------------------------------------
def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="a short development run: fewer rounds and canaries")
    parser.add_argument("--pct", type=float, default=10.0,
                        help="the canaries' first share of traffic, percent")
    parser.add_argument("--step-seconds", type=float, default=3.0,
                        help="[release] step_seconds for step 2's promotion")
    parser.add_argument("--canaries", type=int, default=300,
                        help="simulated identical canaries (step 3)")
    parser.add_argument("--rounds", type=int, default=4, help="interleaved rounds, 4 and 5")
    parser.add_argument("--seconds", type=float, default=4.0, help="per timed window, 4, 5")
    parser.add_argument("--cycles", type=int, default=2, help="promote/rollback cycles, 6")
    parser.add_argument("--switch-rate", type=float, default=200.0,
                        help="requests/s while promoting and rolling back, 6")
    parser.add_argument("--keep", action="store_true", help="keep the workspace")
    parser.add_argument("--only", default="1,2,3,4,5,6", metavar="1,2,...",
                        help="run only these steps (3 draws its latencies from 1's log)")
    args = parser.parse_args()
    args.only = {int(part) for part in args.only.split(",") if part.strip()}
    if args.quick:
        args.canaries, args.rounds, args.seconds, args.cycles = 60, 2, 2.0, 1
    return args


def interrupted(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> None:
    args = parse_args()
    # SIGTERM (and SIGINT, also where a shell started this in the background) unwind
    # like Ctrl-C: every server started is stopped on the way out
    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, interrupted)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    began = time.perf_counter()
    print(f"load average before: {os.getloadavg()[0]:.2f}; {os.cpu_count()} cores"
          + ("; --quick" if args.quick else ""), flush=True)
    tmp = tempfile.mkdtemp(prefix="ship-bench-release-")
    root = Path(tmp)
    cwd = os.getcwd()
    os.chdir(root)
    try:
        bench = build_workspace(root)
        if args.only & {1, 2, 3}:  # 3 draws its latencies from 1's log
            with serving(bench, {"step_seconds": args.step_seconds}, workers=2) as server:
                url = f"http://127.0.0.1:{server.port}"
                broken_canary(bench, url, args.pct)
                if 2 in args.only:
                    slow_and_identical(bench, url, args.pct, args.step_seconds)
        if 3 in args.only:
            false_rollbacks(bench, args.canaries, max(50, args.canaries // 3))
        frozen = {"step_seconds": 1e9}  # the gate will not move a canary while measured
        cores = os.sched_getaffinity(0)
        if len(cores) >= 2:
            os.sched_setaffinity(0, {1})
        try:
            if args.only & {4, 5}:
                with serving(bench, frozen, workers=1,
                             core=0 if len(cores) >= 2 else None) as server:
                    capacity = routing_cost(bench, server, args.rounds, args.seconds,
                                            [1] if args.quick else [1, 100])
                    if 5 in args.only:
                        shadow_cost(bench, server, capacity, args.rounds, args.seconds)
        finally:
            os.sched_setaffinity(0, cores)
        if 6 in args.only:
            with serving(bench, frozen, workers=2) as server:
                switches_under_load(bench, f"http://127.0.0.1:{server.port}", args.cycles,
                                    args.switch_rate)
    finally:
        os.chdir(cwd)
        if args.keep:
            print(f"workspace kept: {root}")
        else:
            import shutil

            shutil.rmtree(root, ignore_errors=True)
    summary(bench, time.perf_counter() - began)


def summary(bench: Bench, seconds: float) -> None:
    print(f"\nsummary ({seconds / 60:.1f} minutes; load average after "
          f"{os.getloadavg()[0]:.2f})")
    width = max(len(f[0]) for f in bench.figures)
    for what, value, goal, met in bench.figures:
        mark = "" if met is None else ("PASS" if met else "MISS")
        print(f"  {what:<{width}}  {value:<28} {goal:<9} {mark}")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt as exc:
        raise SystemExit(f"interrupted ({exc or 'Ctrl-C'}); servers stopped") from None
