"""
=====================================================
What the temperature does to a teacher's predictions
=====================================================

A trained classifier says much more than its top class. Asked about a handwritten
8, a good model gives "8" nearly all the probability, but it also ranks the
wrong answers: a 9 or a 1 is far more plausible than a 0. Hinton et al. (2015)
call these tiny, structured probabilities *dark knowledge*, and they are what a
student learns from that it could not learn from the label alone.

At temperature ``T = 1`` those probabilities are too small to matter in a
cross-entropy loss. Dividing the teacher's logits by ``T > 1`` before the
softmax, ``p_i = exp(z_i / T) / sum_j exp(z_j / T)``, flattens the distribution
while keeping the order of the classes: the dark knowledge becomes visible.
This example shows it on a real teacher.
"""

# %%
# A teacher on the digits
# -----------------------
# Any fitted scikit-learn classifier can be a teacher. Here, a logistic
# regression on scikit-learn's 8x8 digits: its ``decision_function`` gives real
# logits.
import matplotlib.pyplot as plt
import numpy as np
from scipy.special import softmax
from sklearn.datasets import load_digits
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skdistill.plotting import plot_softened_distribution
from skdistill.teachers import teacher_logits

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)
teacher = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=1000))
teacher.fit(X_train, y_train)
print(f"teacher accuracy on held-out digits: {teacher.score(X_test, y_test):.3f}")

# %%
# Pick a held-out digit the teacher gets right and is sure of (top probability
# between 0.95 and 0.99), with one clear runner-up: the "dog that looks a bit
# like a wolf" of the distillation literature.
proba = teacher.predict_proba(X_test)
ranked = np.sort(proba, axis=1)[:, ::-1]
sure = (ranked[:, 0] > 0.95) & (ranked[:, 0] < 0.99) & (proba.argmax(axis=1) == y_test)
candidates = np.flatnonzero(sure)
row = candidates[np.argmax(ranked[candidates, 1] / ranked[candidates, 2])]
print(f"test row {row}: true class {y_test[row]}, teacher's top probability {ranked[row, 0]:.3f}")

# %%
# The softened distributions
# --------------------------
# :func:`skdistill.teachers.teacher_logits` gives the logits that
# :class:`~skdistill.DistilledClassifier` computes once per fit: the teacher's
# ``log predict_proba``, centred per row (softmax ignores a constant). Dividing
# them by ``T`` and taking the softmax is what the soft targets are.
logits = teacher_logits(teacher, X_test[[row]])[0]
temperatures = [1, 2, 5, 10]
classes = np.arange(10)

fig, axes = plt.subplots(1, len(temperatures) + 1, figsize=(12, 2.8))
axes[0].imshow(X_test[row].reshape(8, 8), cmap="gray_r")
axes[0].set_title(f"input (a {y_test[row]})")
axes[0].set_axis_off()
for ax, T in zip(axes[1:], temperatures, strict=True):
    p_T = softmax(logits / T)
    ax.bar(classes, p_T, color=np.where(classes == y_test[row], "C1", "C0"))
    ax.set_xticks(classes)
    ax.set_ylim(0, 1)
    ax.set_title(f"T = {T}")
    print(f"T = {T:>2}: " + " ".join(f"{c}:{p:.2g}" for c, p in zip(classes, p_T, strict=True)))
axes[1].set_ylabel("probability")
fig.suptitle("The same teacher output, softened at increasing temperatures")
fig.tight_layout()

# %%
# At ``T = 1`` the plot shows one bar; the printed values show the rest is
# not zero, only tiny. At ``T = 5`` and ``T = 10`` the runner-up classes, the
# digits that look most like this one, stand out from the implausible ones,
# and the top class still comes first. This is what ``temperature`` controls
# in :class:`~skdistill.DistilledClassifier`: how much weight the student puts
# on matching the teacher's ranking of the wrong answers. Very high
# temperatures flatten everything towards uniform, and the student then
# matches logits rather than probabilities (see :ref:`soft_targets`).
#
# On a log scale
# --------------
# A log scale shows that the temperature does not invent anything: ``log p_T``
# is the logit divided by ``T`` (up to a constant), so the gaps between
# classes shrink by the factor ``T`` and their order is kept.
fig, ax = plt.subplots(figsize=(6, 3))
for T in temperatures:
    ax.plot(classes, softmax(logits / T), marker="o", label=f"T = {T}")
ax.set_yscale("log")
ax.set_xticks(classes)
ax.set_xlabel("class")
ax.set_ylabel("probability (log scale)")
ax.legend(ncols=2)
fig.tight_layout()

# %%
# A forest's probabilities
# ------------------------
# A random forest gives no logits: its probabilities are the share of trees
# voting for each class, and many are exactly zero. ``log 0`` is minus
# infinity, so skdistill replaces exact zeros with a floor
# (``proba_floor="auto"``: half the smallest positive probability the forest
# gave, at most 1e-3) and leaves every positive probability alone. All the
# classes no tree voted for then share the same, lowest, softened probability.
forest = RandomForestClassifier(n_estimators=100, random_state=0).fit(X_train, y_train)
print("forest's probabilities:", np.round(forest.predict_proba(X_test[[row]])[0], 2))

# %%
# :func:`skdistill.plotting.plot_softened_distribution` draws this figure for
# any fitted classifier, teacher or student, in one call.
fig, ax = plt.subplots(figsize=(9, 3))
plot_softened_distribution(forest, X_test[row], temperatures=(1, 2, 5, 10), ax=ax)
ax.set_title("a random forest's soft targets for the same digit")
fig.tight_layout()
plt.show()
