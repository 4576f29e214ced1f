"""Tests of the synthetic transfer-set generators, MUNGE and RANDOM."""

# Authors: The skdistill developers
# SPDX-License-Identifier: BSD-3-Clause

import time
import tracemalloc

import numpy as np
import pandas as pd
import pytest
import scipy.sparse
from sklearn.base import clone
from sklearn.neighbors import NearestNeighbors

from skdistill import _transfer
from skdistill.transfer import Munge, RandomMarginal, nearest_other_row, neighbour_encoding

GENERATORS = [Munge, RandomMarginal]


def mixed_frame(n_rows=30, seed=0):
    """A DataFrame with one column of each kind the generators must keep."""
    rng = np.random.RandomState(seed)
    return pd.DataFrame(
        {
            "size": rng.normal(size=n_rows).astype(np.float32),
            "count": rng.randint(0, 50, size=n_rows),
            "nullable_count": pd.array(rng.randint(0, 5, size=n_rows), dtype="Int64"),
            "grade": pd.Categorical(
                rng.choice(["low", "mid"], size=n_rows),
                categories=["low", "mid", "high"],  # "high" is never used
                ordered=True,
            ),
            "town": rng.choice(["Oslo", "Lyon", "Pune"], size=n_rows),
            "code": rng.choice(np.array(["x", 7], dtype=object), size=n_rows),
            "member": rng.rand(n_rows) > 0.5,
        },
        index=np.arange(100, 100 + n_rows),  # a fresh RangeIndex must replace it
    )


def well_separated_pairs(n_pairs=10):
    """Rows in mutual nearest-neighbour pairs: row 2k and 2k+1, far from the rest."""
    first = np.column_stack([100.0 * np.arange(n_pairs), -50.0 * np.arange(n_pairs)])
    second = first + [1.0, 2.0]
    return np.stack([first, second], axis=1).reshape(-1, 2)


def swap_pairs(X):
    """X with row 2k and row 2k+1 exchanged."""
    return X.reshape(-1, 2, X.shape[1])[:, ::-1].reshape(X.shape)


# --- MUNGE: what the algorithm does ---------------------------------------


@pytest.mark.parametrize("p", [0.2, 0.5])
def test_munge_nominal_change_share_follows_the_neighbour_graph(p):
    # Every row has its own value in the nominal columns, so every write
    # changes the cell, and the Hamming part of the distance is the same
    # for all pairs: neighbours come from the continuous columns alone.
    n_rows, multiplier = 40, 300
    rng = np.random.RandomState(0)
    continuous = rng.uniform(size=(n_rows, 3))
    ids = np.array([f"id{i}" for i in range(n_rows)], dtype=object)
    X = np.column_stack([continuous, ids, ids[::-1]]).astype(object)

    X_synthetic = Munge(
        size_multiplier=multiplier, p=p, categorical_features=[3, 4], random_state=0
    ).generate(X)

    scaled = (continuous - continuous.min(0)) / np.ptp(continuous, 0)
    neighbour = NearestNeighbors(n_neighbors=1).fit(scaled).kneighbors(return_distance=False)[:, 0]
    # A cell is written by its own pair and by each row that has it as
    # neighbour; it changes unless none of those pairs draws a swap.
    writers = 1 + np.bincount(neighbour, minlength=n_rows)
    expected_share = np.mean(1 - (1 - p) ** writers)
    nominal_out = X_synthetic[:, 3:].reshape(multiplier, n_rows, 2)
    changed_share = np.mean(nominal_out != X[:, 3:])
    assert changed_share == pytest.approx(expected_share, abs=0.02)

    # A new value can only come from a row the cell's row is paired with.
    for row in range(n_rows):
        partners = {row, neighbour[row], *np.flatnonzero(neighbour == row)}
        assert set(nominal_out[:, row, 0]) <= set(ids[list(partners)])


def test_munge_p_zero_copies_the_rows():
    X = well_separated_pairs()
    X_synthetic = Munge(size_multiplier=3, p=0.0, random_state=0).generate(X)
    np.testing.assert_array_equal(X_synthetic, np.tile(X, (3, 1)))


def test_munge_p_one_swaps_nominal_values_of_mutual_neighbours():
    # Distinct ids put every other row at Hamming distance 1, so the
    # continuous columns still decide the pairs.
    pairs = well_separated_pairs()
    X = np.column_stack([pairs, np.arange(len(pairs))])
    X_synthetic = Munge(
        size_multiplier=2, p=1.0, categorical_features=[2], random_state=0
    ).generate(X)
    np.testing.assert_array_equal(X_synthetic[:, 2], np.tile(swap_pairs(X)[:, 2], 2))


def test_munge_large_s_moves_continuous_values_to_the_neighbours():
    X = well_separated_pairs()
    X_synthetic = Munge(size_multiplier=2, p=1.0, s=1e9, random_state=0).generate(X)
    np.testing.assert_allclose(X_synthetic, np.tile(swap_pairs(X), (2, 1)), atol=1e-6)
    assert not np.array_equal(X_synthetic, np.tile(swap_pairs(X), (2, 1)))


@pytest.mark.parametrize("s", [1.0, 4.0])
def test_munge_perturbation_is_normal_around_the_neighbour_with_sd_gap_over_s(s):
    X = np.array([[0.0], [2.0]])
    X_synthetic = Munge(size_multiplier=4000, p=1.0, s=s, random_state=0).generate(X)
    from_second, from_first = X_synthetic[0::2, 0], X_synthetic[1::2, 0]
    sd = 2.0 / s
    assert from_second.mean() == pytest.approx(2.0, abs=4 * sd / np.sqrt(4000))
    assert from_first.mean() == pytest.approx(0.0, abs=4 * sd / np.sqrt(4000))
    assert from_second.std() == pytest.approx(sd, rel=0.05)
    assert from_first.std() == pytest.approx(sd, rel=0.05)


def test_neighbour_distance_is_scaled_euclidean_plus_hamming():
    values = np.array(
        [
            # x (continuous, range 4), y (continuous), a and b (nominal codes)
            [0.0, 10.0, 0, 0],
            [0.0, 10.0, 1, 1],
            [2.0, 10.0, 0, 0],
            [4.0, 30.0, 2, 0],
        ]
    )
    nominal = np.array([False, False, True, True])
    encoded = neighbour_encoding(values, nominal)
    squared = ((encoded[:, None] - encoded[None]) ** 2).sum(axis=2)
    x, y = values[:, 0] / 4, (values[:, 1] - 10) / 20
    hamming = (values[:, None, 2:] != values[None, :, 2:]).sum(axis=2)
    expected = (x[:, None] - x) ** 2 + (y[:, None] - y) ** 2 + hamming
    np.testing.assert_allclose(squared, expected)
    # Row 0's continuous twin (row 1) differs in both nominal attributes,
    # distance sqrt(2); row 2 is 0.5 away with the same nominal values.
    assert nearest_other_row(encoded)[0] == 2


def test_munge_integer_columns_are_rounded_and_keep_their_dtype():
    X = np.random.RandomState(0).randint(-100, 100, size=(50, 3)).astype(np.int16)
    X_synthetic = Munge(size_multiplier=4, random_state=0).generate(X)
    assert X_synthetic.dtype == np.int16
    assert not np.array_equal(X_synthetic, np.tile(X, (4, 1)))


def test_munge_keeps_float32():
    X = np.random.RandomState(0).normal(size=(20, 2)).astype(np.float32)
    assert Munge(size_multiplier=2, random_state=0).generate(X).dtype == np.float32


def test_munge_array_nominal_column_keeps_its_own_values():
    rng = np.random.RandomState(0)
    X = np.column_stack([rng.normal(size=60), rng.choice([0.0, 1.5, 3.0], size=60)])
    X_synthetic = Munge(size_multiplier=5, categorical_features=[1], random_state=0).generate(X)
    assert set(X_synthetic[:, 1]) <= {0.0, 1.5, 3.0}
    assert len(set(X_synthetic[:, 0]) - set(X[:, 0])) > 0


@pytest.mark.parametrize(
    "categorical_features",
    [[3, 4, 5, 6], ["grade", "town", "code", "member"], [0, 0, 0, 1, 1, 1, 1]],
    ids=["indices", "names", "mask"],
)
def test_munge_categorical_features_forms_agree(categorical_features):
    X = mixed_frame()
    if isinstance(categorical_features[0], int) and len(categorical_features) == 7:
        categorical_features = np.array(categorical_features, dtype=bool)
    auto = Munge(size_multiplier=2, random_state=0).generate(X)
    explicit = Munge(
        size_multiplier=2, categorical_features=categorical_features, random_state=0
    ).generate(X)
    pd.testing.assert_frame_equal(auto, explicit)


# --- Both generators: types, values, reproducibility ----------------------


@pytest.mark.parametrize("Generator", GENERATORS)
def test_dataframe_keeps_columns_dtypes_and_categories(Generator):
    X = mixed_frame()
    X_synthetic = Generator(size_multiplier=3, random_state=0).generate(X)

    assert X_synthetic.shape == (3 * len(X), X.shape[1])
    assert list(X_synthetic.columns) == list(X.columns)
    pd.testing.assert_series_equal(X_synthetic.dtypes, X.dtypes)
    pd.testing.assert_index_equal(X_synthetic.index, pd.RangeIndex(3 * len(X)))
    assert list(X_synthetic["grade"].cat.categories) == ["low", "mid", "high"]
    assert X_synthetic["grade"].cat.ordered
    for name in ["grade", "town", "code", "member"]:
        assert set(X_synthetic[name]) <= set(X[name]), name


@pytest.mark.parametrize("Generator", GENERATORS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64, np.uint8])
def test_array_keeps_shape_and_dtype(Generator, dtype):
    X = np.random.RandomState(0).randint(0, 20, size=(25, 4)).astype(dtype)
    X_synthetic = Generator(size_multiplier=4, random_state=0).generate(X)
    assert isinstance(X_synthetic, np.ndarray)
    assert X_synthetic.shape == (100, 4)
    assert X_synthetic.dtype == dtype


@pytest.mark.parametrize("Generator", GENERATORS)
def test_same_seed_same_rows_other_seed_other_rows(Generator):
    X = mixed_frame()
    first = Generator(size_multiplier=2, random_state=3).generate(X)
    again = Generator(size_multiplier=2, random_state=3).generate(X)
    other = Generator(size_multiplier=2, random_state=4).generate(X)
    pd.testing.assert_frame_equal(first, again)
    assert not first.equals(other)


@pytest.mark.parametrize("Generator", GENERATORS)
def test_is_a_cloneable_estimator(Generator):
    generator = Generator(size_multiplier=7, random_state=1)
    copy = clone(generator)
    assert copy.get_params() == generator.get_params()
    assert "size_multiplier=7" in repr(generator)


def test_random_marginal_values_come_from_their_own_column():
    X = np.column_stack([np.arange(10.0), np.arange(100.0, 110.0)])
    X_synthetic = RandomMarginal(size_multiplier=50, random_state=0).generate(X)
    assert set(X_synthetic[:, 0]) == set(X[:, 0])
    assert set(X_synthetic[:, 1]) == set(X[:, 1])


def test_random_marginal_makes_columns_independent():
    rng = np.random.RandomState(0)
    x = rng.normal(size=500)
    X = np.column_stack([x, 2 * x + 0.01 * rng.normal(size=500)])
    assert np.corrcoef(X.T)[0, 1] > 0.99
    X_synthetic = RandomMarginal(size_multiplier=20, random_state=0).generate(X)
    assert abs(np.corrcoef(X_synthetic.T)[0, 1]) < 0.05


def test_munge_keeps_a_strong_correlation():
    # The contrast with RANDOM: rows stay near the data.
    rng = np.random.RandomState(0)
    x = rng.normal(size=500)
    X = np.column_stack([x, 2 * x + 0.01 * rng.normal(size=500)])
    X_synthetic = Munge(size_multiplier=5, random_state=0).generate(X)
    assert np.corrcoef(X_synthetic.T)[0, 1] > 0.95


# --- Errors ------------------------------------------------------------------


@pytest.mark.parametrize(
    "params, name",
    [
        ({"size_multiplier": 0}, "size_multiplier"),
        ({"size_multiplier": 1.5}, "size_multiplier"),
        ({"size_multiplier": "3"}, "size_multiplier"),
        ({"p": -0.1}, "'p'"),
        ({"p": 1.1}, "'p'"),
        ({"s": 0.0}, "'s'"),
        ({"s": -1.0}, "'s'"),
        ({"categorical_features": "town"}, "categorical_features"),
    ],
)
def test_munge_rejects_bad_parameters_in_generate(params, name):
    generator = Munge(**params)  # __init__ only stores them
    with pytest.raises(ValueError, match=name):
        generator.generate(np.zeros((5, 2)))


def test_random_marginal_rejects_bad_size_multiplier():
    with pytest.raises(ValueError, match="size_multiplier"):
        RandomMarginal(size_multiplier=0).generate(np.zeros((5, 2)))


@pytest.mark.parametrize(
    "categorical_features, message",
    [
        (["nowhere"], "nowhere"),
        ([7], r"indices \[7\]"),
        ([-1], r"indices \[-1\]"),
        ([True, False], "length 2"),
        ([[0, 1]], "1-dimensional"),
    ],
)
def test_munge_rejects_unknown_categorical_features(categorical_features, message):
    with pytest.raises(ValueError, match=message):
        Munge(categorical_features=categorical_features).generate(mixed_frame())


def test_munge_rejects_column_names_for_an_array():
    with pytest.raises(ValueError, match="no column names"):
        Munge(categorical_features=["a"]).generate(np.zeros((5, 2)))


def test_munge_rejects_categorical_features_of_another_type():
    with pytest.raises(TypeError, match="categorical_features"):
        Munge(categorical_features=[0.5]).generate(np.zeros((5, 2)))


def test_munge_needs_two_rows():
    with pytest.raises(ValueError, match="1 row"):
        Munge().generate(np.zeros((1, 3)))
    assert RandomMarginal(size_multiplier=2).generate(np.zeros((1, 3))).shape == (2, 3)


@pytest.mark.parametrize("Generator", GENERATORS)
@pytest.mark.parametrize("shape", [(0, 3), (4, 0)])
def test_rejects_empty_X(Generator, shape):
    with pytest.raises(ValueError, match="empty"):
        Generator().generate(np.zeros(shape))


@pytest.mark.parametrize("Generator", GENERATORS)
def test_rejects_missing_values_naming_the_column(Generator):
    X = mixed_frame()
    X.loc[X.index[2], "size"] = np.nan
    with pytest.raises(ValueError, match="missing values in column 'size'"):
        Generator().generate(X)
    X = mixed_frame()
    X.loc[X.index[2], "town"] = None
    with pytest.raises(ValueError, match="missing values in column 'town'"):
        Generator().generate(X)


def test_munge_rejects_missing_values_in_an_array():
    X = np.ones((5, 3))
    X[1, 2] = np.nan
    with pytest.raises(ValueError, match="missing values in column 2"):
        Munge().generate(X)


def test_munge_rejects_text_not_declared_nominal():
    X = np.array([[1.0, "a"], [2.0, "b"]], dtype=object)
    with pytest.raises(ValueError, match="column 1 is not numeric"):
        Munge().generate(X)
    assert Munge(categorical_features=[1]).generate(X).shape == (20, 2)


def test_munge_rejects_a_category_column_declared_continuous():
    with pytest.raises(ValueError, match="column 'grade' has a categorical dtype"):
        Munge(categorical_features=["town", "code", "member"]).generate(mixed_frame())


@pytest.mark.parametrize(
    "X, error, message",
    [
        (scipy.sparse.csr_matrix(np.ones((3, 2))), TypeError, "sparse"),
        (np.ones(5), ValueError, "2-dimensional"),
    ],
)
def test_rejects_inputs_that_are_not_tables(X, error, message):
    with pytest.raises(error, match=message):
        Munge().generate(X)


# -- memory -------------------------------------------------------------------------------


@pytest.mark.parametrize("generator", [Munge, RandomMarginal])
def test_a_request_that_cannot_fit_is_refused_before_generating(generator):
    X = np.random.default_rng(0).normal(size=(10_000, 10))
    tracemalloc.start()
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"needs about 80\.0 TB of memory, but .* is available"):
        generator(size_multiplier=10**8).generate(X)
    elapsed = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert elapsed < 2 and peak < 20e6  # nothing the size of the request was allocated


def test_the_refusal_names_the_largest_size_multiplier_that_fits(monkeypatch):
    X = np.zeros((1000, 10))
    monkeypatch.setattr(_transfer, "_available_memory", lambda: (8_100_000, "a test"))
    message = (
        r"Munge\(size_multiplier=1000\) would make 1,000,000 synthetic rows of 10 columns "
        r"from the 1,000 rows of X, which needs about 80\.6 MB of memory, but 8\.1 MB is "
        r"available \(a test\)\. Use size_multiplier=93 or less"
    )
    with pytest.raises(ValueError, match=message):
        Munge(size_multiplier=1000).generate(X)
    assert len(Munge(size_multiplier=93).generate(X)) == 93_000


def test_an_allocation_that_fails_is_refused_where_memory_is_unknown(monkeypatch):
    monkeypatch.setattr(_transfer, "_available_memory", lambda: (None, None))
    with pytest.raises(ValueError, match="needs about 80,000.0 TB of memory, and allocating"):
        RandomMarginal(size_multiplier=10**12).generate(np.zeros((1000, 10)))


@pytest.mark.parametrize("generator", [Munge, RandomMarginal])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_peak_memory_is_about_the_result(generator, dtype):
    X = np.random.default_rng(0).normal(size=(2000, 10)).astype(dtype)
    tracemalloc.start()
    synthetic = generator(size_multiplier=100, random_state=0).generate(X)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert synthetic.shape == (200_000, 10) and synthetic.dtype == dtype
    # It was 3 times the float64 size of the result (twice the result, plus
    # a float64 copy of it).
    assert peak < 1.3 * synthetic.nbytes
