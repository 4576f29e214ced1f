"""Synthetic transfer sets: unlabeled rows for a teacher to label.

A student learns the teacher's function only where it sees the teacher's
outputs. When real unlabeled rows are scarce, Bucila, Caruana &
Niculescu-Mizil (KDD 2006, "Model compression") label a larger synthetic
set instead. Two of their generators are here:

- :class:`Munge` (their Algorithm 1): each row swaps attributes with its
  nearest neighbour, or is perturbed around it, so the synthetic rows stay
  close to the data's manifold. The student keeps improving with more of
  them.
- :class:`RandomMarginal` (their RANDOM): every attribute drawn
  independently from its own empirical distribution. It ignores the joint
  distribution, which is why it helps less, and beyond ~100k rows hurts.

Both take X as a numpy array or a pandas DataFrame and return rows of the
same kind: same dtype for an array; same columns, dtypes and categories
for a DataFrame (with a fresh ``RangeIndex``), so the teacher can label
them as it would label X.

The rows are generated in chunks written into the result as they come, so
that ``generate`` needs about the memory of its result (twice it for a
DataFrame, which pandas concatenates) and a bounded working space. Before
generating, that need is compared with the memory available (on Linux,
``MemAvailable`` in ``/proc/meminfo``, and the cgroup's limit where there is
one): what cannot fit is refused at once, with the largest
``size_multiplier`` that would. Where the available memory is unknown,
an allocation that fails is refused the same way.
"""

# Authors: The skdistill developers
# SPDX-License-Identifier: BSD-3-Clause

import sys
from numbers import Integral, Real
from pathlib import Path

import numpy as np
import scipy.sparse
from sklearn.base import BaseEstimator
from sklearn.neighbors import NearestNeighbors
from sklearn.utils import check_random_state

from .utils.fixes import Interval

__all__ = ["Munge", "RandomMarginal"]

#: Factor applied to one-hot codes of a nominal attribute before the nearest
#: neighbour search: two different categories differ in two one-hot
#: positions, each adding (1/sqrt(2))**2 = 1/2 to the squared Euclidean
#: distance, so a mismatch adds exactly 1, the Hamming distance.
ONE_HOT_SCALE = 1 / np.sqrt(2)

#: Cells (rows x columns) that RandomMarginal draws at once.
CHUNK_CELLS = 1 << 16

#: Working bytes per cell of a chunk being generated: its float64 values,
#: a MUNGE copy's random draws and index arrays, a chunk's rebuilt columns.
WORKSPACE_BYTES_PER_CELL = 64


class _TransferGenerator(BaseEstimator):
    """Shared ``generate``: validate, turn X into a table, synthesize, rebuild X's type."""

    #: Fewest rows of X the generator can work from.
    _min_rows = 1

    def generate(self, X):
        """Synthetic rows modelled on X.

        Parameters
        ----------
        X : ndarray or DataFrame of shape (n_samples, n_features)
            The real rows, without missing values.

        Returns
        -------
        X_synthetic : ndarray or DataFrame of shape \
                (size_multiplier * n_samples, n_features)
            Of the same type as X: an array of the same dtype, or a
            DataFrame with the same columns, dtypes and categories and a
            fresh ``RangeIndex``.
        """
        self._validate_params()
        table = _Table.from_input(X, self._nominal_spec(), self._min_rows)
        n_rows = self.size_multiplier * table.n_rows
        refusal = self._memory_refusal(table)
        _check_memory(table.result_bytes(n_rows) + self._workspace_bytes(table), refusal)
        rng = check_random_state(self.random_state)
        return table.assemble(n_rows, self._chunks(table, rng), refusal)

    def _nominal_spec(self):
        raise NotImplementedError

    def _chunks(self, table, rng):
        """The synthetic rows as float64 tables (codes for nominal columns), in order."""
        raise NotImplementedError

    def _chunk_cells(self, table):
        """Cells of the largest chunk :meth:`_chunks` yields."""
        raise NotImplementedError

    def _workspace_bytes(self, table):
        return WORKSPACE_BYTES_PER_CELL * self._chunk_cells(table)

    def _memory_refusal(self, table):
        """The message for a request that does not fit, given the bytes it needs and has."""
        n_samples, n_features = table.values.shape
        per_copy = table.result_bytes(n_samples)
        name = f"{type(self).__name__}(size_multiplier={self.size_multiplier})"

        def refusal(needed, available=None, source=None):
            request = (
                f"{name} would make {self.size_multiplier * n_samples:,} synthetic rows of "
                f"{n_features} columns from the {n_samples:,} rows of X, which needs about "
                f"{_format_bytes(needed)} of memory"
            )
            if available is None:
                return f"{request}, and allocating it failed. Use a smaller size_multiplier."
            largest = int((available - self._workspace_bytes(table)) // per_copy)
            way_out = (
                f"Use size_multiplier={largest} or less"
                if largest >= 1
                else "Use fewer rows or columns of X"
            )
            return (
                f"{request}, but {_format_bytes(available)} is available ({source}). "
                f"{way_out}, or pass real unlabeled rows (fit's X_unlabeled) instead."
            )

        return refusal


class Munge(_TransferGenerator):
    """MUNGE: synthetic rows made by mixing each row with its nearest neighbour.

    The algorithm of Bucila, Caruana & Niculescu-Mizil (2006): repeat
    ``size_multiplier`` times: copy the rows; pair each row ``e`` with its
    nearest neighbour ``e'``; for each attribute ``a``, with probability
    ``p``, swap ``e_a`` and ``e'_a`` if the attribute is nominal, else draw
    ``e_a ~ N(e'_a, sd)`` and ``e'_a ~ N(e_a, sd)`` with
    ``sd = |e_a - e'_a| / s``.

    Parameters
    ----------
    size_multiplier : int, default=10
        Number of synthetic copies of X: the output has
        ``size_multiplier * n_samples`` rows.
    p : float, default=0.5
        Probability, per pair of neighbours and attribute, that the
        attribute is swapped (nominal) or perturbed (continuous). The paper
        gives no value; 0.5 is the common choice.
    s : float, default=1.0
        Local-variance parameter: a perturbed value is drawn around the
        neighbour's with standard deviation ``|e_a - e'_a| / s``, so a
        large ``s`` gives nearly the neighbour's value.
    categorical_features : array-like of int, str or bool, default=None
        The nominal attributes, as column indices, column names (for a
        DataFrame) or a boolean mask over the columns. None: for a
        DataFrame, the columns of dtype category, object, string or bool;
        for an array, none. A nominal column only ever takes values from
        that same column; the others are continuous.
    random_state : int, RandomState instance or None, default=None
        Seeds the swaps and the perturbations; an int gives the same rows
        on every call.

    See Also
    --------
    RandomMarginal : Attributes drawn independently from their marginals.

    Notes
    -----
    Nearest neighbours use the distance of the paper: Euclidean on the
    continuous attributes scaled to ``[0, 1]`` by the minimum and maximum
    of X, and Hamming on the nominal ones. Both are folded into one
    Euclidean distance, ``sqrt(d_continuous**2 + n_mismatches)``, by
    encoding each nominal attribute one-hot times ``1 / sqrt(2)``.
    Neighbours are found once, on X: each repetition starts from a fresh
    copy of X, so they would be the same every time.

    The paper walks through the rows one by one, and a later pair sees the
    values an earlier pair wrote. Here every pair is processed at once
    from the *original* values, which makes the result independent of
    which pairs happen to be processed first, and vectorisable:

    - Pair ``(e, e')`` with ``e' = neighbour(e)`` draws, per attribute, one
      coin with probability ``p``. When it comes up, the pair writes two
      cells: ``e_a`` gets ``e'_a`` (nominal) or a draw from
      ``N(e'_a, sd)``; ``e'_a`` gets ``e_a`` or a draw from ``N(e_a, sd)``,
      ``sd`` computed from the original ``e_a`` and ``e'_a``.
    - A row is written by its own pair and, as ``e'``, by every row whose
      neighbour it is. As in the paper's loop, the last write wins: the
      pairs are processed in a random order drawn per repetition, not in
      row order, since the paper leaves the order open and the order of
      the rows of a data set (sorted by label, by time) should not matter.

    So a cell written by ``w`` pairs, all with values different from its
    own, changes with probability ``1 - (1 - p)**w``; ``w`` is 2 for a row
    whose neighbour's neighbour is itself, and 1 plus the number of rows
    that have it as neighbour in general. (The paper's sequential loop
    undoes a swap when both rows of a mutual pair swap the same attribute,
    which would give ``2 p (1 - p)`` there.)

    Integer continuous columns are rounded and kept in their dtype.

    Speed, measured on one shared CPU core: 100,000 synthetic rows from a
    10,000 x 16 float array (``size_multiplier=10``) in 0.35 s, about
    280,000 rows per second, of which 0.26 s is the one neighbour search;
    from a DataFrame of 8 float and 8 categorical columns (10 categories
    each), 0.67 s, about 150,000 rows per second.

    The one-hot encoding is dense: a nominal column with ``c`` distinct
    values takes ``n_samples * c`` floats during the neighbour search.

    References
    ----------
    C. Bucila, R. Caruana and A. Niculescu-Mizil, "Model compression",
    KDD 2006, Algorithm 1.

    Examples
    --------
    >>> import numpy as np
    >>> from skdistill.transfer import Munge
    >>> X = np.array([[0.0, 1.0], [0.1, 2.0], [5.0, 1.0], [5.2, 2.0]])
    >>> X_synthetic = Munge(size_multiplier=3, random_state=0).generate(X)
    >>> X_synthetic.shape, X_synthetic.dtype
    ((12, 2), dtype('float64'))

    With a DataFrame, nominal columns are found from their dtype:

    >>> import pandas as pd
    >>> df = pd.DataFrame({"size": [1.0, 1.2, 3.0, 3.1],
    ...                    "colour": ["red", "blue", "red", "green"]})
    >>> synthetic = Munge(size_multiplier=5, random_state=0).generate(df)
    >>> synthetic.shape
    (20, 2)
    >>> set(synthetic["colour"]) <= {"red", "blue", "green"}
    True
    """

    _parameter_constraints = {
        "size_multiplier": [Interval(Integral, 1, None, closed="left")],
        "p": [Interval(Real, 0, 1, closed="both")],
        "s": [Interval(Real, 0, None, closed="neither")],
        "categorical_features": ["array-like", None],
        "random_state": ["random_state"],
    }

    # A row needs another row to be its neighbour.
    _min_rows = 2

    def __init__(
        self, size_multiplier=10, p=0.5, s=1.0, categorical_features=None, random_state=None
    ):
        self.size_multiplier = size_multiplier
        self.p = p
        self.s = s
        self.categorical_features = categorical_features
        self.random_state = random_state

    def _nominal_spec(self):
        return self.categorical_features

    def _chunks(self, table, rng):
        neighbour = nearest_other_row(neighbour_encoding(table.values, table.nominal))
        for _ in range(self.size_multiplier):
            yield _munge_copy(table.values, table.nominal, neighbour, self.p, self.s, rng)

    def _chunk_cells(self, table):
        return table.values.size


class RandomMarginal(_TransferGenerator):
    """RANDOM: every attribute drawn independently from its empirical marginal.

    Each column of the output is sampled with replacement from the values
    of the same column of X, independently of the other columns: the
    marginals are kept, the dependence between attributes is lost.

    Parameters
    ----------
    size_multiplier : int, default=10
        The output has ``size_multiplier * n_samples`` rows.
    random_state : int, RandomState instance or None, default=None
        Seeds the sampling; an int gives the same rows on every call.

    See Also
    --------
    Munge : Rows mixed with their nearest neighbour, keeping the joint
        distribution's local structure.

    Notes
    -----
    There is no ``categorical_features`` parameter: every value of the
    output is copied from the same column of X, so nominal and continuous
    attributes are treated alike and no value outside a column is ever
    produced.

    Bucila et al. (2006) found this generator useful up to about 100k rows
    and harmful beyond, where :class:`Munge` keeps improving.

    Examples
    --------
    >>> import numpy as np
    >>> from skdistill.transfer import RandomMarginal
    >>> X = np.array([[0, 10], [1, 11], [2, 12]])
    >>> X_synthetic = RandomMarginal(size_multiplier=4, random_state=0).generate(X)
    >>> X_synthetic.shape, X_synthetic.dtype
    ((12, 2), dtype('int64'))
    >>> set(X_synthetic[:, 1]) <= {10, 11, 12}
    True
    """

    _parameter_constraints = {
        "size_multiplier": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(self, size_multiplier=10, random_state=None):
        self.size_multiplier = size_multiplier
        self.random_state = random_state

    def _nominal_spec(self):
        # As codes, every column is sampled among its own values, and any
        # dtype (strings, categories) comes back unchanged.
        return _ALL_COLUMNS

    def _chunks(self, table, rng):
        n_rows, n_features = table.values.shape
        total, step = self.size_multiplier * n_rows, max(1, CHUNK_CELLS // n_features)
        for start in range(0, total, step):
            rows = rng.randint(0, n_rows, size=(min(step, total - start), n_features))
            yield table.values[rows, np.arange(n_features)]

    def _chunk_cells(self, table):
        n_rows, n_features = table.values.shape
        return min(self.size_multiplier * n_rows, max(1, CHUNK_CELLS // n_features)) * n_features


# --- MUNGE ------------------------------------------------------------------


def neighbour_encoding(values, nominal):
    """Encode rows so that Euclidean distance is MUNGE's distance.

    Parameters
    ----------
    values : ndarray of shape (n_samples, n_features)
        Continuous values, and integer codes for nominal attributes.
    nominal : ndarray of bool of shape (n_features,)
        Which attributes are nominal.

    Returns
    -------
    encoded : ndarray of shape (n_samples, n_encoded)
        Continuous attributes scaled to ``[0, 1]`` by their minimum and
        maximum; nominal ones one-hot times ``1 / sqrt(2)``, so that each
        mismatch adds 1 to the squared distance.

    Examples
    --------
    >>> import numpy as np
    >>> from skdistill.transfer import neighbour_encoding
    >>> values = np.array([[0.0, 0.0], [4.0, 1.0]])
    >>> encoded = neighbour_encoding(values, np.array([False, True]))
    >>> float(np.sum((encoded[0] - encoded[1]) ** 2))  # 1 (scaled) + 1 mismatch
    2.0
    """
    continuous = values[:, ~nominal]
    low = continuous.min(axis=0)
    span = np.ptp(continuous, axis=0)
    span[span == 0] = 1.0  # a constant attribute adds no distance
    parts = [(continuous - low) / span]
    row_index = np.arange(len(values))
    for codes in values[:, nominal].T.astype(np.intp):
        one_hot = np.zeros((len(values), codes.max() + 1))
        one_hot[row_index, codes] = ONE_HOT_SCALE
        parts.append(one_hot)
    return np.hstack(parts)


def nearest_other_row(encoded):
    """Index of each row's nearest neighbour among the other rows.

    Parameters
    ----------
    encoded : ndarray of shape (n_samples, n_encoded)
        Rows encoded by :func:`neighbour_encoding`, so that the Euclidean
        distance searched is MUNGE's.

    Returns
    -------
    neighbour : ndarray of int of shape (n_samples,)
        Never the row itself (a duplicate row may be its neighbour).

    Examples
    --------
    >>> import numpy as np
    >>> from skdistill.transfer import nearest_other_row
    >>> nearest_other_row(np.array([[0.0], [0.1], [5.0]])).tolist()
    [1, 0, 1]
    """
    # kneighbors without X leaves each row out of its own neighbours.
    search = NearestNeighbors(n_neighbors=1).fit(encoded)
    return search.kneighbors(return_distance=False)[:, 0]


def _munge_copy(values, nominal, neighbour, p, s, rng):
    """One MUNGE copy of the rows; see the Notes of :class:`Munge`."""
    n_rows, n_features = values.shape
    pair, attribute = np.nonzero(rng.random_sample((n_rows, n_features)) < p)
    # Each chosen (pair, attribute) writes two cells: the row from its
    # neighbour, the neighbour from the row.
    target = np.concatenate([pair, neighbour[pair]])
    source = np.concatenate([neighbour[pair], pair])
    attribute = np.concatenate([attribute, attribute])
    processed_at = np.tile(rng.permutation(n_rows)[pair], 2)
    cell = target * n_features + attribute

    # A cell keeps the write of the last pair to reach it. The writes to
    # one cell come from distinct pairs, so there is a single winner.
    last = np.full(n_rows * n_features, -1)
    np.maximum.at(last, cell, processed_at)
    wins = processed_at == last[cell]
    target, source, attribute, cell = target[wins], source[wins], attribute[wins], cell[wins]

    written = values[source, attribute]
    perturbed = ~nominal[attribute]
    sd = np.abs(values[target[perturbed], attribute[perturbed]] - written[perturbed]) / s
    written[perturbed] += sd * rng.standard_normal(sd.shape[0])

    copy = values.copy()
    copy.ravel()[cell] = written
    return copy


# --- X as a table of floats, and back -------------------------------------

#: Internal categorical_features value: every column nominal.
_ALL_COLUMNS = "__all_columns__"


class _Column:
    """How one column of X is held in the float table, and rebuilt from it."""

    def __init__(self, dtype, uniques=None):
        self.dtype = dtype
        self.uniques = uniques  # values that a nominal column's codes index

    @property
    def nominal(self):
        return self.uniques is not None

    @property
    def itemsize(self):
        """Bytes per value of the rebuilt column (8 for objects and extension types)."""
        try:
            return np.dtype(getattr(self.dtype, "numpy_dtype", self.dtype)).itemsize
        except TypeError:  # a pandas extension dtype without a numpy one (category)
            return 8

    def rebuild(self, column_values, is_frame):
        """The column, in X's dtype, from its float values or codes."""
        if self.nominal:
            values = self.uniques.take(column_values.astype(np.intp))
        else:
            values = _restore_continuous(column_values, self.dtype)
        if is_frame:
            import pandas as pd

            return pd.Series(values).astype(self.dtype)
        return values


class _Table:
    """X as a float matrix (codes for nominal columns), and what rebuilds X's type.

    Parameters
    ----------
    values : ndarray of shape (n_samples, n_features), dtype float64
    columns : list of _Column
    frame_columns : pandas Index or None
        X's columns when X is a DataFrame, None for an array.
    array_dtype : dtype or None
        X's dtype when X is an array.
    """

    def __init__(self, values, columns, frame_columns, array_dtype):
        self.values = values
        self.columns = columns
        self.frame_columns = frame_columns
        self.array_dtype = array_dtype
        self.nominal = np.array([column.nominal for column in columns], dtype=bool)

    @classmethod
    def from_input(cls, X, categorical_features, min_rows):
        """Check X and split it into float columns and nominal codes."""
        if scipy.sparse.issparse(X):
            raise TypeError(
                "X is a sparse matrix; the transfer set generators need a dense "
                "array or a DataFrame."
            )
        frame = _is_dataframe(X)
        if not frame:
            X = np.asarray(X)
            if X.ndim != 2:
                raise ValueError(f"X must be 2-dimensional; got an array of shape {X.shape}.")
        _check_shape(X.shape, min_rows)
        labels = list(X.columns) if frame else list(range(X.shape[1]))
        nominal = _nominal_mask(categorical_features, X, frame, labels)

        values = np.empty(X.shape, dtype=np.float64)
        columns = []
        for position, label in enumerate(labels):
            raw = X.iloc[:, position] if frame else X[:, position]
            name = f"column {label!r}" if frame else f"column {position}"
            if nominal[position]:
                values[:, position], uniques = _factorize(raw, name)
                columns.append(_Column(raw.dtype, uniques))
            else:
                values[:, position] = _as_continuous(raw, name, frame)
                columns.append(_Column(raw.dtype))
        return cls(
            values,
            columns,
            frame_columns=X.columns if frame else None,
            array_dtype=None if frame else X.dtype,
        )

    @property
    def n_rows(self):
        return len(self.values)

    def result_bytes(self, n_rows):
        """Bytes that :meth:`assemble` holds for ``n_rows`` rows (object cells as pointers)."""
        if self.frame_columns is None:
            return n_rows * len(self.columns) * self.array_dtype.itemsize
        # The chunks' frames and their concatenation.
        return 2 * n_rows * sum(column.itemsize for column in self.columns)

    def assemble(self, n_rows, chunks, refusal):
        """X's type rebuilt from ``chunks`` of float rows, written into the result as they come."""
        if self.frame_columns is not None:
            import pandas as pd

            frames = [self.rebuild(chunk) for chunk in chunks]
            return pd.concat(frames, ignore_index=True)
        try:
            out = np.empty((n_rows, len(self.columns)), dtype=self.array_dtype)
        except (MemoryError, ValueError) as error:  # ValueError: beyond numpy's largest array
            raise ValueError(refusal(self.result_bytes(n_rows))) from error
        start = 0
        for chunk in chunks:
            self.rebuild(chunk, out=out[start : start + len(chunk)])
            start += len(chunk)
        return out

    def rebuild(self, values, out=None):
        """Rows of the float table turned back into X's type (into ``out`` for an array)."""
        if self.frame_columns is not None:
            import pandas as pd

            rebuilt = [
                column.rebuild(values[:, position], True)
                for position, column in enumerate(self.columns)
            ]
            frame = pd.concat(rebuilt, axis=1, ignore_index=True)
            frame.columns = self.frame_columns
            return frame
        if out is None:
            out = np.empty(values.shape, dtype=self.array_dtype)
        for position, column in enumerate(self.columns):
            out[:, position] = column.rebuild(values[:, position], False)
        return out


def _check_memory(needed, refusal):
    """Refuse, with ``refusal(needed, available, source)``, what available memory cannot hold."""
    available, source = _available_memory()
    if available is not None and needed > available:
        raise ValueError(refusal(needed, available, source))


def _available_memory():
    """(bytes, where from) that this process can still allocate, or (None, None) if unknown.

    Read, without psutil, from ``MemAvailable`` in ``/proc/meminfo`` (Linux)
    and, in a container, from its cgroup's limit less its usage; the
    smaller wins. Elsewhere unknown.
    """
    known = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                known.append((int(line.split()[1]) * 1024, "MemAvailable in /proc/meminfo"))
    except (OSError, ValueError, IndexError):
        pass
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            usage = int(Path("/sys/fs/cgroup/memory.current").read_text())
            known.append((int(limit) - usage, "the cgroup's memory.max less memory.current"))
    except (OSError, ValueError):
        pass
    return min(known) if known else (None, None)


def _format_bytes(n_bytes):
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if abs(n_bytes) < 1000 or unit == "TB":
            return f"{n_bytes:,.0f} {unit}" if unit == "bytes" else f"{n_bytes:,.1f} {unit}"
        n_bytes /= 1000


def _is_dataframe(X):
    # pandas is optional: if it was never imported, X cannot be a DataFrame.
    pd = sys.modules.get("pandas")
    return pd is not None and isinstance(X, pd.DataFrame)


def _check_shape(shape, min_rows):
    n_rows, n_features = shape
    if n_rows == 0 or n_features == 0:
        raise ValueError(f"X is empty (shape {shape}); it needs rows and columns.")
    if n_rows < min_rows:
        raise ValueError(
            f"X has {n_rows} row(s); at least {min_rows} are needed (MUNGE pairs "
            "each row with a nearest neighbour among the other rows)."
        )


def _nominal_mask(categorical_features, X, frame, labels):
    """Boolean mask of the nominal columns, from the categorical_features parameter."""
    n_features = len(labels)
    if isinstance(categorical_features, str) and categorical_features == _ALL_COLUMNS:
        return np.ones(n_features, dtype=bool)
    if categorical_features is None:
        if not frame:
            return np.zeros(n_features, dtype=bool)
        return np.array([_is_nominal_dtype(dtype) for dtype in X.dtypes], dtype=bool)

    spec = np.asarray(categorical_features)
    mask = np.zeros(n_features, dtype=bool)
    if spec.size == 0:
        return mask
    if spec.ndim != 1:
        raise ValueError(
            "categorical_features must be a 1-dimensional array-like of indices, "
            f"names or booleans; got shape {spec.shape}."
        )
    if spec.dtype.kind == "b":
        if spec.shape[0] != n_features:
            raise ValueError(
                f"categorical_features is a boolean mask of length {spec.shape[0]}, "
                f"but X has {n_features} features."
            )
        return spec.copy()
    if spec.dtype.kind in "iu":
        bad = [int(index) for index in spec if not 0 <= index < n_features]
        if bad:
            raise ValueError(
                f"categorical_features has indices {bad} outside [0, {n_features - 1}] "
                f"for X with {n_features} features."
            )
        mask[spec] = True
        return mask
    if spec.dtype.kind in "UO" and all(isinstance(name, str) for name in spec):
        if not frame:
            raise ValueError(
                "categorical_features holds column names, but X has no column names; "
                "pass a DataFrame or use column indices."
            )
        position = {label: index for index, label in enumerate(labels)}
        unknown = [str(name) for name in spec if name not in position]
        if unknown:
            raise ValueError(
                f"categorical_features names columns that X does not have: {unknown}. "
                f"X's columns are {[str(label) for label in labels][:50]}."
            )
        mask[[position[name] for name in spec]] = True
        return mask
    raise TypeError(
        "categorical_features must hold column indices (int), column names (str) "
        f"or a boolean mask; got values of dtype {spec.dtype}."
    )


def _is_nominal_dtype(dtype):
    import pandas as pd

    return (
        isinstance(dtype, pd.CategoricalDtype)
        or pd.api.types.is_object_dtype(dtype)
        or pd.api.types.is_bool_dtype(dtype)
        or pd.api.types.is_string_dtype(dtype)
    )


def _missing_values_error(name):
    return ValueError(
        f"X has missing values in {name}; the transfer set generators do not "
        "handle them yet. Impute them or drop those rows first."
    )


def _factorize(raw, name):
    """Integer codes of a nominal column, and the distinct values they index."""
    if not isinstance(raw, np.ndarray):
        import pandas as pd

        codes, uniques = pd.factorize(raw)
        if (codes < 0).any():
            raise _missing_values_error(name)
        return codes, uniques
    if raw.dtype.kind == "f" and np.isnan(raw).any():
        raise _missing_values_error(name)
    try:
        uniques, codes = np.unique(raw, return_inverse=True)
    except TypeError:  # an object column mixing types that do not compare
        position = {}
        codes = np.array([position.setdefault(value, len(position)) for value in raw])
        uniques = np.empty(len(position), dtype=raw.dtype)
        uniques[:] = list(position)
    if raw.dtype.kind == "O" and any(value is None or value != value for value in uniques):
        raise _missing_values_error(name)
    return codes, uniques


def _as_continuous(raw, name, frame):
    """A continuous column as float64, with a clear error if it is not numeric."""
    if frame:
        import pandas as pd

        if isinstance(raw.dtype, pd.CategoricalDtype):
            raise ValueError(
                f"{name} has a categorical dtype, so its values cannot be perturbed; "
                "list it in categorical_features (or leave categorical_features=None)."
            )
    try:
        values = (
            raw.to_numpy(dtype=np.float64, na_value=np.nan) if frame else raw.astype(np.float64)
        )
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"{name} is not numeric, so it cannot be a continuous attribute; list "
            "it in categorical_features."
        ) from error
    if np.isnan(values).any():
        raise _missing_values_error(name)
    return values


def _restore_continuous(values, dtype):
    """Float values cast back to a column's dtype, rounded for integers."""
    numpy_dtype = np.dtype(getattr(dtype, "numpy_dtype", dtype))
    if numpy_dtype.kind == "b":
        return np.clip(np.round(values), 0, 1).astype(bool)
    if numpy_dtype.kind in "iu":
        # Perturbations can leave the dtype's range; clipping avoids wrap-around.
        limits = np.iinfo(numpy_dtype)
        high = float(limits.max)
        if int(high) > limits.max:  # int64's max rounds up past the range as a float
            high = np.nextafter(high, 0.0)
        return np.clip(np.round(values), limits.min, high).astype(numpy_dtype)
    return values.astype(numpy_dtype)
