"""The automatic preprocessing of tables: imputation, indicators, one-hot blocks, state."""

import json
import pickle

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from skdistill._preprocessing import AutoPreprocessor, make_preprocessor


def zoo(n_rows=200, seed=0, unseen=False):
    """A frame with every kind of column the automatic preprocessing takes."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "age (years)": rng.lognormal(3, 1, n_rows),
            "count": pd.array(rng.integers(0, 9, n_rows), dtype="Int64"),
            "full": rng.integers(0, 100, n_rows),
            "grade": pd.Categorical(rng.choice([1, 2, 3] + [4] * unseen, n_rows)),
            "colour": pd.array(rng.choice(["red", "blue"] + ["violet"] * unseen, n_rows), "string"),
            "city": pd.Series(
                rng.choice(["Lyon", "Nice"] + ["Berlin"] * unseen, n_rows), dtype=object
            ),
            "vip": rng.random(n_rows) < 0.3,
        }
    )
    for column in ("age (years)", "count", "grade", "city"):
        frame.loc[rng.random(n_rows) < 0.15, column] = None
    if unseen:  # missing values where fit saw none
        frame["full"] = frame["full"].astype(float)
        frame.loc[frame.index[::5], "full"] = np.nan
        frame.loc[frame.index[::7], "colour"] = None
    return frame


@pytest.fixture(scope="module")
def fitted():
    return AutoPreprocessor().fit(zoo())


def test_layout_kinds_and_levels(fitted):
    assert fitted.kinds_ == ["numeric"] * 3 + ["categorical"] * 4
    assert fitted.indicators_[:3] == [True, True, False]  # only where fit saw a missing value
    assert fitted.get_feature_names_out().tolist() == [
        "age (years)",
        "count",
        "full",
        "missingindicator_age (years)",
        "missingindicator_count",
        "grade_<missing>",
        "grade_1",  # int categories as "1", not "1.0"
        "grade_2",
        "grade_3",
        "colour_blue",
        "colour_red",
        "city_<missing>",
        "city_Lyon",
        "city_Nice",
        "vip_False",
        "vip_True",
    ]
    assert fitted.n_features_out_ == 16


def test_numeric_columns_are_imputed_with_the_median():
    frame = zoo()
    pre = AutoPreprocessor().fit(frame)
    age = frame["age (years)"]
    assert pre.statistics_[0] == pytest.approx(np.nanmedian(age))
    assert pre.statistics_[0] < np.nanmean(age)  # lognormal: the two differ
    features = pre.transform(frame)
    missing = age.isna().to_numpy()
    np.testing.assert_allclose(features[missing, 0], np.float32(np.nanmedian(age)))
    np.testing.assert_array_equal(features[:, 3], missing)
    np.testing.assert_allclose(features[~missing, 0], age[~missing], rtol=1e-6)
    mean = AutoPreprocessor(strategy="mean").fit(frame)
    assert mean.statistics_[0] == pytest.approx(np.nanmean(age))


def test_unseen_levels_and_new_missing_values(fitted):
    rows = zoo(300, seed=1, unseen=True)
    features = fitted.transform(rows)
    blocks = {name: i for i, name in enumerate(fitted.get_feature_names_out())}
    # an unseen level, and a missing value in a column without a missing level: all zeros
    for column, bad in (("grade", rows["grade"] == 4), ("colour", rows["colour"] == "violet")):
        columns = [i for name, i in blocks.items() if name.startswith(column + "_")]
        bad = bad.fillna(False).to_numpy()
        assert bad.any()
        assert not features[bad][:, columns].any()
        assert (features[~bad][:, columns].sum(axis=1) <= 1).all()
    assert (features[rows["colour"].isna().to_numpy()][:, [9, 10]] == 0).all()
    # a missing value in a column complete in fit: imputed, without an indicator
    new_missing = rows["full"].isna().to_numpy()
    assert new_missing.any()
    np.testing.assert_allclose(features[new_missing, 2], np.float32(fitted.statistics_[2]))
    assert np.isfinite(features).all()


@pytest.mark.parametrize("n_rows", [5, 300])  # the loop and the factorize paths
def test_a_row_does_not_depend_on_the_rows_with_it(fitted, n_rows):
    rows = zoo(n_rows, seed=2, unseen=True)
    batch = fitted.transform(rows)
    one_by_one = np.vstack([fitted.transform(rows.iloc[[i]]) for i in range(n_rows)])
    np.testing.assert_array_equal(batch, one_by_one)
    # the same values under other dtypes: object instead of category or string
    as_objects = rows.astype({"grade": object, "colour": object})
    np.testing.assert_array_equal(fitted.transform(as_objects), batch)


def test_state_round_trip_runs_no_code(fitted):
    rows = zoo(100, seed=3, unseen=True)
    text = json.dumps(fitted.to_state(), allow_nan=False)
    rebuilt = AutoPreprocessor.from_state(json.loads(text))
    np.testing.assert_array_equal(rebuilt.transform(rows), fitted.transform(rows))
    assert rebuilt.to_state() == fitted.to_state()
    unpickled = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(unpickled.transform(rows), fitted.transform(rows))


def _state_with(fitted, change):
    state = json.loads(json.dumps(fitted.to_state()))
    change(state)
    return state


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda s: s.update(format="pickle"), "Not a skdistill.auto_preprocessor"),
        (lambda s: s.update(version=2), "Unsupported"),
        (lambda s: s.update(strategy="mode"), "strategy"),
        (lambda s: s.update(input="tensor"), "input kind"),
        (lambda s: s.update(columns={}), "columns"),
        (lambda s: s.update(columns=[]), "no columns"),
        (lambda s: s["columns"][0].update(statistic="__import__('os')"), "statistic"),
        (lambda s: s["columns"][0].update(statistic=True), "statistic"),
        (lambda s: s["columns"][0].update(statistic=float("inf")), "statistic"),
        (lambda s: s["columns"][0].update(indicator=1), "indicator"),
        (lambda s: s["columns"][0].update(kind="lambda"), "column kind"),
        (lambda s: s["columns"][0].update(name=3), "column name"),
        (lambda s: s["columns"][3].update(categories=["1", 1]), "category"),
        (lambda s: s["columns"][3].update(categories=["1", "1"]), "Duplicate categories"),
        (lambda s: s["columns"][1].update(name="age (years)"), "Duplicate column names"),
        (lambda s: s.update(input="array"), "categorical columns"),
    ],
)
def test_malformed_states_are_refused(fitted, change, match):
    with pytest.raises(ValueError, match=match):
        AutoPreprocessor.from_state(_state_with(fitted, change))


def test_bad_tables_are_named():
    with pytest.raises(ValueError, match="unique"):
        AutoPreprocessor().fit(pd.DataFrame({1: [1.0, np.nan], "1": ["a", "b"]}))
    with pytest.raises(ValueError, match="Column 'x' has infinite values"):
        AutoPreprocessor().fit(pd.DataFrame({"x": [1.0, np.inf], "c": ["a", "b"]}))
    pre = AutoPreprocessor().fit(pd.DataFrame({"x": [1.0, np.nan], "c": ["a", "b"]}))
    with pytest.raises(ValueError, match="columns differ"):
        pre.transform(pd.DataFrame({"c": ["a"], "x": [1.0]}))
    with pytest.raises(ValueError, match="Column 'x' was numeric.*not numbers"):
        pre.transform(pd.DataFrame({"x": ["ten"], "c": ["a"]}))
    with pytest.raises(ValueError, match="pass a DataFrame"):
        pre.transform(np.zeros((1, 2)))


def test_arrays_with_missing_values():
    X = np.array([[1.0, np.nan], [3.0, 4.0], [np.nan, 8.0]])
    pre = AutoPreprocessor().fit(X)
    assert pre.input_kind_ == "array" and not hasattr(pre, "feature_names_in_")
    np.testing.assert_array_equal(pre.transform(X), [[1, 6, 0, 1], [3, 4, 0, 0], [2, 8, 1, 0]])
    with pytest.raises(ValueError, match="3 features, but the preprocessing was fitted with 2"):
        pre.transform(np.zeros((1, 3)))


@pytest.mark.parametrize(
    "X, expected",
    [
        (np.ones((3, 2)), None),
        (np.array([[1.0, np.nan]]), AutoPreprocessor),
        (np.array([[1, None]], dtype=object), AutoPreprocessor),
        (np.array([["a", "b"]], dtype=object), None),  # refused by the numeric path
        (sparse.csr_matrix(np.ones((2, 2))), None),
        (pd.DataFrame({"a": [1.0, 2.0], "b": [1, 2]}), None),
        (pd.DataFrame({"a": [1.0, np.nan]}), AutoPreprocessor),
        (pd.DataFrame({"a": [1.0, 2.0], "flag": [True, False]}), AutoPreprocessor),
        (pd.DataFrame({"a": [1.0, 2.0], "c": pd.Categorical(["x", "y"])}), AutoPreprocessor),
    ],
)
def test_auto_preprocesses_only_categories_and_missing_values(X, expected):
    preprocessor = make_preprocessor("auto", X)
    assert (preprocessor is None) if expected is None else isinstance(preprocessor, expected)
