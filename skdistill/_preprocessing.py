"""The student's features: X turned into a float32 matrix the network takes.

The teacher always gets X exactly as the user gave it; only the student's
copy goes through these functions.

``preprocessor="auto"`` is :class:`AutoPreprocessor` for a table with
categorical columns or missing values, and nothing (the student takes X as it
is) for numeric data without missing values. Its fitted state is plain data
(strings, numbers, booleans), so that it is saved as JSON, loaded without
running code, and rebuilt as an ONNX graph (``_onnx_preprocessing.py``).
"""

# Authors: The skdistill developers
# SPDX-License-Identifier: BSD-3-Clause

import functools
import math
from contextlib import contextmanager
from numbers import Real

import numpy as np
from scipy.sparse import issparse
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.utils.validation import check_array, check_is_fitted

__all__ = [
    "MISSING",
    "AutoPreprocessor",
    "as_float32",
    "category_strings",
    "column_kind",
    "concat_rows",
    "float_column",
    "is_frame",
    "make_preprocessor",
    "missing_values_named",
    "student_features",
]

#: The string a missing categorical value is encoded as (also in ONNX).
MISSING = ""

#: Format name and version of :meth:`AutoPreprocessor.to_state`.
STATE_FORMAT = "skdistill.auto_preprocessor"
STATE_VERSION = 1

#: Statistics that replace a missing numeric value. The median is the
#: default: measured on 10 tables, it ties the mean when the column had
#: missing values in fit (the indicator absorbs any constant) and is better
#: (+0.6 accuracy, +0.75 agreement points) when they first appear at predict
#: time, where a heavy-tailed column's mean is an atypical value.
_STRATEGIES = ("median", "mean")

#: Up to this many rows a categorical column is encoded by a Python loop of
#: dict look-ups (a few hundred ns a value); beyond, through pandas.factorize
#: or the category codes, whose fixed cost (20-50 us a column) then pays off.
_LOOP_MAX_ROWS = 64


def make_preprocessor(preprocessor, X):
    """The unfitted preprocessing of X for the student, or None for none.

    Parameters
    ----------
    preprocessor : "auto", transformer or None
        A distiller's ``preprocessor`` parameter. ``"auto"`` is an
        :class:`AutoPreprocessor` for a DataFrame with a categorical
        (object, string, category or bool) column or a missing value, and
        for a numeric array with NaN; None otherwise. A transformer is
        cloned.
    X : array-like or DataFrame
        The training rows.

    Returns
    -------
    preprocessor : unfitted transformer or None
    """
    if preprocessor is None:
        return None
    if not (isinstance(preprocessor, str) and preprocessor == "auto"):
        return clone(preprocessor)
    return AutoPreprocessor() if _needs_preprocessing(X) else None


def _needs_preprocessing(X):
    """Whether X has a categorical column or a missing value."""
    if is_frame(X):
        if any(column_kind(dtype) == "categorical" for dtype in X.dtypes):
            return True
        return bool(X.isna().to_numpy().any())
    if issparse(X):
        return False  # refused by the numeric path's own check
    try:
        values = np.asarray(X)
        if values.dtype.kind == "O":
            values = values.astype(np.float64)
    except (TypeError, ValueError):
        return False  # not numbers: scikit-learn's check says what is wrong
    return values.dtype.kind == "f" and bool(np.isnan(values).any())


def is_frame(X):
    """Whether X is a pandas DataFrame (or a look-alike with iloc and columns).

    Not ``dtypes``, which a DataFrame builds anew at each access.
    """
    return hasattr(X, "iloc") and hasattr(X, "columns")


def column_kind(dtype):
    """``"numeric"`` for numbers (not bools), else ``"categorical"``."""
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    return "numeric" if is_numeric_dtype(dtype) and not is_bool_dtype(dtype) else "categorical"


# -- the student's float32 features ---------------------------------------------------------


def student_features(preprocessor, X):
    """Float32 features for the student module from rows of X not yet checked.

    Parameters
    ----------
    preprocessor : fitted transformer or None
        A distiller's ``preprocessor_``.
    X : array-like or DataFrame of shape (n_samples, n_features)

    Returns
    -------
    features : ndarray of shape (n_samples, n_student_features), dtype float32
    """
    if preprocessor is not None:
        return as_float32(preprocessor.transform(X), preprocessor=preprocessor)
    with missing_values_named(X, fitted=True):
        X = check_array(X, dtype=[np.float32, np.float64])
    return as_float32(X, checked=True)


def as_float32(X, checked=False, preprocessor=None):
    """X (an array, or a sparse matrix) as a C-contiguous float32 array, finite.

    ``checked`` means X went through check_array (finite): only a cast from
    float64, which can overflow, then needs looking at again.
    ``preprocessor``: the transformer X comes from, to name its features in
    an error.
    """
    if hasattr(X, "toarray"):
        X = X.toarray()
    X32 = np.ascontiguousarray(X, dtype=np.float32)
    if (not checked or X.dtype != np.float32) and not np.isfinite(X32).all():
        raise ValueError(_not_finite_message(np.asarray(X), preprocessor))
    return X32


def _not_finite_message(X, preprocessor):
    where = "The preprocessor's output" if preprocessor is not None else "X"
    missing = _columns_where(np.isnan(X), preprocessor)
    if missing:
        return (
            f"{where} has missing values (NaN) in {missing}; the student takes finite "
            "numbers. Impute them in the preprocessor (such as with "
            "sklearn.impute.SimpleImputer), or use preprocessor='auto', which imputes "
            "numeric columns and encodes missing categories as a level of their own."
        )
    infinite = _columns_where(np.isinf(X), preprocessor)
    if infinite:
        return (
            f"{where} has infinite values in {infinite}; the student takes finite "
            "numbers (and NaN for missing values). Replace or clip them."
        )
    return "X has values too large for float32 (beyond ±3.4e38), which the student computes in."


def _columns_where(mask, preprocessor):
    """'column(s) [...]' of the columns where mask holds anywhere, or ''."""
    columns = np.flatnonzero(mask.any(axis=0)) if mask.ndim == 2 else []
    if not len(columns):
        return ""
    names = None
    if preprocessor is not None:
        try:
            names = [str(name) for name in preprocessor.get_feature_names_out()]
        except Exception:  # a transformer without feature names: positions instead
            names = None
    shown = [names[j] if names is not None and j < len(names) else int(j) for j in columns]
    return f"column(s) {_shorten(shown)}"


@contextmanager
def missing_values_named(X, fitted, name="X"):
    """Turn scikit-learn's error on NaN in X into one naming the columns and the way out.

    Around the check of X on the numeric path (no preprocessing): ``fitted``
    tells whether the estimator is fitted (a prediction) or being fitted;
    ``name`` is X's name in the message.
    """
    try:
        yield
    except ValueError as error:
        columns = _nan_columns(X)
        if not columns:
            raise
        raise ValueError(_missing_values_message(name, _shorten(columns), fitted)) from error


def _missing_values_message(name, columns, fitted):
    impute = "a preprocessor that imputes them (such as sklearn.impute.SimpleImputer)"
    if not fitted:
        return (
            f"{name} has missing values (NaN) in column(s) {columns}, and with "
            "preprocessor=None the student takes finite numbers only. Use "
            "preprocessor='auto' (the default), which imputes them with the column's "
            "median and adds a missing-value indicator, or " + impute + "."
        )
    return (
        f"{name} has missing values (NaN) in column(s) {columns}, but this student was "
        "fitted without preprocessing (its training rows had no missing values, or "
        "preprocessor=None), so it takes finite numbers only. Impute them before "
        "predicting, or refit the student on rows with missing values "
        "(preprocessor='auto' then imputes them) or with " + impute + "."
    )


def _nan_columns(X):
    """Names (DataFrame) or positions (array) of the columns of X with NaN."""
    if is_frame(X):
        return [str(name) for name in X.columns[X.isna().to_numpy().any(axis=0)]]
    try:
        values = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError):
        return []
    if values.ndim != 2:
        return []
    return [int(j) for j in np.flatnonzero(np.isnan(values).any(axis=0))]


def _shorten(names, limit=10):
    shown = ", ".join(repr(name) for name in names[:limit])
    return f"[{shown}{', ...' if len(names) > limit else ''}]"


def concat_rows(parts):
    """Rows of several arrays or several DataFrames, one after the other."""
    if len(parts) == 1:
        return parts[0]
    if hasattr(parts[0], "iloc"):
        import pandas as pd  # only reached with DataFrame input

        return pd.concat(parts, ignore_index=True)
    return np.concatenate([np.asarray(part) for part in parts])


# -- column values --------------------------------------------------------------------------


@functools.cache
def _pandas_names():
    """pandas' missing-value singletons and CategoricalDtype (pandas imported once, lazily)."""
    import pandas as pd

    return pd.NA, pd.NaT, pd.CategoricalDtype, pd.factorize


def normalise_category(value):
    """The string a categorical value is encoded as: ``""`` for a missing value.

    ``str`` of the value as a Python scalar: category 1 -> "1", True ->
    "True", 1.5 -> "1.5". None, NaN, ``pd.NA`` and ``NaT`` are missing.
    """
    if isinstance(value, str):
        return value
    if value is None:
        return MISSING
    na, nat, _, _ = _pandas_names()
    if value is na or value is nat:
        return MISSING
    if isinstance(value, float | np.floating) and math.isnan(value):
        return MISSING
    if isinstance(value, np.datetime64 | np.timedelta64) and np.isnat(value):
        return MISSING
    return str(value.item() if isinstance(value, np.generic) else value)


def _codes_and_strings(column):
    """Integer codes of a Series (-1 for missing) and the string of each code.

    Category dtypes go through their categories and codes, never
    ``to_numpy()``: that turns the int categories of a column with a missing
    value into floats (1 -> 1.0).
    """
    _, _, categorical_dtype, factorize = _pandas_names()
    if isinstance(column.dtype, categorical_dtype):
        strings = [normalise_category(value) for value in column.dtype.categories.tolist()]
        return column.array.codes, strings
    codes, uniques = factorize(column.to_numpy(dtype=object), use_na_sentinel=True)
    return codes, [normalise_category(value) for value in uniques]


def category_strings(column):
    """A categorical Series' values as the encoded strings, ``""`` for missing.

    Returns
    -------
    strings : ndarray of shape (n_rows,), dtype object
    """
    codes, strings = _codes_and_strings(column)
    return np.array([*strings, MISSING], dtype=object)[codes]


def float_column(column, name=None):
    """A numeric Series' values as floats (or ints), NaN for missing (pd.NA too)."""
    values = column.to_numpy()
    if values.dtype.kind in "fiub":
        return values
    try:  # nullable Int64 / Float64 (pd.NA), objects holding numbers and None
        return column.to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"Column {name if name is not None else column.name!r} was numeric when the "
            f"student was fitted, but now holds values that are not numbers (dtype "
            f"{column.dtype}): {error}. Pass numbers, or NaN for missing values."
        ) from error


# -- the automatic preprocessing ------------------------------------------------------------


class AutoPreprocessor(TransformerMixin, BaseEstimator):
    """Impute and indicate numeric columns, one-hot encode categorical ones.

    What ``preprocessor="auto"`` fits for a table with categorical columns
    or missing values. The output (float32) has, in this order, the layout of
    the ColumnTransformer ``[SimpleImputer, MissingIndicator, OneHotEncoder]``
    that the ONNX export builds from it:

    - the numeric columns, in column order, a missing value (NaN, None,
      ``pd.NA``) replaced by the column's median (or mean) in fit, 0 for a
      column with no value; no scaling, the student standardises its inputs;
    - a missing-value indicator (1.0 where missing) for each numeric column
      that had a missing value in fit;
    - a one-hot block per categorical (object, string, category, bool)
      column. Values are compared as strings (:func:`normalise_category`),
      a missing value is the level ``""``; a level not seen in fit, or a
      missing value in a column that had none, encodes as all zeros.

    Parameters
    ----------
    strategy : {"median", "mean"}, default="median"
        Statistic that replaces a missing numeric value.

    Attributes
    ----------
    input_kind_ : {"frame", "array"}
        What it was fitted on: a DataFrame, or a numeric array.
    columns_ : list of str
        Column names (``"x0"``, ``"x1"``... for an array).
    dtypes_ : list of str
        The columns' dtypes in fit, as strings (informative).
    kinds_ : list of {"numeric", "categorical"}
    statistics_ : list of float or None
        Imputation value of each numeric column (None for categorical ones).
    indicators_ : list of bool
        Whether a numeric column has a missing-value indicator.
    categories_ : list of (list of str) or None
        Sorted levels of each categorical column (None for numeric ones).
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Defined when fitted on a DataFrame.
    n_features_out_ : int
        Width of the output.

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> from skdistill._preprocessing import AutoPreprocessor
    >>> X = pd.DataFrame({"age": [20.0, np.nan, 40.0], "city": ["Lyon", None, "Nice"]})
    >>> pre = AutoPreprocessor().fit(X)
    >>> pre.get_feature_names_out().tolist()
    ['age', 'missingindicator_age', 'city_<missing>', 'city_Lyon', 'city_Nice']
    >>> pre.transform(X)[1].tolist()
    [30.0, 1.0, 1.0, 0.0, 0.0]
    """

    def __init__(self, strategy="median"):
        self.strategy = strategy

    def fit(self, X, y=None):
        """Learn the columns' kinds, imputation statistics and levels.

        Parameters
        ----------
        X : DataFrame or numeric array-like of shape (n_samples, n_features)
        y : None
            Ignored.

        Returns
        -------
        self : AutoPreprocessor
        """
        if self.strategy not in _STRATEGIES:
            raise ValueError(f"strategy must be 'median' or 'mean'; got {self.strategy!r}.")
        if is_frame(X):
            self._names = X.columns.tolist()  # as given, to compare X's columns with quickly
            self._fit_columns(
                "frame",
                [str(name) for name in self._names],
                [str(dtype) for dtype in X.dtypes],
                [column_kind(dtype) for dtype in X.dtypes],
                [X.iloc[:, j] for j in range(X.shape[1])],
            )
            self.feature_names_in_ = np.asarray(self.columns_, dtype=object)
        else:
            X = _as_float_array(X)
            self._names = [f"x{j}" for j in range(X.shape[1])]
            if hasattr(self, "feature_names_in_"):
                del self.feature_names_in_
            self._fit_columns(
                "array",
                [f"x{j}" for j in range(X.shape[1])],
                [str(X.dtype)] * X.shape[1],
                ["numeric"] * X.shape[1],
                list(X.T),
            )
        return self

    def _fit_columns(self, input_kind, names, dtypes, kinds, columns):
        if len(set(names)) != len(names):
            raise ValueError("The DataFrame's column names must be unique (as strings).")
        if not columns or not len(columns[0]):
            raise ValueError("The automatic preprocessing needs at least one row and one column.")
        self.input_kind_ = input_kind
        self.columns_, self.dtypes_, self.kinds_ = names, dtypes, kinds
        self.statistics_, self.indicators_, self.categories_ = [], [], []
        for name, kind, column in zip(names, kinds, columns, strict=True):
            if kind == "numeric":
                statistic, has_missing = self._statistic(
                    column if input_kind == "array" else float_column(column, name), name
                )
                self.statistics_.append(statistic)
                self.indicators_.append(has_missing)
                self.categories_.append(None)
            else:
                self.statistics_.append(None)
                self.indicators_.append(False)
                self.categories_.append(_levels(column))
        self.n_features_in_ = len(names)
        self._compile()

    def _statistic(self, values, name):
        """(imputation value, whether a value is missing) of a numeric column."""
        values = np.asarray(values, dtype=np.float64)
        if np.isinf(values).any():
            raise ValueError(
                f"Column {name!r} has infinite values; the student takes finite numbers "
                "(and NaN for missing values). Replace or clip them."
            )
        missing = np.isnan(values)
        observed = values[~missing]
        if not observed.size:
            return 0.0, bool(missing.any())
        statistic = np.median(observed) if self.strategy == "median" else np.mean(observed)
        return float(statistic), bool(missing.any())

    def _compile(self):
        """The look-up structures transform uses, derived from the fitted state."""
        self._numeric = [j for j, kind in enumerate(self.kinds_) if kind == "numeric"]
        self._categorical = [j for j, kind in enumerate(self.kinds_) if kind == "categorical"]
        self._is_numeric = [kind == "numeric" for kind in self.kinds_]
        # float32, as the ONNX Imputer stores it: both paths fill the same value.
        self._fill = np.array(
            [[self.statistics_[j] for j in self._numeric]], dtype=np.float32
        ).reshape(1, -1)
        self._indicated = np.array(
            [p for p, j in enumerate(self._numeric) if self.indicators_[j]], dtype=np.intp
        )
        offset = len(self._numeric) + len(self._indicated)
        self._lookups, self._offsets = [], []
        for j in self._categorical:
            self._lookups.append({level: i for i, level in enumerate(self.categories_[j])})
            self._offsets.append(offset)
            offset += len(self.categories_[j])
        self.n_features_out_ = offset
        if not hasattr(self, "_names"):
            self._names = list(self.columns_)
        # categorical column -> (dtype, positions of its codes): a memo of
        # transform, for category dtypes (replacing an entry is atomic, so
        # threads may race on it harmlessly); not part of the state.
        self._tables = {}

    def transform(self, X):
        """The student's float32 features.

        It sits on ``predict``'s path: one row costs a few microseconds a
        column on top of pandas' own column access.

        Parameters
        ----------
        X : DataFrame or numeric array-like of shape (n_samples, n_features)
            Columns as in fit (names and order).

        Returns
        -------
        features : ndarray of shape (n_samples, n_features_out_), dtype float32
        """
        if not hasattr(self, "n_features_out_"):
            check_is_fitted(self, "n_features_out_")  # raises NotFittedError
        out = np.zeros((len(X), self.n_features_out_), dtype=np.float32)
        n_numeric = len(self._numeric)
        numeric = out[:, :n_numeric]
        if self.input_kind_ == "frame":
            self._check_columns(X)
            position = block = 0
            columns = zip(self._is_numeric, X.items(), strict=True)
            for j, (is_numeric, (_, column)) in enumerate(columns):
                if is_numeric:
                    numeric[:, position] = float_column(column, self.columns_[j])
                    position += 1
                else:
                    self._one_hot(block, column, out)
                    block += 1
        else:
            numeric[...] = _as_float_array(X, self.n_features_in_)
        if n_numeric:
            missing = np.isnan(numeric)
            if len(self._indicated):
                out[:, n_numeric : n_numeric + len(self._indicated)] = missing[:, self._indicated]
            np.copyto(numeric, self._fill, where=missing)
        return out

    def _check_columns(self, X):
        if not is_frame(X):
            raise ValueError(
                "The preprocessing was fitted on a DataFrame; pass a DataFrame with the "
                f"columns {_shorten(self.columns_)}."
            )
        names = X.columns.tolist()
        if names != self._names and [str(name) for name in names] != self.columns_:
            raise ValueError(
                "X's columns differ from those seen in fit (names and order must match): "
                f"expected {_shorten(self.columns_)}, got {_shorten(names)}."
            )

    def _one_hot(self, block, column, out):
        """Set the ones of a categorical column's one-hot block of ``out``."""
        offset = self._offsets[block]
        categorical_dtype = _pandas_names()[2]
        if isinstance(column.dtype, categorical_dtype):
            memo = self._tables.get(block)
            if memo is None or memo[0] is not column.dtype:
                strings = [normalise_category(v) for v in column.dtype.categories.tolist()]
                memo = self._tables[block] = (column.dtype, self._positions(block, strings))
            # a missing value (code -1) reads the table's last entry
            positions = memo[1][column.array.codes]
        elif len(column) <= _LOOP_MAX_ROWS:
            get = self._lookups[block].get
            positions = np.array(
                [get(normalise_category(value), -1) for value in column.to_numpy()],
                dtype=np.intp,
            )
        else:
            codes, strings = _codes_and_strings(column)
            positions = self._positions(block, strings)[codes]
        rows = np.flatnonzero(positions >= 0)
        out[rows, offset + positions[rows]] = 1.0

    def _positions(self, block, strings):
        """Positions in the block of each level string, then of a missing value (-1: none)."""
        lookup = self._lookups[block]
        return np.array([lookup.get(s, -1) for s in [*strings, MISSING]], dtype=np.intp)

    def get_feature_names_out(self, input_features=None):
        """Names of the output columns.

        Parameters
        ----------
        input_features : None
            Ignored: the names are those seen in fit.

        Returns
        -------
        names : ndarray of str
            Numeric columns, ``missingindicator_<column>``, then
            ``<column>_<level>`` (``<missing>`` for the missing level).
        """
        check_is_fitted(self, "n_features_out_")
        names = [self.columns_[j] for j in self._numeric]
        names += [f"missingindicator_{self.columns_[self._numeric[p]]}" for p in self._indicated]
        for j in self._categorical:
            names += [
                f"{self.columns_[j]}_{level if level != MISSING else '<missing>'}"
                for level in self.categories_[j]
            ]
        return np.asarray(names, dtype=object)

    # -- the fitted state as plain data ----------------------------------------------

    def to_state(self):
        """The fitted preprocessing as plain data (JSON-serialisable).

        Returns
        -------
        state : dict
            ``format``, ``version``, ``strategy``, ``input`` and
            ``columns``: per column its ``name``, ``dtype``, ``kind`` and
            either ``statistic`` and ``indicator`` or ``categories``.
        """
        check_is_fitted(self, "n_features_out_")
        columns = []
        for j, name in enumerate(self.columns_):
            column = {"name": name, "dtype": self.dtypes_[j], "kind": self.kinds_[j]}
            if self.kinds_[j] == "numeric":
                column.update(statistic=self.statistics_[j], indicator=self.indicators_[j])
            else:
                column["categories"] = list(self.categories_[j])
            columns.append(column)
        return {
            "format": STATE_FORMAT,
            "version": STATE_VERSION,
            "strategy": self.strategy,
            "input": self.input_kind_,
            "columns": columns,
        }

    @classmethod
    def from_state(cls, state):
        """A fitted AutoPreprocessor from :meth:`to_state`'s data, checked field by field.

        The state may come from an untrusted file: every field is
        type-checked and nothing in it is run.

        Parameters
        ----------
        state : dict

        Returns
        -------
        preprocessor : AutoPreprocessor
            Fitted.

        Raises
        ------
        ValueError
            If the state is malformed.
        """
        state = _expect(state, dict, "state")
        if state.get("format") != STATE_FORMAT:
            raise ValueError(f"Not a {STATE_FORMAT} state: format {state.get('format')!r}.")
        if state.get("version") != STATE_VERSION:
            raise ValueError(
                f"Unsupported {STATE_FORMAT} version {state.get('version')!r}; this "
                f"skdistill reads version {STATE_VERSION}."
            )
        strategy = state.get("strategy")
        if strategy not in _STRATEGIES:
            raise ValueError(f"Invalid strategy {strategy!r} in the preprocessing state.")
        input_kind = state.get("input")
        if input_kind not in ("frame", "array"):
            raise ValueError(f"Invalid input kind {input_kind!r} in the preprocessing state.")
        self = cls(strategy=strategy)
        self.input_kind_ = input_kind
        self.columns_, self.dtypes_, self.kinds_ = [], [], []
        self.statistics_, self.indicators_, self.categories_ = [], [], []
        for column in _expect(state.get("columns"), list, "columns"):
            self._read_column(_expect(column, dict, "column"))
        if not self.columns_:
            raise ValueError("The preprocessing state has no columns.")
        if len(set(self.columns_)) != len(self.columns_):
            raise ValueError("Duplicate column names in the preprocessing state.")
        if input_kind == "array" and "categorical" in self.kinds_:
            raise ValueError("A preprocessing state fitted on an array has categorical columns.")
        self.n_features_in_ = len(self.columns_)
        if input_kind == "frame":
            self.feature_names_in_ = np.asarray(self.columns_, dtype=object)
        self._compile()
        return self

    def _read_column(self, column):
        self.columns_.append(_expect(column.get("name"), str, "column name"))
        self.dtypes_.append(_expect(column.get("dtype"), str, "dtype"))
        kind = column.get("kind")
        if kind == "numeric":
            statistic = column.get("statistic")
            if (
                not isinstance(statistic, Real)
                or isinstance(statistic, bool)
                or not math.isfinite(statistic)
            ):
                raise ValueError(f"Invalid statistic {statistic!r} in the preprocessing state.")
            self.statistics_.append(float(statistic))
            self.indicators_.append(_expect(column.get("indicator"), bool, "indicator"))
            self.categories_.append(None)
        elif kind == "categorical":
            levels = _expect(column.get("categories"), list, "categories")
            for level in levels:
                _expect(level, str, "category")
            if len(set(levels)) != len(levels):
                raise ValueError("Duplicate categories in the preprocessing state.")
            self.statistics_.append(None)
            self.indicators_.append(False)
            self.categories_.append(list(levels))
        else:
            raise ValueError(f"Invalid column kind {kind!r} in the preprocessing state.")
        self.kinds_.append(kind)

    def __getstate__(self):
        state = dict(super().__getstate__())
        state.pop("_tables", None)  # a memo of dtype objects, rebuilt on use
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        if "n_features_out_" in state:
            self._tables = {}


def _levels(column):
    """The sorted level strings of a categorical column, ``""`` if a value is missing."""
    codes, strings = _codes_and_strings(column)
    present = np.unique(codes)
    levels = {strings[code] for code in present if code >= 0}
    if present.size and present[0] < 0:
        levels.add(MISSING)
    return sorted(levels)


def _as_float_array(X, n_features=None):
    """A numeric 2-d array as floats, NaN for missing; checked against n_features."""
    X = np.asarray(X)
    if X.dtype.kind not in "fiub":
        try:
            X = X.astype(np.float64)
        except (TypeError, ValueError) as error:
            raise ValueError(
                "An array given to the automatic preprocessing must hold numbers (NaN "
                "for missing values); pass a pandas DataFrame for categorical columns."
            ) from error
    if X.ndim != 2:
        raise ValueError(f"Expected a 2-d array; got an array of shape {X.shape}.")
    if n_features is not None and X.shape[1] != n_features:
        raise ValueError(
            f"X has {X.shape[1]} features, but the preprocessing was fitted with {n_features}."
        )
    return X


def _expect(value, kind, what):
    if not isinstance(value, kind):
        raise ValueError(
            f"Invalid {what} {value!r} in the preprocessing state: expected {kind.__name__}."
        )
    return value
