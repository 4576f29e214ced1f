"""Rows per second of the student's training and prediction, against bare PyTorch and two floors.

Two students, at batch sizes 256 to 8192, on one device (``--device cpu|cuda``):

- ``default``: the package's default student, 32 features -> 256-256 -> 8 classes,
  KL loss at T=4 (alpha 0.9) over packed targets;
- ``mnist``: the 784-800-800-10 student of Hinton et al. (2015), KL at T=20, on
  MNIST-shaped synthetic rows (random features; the data do not change the speed).

Contenders, on the same rows, module shapes, loss, optimizer (Adam, lr 1e-3), batch
size and epochs:

- ``skdistill``: ``DistilledClassifier.fit`` / ``predict_proba`` through the public
  API, with a fitted LogisticRegression teacher, ``early_stopping=False`` and
  ``n_iter_no_change=max_epochs+1`` (a fixed number of epochs); on CUDA its
  default ``cuda_graph="auto"`` captures the step. Steady rows/s come
  from the epoch durations skorch records in ``student_.history`` (epochs after the
  first); end-to-end rows/s divide all trained rows by the wall time of ``fit``
  (teacher labelling, standardisation, copies to the device included). When the
  package's loop gets faster, this row shows it;
- ``skdistill, cuda_graph=False`` (CUDA): the same with eager steps;
- ``bare, sync/step``: a hand-written loop (data on the device, batches gathered
  with a device permutation) that reads each step's loss on the host (``.item()``);
- ``bare, no sync``: the same, with losses summed on the device and read once per
  epoch;
- ``bare, no sync, fused Adam`` (CUDA): the same with ``Adam(fused=True)``;
- ``bare, CUDA graph`` (CUDA): the step (gather, forward, loss, backward, Adam with
  ``capturable=True``) captured once in a CUDA graph and replayed, the batch
  indices copied into a static buffer before each replay (the last, partial batch
  of an epoch runs eagerly).

Floors (upper bounds on rows/s, printed as rows/s):

- launch-bound: ``batch / (kernels per step x launch latency)``; kernels per step
  are counted with the torch profiler on the bare no-sync step (CUDA kernels,
  memcpys and memsets on CUDA; top-level aten ops on CPU), the latency is measured
  with a loop of one-element in-place adds (eager) and, on CUDA, with a replayed
  graph of them (per graph node);
- FLOP-bound: ``peak / FLOPs per row``, with ``6 x weights - 2 x first layer``
  FLOPs per row forward and backward (no gradient for the input) and the peak
  measured with a large float32 matrix product (TF32 as torch has it set).

Prediction: ``predict_proba`` on 100k rows (20k on CPU with ``--quick``) from host
memory against a bare pass (one copy in, one forward, softmax on the device, one
copy out), on CUDA both with a plain copy and with the package's copy through
two pinned staging buffers (``skdistill._device.to_device``).

Every configuration is written to ``benchmarks/results/throughput_{device}.md`` and
``.json`` as soon as it is measured, so an interrupted run keeps what it did.
``--budget-minutes`` stops adding configurations once the budget is spent (the one
under way finishes); configurations run most informative first.

Usage::

    nice -n 10 python benchmarks/throughput.py --device cpu --threads 1
    nice -n 10 python benchmarks/throughput.py --device cpu --quick
    python benchmarks/throughput.py --device cuda --budget-minutes 4
    python benchmarks/throughput.py --smoke --results-dir /tmp/throughput  # a code check
"""

import argparse
import json
import math
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from torch import nn

from skdistill import DistilledClassifier
from skdistill._device import to_device

RESULTS = Path(__file__).parent / "results"

STUDENTS = {
    "default": dict(n_features=32, hidden=(256, 256), n_classes=8, temperature=4.0),
    "mnist": dict(n_features=784, hidden=(800, 800), n_classes=10, temperature=20.0),
}
ALPHA = 0.9
LR = 1e-3

# Datasheet peaks, for the notes only (the floors use the measured peak).
DATASHEET = {
    "NVIDIA H200": "67 TFLOP/s FP32 (no tensor cores), 495 TFLOP/s dense TF32",
    "NVIDIA H100": "67 TFLOP/s FP32 (SXM), 495 TFLOP/s dense TF32",
}


# ---------------------------------------------------------------------------
# The machine
# ---------------------------------------------------------------------------


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def describe(device):
    parts = [
        f"python {platform.python_version()}",
        f"torch {torch.__version__}",
        f"numpy {np.__version__}",
        f"CPUs {os.cpu_count()}",
        f"torch threads {torch.get_num_threads()}",
    ]
    try:
        with open("/proc/cpuinfo") as handle:
            model = next(line.split(":", 1)[1].strip() for line in handle if "model name" in line)
        parts.append(f"CPU {model}")
    except (OSError, StopIteration):
        pass
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        parts.append(f"GPU {props.name} ({props.total_memory / 2**30:.0f} GiB)")
        parts.append(f"CUDA {torch.version.cuda}")
        parts.append(f"TF32 matmul {torch.backends.cuda.matmul.allow_tf32}")
    return "; ".join(parts)


def load_average():
    try:
        return os.getloadavg()
    except OSError:
        return (float("nan"),) * 3


def launch_latency(device, n_ops=3000):
    """Seconds per eager one-element op, and per node of a replayed CUDA graph."""
    a = torch.zeros(1, device=device)
    for _ in range(200):
        a.add_(1.0)
    sync(device)
    start = time.perf_counter()
    for _ in range(n_ops):
        a.add_(1.0)
    sync(device)
    eager = (time.perf_counter() - start) / n_ops
    graph_node = None
    if device.type == "cuda":
        nodes = 200
        stream = torch.cuda.Stream(device)
        stream.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(stream):
            for _ in range(3):
                a.add_(1.0)
        torch.cuda.current_stream(device).wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            for _ in range(nodes):
                a.add_(1.0)
        graph.replay()
        sync(device)
        replays = 20
        start = time.perf_counter()
        for _ in range(replays):
            graph.replay()
        sync(device)
        graph_node = (time.perf_counter() - start) / (replays * nodes)
    return eager, graph_node


def peak_flops(device):
    """Measured float32 matmul throughput, FLOP/s."""
    size = 8192 if device.type == "cuda" else 1024
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    for _ in range(2):
        a @ b
    sync(device)
    best = math.inf
    for _ in range(3):
        start = time.perf_counter()
        reps = 5
        for _ in range(reps):
            a @ b
        sync(device)
        best = min(best, (time.perf_counter() - start) / reps)
    return 2 * size**3 / best


def flops_per_row(spec):
    sizes = [spec["n_features"], *spec["hidden"], spec["n_classes"]]
    weights = sum(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True))
    return 6 * weights - 2 * sizes[0] * sizes[1]


# ---------------------------------------------------------------------------
# The problem
# ---------------------------------------------------------------------------


def make_problem(spec, n_train, n_predict, seed=0):
    """Synthetic rows with a fitted LogisticRegression teacher (fitted on 4000 rows)."""
    rng = np.random.default_rng(seed)
    n_features, n_classes = spec["n_features"], spec["n_classes"]
    centres = rng.standard_normal((n_classes, n_features)).astype(np.float32)
    n = n_train + n_predict
    y = rng.integers(n_classes, size=n)
    X = rng.standard_normal((n, n_features), dtype=np.float32)
    X += centres[y]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        teacher = LogisticRegression(max_iter=50).fit(X[:4000], y[:4000])
    return X[:n_train], y[:n_train], np.ascontiguousarray(X[n_train:]), teacher


def estimator(teacher, spec, batch_size, epochs, device, cuda_graph="auto"):
    return DistilledClassifier(
        teacher,
        hidden_layer_sizes=spec["hidden"],
        temperature=spec["temperature"],
        alpha=ALPHA,
        lr=LR,
        batch_size=batch_size,
        max_epochs=epochs,
        early_stopping=False,
        n_iter_no_change=epochs + 1,
        device=str(device),
        cuda_graph=cuda_graph,
        random_state=0,
    )


# ---------------------------------------------------------------------------
# The bare loops (self-contained: the same work as the package's student)
# ---------------------------------------------------------------------------


class BareStudent(nn.Module):
    """Standardisation then an MLP: the package's default student, written out."""

    def __init__(self, X, hidden, n_classes):
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(X.mean(axis=0), dtype=torch.float32))
        self.register_buffer("scale", torch.as_tensor(X.std(axis=0) + 1e-3, dtype=torch.float32))
        layers, width = [], X.shape[1]
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU()]
            width = size
        layers.append(nn.Linear(width, n_classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, X):
        return self.layers((X - self.mean) / self.scale)


def distillation_loss(logits, targets, temperature, alpha=ALPHA):
    """The package's DistillationLoss (KL at T in float64, CE on labelled rows), written out."""
    teacher = targets[:, :-2]
    labels = targets[:, -2].long()
    weights = targets[:, -1]
    per_row = torch.zeros_like(weights)
    log_q = torch.log_softmax(logits.double() / temperature, dim=1)
    log_p = torch.log_softmax(teacher.double() / temperature, dim=1)
    soft = (temperature**2 * (log_p.exp() * (log_p - log_q)).sum(dim=1)).to(logits.dtype)
    per_row = per_row + alpha * soft
    hard = nn.functional.cross_entropy(logits, labels.clamp(min=0), reduction="none")
    per_row = per_row + (1 - alpha) * torch.where(labels != -1, hard, 0.0)
    return (weights * per_row).mean()


def packed_targets(teacher, X, y):
    proba = np.clip(teacher.predict_proba(X), 1e-12, None)
    logits = np.log(proba)
    logits -= logits.mean(axis=1, keepdims=True)
    targets = np.empty((len(X), logits.shape[1] + 2), dtype=np.float32)
    targets[:, :-2] = logits
    targets[:, -2] = np.searchsorted(teacher.classes_, y)
    targets[:, -1] = 1.0
    return targets


class BareLoop:
    """One bare training loop; ``epoch()`` trains one epoch and returns its seconds."""

    def __init__(self, X, targets, spec, batch_size, device, mode):
        self.device, self.mode, self.batch_size = device, mode, batch_size
        self.temperature = spec["temperature"]
        torch.manual_seed(0)
        self.model = BareStudent(X, spec["hidden"], spec["n_classes"]).to(device)
        self.model.train()
        options = {}
        if mode == "fused":
            options["fused"] = True
        if mode == "graph":
            options["capturable"] = True
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=LR, **options)
        self.X = torch.from_numpy(X).to(device)
        self.targets = torch.from_numpy(targets).to(device)
        self.total = torch.zeros((), device=device)
        self.graph = None
        self.losses = []

    def step(self, rows):
        self.optimizer.zero_grad(set_to_none=True)
        loss = distillation_loss(self.model(self.X[rows]), self.targets[rows], self.temperature)
        loss.backward()
        self.optimizer.step()
        return loss

    def _capture(self, order):
        b = self.batch_size
        self.static_rows = order[:b].clone()
        stream = torch.cuda.Stream(self.device)
        stream.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(stream):
            for i in range(3):  # warm-up: lazy state (Adam moments, cuBLAS handles)
                self.static_rows.copy_(order[i * b : (i + 1) * b])
                self.step(self.static_rows)
        torch.cuda.current_stream(self.device).wait_stream(stream)
        self.optimizer.zero_grad(set_to_none=True)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            loss = self.step(self.static_rows)
            self.total.add_(loss.detach())

    def epoch(self):
        sync(self.device)
        start = time.perf_counter()
        n, b = len(self.X), self.batch_size
        order = torch.randperm(n, device=self.device)
        if self.mode == "graph":
            n_full = n // b * b
            if self.graph is None and n_full >= 4 * b:
                self._capture(order)
            if self.graph is not None:
                for begin in range(0, n_full, b):
                    self.static_rows.copy_(order[begin : begin + b])
                    self.graph.replay()
                if n_full < n:
                    self.total.add_(self.step(order[n_full:]).detach())
                self.losses.append(self.total.item())
                self.total.zero_()
                sync(self.device)
                return time.perf_counter() - start
        for begin in range(0, n, b):
            loss = self.step(order[begin : begin + b])
            if self.mode == "sync":
                self.losses.append(loss.item())
            else:
                self.total.add_(loss.detach())
        if self.mode != "sync":
            self.losses.append(self.total.item())
            self.total.zero_()
        sync(self.device)
        return time.perf_counter() - start


def kernels_per_step(X, targets, spec, device):
    """Kernels (CUDA) or top-level aten ops (CPU) of one bare no-sync step at batch 256."""
    from torch.profiler import ProfilerActivity, profile

    loop = BareLoop(X, targets, spec, 256, device, "nosync")
    rows = torch.arange(256, device=device)
    for _ in range(3):
        loop.step(rows)
    sync(device)
    steps = 5
    activities = [ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities) as prof:
        for _ in range(steps):
            loop.total.add_(loop.step(rows).detach())
        sync(device)
    events = prof.events()
    if device.type == "cuda":
        count = sum(
            1
            for event in events
            if getattr(event, "device_type", None) == torch.autograd.DeviceType.CUDA
        )
        if count == 0:  # no device-side events: count the launches on the host
            launches = ("cudaLaunchKernel", "cuLaunchKernel", "cudaMemcpyAsync", "cudaMemsetAsync")
            count = sum(1 for event in events if event.name.startswith(launches))
    else:
        # aten ops not called by another aten op (backward ops sit under autograd nodes)
        count = sum(
            1
            for event in events
            if event.name.startswith("aten::")
            and (event.cpu_parent is None or not event.cpu_parent.name.startswith("aten::"))
        )
    return count / steps


# ---------------------------------------------------------------------------
# Prediction
# ---------------------------------------------------------------------------


def bare_predict(model, X, device, pinned=False):
    model.eval()
    with torch.inference_mode():
        source = torch.from_numpy(X)
        if pinned and device.type == "cuda":
            inputs = to_device(source, device)  # the package's staged copy
        else:
            inputs = source.to(device)
        proba = torch.softmax(model(inputs).double(), dim=1)
        return proba.cpu().numpy()


# ---------------------------------------------------------------------------
# Measurement
# ---------------------------------------------------------------------------


def steady(durations):
    """Median epoch seconds after the first epoch (the first when there is one)."""
    durations = list(durations)
    rest = durations[1:] or durations
    return float(np.median(rest))


def keep(results, name, result):
    """Keep the best of the rounds (highest steady rows/s)."""
    best = results.get(name)
    if best is None or result["steady_rows_per_s"] > best["steady_rows_per_s"]:
        results[name] = result


def measure_config(student, spec, batch_size, problem, device, target_s, floors, rounds=2):
    X, y, X_predict, teacher, targets = problem
    n = len(X)
    row = {"student": student, "batch_size": batch_size, "n_train": n, "fit": {}, "load": {}}
    row["load"]["before"] = load_average()[0]

    # Calibrate the epochs on a one-epoch skdistill fit (also a warm-up).
    sync(device)
    start = time.perf_counter()
    estimator(teacher, spec, batch_size, 1, device).fit(X, y)
    sync(device)
    one = time.perf_counter() - start
    epochs = int(min(50, max(3, round(target_s / max(one, 1e-3)) + 1)))
    row["epochs"] = epochs

    modes = ["sync", "nosync"]
    if device.type == "cuda":
        modes += ["fused", "graph"]
    names = {
        "sync": "bare, sync/step",
        "nosync": "bare, no sync",
        "fused": "bare, no sync, fused Adam",
        "graph": "bare, CUDA graph",
    }
    model = None
    # Rounds alternate the contenders, so that they share the machine's state
    # (other processes, clocks); the best round of each is kept.
    packages = {"skdistill": "auto"}
    if device.type == "cuda":
        packages["skdistill, cuda_graph=False"] = False
    for _ in range(rounds):
        for name, cuda_graph in packages.items():
            sync(device)
            start = time.perf_counter()
            fitted = estimator(teacher, spec, batch_size, epochs, device, cuda_graph).fit(X, y)
            sync(device)
            wall = time.perf_counter() - start
            if cuda_graph == "auto":
                model = model or fitted
            durations = [entry["dur"] for entry in fitted.student_.history]
            keep(
                row["fit"],
                name,
                {
                    "steady_rows_per_s": n / steady(durations),
                    "end_to_end_rows_per_s": n * epochs / wall,
                    "epoch_s": durations,
                    "wall_s": wall,
                },
            )
        for mode in modes:
            try:
                loop = BareLoop(X, targets, spec, batch_size, device, mode)
                seconds = [loop.epoch() for _ in range(epochs)]
            except Exception as error:  # one contender failing must not end the run
                print(f"{names[mode]} failed: {error!r}", flush=True)
                keep(
                    row["fit"],
                    names[mode],
                    {
                        "steady_rows_per_s": math.nan,
                        "end_to_end_rows_per_s": math.nan,
                        "error": repr(error),
                    },
                )
                continue
            keep(
                row["fit"],
                names[mode],
                {
                    "steady_rows_per_s": n / steady(seconds),
                    "end_to_end_rows_per_s": n * epochs / sum(seconds),
                    "epoch_s": seconds,
                    "captured": loop.graph is not None if mode == "graph" else None,
                },
            )
    row["floors"] = {
        "launch_rows_per_s": batch_size
        / (floors["kernels_per_step"][student] * floors["launch_s"]),
        "graph_launch_rows_per_s": (
            batch_size / (floors["kernels_per_step"][student] * floors["graph_node_s"])
            if floors.get("graph_node_s")
            else None
        ),
        "flop_rows_per_s": floors["peak_flops"] / flops_per_row(spec),
    }
    row["load"]["after"] = load_average()[0]
    return row, model


def measure_predict(student, model, problem, device, repeats=3):
    X, y, X_predict, teacher, targets = problem
    n = len(X_predict)
    results = {}
    contenders = {"skdistill": lambda: model.predict_proba(X_predict)}
    module = model.student_.module_
    contenders["bare, one pass"] = lambda: bare_predict(module, X_predict, device)
    if device.type == "cuda":
        contenders["bare, pinned staging"] = lambda: bare_predict(
            module, X_predict, device, pinned=True
        )
    for name, function in list(contenders.items()):
        try:
            function()  # warm-up
        except Exception as error:  # e.g. no pinned memory
            print(f"predict {name} failed: {error!r}", flush=True)
            del contenders[name]
    for _ in range(repeats):
        for name, function in contenders.items():
            sync(device)
            start = time.perf_counter()
            function()
            sync(device)
            seconds = time.perf_counter() - start
            results[name] = min(results.get(name, math.inf), seconds)
    return {"student": student, "n_rows": n, "rows_per_s": {k: n / v for k, v in results.items()}}


def same_seed_check(teacher, spec, X, y, device):
    """Two fits with the same random_state give the same probabilities, bit for bit."""
    a = estimator(teacher, spec, 256, 2, device).fit(X, y)
    b = estimator(teacher, spec, 256, 2, device).fit(X, y)
    rows = X[:2000]
    return bool(np.array_equal(a.predict_proba(rows), b.predict_proba(rows)))


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------


def fmt(value):
    if value is None or not np.isfinite(value):
        return "-"
    if value >= 1e6:
        return f"{value / 1e6:.2f}M"
    if value >= 1e3:
        return f"{value / 1e3:.0f}k"
    return f"{value:.0f}"


def report(meta, rows, predictions):
    device = meta["device"]
    lines = [
        f"# Student throughput on {device}",
        "",
        f"Machine: {meta['machine']}",
        "",
        f"Run: {meta['mode']}, budget {meta['budget_minutes']} min, "
        f"{meta['elapsed_s']:.0f} s spent, best of {meta['rounds']} alternating rounds; "
        f"load average (1 min) {meta['load_start']:.2f} at start, "
        f"{meta['load_end']:.2f} at the end. "
        f"Measured launch latency: {meta['launch_s'] * 1e6:.1f} us per eager op"
        + (
            f", {meta['graph_node_s'] * 1e6:.2f} us per CUDA-graph node"
            if meta.get("graph_node_s")
            else ""
        )
        + f"; float32 matmul peak {meta['peak_flops'] / 1e12:.2f} TFLOP/s"
        + (f" (datasheet: {meta['datasheet']})" if meta.get("datasheet") else "")
        + ". Kernels per step (bare step, batch 256): "
        + ", ".join(f"{k} {v:.0f}" for k, v in meta["kernels_per_step"].items())
        + f". Same random_state, same probabilities: {meta.get('same_seed')}.",
        "",
        "## Fit, rows per second (steady epochs; end-to-end in parentheses)",
        "",
        "Floors are upper bounds on rows/s: launch = batch / (kernels x eager launch latency), "
        "graph = the same with the graph node latency, FLOP = peak / FLOPs per row (fwd+bwd).",
        "",
    ]
    contenders = []
    for row in rows:
        for name in row["fit"]:
            if name not in contenders:
                contenders.append(name)
    header = [
        "student",
        "batch",
        "rows",
        "epochs",
        *contenders,
        "launch floor",
        "graph floor",
        "FLOP floor",
        "skdistill / best bare",
        "load",
    ]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join(["---"] * 2 + ["---:"] * (len(header) - 2)) + "|")
    for row in sorted(rows, key=lambda r: (r["student"], r["batch_size"])):
        cells = [row["student"], str(row["batch_size"]), str(row["n_train"]), str(row["epochs"])]
        for name in contenders:
            result = row["fit"].get(name)
            cells.append(
                "-"
                if result is None
                else f"{fmt(result['steady_rows_per_s'])} ({fmt(result['end_to_end_rows_per_s'])})"
            )
        floors = row["floors"]
        cells += [
            fmt(floors["launch_rows_per_s"]),
            fmt(floors["graph_launch_rows_per_s"]),
            fmt(floors["flop_rows_per_s"]),
        ]
        best_bare = np.nanmax(
            [
                result["steady_rows_per_s"]
                for name, result in row["fit"].items()
                if not name.startswith("skdistill")
            ]
        )
        cells.append(f"{row['fit']['skdistill']['steady_rows_per_s'] / best_bare:.2f}")
        cells.append(f"{row['load']['before']:.1f}-{row['load']['after']:.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    if predictions:
        lines += ["", "## predict_proba from host memory, rows per second", ""]
        names = []
        for prediction in predictions:
            for name in prediction["rows_per_s"]:
                if name not in names:
                    names.append(name)
        lines.append("| student | rows | " + " | ".join(names) + " |")
        lines.append("|---|---:|" + "---:|" * len(names))
        for prediction in predictions:
            cells = [prediction["student"], str(prediction["n_rows"])]
            cells += [fmt(prediction["rows_per_s"].get(name)) for name in names]
            lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"Reproduce: `{meta['command']}`", ""]
    return "\n".join(lines)


def write(meta, rows, predictions):
    results = Path(meta.get("results_dir") or RESULTS)
    results.mkdir(parents=True, exist_ok=True)
    stem = results / f"throughput_{meta['device_type']}"
    if meta["mode"] != "full":
        stem = stem.with_name(f"{stem.name}_{meta['mode']}")
    text = report(meta, rows, predictions)
    stem.with_suffix(".md").write_text(text)
    payload = {"meta": meta, "fit": rows, "predict": predictions}
    stem.with_suffix(".json").write_text(json.dumps(payload, indent=1, default=float) + "\n")
    return text


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------


def plan(device, quick, smoke=False):
    """(student, batch) pairs, most informative first; rows per student; seconds per contender."""
    if smoke:  # a code check of a few seconds
        return [("default", 256)], {"default": 2048}, 2048, 0.1
    if device.type == "cuda":
        batches = [256, 4096, 1024, 8192] if not quick else [256, 4096]
        n_train = {"default": 131_072, "mnist": 60_000}
        n_predict = 100_000
        target_s = 1.0 if quick else 2.0
    else:
        batches = [256, 4096, 1024, 8192] if not quick else [256, 1024, 4096]
        n_train = (
            {"default": 20_000, "mnist": 8_192} if quick else {"default": 20_000, "mnist": 16_384}
        )
        n_predict = 20_000 if quick else 100_000
        target_s = 1.5 if quick else 4.0
    pairs = [(student, batch) for batch in batches for student in ("mnist", "default")]
    return pairs, n_train, n_predict, target_s


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--budget-minutes", type=float, default=10.0)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--smoke", action="store_true", help="one tiny configuration: a code check")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds, best kept")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads first")
    parser.add_argument("--results-dir", default=None, help=f"default: {RESULTS}")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda but torch sees no CUDA device")
    if device.type == "cuda":
        device = torch.device("cuda", torch.cuda.current_device())
    began = time.perf_counter()
    budget_s = 60 * args.budget_minutes
    pairs, n_train, n_predict, target_s = plan(device, args.quick, args.smoke)

    launch_s, graph_node_s = launch_latency(device)
    meta = {
        "device": str(device),
        "device_type": device.type,
        "machine": describe(device),
        "mode": "smoke" if args.smoke else "quick" if args.quick else "full",
        "budget_minutes": args.budget_minutes,
        "rounds": args.rounds,
        "results_dir": args.results_dir,
        "command": "python benchmarks/throughput.py " + " ".join(argv or sys.argv[1:]),
        "load_start": load_average()[0],
        "launch_s": launch_s,
        "graph_node_s": graph_node_s,
        "peak_flops": peak_flops(device),
        "kernels_per_step": {},
        "elapsed_s": 0.0,
        "load_end": load_average()[0],
    }
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        meta["datasheet"] = next((v for k, v in DATASHEET.items() if k in name), None)
    print(meta["machine"], flush=True)
    print(
        f"launch {launch_s * 1e6:.1f} us/op"
        + (f", graph node {graph_node_s * 1e6:.2f} us" if graph_node_s else "")
        + f", peak {meta['peak_flops'] / 1e12:.2f} TFLOP/s",
        flush=True,
    )

    problems, rows, predictions, fitted = {}, [], [], {}
    for student, batch in pairs:
        elapsed = time.perf_counter() - began
        if elapsed > budget_s and rows:  # the first configuration always runs
            print(f"budget spent ({elapsed:.0f} s): skipping {student} batch {batch}", flush=True)
            meta.setdefault("skipped", []).append([student, batch])
            continue
        spec = STUDENTS[student]
        if student not in problems:
            X, y, X_predict, teacher = make_problem(spec, n_train[student], n_predict)
            targets = packed_targets(teacher, X, y)
            problems[student] = (X, y, X_predict, teacher, targets)
            try:
                meta["kernels_per_step"][student] = kernels_per_step(X, targets, spec, device)
            except Exception as error:  # the profiler is not essential
                print(f"kernel count failed: {error!r}", flush=True)
                meta["kernels_per_step"][student] = float("nan")
            if "same_seed" not in meta:
                try:
                    meta["same_seed"] = same_seed_check(teacher, spec, X[:8192], y[:8192], device)
                except Exception as error:
                    meta["same_seed"] = f"failed: {error!r}"
        floors = {**meta, "kernels_per_step": meta["kernels_per_step"]}
        row, model = measure_config(
            student, spec, batch, problems[student], device, target_s, floors, args.rounds
        )
        rows.append(row)
        if student not in fitted:
            fitted[student] = model
            predictions.append(measure_predict(student, model, problems[student], device))
        meta["elapsed_s"] = time.perf_counter() - began
        meta["load_end"] = load_average()[0]
        write(meta, rows, predictions)
        summary = ", ".join(
            f"{name} {fmt(result['steady_rows_per_s'])}" for name, result in row["fit"].items()
        )
        print(f"[{meta['elapsed_s']:.0f} s] {student} batch {batch}: {summary}", flush=True)
    meta["elapsed_s"] = time.perf_counter() - began
    print(write(meta, rows, predictions))


if __name__ == "__main__":
    main()
