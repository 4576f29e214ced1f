"""
=================================================
Tune the temperature and alpha with GridSearchCV
=================================================

:class:`~skdistill.DistilledClassifier` is an ordinary scikit-learn estimator,
so its two distillation knobs, the ``temperature`` of the soft targets and
``alpha``, the weight of the soft targets against the true labels, are tuned
with :class:`~sklearn.model_selection.GridSearchCV`.

Two things make this cheap and correct:

* the fitted teacher is shared by every candidate, never refitted: ``clone``
  keeps it fitted, as :class:`sklearn.frozen.FrozenEstimator` does;
* ``memory=`` caches the teacher's outputs on disk, so each fold asks the
  teacher once, not once per candidate.
"""

# %%
# Data and teacher
# ----------------
# A random forest on scikit-learn's digits. The test rows are set aside before
# anything is fitted: the teacher will have seen every row of the
# cross-validation, which makes the cross-validated scores optimistic (see the
# note at the end); the test rows give the honest figure.
import tempfile

import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import GridSearchCV, train_test_split

from skdistill import DistilledClassifier
from skdistill.metrics import agreement_scorer, teacher_agreement
from skdistill.plotting import plot_search_scores

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, train_size=600, stratify=y, random_state=0
)
teacher = RandomForestClassifier(n_estimators=100, random_state=0).fit(X_train, y_train)
print(f"teacher test accuracy: {teacher.score(X_test, y_test):.3f}")

# %%
# The search
# ----------
# Two scores per candidate: accuracy against the labels and agreement with the
# teacher (:func:`skdistill.metrics.agreement_scorer`), refitting on accuracy.
# ``alpha=0`` ignores the teacher (the temperature then changes nothing): it is
# the hard-label baseline, searched once, within the same search. A small
# student and few epochs keep the example fast.
cache = tempfile.mkdtemp(prefix="skdistill-cache-")
student = DistilledClassifier(
    teacher,
    hidden_layer_sizes=(32,),
    max_epochs=30,
    batch_size=128,
    lr=3e-3,
    memory=cache,
    random_state=0,
)
temperatures = [1, 2, 4, 8]
param_grid = [
    {"alpha": [0.0], "temperature": [1]},
    {"alpha": [0.5, 0.9], "temperature": temperatures},
]
search = GridSearchCV(
    student,
    param_grid,
    scoring={"accuracy": "accuracy", "agreement": agreement_scorer},
    refit="accuracy",
    cv=3,
)
search.fit(X_train, y_train)
print("best parameters:", search.best_params_)
print(f"best cross-validated accuracy: {search.best_score_:.3f}")

# %%
# Plot the scores
# ---------------
# :func:`skdistill.plotting.plot_search_scores` draws the mean score against
# the temperature, one line per alpha, with a band of one standard deviation
# over the folds. ``alpha=0`` (labels only) is the single point at ``T = 1``.
fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
for ax, metric in zip(axes, ["accuracy", "agreement"], strict=True):
    plot_search_scores(search, param="temperature", hue="alpha", scoring=metric, ax=ax)
    ax.set_title(f"cross-validated {metric}")
fig.tight_layout()
plt.show()

# %%
# The two panels are the same
# ---------------------------
# This is no plotting bug. The forest was fitted on all of ``X_train``, so in
# every fold it has seen the validation rows, and a forest predicts the rows
# it was fitted on correctly:
print(f"forest's accuracy on its own training rows: {teacher.score(X_train, y_train):.3f}")

# %%
# On those rows, agreeing with the teacher *is* being right, and the
# cross-validated agreement tells nothing about fidelity. More generally, the
# teacher's outputs on rows it has seen are not its outputs on new data (a
# forest's are over-confident), and a student that copies them closely
# inherits that advantage in the search. Compare candidates on the
# cross-validation if you must, but measure on rows nobody has seen:
best = search.best_estimator_
print(f"test accuracy of the best student: {best.score(X_test, y_test):.3f}")
print(
    "test agreement with the teacher: "
    f"{teacher_agreement(teacher.predict(X_test), best.predict(X_test)):.3f}"
)

# %%
# On new rows the two figures differ again, because there accuracy and
# fidelity are different questions (:ref:`fidelity`). For an honest
# cross-validation of the whole procedure, pass an *unfitted* teacher, so that
# each fold fits its own forest on its training part only (see
# :ref:`pitfalls`).
#
# Reading the plot: the bands (one standard deviation over three folds)
# overlap for most settings. On real data the differences between
# temperatures 2 to 8 and alphas 0.5 to 0.9 are small, which is why the
# defaults (``temperature=2``, ``alpha=0.9``) are a safe starting point; see
# :ref:`choosing`.
