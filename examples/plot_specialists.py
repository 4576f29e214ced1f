"""
==============================================
Specialists for the classes a student confuses
==============================================

A small student distilled over many classes, the *generalist*, spends its
capacity unevenly: it separates the easy classes and confuses the similar ones.
Hinton, Vinyals & Dean (2015, section 5) add *specialists*: small models, each
trained only to tell apart one group of classes the generalist confuses (plus
a "dustbin" class for everything else), combined with the generalist per
example. :class:`~skdistill.SpecialistEnsemble` does all of it: it finds the
groups from the generalist's own predictions, without labels, trains one
specialist per group starting from the generalist's weights, and combines them
at prediction time.
"""

# %%
# Classes in confusable groups
# ----------------------------
# Twelve classes in four groups of three. The groups are far apart in the
# first features; inside a group, the three classes differ in the other
# features, by a rule that is different for every group. A small network
# finds the group easily and the class within it with difficulty.
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import confusion_matrix
from sklearn.model_selection import train_test_split

from skdistill import DistilledClassifier, SpecialistEnsemble

rng = np.random.RandomState(0)
n_groups, per_group, n_samples = 4, 3, 3000
group = rng.randint(n_groups, size=n_samples)
X = np.empty((n_samples, 4 + 6))
y = np.empty(n_samples, dtype=int)
for g in range(n_groups):
    rows = np.flatnonzero(group == g)
    X_within, y_within = make_classification(
        n_samples=len(rows),
        n_features=6,
        n_informative=4,
        n_redundant=0,
        n_classes=per_group,
        class_sep=1.5,
        random_state=g,
    )
    X[rows, :4] = rng.normal(scale=4.0, size=4) + rng.normal(size=(len(rows), 4))
    X[rows, 4:] = X_within
    y[rows] = g * per_group + y_within
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0)

teacher = RandomForestClassifier(n_estimators=100, random_state=0).fit(X_train, y_train)
print(f"teacher accuracy: {teacher.score(X_test, y_test):.3f}")

# %%
# A generalist that is too small
# ------------------------------
# One hidden layer of 8 units for 12 classes: capacity-bound on purpose.
small = dict(hidden_layer_sizes=(8,), max_epochs=60, lr=3e-3, random_state=0)
generalist = DistilledClassifier(teacher, **small).fit(X_train, y_train)
print(f"generalist accuracy: {generalist.score(X_test, y_test):.3f}")

# %%
# Its confusion matrix shows where it fails: blocks of three classes along the
# diagonal, the planted groups.
fig, ax = plt.subplots(figsize=(4, 3.6))
matrix = confusion_matrix(y_test, generalist.predict(X_test), normalize="true")
ax.imshow(matrix, cmap="Blues")
ax.set_xlabel("predicted class")
ax.set_ylabel("true class")
ax.set_title("generalist, row-normalised")
fig.tight_layout()

# %%
# Add specialists
# ---------------
# ``n_specialists=4`` asks k-means for four groups of classes, from the
# covariance of the generalist's predicted probabilities
# (:func:`skdistill.specialists.confusable_class_subsets`). The generalist is
# fitted again inside the ensemble with the same settings.
ensemble = SpecialistEnsemble(teacher, n_specialists=4, **small).fit(X_train, y_train)
print("class groups found:", [subset.tolist() for subset in ensemble.class_subsets_])
print(f"generalist + specialists accuracy: {ensemble.score(X_test, y_test):.3f}")

# %%
# The groups found are the planted ones, without looking at a label. Each
# specialist has the generalist's size, so the ensemble has about five times
# its parameters.
#
# Is it the specialists, or only the parameters?
# ----------------------------------------------
# A fair comparison is a single generalist with as many parameters.
n_parameters = sum(
    sum(p.numel() for p in net.module_.parameters())
    for net in [ensemble.generalist_.student_, *ensemble.specialists_]
)
width = int(n_parameters / (X.shape[1] + 12 + 1))
wide = DistilledClassifier(teacher, **{**small, "hidden_layer_sizes": (width,)})
wide.fit(X_train, y_train)
scores = {
    "generalist (8 units)": generalist.score(X_test, y_test),
    "+ 4 specialists": ensemble.score(X_test, y_test),
    f"one net, {width} units": wide.score(X_test, y_test),
    "teacher (forest)": teacher.score(X_test, y_test),
}
for name, score in scores.items():
    print(f"{name:<22} {score:.3f}")
fig, ax = plt.subplots(figsize=(6, 2.6))
ax.barh(list(scores), list(scores.values()), color=["C7", "C0", "C1", "C2"])
ax.set_xlim(0.5, 1)
ax.set_xlabel("test accuracy")
ax.invert_yaxis()
fig.tight_layout()
plt.show()

# %%
# Specialists pay off when the generalist cannot grow: Hinton's setting was a
# fixed, very large model over 15,000 classes, where a bigger generalist was
# not an option. When it can, a wider single student is often as good and
# simpler to serve; the benchmark in :doc:`/benchmarks` measures both. See
# :ref:`specialists` in the user guide.
