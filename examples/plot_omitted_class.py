"""
=========================================
A class missing from the transfer set
=========================================

Hinton, Vinyals & Dean (2015) distilled an MNIST net on a transfer set with no
3s. The student still recognised many 3s from the teacher's soft targets on
other digits, but its output bias for class 3 was too low; adding 3.5 to it by
hand fixed most of the errors. Here is the same experiment at toy size on
scikit-learn's digits, and the automatic fix, ``calibrate_bias=True``: after
training, the output biases are refit by maximum likelihood on a few
validation rows that do contain the class.
"""

# %%
# A teacher that knows every digit
# --------------------------------
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skdistill import DistilledClassifier

X, y = load_digits(return_X_y=True)
X_train, X_rest, y_train, y_rest = train_test_split(X, y, test_size=0.4, stratify=y, random_state=0)
X_val, X_test, y_val, y_test = train_test_split(
    X_rest, y_rest, test_size=0.5, stratify=y_rest, random_state=0
)
teacher = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
teacher.fit(X_train, y_train)

# %%
# Students that never see a 3
# ---------------------------
# The transfer set is the training rows minus every 3. Both students train
# the same way (same seed, a fixed number of epochs); the second one then
# refits its ten output biases on the validation rows, whose labels include
# 3s. Without ``y_val``, the teacher's probabilities on ``X_val`` would be the
# targets: unlabelled rows are enough.
no_threes = y_train != 3
settings = dict(
    temperature=8.0, hidden_layer_sizes=(64,), max_epochs=60, early_stopping=False, random_state=0
)
plain = DistilledClassifier(teacher, **settings).fit(X_train[no_threes])
calibrated = DistilledClassifier(teacher, calibrate_bias=True, **settings).fit(
    X_train[no_threes], X_val=X_val, y_val=y_val
)
print("biases refit on the validation rows:", np.round(calibrated.logit_bias_, 2))

# %%
# Errors on the test set
# ----------------------
# The bias of 3 goes up, the others barely move, and the student gets back
# most of the 3s it missed.
models = {"teacher": teacher, "student": plain, "student, calibrate_bias": calibrated}
errors = {name: model.predict(X_test) != y_test for name, model in models.items()}
for name, wrong in errors.items():
    print(f"{name:>24}: {wrong.sum():2d} errors, {wrong[y_test == 3].sum():2d} on the 3s")

fig, ax = plt.subplots(figsize=(7, 3.5))
width = 0.27
for offset, (name, wrong) in zip((-width, 0, width), errors.items(), strict=True):
    per_class = [wrong[y_test == digit].sum() for digit in range(10)]
    ax.bar(np.arange(10) + offset, per_class, width, label=name)
ax.set_xticks(range(10))
ax.set_xlabel("true digit")
ax.set_ylabel("test errors")
ax.set_title("No 3 in the transfer set")
ax.legend()
fig.tight_layout()
plt.show()
