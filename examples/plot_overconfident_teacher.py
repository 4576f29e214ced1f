"""
=====================================================
A forest is over-confident on the rows it was fit on
=====================================================

A student learns from the teacher's outputs *on the rows it is given*. When
those are the teacher's own training rows, a random forest has seen them: most
of its trees put each row in a leaf with its own label, so its probabilities
there are much more confident than on new rows. The soft targets then carry
less dark knowledge than the forest would show on fresh data.

This example measures it with reliability diagrams
(:func:`skdistill.plotting.plot_reliability`) and shows the fix: give the
teacher rows it has not seen, real (``X_unlabeled``) or synthetic
(``transfer=``).
"""

# %%
# The same forest on training and on new rows
# -------------------------------------------
import matplotlib.pyplot as plt
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split

from skdistill import DistilledClassifier
from skdistill.metrics import teacher_agreement, teacher_student_kl
from skdistill.plotting import plot_reliability

X, y = make_classification(
    n_samples=4000,
    n_features=10,
    n_informative=6,
    n_classes=3,
    flip_y=0.05,
    class_sep=0.8,
    random_state=0,
)
X_train, X_rest, y_train, y_rest = train_test_split(X, y, train_size=500, random_state=0)
X_unlabeled, X_test, _, y_test = train_test_split(X_rest, y_rest, train_size=2000, random_state=0)
forest = RandomForestClassifier(n_estimators=200, random_state=0).fit(X_train, y_train)

for name, rows in [("training rows", X_train), ("new rows", X_test)]:
    top = forest.predict_proba(rows).max(axis=1)
    print(f"forest, mean top probability on {name}: {top.mean():.2f}")

# %%
# On its training rows the forest is more confident, and right on every row
# (the reliability diagrams below show it); on new rows it is less confident
# and, being a forest, right more often than its confidence says. A student
# distilled on the training rows is taught the first picture.
#
# Give the teacher rows it has not seen
# -------------------------------------
# Here 2,000 unlabelled rows are available: the teacher labels them and the
# student learns from them too (``fit(..., X_unlabeled=...)``). With none, a
# synthetic transfer set (``transfer=Munge(...)``) does the same job.
common = dict(hidden_layer_sizes=(64,), max_epochs=60, lr=3e-3, random_state=0)
on_train = DistilledClassifier(forest, **common).fit(X_train, y_train)
with_unlabeled = DistilledClassifier(forest, **common).fit(
    X_train, y_train, X_unlabeled=X_unlabeled
)

teacher_labels = forest.predict(X_test)
teacher_proba = forest.predict_proba(X_test)
for name, student in [("training rows only", on_train), ("+ 2,000 unlabelled", with_unlabeled)]:
    print(
        f"student, {name:<19} accuracy {student.score(X_test, y_test):.3f}  "
        f"agreement {teacher_agreement(teacher_labels, student.predict(X_test)):.3f}  "
        f"KL to the teacher {teacher_student_kl(teacher_proba, student.predict_proba(X_test)):.3f}"
    )

# %%
# Reliability diagrams
# --------------------
# Confidence (the probability given to the predicted class, in bins) against
# the share of correct predictions in each bin.
fig, axes = plt.subplots(1, 3, figsize=(14, 4), sharey=True)
plot_reliability({"forest": forest}, X_train, y_train, ax=axes[0])
axes[0].set_title("the forest on its training rows")
plot_reliability({"forest": forest}, X_test, y_test, ax=axes[1])
axes[1].set_title("the forest on new rows")
plot_reliability(
    {"training rows only": on_train, "+ unlabelled rows": with_unlabeled},
    X_test,
    y_test,
    ax=axes[2],
)
axes[2].set_title("students, on new rows")
fig.tight_layout()
plt.show()

# %%
# The student that saw the teacher's opinion on new rows matches the teacher
# more closely on held-out data (higher agreement, lower KL), and its
# reliability curve takes the shape of the forest's on new rows. The same holds for
# a search: if the teacher was fitted on every row of a cross-validation, its
# outputs on the validation folds are the over-confident ones. See
# :ref:`pitfalls`.
