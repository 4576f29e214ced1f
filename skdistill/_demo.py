"""The main job on an embedded default: distil a random forest, compare.

Run it with ``python -m skdistill`` (or ``skdistill demo``).
"""

# Authors: The skdistill developers
# SPDX-License-Identifier: BSD-3-Clause

import pickle
import time

import numpy as np
from sklearn.datasets import load_digits
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split

from ._classifier import DistilledClassifier

__all__ = ["compare", "format_comparison", "run_demo", "summarize_comparison"]

#: Rows the predict time is reported for, as in Bucila et al. (2006).
TIMED_ROWS = 10_000


def _predict_seconds(model, X, n_rows=TIMED_ROWS, repeats=3):
    """Best-of-``repeats`` time to predict ``n_rows`` rows tiled from X (array or DataFrame)."""
    rows = np.resize(np.arange(len(X)), n_rows)
    tiled = X.iloc[rows] if hasattr(X, "iloc") else np.asarray(X)[rows]
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        model.predict_proba(tiled)
        best = min(best, time.perf_counter() - start)
    return best


def compare(teacher, student, X_test, y_test=None):
    """Teacher and student side by side on held-out rows.

    Parameters
    ----------
    teacher : fitted classifier
    student : fitted DistilledClassifier
    X_test : array-like or DataFrame of shape (n_samples, n_features)
    y_test : array-like of shape (n_samples,), default=None
        Labels; without them accuracy is left out.

    Returns
    -------
    rows : list of dict
        One dict per model with ``model``, ``accuracy`` (or None),
        ``agreement`` (with the teacher), ``predict_s`` (seconds for
        10,000 rows) and ``size_bytes`` (pickled size: the student's
        module and its preprocessing).

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skdistill import DistilledClassifier
    >>> from skdistill._demo import compare
    >>> X, y = load_iris(return_X_y=True)
    >>> teacher = LogisticRegression(max_iter=500).fit(X, y)
    >>> student = DistilledClassifier(teacher, max_epochs=5, random_state=0).fit(X, y)
    >>> [row["model"] for row in compare(teacher, student, X, y)]
    ['teacher', 'student']
    """
    teacher_labels = teacher.predict(X_test)
    rows = []
    for name, model in [("teacher", teacher), ("student", student)]:
        labels = model.predict(X_test)
        rows.append(
            {
                "model": name,
                "accuracy": None if y_test is None else float(np.mean(labels == y_test)),
                "agreement": float(np.mean(labels == teacher_labels)),
                "predict_s": _predict_seconds(model, X_test),
                "size_bytes": len(
                    pickle.dumps(
                        model
                        if name == "teacher"
                        else (model.student_.module_, model.preprocessor_)
                    )
                ),
            }
        )
    return rows


def format_comparison(rows):
    """The rows of :func:`compare` as a text table.

    Parameters
    ----------
    rows : list of dict

    Returns
    -------
    table : str

    Examples
    --------
    >>> from skdistill._demo import format_comparison
    >>> row = dict(model="m", accuracy=0.5, agreement=1.0, predict_s=0.1, size_bytes=10)
    >>> print(format_comparison([row]))  # doctest: +NORMALIZE_WHITESPACE
    model    accuracy  agreement  predict 10k rows (ms)   size (kB)
    m          0.5000     1.0000                  100.0         0.0
    """
    header = ("model", "accuracy", "agreement", "predict 10k rows (ms)", "size (kB)")
    lines = ["{:<8}{:>10}{:>11}{:>23}{:>12}".format(*header)]
    for row in rows:
        accuracy = "n/a" if row["accuracy"] is None else f"{row['accuracy']:.4f}"
        lines.append(
            f"{row['model']:<8}{accuracy:>10}{row['agreement']:>11.4f}"
            f"{row['predict_s'] * 1e3:>23.1f}{row['size_bytes'] / 1e3:>12.1f}"
        )
    return "\n".join(lines)


def summarize_comparison(rows):
    """One sentence on how the student compares with the teacher in size and speed.

    Parameters
    ----------
    rows : list of dict
        The teacher's and the student's rows of :func:`compare`.

    Returns
    -------
    sentence : str

    Examples
    --------
    >>> from skdistill._demo import summarize_comparison
    >>> teacher = dict(size_bytes=6900, predict_s=0.3)
    >>> student = dict(size_bytes=100, predict_s=0.5)
    >>> summarize_comparison([teacher, student])
    'The student is 69x smaller and 1.7x slower at predict than the teacher.'
    """
    teacher_row, student_row = rows
    size = _ratio(teacher_row, student_row, "size_bytes", "smaller", "larger")
    speed = _ratio(teacher_row, student_row, "predict_s", "faster", "slower")
    return f"The student is {size} and {speed} at predict than the teacher."


def _ratio(teacher_row, student_row, key, better, worse):
    """How the student compares on ``key``: such as 3.2x faster, or 1.5x slower."""
    teacher, student = teacher_row[key], student_row[key]
    ratio = teacher / student if student > 0 else float("inf")
    word = better if ratio >= 1 else worse
    ratio = ratio if ratio >= 1 else 1 / ratio
    return f"{ratio:.{0 if ratio >= 10 else 1}f}x {word}"


def run_demo(random_state=0):
    """Distil a 500-tree random forest on scikit-learn's digits and print a comparison.

    Parameters
    ----------
    random_state : int, default=0

    Returns
    -------
    rows : list of dict
        As returned by :func:`compare`.
    """
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=random_state
    )
    print(f"digits: {len(X_train)} training rows, {len(X_test)} test rows, 64 features, 10 classes")
    start = time.perf_counter()
    forest = RandomForestClassifier(n_estimators=500, n_jobs=-1, random_state=random_state)
    forest.fit(X_train, y_train)
    fit_seconds = time.perf_counter() - start
    print(f"teacher: RandomForestClassifier(n_estimators=500), fitted in {fit_seconds:.1f} s")
    start = time.perf_counter()
    # verbose=1: a progress bar on a terminal, a line per epoch in a log.
    student = DistilledClassifier(forest, random_state=random_state, verbose=1)
    student.fit(X_train, y_train)
    sizes = "-".join(map(str, student.student_.module_.body.layer_sizes))
    print(
        f"student: MLP {sizes}, distilled in {time.perf_counter() - start:.1f} s "
        f"({student.n_iter_} epochs, T={student.temperature}, alpha={student.alpha})"
    )
    rows = compare(forest, student, X_test, y_test)
    print()
    print(format_comparison(rows))
    print(f"\n{summarize_comparison(rows)}")
    return rows
