"""Beyond one machine: joblib's dask backend runs the search and the teacher.

skdistill has no parallel engine of its own: ``GridSearchCV(n_jobs=...)`` and
the teacher labelling (``n_jobs``, in chunks of 10,000 rows) go through
joblib, so ``joblib.parallel_config(backend="dask")`` (or the older
``parallel_backend("dask")``) sends them to a dask cluster. These tests run a
small ``distributed.LocalCluster`` of two single-threaded worker processes
and check that the tasks really ran there and that the results are those of
a run without dask.
"""

import re

import joblib
import numpy as np
import pytest
from conftest import small
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import GridSearchCV

from skdistill import DistilledClassifier
from skdistill._teacher_labels import TEACHER_BATCH_SIZE
from skdistill.teachers import teacher_logits

distributed = pytest.importorskip("distributed")

#: A student that trains in a few hundredths of a second on iris.
FAST = small(max_epochs=10)

GRID = {"temperature": [1.0, 4.0], "alpha": [0.5, 1.0]}


@pytest.fixture(scope="module")
def client(iris, iris_forest):
    # Worker processes, one thread each, as on a real cluster. Each fit seeds
    # torch's process-wide generator: fits in threads of one process would
    # draw from each other's seeds and lose reproducibility.
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        # Each worker imports skdistill and torch and runs torch's first,
        # slow fit while the tests compute their references without dask.
        warm_up = DistilledClassifier(iris_forest, **FAST).fit
        futures = [
            client.submit(warm_up, *iris, workers=[worker], pure=False)
            for worker in client.scheduler_info()["workers"]
        ]
        yield client
        del futures


def _calls_by_function(task_stream):
    """{function name: number of calls} from the keys of joblib's dask tasks.

    joblib names each task ``batch_of_<function>_<n>_calls-<id>``.
    """
    calls = {}
    for record in task_stream.data:
        match = re.match(r"batch_of_(\w+?)_(\d+)_calls-", str(record["key"]))
        if match:
            function, n_calls = match[1], int(match[2])
            calls[function] = calls.get(function, 0) + n_calls
    return calls


def test_grid_search_on_dask_matches_default_backend(client, iris, iris_forest):
    X, y = iris
    before = joblib.hash(iris_forest)
    # neg_log_loss, not accuracy: any difference in the students' weights shows.
    search = dict(param_grid=GRID, cv=2, scoring="neg_log_loss")
    local = GridSearchCV(DistilledClassifier(iris_forest, **FAST), n_jobs=1, **search).fit(X, y)

    with distributed.get_task_stream(client) as stream, joblib.parallel_config(backend="dask"):
        remote = GridSearchCV(DistilledClassifier(iris_forest, **FAST), n_jobs=-1, **search)
        remote.fit(X, y)

    n_fits = len(GRID["temperature"]) * len(GRID["alpha"]) * 2
    calls = _calls_by_function(stream)
    assert calls.pop("_fit_and_score") == n_fits
    # Under the dask backend, n_jobs=None means the backend's default
    # (joblib's rule): the teacher labelling of the fits may be tasks too.
    assert set(calls) <= {"raw_outputs"}
    for key in ["split0_test_score", "split1_test_score", "mean_test_score"]:
        np.testing.assert_array_equal(remote.cv_results_[key], local.cv_results_[key])
    assert remote.best_params_ == local.best_params_
    np.testing.assert_array_equal(
        remote.best_estimator_.predict_proba(X), local.best_estimator_.predict_proba(X)
    )
    # The teacher went to the workers as a copy; the user's object is the one
    # the refitted estimator holds, untouched.
    assert remote.best_estimator_.teacher_ is iris_forest
    assert joblib.hash(iris_forest) == before


@pytest.fixture(scope="module")
def large_data():
    """Enough rows for three teacher chunks, and a teacher fitted on a few."""
    n_rows = 2 * TEACHER_BATCH_SIZE + 5_000
    X, y = make_classification(
        n_samples=n_rows, n_features=5, n_informative=3, n_classes=3, random_state=0
    )
    teacher = RandomForestClassifier(n_estimators=10, max_depth=6, random_state=0)
    return X, y, teacher.fit(X[:500], y[:500])


def test_teacher_labelling_on_dask_matches_one_job(client, large_data):
    X, _, teacher = large_data
    before = joblib.hash(teacher)
    expected = teacher_logits(teacher, X, n_jobs=1)

    with distributed.get_task_stream(client) as stream, joblib.parallel_config(backend="dask"):
        logits = teacher_logits(teacher, X, n_jobs=2)

    n_chunks = -(-len(X) // TEACHER_BATCH_SIZE)
    assert n_chunks == 3
    assert sum(_calls_by_function(stream).values()) == n_chunks
    np.testing.assert_array_equal(logits, expected)
    assert joblib.hash(teacher) == before


def test_distilled_classifier_labels_on_dask(client, large_data):
    X, y, teacher = large_data
    before = joblib.hash(teacher)
    params = dict(hidden_layer_sizes=(8,), max_epochs=1, batch_size=1024, random_state=0)
    expected = DistilledClassifier(teacher, n_jobs=1, **params).fit(X, y)

    with distributed.get_task_stream(client) as stream, joblib.parallel_config(backend="dask"):
        student = DistilledClassifier(teacher, n_jobs=2, **params).fit(X, y)

    assert sum(_calls_by_function(stream).values()) == -(-len(X) // TEACHER_BATCH_SIZE)
    np.testing.assert_array_equal(student.predict_proba(X[:500]), expected.predict_proba(X[:500]))
    assert student.teacher_ is teacher
    assert joblib.hash(teacher) == before
