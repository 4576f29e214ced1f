"""scikit-learn's common estimator checks, on every public estimator."""

import pytest
from conftest import small
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.utils.estimator_checks import check_param_validation, parametrize_with_checks

from skdistill import DistilledClassifier, DistilledRegressor, SpecialistEnsemble

#: Checks expected to fail, with the reason. Keep this list short.
EXPECTED_FAILED_CHECKS = {
    name: {
        "check_sample_weight_equivalence_on_dense_data": (
            "The student is trained by minibatch gradient descent: a weight of 2 "
            "and a repeated row give the same objective but different batches, so "
            "the fitted weights differ (as for scikit-learn's SGD and MLP models)."
        ),
    }
    for name in ("DistilledClassifier", "DistilledRegressor")
}


#: A small student with enough steps to pass check_classifiers_train's
#: accuracy bound.
SMALL_STUDENT = small(max_epochs=20, batch_size=32)


def _estimators():
    # An unfitted teacher, fitted on each check's own data.
    yield DistilledClassifier(LogisticRegression(), **SMALL_STUDENT)
    # On the checks' three-class data k-means leaves one specialist of two
    # classes; on binary data there is no useful subset, the ensemble warns
    # and predicts as its generalist.
    yield SpecialistEnsemble(LogisticRegression(), n_specialists=2, **SMALL_STUDENT)
    # check_regressors_train asks for an R^2 above 0.5 on its data.
    yield DistilledRegressor(LinearRegression(), **{**SMALL_STUDENT, "max_epochs": 50})


@parametrize_with_checks(
    list(_estimators()),
    expected_failed_checks=lambda estimator: EXPECTED_FAILED_CHECKS.get(
        type(estimator).__name__, {}
    ),
)
@pytest.mark.filterwarnings("ignore:None of the 2 groups of classes:UserWarning")
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


@pytest.mark.parametrize("estimator", list(_estimators()), ids=lambda e: type(e).__name__)
def test_every_parameter_is_validated(estimator):
    # Not among parametrize_with_checks' checks: every __init__ parameter has
    # a constraint, and fit refuses a value outside it with scikit-learn's
    # InvalidParameterError, for fit and for each method that validates.
    check_param_validation(type(estimator).__name__, estimator)
