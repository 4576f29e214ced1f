"""
===============================================
Compress a random forest into a small network
===============================================

The everyday use of skdistill: you already have a classifier that works, here a
random forest of 300 trees, and it is too big or too slow to serve. A
:class:`~skdistill.DistilledClassifier` trains a small neural network, the
*student*, to behave like it, and is then used like any scikit-learn
classifier.

This is the workflow of a notebook: fit the teacher, distil, compare on
held-out rows.
"""

# %%
# The teacher
# -----------
import pickle
import time

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split

from skdistill import DistilledClassifier
from skdistill.metrics import teacher_agreement

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)
forest = RandomForestClassifier(n_estimators=300, random_state=0).fit(X_train, y_train)

# %%
# Distil it
# ---------
# The teacher is passed already fitted; it is used as is and never modified.
# ``fit`` computes the forest's probabilities on the training rows once, turns
# them into soft targets at ``temperature=2`` and trains the network on them,
# mixed with the true labels (``alpha=0.9`` weighs the soft targets). The
# student standardises its inputs itself, so it takes the same raw ``X``.
#
# The defaults (two hidden layers of 256 units, up to 200 epochs) are tuned
# for real tabular data; on 1,257 rows of digits a single layer of 128 units
# and 60 epochs is plenty.
student = DistilledClassifier(forest, hidden_layer_sizes=(128,), max_epochs=60, random_state=0).fit(
    X_train, y_train
)
print(f"trained for {student.n_iter_} epochs")

# %%
# A baseline: the same network on the labels alone
# -------------------------------------------------
# ``alpha=0`` turns the soft-target term off, leaving the ordinary
# cross-entropy on ``y``: the network you would get without a teacher.
hard = DistilledClassifier(
    forest, alpha=0.0, hidden_layer_sizes=(128,), max_epochs=60, random_state=0
).fit(X_train, y_train)

# %%
# Compare
# -------
# Accuracy says how good each model is; *agreement* (the share of rows where
# the student predicts the teacher's class, :mod:`skdistill.metrics`) says how
# faithfully it copies its teacher. Size is the pickled size, and speed the
# time to predict 10,000 rows.


def predict_seconds(model, n_rows=10_000, repeats=3):
    rows = np.resize(X_test, (n_rows, X_test.shape[1]))
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        model.predict_proba(rows)
        best = min(best, time.perf_counter() - start)
    return best


teacher_labels = forest.predict(X_test)
models = {"forest (teacher)": forest, "hard-label net": hard, "distilled net": student}
results = {}
for name, model in models.items():
    network = model.student_.module_ if hasattr(model, "student_") else model
    results[name] = {
        "accuracy": model.score(X_test, y_test),
        "agreement": teacher_agreement(teacher_labels, model.predict(X_test)),
        "size_kB": len(pickle.dumps(network)) / 1e3,
        "predict_ms": 1e3 * predict_seconds(model),
    }
    print(
        f"{name:<17} accuracy {results[name]['accuracy']:.3f}  "
        f"agreement {results[name]['agreement']:.3f}  "
        f"size {results[name]['size_kB']:8.0f} kB  "
        f"predict 10k rows {results[name]['predict_ms']:6.1f} ms"
    )

# %%
fig, axes = plt.subplots(1, 3, figsize=(11, 3), sharey=True)
names = list(results)
colors = ["C2", "C7", "C0"]
for ax, key, label, fmt in [
    (axes[0], "accuracy", "test accuracy", "{:.3f}"),
    (axes[1], "size_kB", "size (kB, log scale)", "{:,.0f}"),
    (axes[2], "predict_ms", "predict 10k rows (ms, log scale)", "{:.1f}"),
]:
    values = [results[name][key] for name in names]
    if key == "accuracy":
        ax.set_xlim(0.9, 1.0)
        left = 0.9
    else:
        ax.set_xscale("log")
        left = min(values) / 3
        ax.set_xlim(left, max(values) * 20)
    ax.barh(names, [v - left for v in values], left=left, color=colors)
    for y_position, value in enumerate(values):
        ax.text(value, y_position, " " + fmt.format(value), va="center")
    ax.set_title(label)
fig.tight_layout()
plt.show()

# %%
# The distilled network is a few hundred times smaller and far faster than the
# forest, at about the forest's accuracy. On this small, easy problem the
# hard-label network is already good; where a tree ensemble clearly beats a
# network trained on the labels, distillation recovers most of the gap (see
# :doc:`/benchmarks`, data set *magic*).
#
# The student is a scikit-learn estimator: ``predict``, ``predict_proba`` and
# ``score`` behave as usual, ``classes_`` are the teacher's, and it works in a
# ``Pipeline``, in ``GridSearchCV`` (:ref:`sphx_glr_auto_examples_plot_grid_search.py`)
# and with ``pickle``. To ship it without the forest, export it:
# :ref:`sphx_glr_auto_examples_plot_onnx_export.py`.
