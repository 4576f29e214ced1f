"""scikit-learn's common estimator checks, on every public estimator."""

from sklearn.linear_model import LogisticRegression
from sklearn.utils.estimator_checks import parametrize_with_checks

from skdistill import DistilledClassifier

#: Checks expected to fail, with the reason. Keep this list short.
EXPECTED_FAILED_CHECKS = {
    "DistilledClassifier": {
        "check_sample_weight_equivalence_on_dense_data": (
            "The student is trained by minibatch gradient descent: a weight of 2 "
            "and a repeated row give the same objective but different batches, so "
            "the fitted weights differ (as for scikit-learn's SGD and MLP models)."
        ),
    },
}


def _estimators():
    # An unfitted teacher, fitted on each check's own data; a small student
    # with enough steps to pass check_classifiers_train's accuracy bound.
    yield DistilledClassifier(
        LogisticRegression(),
        hidden_layer_sizes=(16,),
        max_epochs=20,
        batch_size=32,
        lr=1e-2,
        random_state=0,
    )


@parametrize_with_checks(
    list(_estimators()),
    expected_failed_checks=lambda estimator: EXPECTED_FAILED_CHECKS.get(
        type(estimator).__name__, {}
    ),
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
