"""
=========================================================
Ship the student: ONNX export and safe persistence
=========================================================

The point of distilling is to serve the small model instead of the big one.
A pickled :class:`~skdistill.DistilledClassifier` carries its teacher (the
estimator keeps a reference to it), so pickling it ships the forest too. Two
ways ship the student alone:

* :func:`skdistill.to_onnx` writes one ``.onnx`` file holding the input
  standardisation, the network and the softmax: it runs in ``onnxruntime``
  (C++, C#, Java, JavaScript, mobile) with no Python, torch or scikit-learn.
* :func:`skdistill.save_student` writes the weights as ``safetensors`` plus a
  JSON file; :func:`skdistill.load_student` rebuilds a working estimator in
  Python *without running any code from the files*, unlike ``pickle``.

Both need the optional packages: ``pip install "skdistill[onnx]"``.
"""

# %%
# A student to ship
# -----------------
import pickle
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import onnxruntime
from sklearn.datasets import load_digits
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split

from skdistill import DistilledClassifier, load_student, save_student, to_onnx
from skdistill.export import read_onnx_metadata

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0)
forest = RandomForestClassifier(n_estimators=200, random_state=0).fit(X_train, y_train)
student = DistilledClassifier(forest, hidden_layer_sizes=(128,), max_epochs=40, random_state=0).fit(
    X_train, y_train
)

directory = Path(tempfile.mkdtemp(prefix="skdistill-export-"))

# %%
# ONNX
# ----
# The graph's input is named ``X`` (float32, any number of rows); its outputs
# are ``probabilities`` and ``logits``, columns in the order of ``classes_``,
# which are stored in the file's metadata.
onnx_path = to_onnx(student, directory / "student.onnx")
print(f"{onnx_path.name}: {onnx_path.stat().st_size / 1e3:.0f} kB")
print("classes stored in the file:", read_onnx_metadata(onnx_path)["classes"])

session = onnxruntime.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
proba, logits = session.run(["probabilities", "logits"], {"X": X_test.astype(np.float32)})
difference = np.abs(proba - student.predict_proba(X_test)).max()
print(f"max |onnxruntime - predict_proba|: {difference:.1e}")

# %%
# The outputs match ``predict_proba`` to float32 precision. Labels are the
# argmax mapped through the stored classes:
classes = np.asarray(read_onnx_metadata(onnx_path)["classes"])
labels = classes[proba.argmax(axis=1)]
print(f"accuracy of the ONNX model: {np.mean(labels == y_test):.3f}")

# %%
# Safe persistence
# ----------------
# ``save_student`` writes ``model.safetensors`` and ``metadata.json`` into a
# directory. The teacher is not saved: the loaded estimator predicts, but
# cannot be refitted or scored for fidelity against its teacher.
save_student(student, directory / "student")
for path in sorted((directory / "student").iterdir()):
    print(f"{path.name}: {path.stat().st_size / 1e3:.0f} kB")
loaded = load_student(directory / "student")
print("same predictions:", np.array_equal(loaded.predict(X_test), student.predict(X_test)))

# %%
# What is shipped
# ---------------
# Sizes on disk and the time to predict 10,000 rows: the forest with
# ``pickle``, the student in Python, the student in onnxruntime.
rows = np.resize(X_test, (10_000, X_test.shape[1]))
rows32 = rows.astype(np.float32)


def best_time(predict, repeats=3):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        predict()
        times.append(time.perf_counter() - start)
    return min(times)


sizes = {
    "forest (pickle)": len(pickle.dumps(forest)) / 1e3,
    "student (safetensors)": (directory / "student" / "model.safetensors").stat().st_size / 1e3,
    "student (onnx)": onnx_path.stat().st_size / 1e3,
}
times = {
    "forest (pickle)": best_time(lambda: forest.predict_proba(rows)),
    "student (safetensors)": best_time(lambda: loaded.predict_proba(rows)),
    "student (onnx)": best_time(lambda: session.run(["probabilities"], {"X": rows32})),
}
fig, axes = plt.subplots(1, 2, figsize=(10, 2.6), sharey=True)
for ax, values, label, fmt in [
    (axes[0], sizes, "size (kB, log scale)", "{:,.0f} kB"),
    (
        axes[1],
        {k: 1e3 * v for k, v in times.items()},
        "predict 10,000 rows (ms, log scale)",
        "{:.1f} ms",
    ),
]:
    left = min(values.values()) / 3
    ax.barh(list(values), [v - left for v in values.values()], left=left, color=["C2", "C0", "C1"])
    for y_position, value in enumerate(values.values()):
        ax.text(value, y_position, " " + fmt.format(value), va="center")
    ax.set_xscale("log")
    ax.set_xlim(left, max(values.values()) * 30)
    ax.set_xlabel(label)
axes[0].invert_yaxis()
fig.tight_layout()
plt.show()

# %%
# From the command line
# ---------------------
# ``skdistill compress`` does all of this for a classifier saved with
# ``joblib.dump`` and a CSV file of rows::
#
#     skdistill compress forest.joblib rows.csv --target label --out student/
#
# It distils, compares teacher and student on held-out rows, and writes
# ``student/model.onnx``, ``student/model.safetensors`` and
# ``student/metadata.json``. See :ref:`deployment`.
