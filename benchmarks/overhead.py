"""What skdistill's estimator layer costs over a bare PyTorch loop.

On 20k rows x 32 features, 8 classes: ``DistilledClassifier.fit`` against a
hand-written PyTorch loop doing the same work (same module, initial weights,
epochs, batch size, optimizer and loss, the teacher's outputs computed once
in both), twice:

- ``fit``: a fixed number of epochs, no early stopping, on every row;
- ``fit, early stopping``: the estimator's defaults (early stopping is on
  from 10,000 rows: a 10% hold-out, a validation pass after every epoch,
  the best weights kept), against a bare loop that does the same: the same
  hold-out share, a batched validation pass in eval mode per epoch, a copy
  of the weights when the validation loss improves, the best restored at
  the end. ``n_iter_no_change`` exceeds the epochs, so both run them all.

and ``predict_proba`` on 100k rows against one bare forward pass plus
softmax. A third row shows skorch's default data pipeline (a row-wise
``Dataset`` and a collating ``DataLoader``) for reference. Runs alternate
and the best of ``--repeats`` is kept, so both sides see the same machine.

Usage::

    python benchmarks/overhead.py            # writes benchmarks/results/overhead.md
    python benchmarks/overhead.py --device cuda
"""

import argparse
import copy
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from skorch import NeuralNet

from skdistill import DistilledClassifier
from skdistill.losses import DistillationLoss, pack_targets
from skdistill.student import MLP, Standardize, StudentModule
from skdistill.teachers import teacher_logits

try:
    from datasets import describe_machine
except ImportError:  # run from another folder
    from benchmarks.datasets import describe_machine

RESULTS = Path(__file__).parent / "results"
N_TRAIN, N_PREDICT, N_FEATURES, N_CLASSES = 20_000, 100_000, 32, 8


def make_problem(seed=0):
    X, y = make_classification(
        n_samples=N_TRAIN + N_PREDICT,
        n_features=N_FEATURES,
        n_informative=20,
        n_classes=N_CLASSES,
        random_state=seed,
    )
    X = X.astype(np.float32)
    teacher = LogisticRegression(max_iter=300).fit(X[:N_TRAIN], y[:N_TRAIN])
    return X[:N_TRAIN], y[:N_TRAIN], X[N_TRAIN:], teacher


def estimator(teacher, epochs, device):
    # A fixed number of epochs on both sides: no stopping rule.
    return DistilledClassifier(
        teacher,
        max_epochs=epochs,
        n_iter_no_change=epochs + 1,
        early_stopping=False,
        device=device,
        random_state=0,
    )


def bare_setup(teacher, X, y, device, params):
    """The bare loops' inputs and targets on the device, module, loss and optimizer."""
    logits = teacher_logits(teacher, X)
    label_indices = np.searchsorted(teacher.classes_, y)
    targets = torch.from_numpy(pack_targets(logits, label_indices)).to(device)
    inputs = torch.from_numpy(X).to(device)
    torch.manual_seed(0)
    module = StudentModule(
        Standardize.from_data(X), MLP(X.shape[1], N_CLASSES, params["hidden_layer_sizes"])
    ).to(device)
    criterion = DistillationLoss(params["temperature"], params["alpha"], params["loss"])
    optimizer = torch.optim.Adam(module.parameters(), lr=params["lr"])
    return inputs, targets, module, criterion, optimizer


def train_epoch(module, criterion, optimizer, inputs, targets, batch_size):
    """One epoch over shuffled rows; the mean loss read once, at the end."""
    module.train()
    order = torch.randperm(len(inputs), device=inputs.device)
    total = torch.zeros((), device=inputs.device)
    for start in range(0, len(inputs), batch_size):
        rows = order[start : start + batch_size]
        optimizer.zero_grad()
        loss = criterion(module(inputs[rows]), targets[rows])
        loss.backward()
        optimizer.step()
        total += loss.detach()
    return float(total) * batch_size / len(inputs)


def bare_fit(teacher, X, y, epochs, device, params):
    """The hand-written loop: what DistilledClassifier.fit does, minus the estimator."""
    inputs, targets, module, criterion, optimizer = bare_setup(teacher, X, y, device, params)
    for _ in range(epochs):
        train_epoch(module, criterion, optimizer, inputs, targets, params["batch_size"])
    return module


def bare_fit_early_stopping(teacher, X, y, epochs, device, params, fraction=0.1, seed=0):
    """The bare loop with what early stopping adds: hold-out, validation pass, best weights."""
    inputs, targets, module, criterion, optimizer = bare_setup(teacher, X, y, device, params)
    order = np.random.default_rng(seed).permutation(len(X))
    n_valid = int(round(fraction * len(X)))
    valid_rows = torch.as_tensor(np.sort(order[:n_valid]), device=inputs.device)
    train_rows = torch.as_tensor(np.sort(order[n_valid:]), device=inputs.device)
    X_train, t_train = inputs[train_rows], targets[train_rows]
    X_valid, t_valid = inputs[valid_rows], targets[valid_rows]
    batch_size = params["batch_size"]
    best_loss, best_state = np.inf, None
    for _ in range(epochs):
        train_epoch(module, criterion, optimizer, X_train, t_train, batch_size)
        module.eval()
        valid_total = torch.zeros((), device=device)
        with torch.no_grad():
            for start in range(0, len(X_valid), batch_size):
                chunk = slice(start, start + batch_size)
                rows = len(X_valid[chunk])
                valid_total += rows * criterion(module(X_valid[chunk]), t_valid[chunk])
        valid_loss = float(valid_total) / len(X_valid)
        if valid_loss < best_loss:
            best_loss, best_state = valid_loss, copy.deepcopy(module.state_dict())
    module.load_state_dict(best_state)
    return module


def skorch_default_fit(teacher, X, y, epochs, device, params):
    """The same net with skorch's default Dataset and DataLoader pipeline."""
    logits = teacher_logits(teacher, X)
    targets = pack_targets(logits, np.searchsorted(teacher.classes_, y))
    torch.manual_seed(0)
    net = NeuralNet(
        module=StudentModule(
            Standardize.from_data(X), MLP(X.shape[1], N_CLASSES, params["hidden_layer_sizes"])
        ),
        criterion=DistillationLoss,
        criterion__temperature=params["temperature"],
        criterion__alpha=params["alpha"],
        optimizer=torch.optim.Adam,
        lr=params["lr"],
        batch_size=params["batch_size"],
        max_epochs=epochs,
        iterator_train__shuffle=True,
        train_split=None,
        device=device,
        verbose=0,
    )
    return net.fit(X, targets)


def bare_predict_proba(module, X, device):
    module.eval()
    with torch.inference_mode():
        return torch.softmax(module(torch.from_numpy(X).to(device)), dim=1).cpu().numpy()


def timed(function):
    """(result, wall seconds, CPU seconds of this process) of one call."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    wall, cpu = time.perf_counter(), time.process_time()
    result = function()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def keep_best(times, operation, name, wall, cpu):
    best = times[operation].setdefault(name, {"wall": np.inf, "cpu": np.inf})
    best["wall"], best["cpu"] = min(best["wall"], wall), min(best["cpu"], cpu)


def run(epochs, repeats, device, es_epochs=5):
    X, y, X_predict, teacher = make_problem()
    params = estimator(teacher, epochs, device).get_params()
    times = {"fit": {}, "fit, early stopping": {}, "predict_proba": {}}
    # Warm-up: the first run of each path pays one-time costs (allocator,
    # kernel selection, imports) that are not what is measured here.
    warm = estimator(teacher, 1, device).fit(X, y)
    bare_fit(teacher, X, y, 1, device, params)
    skorch_default_fit(teacher, X, y, 1, device, params)
    DistilledClassifier(teacher, max_epochs=1, device=device, random_state=0).fit(X, y)
    bare_fit_early_stopping(teacher, X, y, 1, device, params)
    warm.predict_proba(X_predict)
    bare_predict_proba(warm.student_.module_, X_predict, device)
    fitted = {}
    contenders = {
        "fit": [
            ("skdistill", lambda: estimator(teacher, epochs, device).fit(X, y)),
            ("bare torch", lambda: bare_fit(teacher, X, y, epochs, device, params)),
            ("skorch defaults", lambda: skorch_default_fit(teacher, X, y, epochs, device, params)),
        ],
        "fit, early stopping": [
            # The defaults: early stopping is on from 10,000 rows.
            (
                "skdistill",
                lambda: DistilledClassifier(
                    teacher, max_epochs=es_epochs, device=device, random_state=0
                ).fit(X, y),
            ),
            (
                "bare torch",
                lambda: bare_fit_early_stopping(teacher, X, y, es_epochs, device, params),
            ),
        ],
    }
    # Alternate the contenders within each repeat so that they share the
    # machine's state (turbo, other load) as evenly as possible.
    for _ in range(repeats):
        for operation, group in contenders.items():
            for name, fit in group:
                model, wall, cpu = timed(fit)
                if operation == "fit":
                    fitted[name] = model
                keep_best(times, operation, name, wall, cpu)
    module = fitted["bare torch"]
    X_predict = np.ascontiguousarray(X_predict)
    for _ in range(repeats):
        for name, predict in [
            ("skdistill", lambda: fitted["skdistill"].predict_proba(X_predict)),
            ("bare torch", lambda: bare_predict_proba(module, X_predict, device)),
            ("skorch defaults", lambda: fitted["skorch defaults"].predict_proba(X_predict)),
        ]:
            _, wall, cpu = timed(predict)
            keep_best(times, "predict_proba", name, wall, cpu)
    return times


def report(times, epochs, repeats, device, es_epochs):
    lines = [
        "# Overhead of DistilledClassifier over a bare PyTorch loop",
        "",
        f"{N_TRAIN} rows x {N_FEATURES} features, {N_CLASSES} classes, default student "
        f"(MLP 256-256, batch 256, Adam), {epochs} epochs (`fit`), {es_epochs} epochs with "
        f"the defaults' early stopping (`fit, early stopping`); predict_proba on {N_PREDICT} "
        "rows. "
        f"Best of {repeats} alternating runs, device {device}, torch threads "
        f"{torch.get_num_threads()}; load average {os.getloadavg()[0]:.1f}.",
        "",
        f"Machine: {describe_machine()}",
        "",
        "| operation | contender | seconds | ratio to bare torch | CPU seconds | CPU ratio |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for operation, by_name in times.items():
        bare = by_name["bare torch"]
        for name, best in by_name.items():
            lines.append(
                f"| {operation} | {name} | {best['wall']:.3f} | {best['wall'] / bare['wall']:.2f}x "
                f"| {best['cpu']:.3f} | {best['cpu'] / bare['cpu']:.2f}x |"
            )
    lines += [
        "",
        "Targets: fit <= 1.25x, predict_proba <= 1.5x. CPU seconds (this process's, best of "
        "the runs) are the steadier measure on a shared machine: other processes delay a "
        "run's wall time, not the work it does.",
        "",
    ]
    threads = f" --threads {torch.get_num_threads()}" if device == "cpu" else ""
    lines.append(
        "Reproduce: `python benchmarks/overhead.py"
        + (f" --device {device}" if device != "cpu" else "")
        + threads
        + "`"
    )
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument(
        "--early-stopping-epochs", type=int, default=5, help="epochs of the early-stopping fits"
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--results-dir", default=None, help=f"default: {RESULTS}")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch.set_num_threads for both sides (the package's fit never raises it)",
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    times = run(args.epochs, args.repeats, args.device, args.early_stopping_epochs)
    text = report(times, args.epochs, args.repeats, args.device, args.early_stopping_epochs)
    print(text)
    results = Path(args.results_dir) if args.results_dir else RESULTS
    results.mkdir(parents=True, exist_ok=True)
    suffix = "" if args.device == "cpu" else f"_{args.device.replace(':', '')}"
    (results / f"overhead{suffix}.md").write_text(text + "\n")
    (results / f"overhead{suffix}.json").write_text(json.dumps(times, indent=2) + "\n")


if __name__ == "__main__":
    main()
