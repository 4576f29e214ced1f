"""
=====================================================
Search the temperature and alpha on a dask cluster
=====================================================

skdistill has no parallel engine of its own. ``GridSearchCV(n_jobs=...)`` and
the teacher's labelling of the rows (``DistilledClassifier(n_jobs=...)``, in
chunks of 10,000 rows) both go through joblib, so joblib's dask backend sends
them to a dask cluster: a ``LocalCluster`` on one machine, as here, or the
scheduler of a real cluster (``Client("tcp://scheduler:8786")``) to spread
the fits over several machines.

Install the extra with ``pip install -e ".[dask]"`` and run::

    python examples/dask_search.py

What to know:

* The fitted teacher is never refit: every candidate and fold shares it, and
  each worker gets a copy. The user's teacher object is left untouched.
* With the same ``random_state``, the search gives the same scores and the
  same best parameters as without dask.
* Use workers with one thread each (``threads_per_worker=1``): each fit
  seeds torch's process-wide random generator, so fits running in threads of
  one worker process would no longer be reproducible.
* Inside a ``parallel_config(backend="dask")`` block, joblib's rule applies:
  ``n_jobs=None`` means the backend's default, so the teacher's labelling
  chunks are dask tasks too.

This script is shown, not run, by the documentation build.
"""

import time

import joblib
from distributed import Client, LocalCluster
from sklearn.datasets import load_digits
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import GridSearchCV, train_test_split

from skdistill import DistilledClassifier


def main():
    """Run the same search without and with dask, and compare them.

    Returns
    -------
    search : GridSearchCV
        The search run on the dask cluster.
    """
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, train_size=600, stratify=y, random_state=0
    )
    teacher = RandomForestClassifier(n_estimators=200, random_state=0).fit(X_train, y_train)

    student = DistilledClassifier(
        teacher, hidden_layer_sizes=(32,), max_epochs=40, batch_size=128, random_state=0
    )
    grid = {"temperature": [1, 2, 4, 8], "alpha": [0.5, 0.9]}

    start = time.perf_counter()
    local = GridSearchCV(student, grid, cv=3, n_jobs=1).fit(X_train, y_train)
    print(f"one process:  {time.perf_counter() - start:.1f} s, best {local.best_params_}")

    # Processes with one thread each; a Client for a remote scheduler works the same.
    with (
        LocalCluster(n_workers=2, threads_per_worker=1) as cluster,
        Client(cluster) as client,
    ):
        print(f"dashboard: {client.dashboard_link}")
        start = time.perf_counter()
        with joblib.parallel_config(backend="dask"):
            search = GridSearchCV(student, grid, cv=3, n_jobs=-1).fit(X_train, y_train)
        print(f"dask cluster: {time.perf_counter() - start:.1f} s, best {search.best_params_}")

    same = (local.cv_results_["mean_test_score"] == search.cv_results_["mean_test_score"]).all()
    print(f"same cross-validated scores as in one process: {same}")
    print(f"test accuracy of the best student: {search.score(X_test, y_test):.3f}")
    return search


# The guard matters: the cluster's worker processes import this file.
if __name__ == "__main__":
    main()
