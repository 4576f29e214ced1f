"""
==========================================
A transfer set with MUNGE, and without one
==========================================

With few labelled rows, a student trained on the teacher's outputs on those
rows alone only learns what the teacher does *there*. Between the rows the
student is free to do anything. Bucila, Caruana and Niculescu-Mizil (2006)
fixed that with a *transfer set*: many new, unlabelled rows that look like the
data, labelled by the teacher. Their generator, MUNGE, makes each new row from
a real row and its nearest neighbour, swapping or jittering attributes between
them (:class:`~skdistill.Munge`).

On two-dimensional data, the effect is visible.
"""

# %%
# A small problem where a forest shines
# -------------------------------------
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import make_moons
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split

from skdistill import DistilledClassifier, Munge
from skdistill.metrics import teacher_agreement

X, y = make_moons(n_samples=2200, noise=0.3, random_state=0)
X_train, X_test, y_train, y_test = train_test_split(X, y, train_size=200, random_state=0)
forest = RandomForestClassifier(n_estimators=200, min_samples_leaf=3, random_state=0).fit(
    X_train, y_train
)

# %%
# Students with and without a transfer set
# ----------------------------------------
# ``transfer=Munge(size_multiplier=20)`` adds 20 synthetic rows per real one
# (4,000 here), labelled by the forest; they join the soft-target term, while
# the 200 real rows keep their labels too. ``max_epochs`` counts passes over
# all the rows, so it is lowered in proportion to keep the number of gradient
# steps about the same.
common = dict(hidden_layer_sizes=(64, 64), lr=3e-3, random_state=0)
plain = DistilledClassifier(forest, max_epochs=200, **common).fit(X_train, y_train)
munged = DistilledClassifier(
    forest, transfer=Munge(size_multiplier=20), max_epochs=20, **common
).fit(X_train, y_train)

teacher_labels = forest.predict(X_test)
models = [("forest (teacher)", forest), ("no transfer set", plain), ("MUNGE 20x", munged)]
for name, model in models:
    print(
        f"{name:<17} test accuracy {model.score(X_test, y_test):.3f}  "
        f"agreement with the teacher {teacher_agreement(teacher_labels, model.predict(X_test)):.3f}"
    )

# %%
# What the transfer set looks like
# --------------------------------
# :meth:`Munge.generate <skdistill.transfer.Munge.generate>` is what the
# estimator calls; here it is called directly to see the rows.
synthetic = Munge(size_multiplier=5, random_state=0).generate(X_train)

xx, yy = np.meshgrid(np.linspace(-2, 3, 200), np.linspace(-1.5, 2, 150))
grid = np.c_[xx.ravel(), yy.ravel()]

fig, axes = plt.subplots(1, 4, figsize=(15, 3.4), sharex=True, sharey=True)
axes[0].scatter(*synthetic.T, s=3, c="0.6", label="MUNGE rows (5x)")
axes[0].scatter(*X_train.T, c=y_train, s=12, cmap="coolwarm", edgecolor="k", linewidth=0.3)
axes[0].set_title("200 training rows and MUNGE rows")
axes[0].legend(loc="lower left", fontsize="small")
for ax, (name, model) in zip(axes[1:], models, strict=True):
    proba = model.predict_proba(grid)[:, 1].reshape(xx.shape)
    ax.contourf(xx, yy, proba, levels=np.linspace(0, 1, 11), cmap="coolwarm", alpha=0.8)
    ax.contour(xx, yy, proba, levels=[0.5], colors="k", linewidths=1)
    ax.scatter(*X_train.T, c=y_train, s=6, cmap="coolwarm", edgecolor="k", linewidth=0.2)
    ax.set_title(name)
fig.tight_layout()

# %%
# The student without a transfer set draws its own, smoother boundary: it has
# seen the forest's opinion only on 200 points. With MUNGE it is taught the
# forest's boundary everywhere the data lives, and copies it much more
# faithfully (higher agreement), including the forest's quirks.
#
# How many synthetic rows?
# ------------------------
# Agreement with the teacher as the transfer set grows.
multipliers = [0, 1, 5, 20]
agreements = []
for k in multipliers:
    transfer = Munge(size_multiplier=k) if k else None
    epochs = int(np.clip(2 * 200 / (1 + k), 20, 200))
    model = DistilledClassifier(forest, transfer=transfer, max_epochs=epochs, **common)
    model.fit(X_train, y_train)
    agreements.append(teacher_agreement(teacher_labels, model.predict(X_test)))

fig, ax = plt.subplots(figsize=(5, 3))
ax.plot([200 * (1 + k) for k in multipliers], agreements, marker="o")
ax.set_xscale("log")
ax.set_xlabel("rows the student learns from (real + MUNGE)")
ax.set_ylabel("agreement with the teacher\non test rows")
fig.tight_layout()
plt.show()

# %%
# Agreement rises with the size of the transfer set, as in Bucila et al., whose
# students kept improving up to 400,000 synthetic rows. Real unlabelled rows
# are worth more than synthetic ones: pass them as
# ``fit(X, y, X_unlabeled=...)`` when you have them. See :ref:`transfer_sets`.
