"""Large transfer sets: teacher labelling and student training against size and n_jobs.

A 500-tree random forest, fitted on 10k x 20 synthetic rows with 10 classes, labels MUNGE
transfer sets of 10k, 100k and 1M rows (``--quick``: 10k, 30k, 100k), generated once from its
training rows. Each measurement runs in a fresh subprocess, after the rows (and the forest) are
loaded:

- labelling, for n_jobs in {1, 2}: skdistill's ``teacher_logits`` (10k-row batches written
  into one float32 array), with ``n_jobs=2`` as it comes (joblib threads: ``teacher_logits``
  asks joblib for threads unless the teacher holds torch modules) and under
  ``joblib.parallel_config(backend="loky")`` (worker processes, joblib's own default, which
  overrides that hint), against the naive ``forest.predict_proba(X)`` in one call (float64,
  with the forest's own ``n_jobs`` threads).
  Wall time, rows/s, and the peak resident memory the step added to the process; loky workers
  are separate processes, so their peak resident memory (summed, interpreter included) is
  shown apart.
- training: two epochs of the default ``DistilledClassifier`` student (MLP 256-256,
  ``early_stopping=False``, one torch thread) on the labelled rows, with the rows/s and the
  peak memory of the set-up and of each epoch. Equal epoch peaks, and a flat resident size
  from one epoch to the next, mean that neither rows nor targets are copied per epoch. The
  teacher is a stand-in that hands back the forest's float32 logits from the labelling step,
  so that the forest is not run on the rows twice.

Peak memory is the process's VmHWM, reset through ``/proc/self/clear_refs`` just before the
step (Linux only), minus its resident size then. The forest's depth is capped at 10 by default
(``--max-depth``; 0 grows full trees) to keep the full run under 15 minutes on 2 cores: with
full trees (about 4,200 nodes each instead of 1,200) the forest pickles to about 300 MB, not 85.

Usage::

    nice -n 10 python benchmarks/scale.py            # 10k to 1M rows, 7.5-14 min, 2 busy cores
    nice -n 10 python benchmarks/scale.py --quick    # 10k to 100k rows, about 5 min
"""

import argparse
import gc
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import joblib
import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from skorch.callbacks import Callback

from skdistill import DistilledClassifier, Munge
from skdistill.teachers import teacher_logits

try:
    from datasets import describe_machine
except ImportError:  # run from another folder
    from benchmarks.datasets import describe_machine

RESULTS = Path(__file__).parent / "results"
N_REAL, N_FEATURES, N_CLASSES, N_TREES = 10_000, 20, 10, 500
SIZES, QUICK_SIZES = (10_000, 100_000, 1_000_000), (10_000, 30_000, 100_000)
JOBS = (1, 2)
EPOCHS = 2
MIB = 2**20

NAIVE, SKDISTILL, LOKY = "naive predict_proba", "teacher_logits", "teacher_logits, loky"


# -- memory of this process (Linux /proc) ----------------------------------------------------


def _status_kib(field, pid="self"):
    """A number from /proc/PID/status: VmRSS or VmHWM (in KiB), PPid."""
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/{pid}/status has no {field}")


def resident_mib():
    return _status_kib("VmRSS") / 1024


def peak_mib():
    return _status_kib("VmHWM") / 1024


def reset_peak():
    """Restart the peak resident size (VmHWM) from the current resident size."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError as error:
        raise RuntimeError("this benchmark needs Linux's /proc/self/clear_refs") from error


def measured(step):
    """``step()``'s result, wall seconds, and the peak resident MiB it added."""
    gc.collect()
    reset_peak()
    before = resident_mib()
    start = time.perf_counter()
    result = step()
    seconds = time.perf_counter() - start
    return result, seconds, peak_mib() - before


def loky_workers_peak_mib():
    """Peak resident size of each of this process's loky workers, in MiB."""
    peaks = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if _status_kib("PPid", entry.name) != os.getpid():
                continue
            if b"LokyProcess" in (entry / "cmdline").read_bytes():
                peaks.append(_status_kib("VmHWM", entry.name) / 1024)
        except (OSError, RuntimeError):  # gone meanwhile
            continue
    return sorted(peaks, reverse=True)


# -- data, made once by the parent -----------------------------------------------------------


def prepare(folder, n_rows, max_depth):
    """Fit the forest, generate the transfer set; save both in ``folder``."""
    X, y = make_classification(
        n_samples=N_REAL,
        n_features=N_FEATURES,
        n_informative=10,
        n_classes=N_CLASSES,
        n_clusters_per_class=1,
        random_state=0,
    )
    start = time.perf_counter()
    forest = RandomForestClassifier(N_TREES, max_depth=max_depth, n_jobs=2, random_state=0)
    forest.fit(X, y).set_params(n_jobs=1)
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    multiplier = -(-n_rows // N_REAL)
    transfer = Munge(size_multiplier=multiplier, random_state=0).generate(X)[:n_rows]
    munge_seconds = time.perf_counter() - start
    joblib.dump(forest, folder / "forest.joblib")
    np.save(folder / "transfer.npy", transfer)
    return {
        "forest": f"RandomForestClassifier({N_TREES}, max_depth={max_depth})",
        "forest_fit_s": fit_seconds,
        "forest_file_mib": (folder / "forest.joblib").stat().st_size / MIB,
        "mean_nodes_per_tree": float(np.mean([t.tree_.node_count for t in forest.estimators_])),
        "munge_rows": n_rows,
        "munge_s": munge_seconds,
    }


def load_rows(folder, n_rows):
    """The first ``n_rows`` transfer rows, float64, resident (not a memory map)."""
    return np.array(np.load(folder / "transfer.npy", mmap_mode="r")[:n_rows])


# -- one measurement, in a fresh subprocess --------------------------------------------------


def labelling_step(forest, X, method, n_jobs):
    if method == NAIVE:
        forest.set_params(n_jobs=n_jobs)  # sklearn's own threads
        return lambda: forest.predict_proba(X)
    if method == LOKY:

        def step():
            with joblib.parallel_config(backend="loky"):
                return teacher_logits(forest, X, n_jobs=n_jobs)

        return step
    return lambda: teacher_logits(forest, X, n_jobs=n_jobs)


def label_task(task):
    folder, n_rows = Path(task["folder"]), task["n_rows"]
    forest = joblib.load(folder / "forest.joblib")
    X = load_rows(folder, n_rows)
    step = labelling_step(forest, X, task["method"], task["n_jobs"])
    output, seconds, peak = measured(step)
    workers = loky_workers_peak_mib()
    if task.get("save_logits"):
        np.save(folder / f"logits_{n_rows}.npy", output)
    return {
        "seconds": seconds,
        "rows_per_s": n_rows / seconds,
        "peak_mib": peak,
        "workers_peak_mib": sum(workers, 0.0),
        "each_worker_peak_mib": workers,
        "output_mib": output.nbytes / MIB,
        "output_dtype": str(output.dtype),
    }


class ReplayTeacher(ClassifierMixin, BaseEstimator):
    """Stands in for the forest: hands back its stored logits, batch after batch.

    ``teacher_logits`` asks for the batches in order when ``n_jobs`` is None, so the student
    gets the forest's own targets without the forest being run again.
    """

    def __init__(self, logits):
        self.logits = logits

    @property
    def classes_(self):
        return np.arange(self.logits.shape[1])

    def decision_function(self, X):
        start = getattr(self, "position_", 0)
        self.position_ = start + len(X)
        if self.position_ > len(self.logits):
            raise RuntimeError("ReplayTeacher asked for more rows than it stored")
        return self.logits[start : self.position_]


class MemoryProbe(Callback):
    """Records in the history the peak of the set-up and, per epoch, its peak and end size."""

    def on_epoch_begin(self, net, **kwargs):
        if len(net.history) == 1:
            net.history.record("setup_peak_mib", peak_mib())
        reset_peak()

    def on_epoch_end(self, net, **kwargs):
        net.history.record("epoch_peak_mib", peak_mib())
        net.history.record("resident_end_mib", resident_mib())


def train_task(task):
    torch.set_num_threads(1)
    folder, n_rows = Path(task["folder"]), task["n_rows"]
    X = load_rows(folder, n_rows)
    logits = np.load(folder / f"logits_{n_rows}.npy")
    student = DistilledClassifier(
        ReplayTeacher(logits),
        max_epochs=EPOCHS,
        n_iter_no_change=EPOCHS + 1,
        early_stopping=False,
        callbacks=[MemoryProbe()],
        random_state=0,
    )
    gc.collect()
    reset_peak()
    before = resident_mib()
    start = time.perf_counter()
    student.fit(X)
    seconds = time.perf_counter() - start
    history = student.student_.history
    return {
        "fit_seconds": seconds,
        "setup_peak_mib": history[0]["setup_peak_mib"] - before,
        "epochs": [
            {
                "seconds": row["dur"],
                "rows_per_s": n_rows / row["dur"],
                "peak_mib": row["epoch_peak_mib"] - before,
                "resident_end_mib": row["resident_end_mib"] - before,
            }
            for row in history
        ],
    }


def idle_workers_task(task):
    """What loky workers hold before real work: skdistill imported, two rows labelled."""
    X = np.array([[0.0], [1.0]])
    with joblib.parallel_config(backend="loky"):
        teacher_logits(LogisticRegression().fit(X, [0, 1]), X, batch_size=1, n_jobs=2)
    return {"idle_worker_peak_mib": loky_workers_peak_mib()}


TASKS = {"label": label_task, "train": train_task, "idle workers": idle_workers_task}


def run_task(task):
    return TASKS[task["kind"]](task)


# -- the parent: every configuration, each in its own subprocess ----------------------------


def in_subprocess(task):
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    done = subprocess.run(
        [sys.executable, __file__, "--task", json.dumps(task)],
        capture_output=True,
        text=True,
        env=env,
    )
    if done.returncode:
        raise RuntimeError(f"task {task} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def labelling_tasks(folder, n_rows):
    for n_jobs in JOBS:
        methods = [NAIVE, SKDISTILL] + ([LOKY] if n_jobs > 1 else [])
        for method in methods:
            yield {
                "kind": "label",
                "folder": str(folder),
                "n_rows": n_rows,
                "n_jobs": n_jobs,
                "method": method,
                "save_logits": method == SKDISTILL and n_jobs == 1,
            }


def parallelism(method, n_jobs):
    if n_jobs == 1:
        return "none"
    names = {NAIVE: "forest threads", SKDISTILL: "joblib threads", LOKY: "loky processes"}
    return names[method]


def run(sizes, max_depth):
    results = {"labelling": [], "training": []}
    with tempfile.TemporaryDirectory(prefix="skdistill_scale_") as name:
        folder = Path(name)
        results["setup"] = prepare(folder, max(sizes), max_depth)
        results["setup"].update(in_subprocess({"kind": "idle workers"}))
        print(f"set-up: {results['setup']}", flush=True)
        for n_rows in sizes:
            for task in labelling_tasks(folder, n_rows):
                row = {key: task[key] for key in ("n_rows", "n_jobs", "method")}
                row.update(in_subprocess(task))
                results["labelling"].append(row)
                print(labelling_line(row, results["labelling"]), flush=True)
            row = {"n_rows": n_rows}
            row.update(in_subprocess({"kind": "train", "folder": str(folder), "n_rows": n_rows}))
            results["training"].append(row)
            print(f"training: {training_line(row)}", flush=True)
    return results


# -- the report -------------------------------------------------------------------------------


def _naive_total(row, rows):
    for other in rows:
        if (other["n_rows"], other["n_jobs"], other["method"]) == (
            row["n_rows"],
            row["n_jobs"],
            NAIVE,
        ):
            return other["peak_mib"] + other["workers_peak_mib"]
    return float("nan")


def labelling_line(row, rows):
    total = row["peak_mib"] + row["workers_peak_mib"]
    workers = f"{row['workers_peak_mib']:,.0f}" if row["workers_peak_mib"] else "-"
    return (
        f"| {row['n_rows']:,} | {row['n_jobs']} | {row['method']} "
        f"| {parallelism(row['method'], row['n_jobs'])} | {row['seconds']:.1f} "
        f"| {row['rows_per_s']:,.0f} | {row['peak_mib']:,.0f} | {workers} "
        f"| {total / _naive_total(row, rows):.2f}x | {row['output_mib']:,.0f} "
        f"{row['output_dtype']} |"
    )


def training_line(row):
    first, last = row["epochs"][0], row["epochs"][-1]
    return (
        f"| {row['n_rows']:,} | {row['fit_seconds']:.1f} | {row['setup_peak_mib']:,.0f} "
        f"| {first['seconds']:.1f} / {last['seconds']:.1f} | {last['rows_per_s']:,.0f} "
        f"| {first['peak_mib']:,.0f} / {last['peak_mib']:,.0f} "
        f"| {first['resident_end_mib']:,.0f} / {last['resident_end_mib']:,.0f} |"
    )


LABELLING_HEADER = [
    "| rows | n_jobs | method | parallelism | seconds | rows/s | peak MiB, process "
    "| peak MiB, workers | peak vs naive | output MiB |",
    "|---:|---:|---|---|---:|---:|---:|---:|---:|---|",
]
TRAINING_HEADER = [
    "| rows | fit s | set-up peak MiB | epoch 1 / 2 s | rows/s (epoch 2) "
    "| epoch 1 / 2 peak MiB | resident after epoch 1 / 2, MiB |",
    "|---:|---:|---:|---:|---:|---:|---:|",
]


def report(results):
    setup = results["setup"]
    idle_worker = max(setup["idle_worker_peak_mib"], default=0.0)
    lines = [
        "# Large transfer sets: labelling and training against size and n_jobs",
        "",
        f"Teacher: `{setup['forest']}` ({setup['mean_nodes_per_tree']:.0f} nodes per tree, "
        f"{setup['forest_file_mib']:.0f} MiB pickled), fitted on {N_REAL:,} x {N_FEATURES} "
        f"synthetic rows, {N_CLASSES} classes ({setup['forest_fit_s']:.0f} s on 2 threads). "
        f"Transfer set: MUNGE rows from those ({setup['munge_rows']:,} generated in "
        f"{setup['munge_s']:.1f} s), float64. One fresh process per line; memory is the peak "
        "resident size the step added to the process, after the rows and the forest were "
        "loaded.",
        "",
        f"Machine: {results['machine']}",
        "",
        f"Command: `{results['command']}`; wall time {results['wall_s'] / 60:.1f} min.",
        "",
        "## Teacher labelling",
        "",
        "`naive predict_proba`: `forest.predict_proba(X)` in one call (float64), the forest's "
        "`n_jobs` set to the line's. `teacher_logits`: skdistill's labelling, 10k-row batches "
        "into a float32 array, forest `n_jobs=1`; with `n_jobs=2` as it comes (joblib threads: "
        "it prefers threads unless the teacher holds torch modules) or, for the `loky` lines, "
        'under `joblib.parallel_config(backend="loky")` (worker processes). Workers\' peak: '
        "summed VmHWM of the loky workers, interpreter and imports included (one that has "
        "imported skdistill, and so torch, and labelled two rows of a tiny model peaks at "
        f"{idle_worker:.0f} MiB). Peak vs naive: total (process + workers) over the naive "
        "line's with the same rows and n_jobs.",
        "",
        *LABELLING_HEADER,
        *(labelling_line(row, results["labelling"]) for row in results["labelling"]),
        "",
        "## Student training",
        "",
        f"`DistilledClassifier(teacher, max_epochs={EPOCHS}, early_stopping=False).fit(X)`, "
        "default MLP 256-256, batch 256, one torch thread, on the labelled rows (the teacher "
        "hands back the forest's logits from above, so the forest does not run again). Set-up: "
        "everything `fit` does before the first epoch (checks, float32 features, "
        "standardisation, labelling, packing the targets). Epoch seconds from skorch's "
        "history. Memory relative to the process before `fit`, X (float64) already loaded.",
        "",
        *TRAINING_HEADER,
        *(training_line(row) for row in results["training"]),
        "",
    ]
    return "\n".join(lines)


def command_line():
    nice = os.nice(0)
    prefix = f"nice -n {nice} " if nice else ""
    arguments = "".join(" " + shlex.quote(argument) for argument in sys.argv[1:])
    return f"{prefix}python benchmarks/scale.py{arguments}"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10k, 30k and 100k rows")
    parser.add_argument("--sizes", help="comma-separated row counts (overrides --quick)")
    parser.add_argument("--max-depth", type=int, default=10, help="forest depth; 0: full trees")
    parser.add_argument("--task", help=argparse.SUPPRESS)  # one measurement, as a subprocess
    return parser.parse_args()


def main():
    args = parse_args()
    if args.task:
        print(json.dumps(run_task(json.loads(args.task))))
        return
    sizes = [int(size) for size in args.sizes.split(",")] if args.sizes else None
    sizes = sizes or (QUICK_SIZES if args.quick else SIZES)
    start = time.perf_counter()
    print(*LABELLING_HEADER, sep="\n")
    results = run(sizes, args.max_depth or None)
    results.update(machine=describe_machine(), command=command_line())
    results["wall_s"] = time.perf_counter() - start
    text = report(results)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    stem = "scale_custom" if args.sizes else ("scale_quick" if args.quick else "scale")
    (RESULTS / f"{stem}.md").write_text(text)
    (RESULTS / f"{stem}.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS / stem}.md and .json ({results['wall_s'] / 60:.1f} min)")


if __name__ == "__main__":
    main()
