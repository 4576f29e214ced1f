"""
========================================
Compress a regression forest into a net
========================================

:class:`~skdistill.DistilledRegressor` does for regressors what
:class:`~skdistill.DistilledClassifier` does for classifiers: it trains a
small network on a fitted teacher's predictions. A regression forest is
piecewise constant, and between the training rows is where a student has the
most to learn: a MUNGE transfer set labelled by the forest fills those gaps.
"""

# %%
# A forest on a smooth problem
# ----------------------------
import matplotlib.pyplot as plt
from sklearn.datasets import make_friedman1
from sklearn.ensemble import RandomForestRegressor
from sklearn.metrics import r2_score
from sklearn.model_selection import train_test_split

from skdistill import DistilledRegressor, Munge

X, y = make_friedman1(n_samples=2500, noise=0.5, random_state=0)
X_train, X_test, y_train, y_test = train_test_split(X, y, train_size=500, random_state=0)
forest = RandomForestRegressor(n_estimators=200, random_state=0).fit(X_train, y_train)

# %%
# Three students of the same size
# -------------------------------
# One trained on ``y`` alone (``alpha=0``), one on the forest's predictions at
# the 500 training rows, one with 5 MUNGE rows per training row as well.
settings = dict(hidden_layer_sizes=(64, 64), max_epochs=100, random_state=0)
students = {
    "on y only": DistilledRegressor(forest, alpha=0.0, **settings).fit(X_train, y_train),
    "distilled": DistilledRegressor(forest, **settings).fit(X_train),
    "distilled + MUNGE 5x": DistilledRegressor(
        forest, transfer=Munge(size_multiplier=5), **{**settings, "max_epochs": 30}
    ).fit(X_train),
}
teacher_test = forest.predict(X_test)
print(f"{'forest':>22}: R^2 on test {r2_score(y_test, teacher_test):.3f}")
for name, student in students.items():
    prediction = student.predict(X_test)
    print(
        f"{name:>22}: R^2 on test {r2_score(y_test, prediction):.3f}, "
        f"R^2 against the forest {r2_score(teacher_test, prediction):.3f}"
    )

# %%
# Fidelity is not accuracy
# ------------------------
# The transfer set does what it should: the student's agreement with the
# forest (R^2 against its predictions) climbs from about 0.80 to 0.93. But on
# this smooth function a network trained on ``y`` alone beats the forest, and
# a faithful copy of the forest inherits its errors: the closer the student
# gets to the forest, the lower its own test score. Distillation pays when the
# teacher is the better model (an ensemble on tabular data, a big net) and
# the student is what you can afford to serve; measure both, as here.
fig, axes = plt.subplots(1, len(students), figsize=(10, 3.4), sharex=True, sharey=True)
for ax, (name, student) in zip(axes, students.items(), strict=True):
    ax.scatter(teacher_test, student.predict(X_test), s=4, alpha=0.5)
    ax.plot([y.min(), y.max()], [y.min(), y.max()], "k:")
    ax.set_title(name)
    ax.set_xlabel("forest's prediction")
axes[0].set_ylabel("student's prediction")
fig.tight_layout()
plt.show()
