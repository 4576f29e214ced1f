"""Defaults that never lose: a panel of real tables, teachers and candidate defaults.

For every (table, seed, teacher) the script fits the teacher on the training
rows and then, through the public API only (``DistilledClassifier``,
``DistilledRegressor``, ``Munge``), one student per *row*:

``teacher``
    the teacher itself;
``hard``
    the same student on the hard labels alone (``alpha=0``), early-stopped
    on a held-out 10% of the training rows (its own best stopping);
``default``
    the package's defaults, ``DistilledClassifier(teacher)`` as is (since the
    panel: early stopping at every size, patience 20, T=2);
``v01``
    version 0.1's defaults (T=4, early stopping only from 10,000 rows,
    patience 10), the baseline of the fit time;
``es_T{t}[_a{a}]``
    early stopping at every size (on the held-out 10%), temperature ``t``,
    ``alpha`` ``a`` (0.9 unless given);
``oof_T{t}``
    as ``es_T{t}`` with out-of-fold teacher outputs on the training rows
    (the forest's out-of-bag probabilities for a random forest, 5-fold
    cross-fitted ones for any other teacher), see :class:`OutOfFoldTeacher`;
``munge{k}_T{t}``
    as ``es_T{t}`` plus ``Munge(size_multiplier=k)`` rows labelled by the teacher;
``pub_T{t}``
    ``early_stopping=True`` through the public parameter (the estimator's
    own random 10% hold-out), to check that the ``es_*`` rows, which pass the
    held-out rows as ``X_val``, measure the same thing.

Regression rows are the same with ``alpha`` in place of the temperature
(``es_a1``, ``es_a05``, ``oof_a1``, ``munge1_a05`` ...).

``es_*``, ``oof_*`` and ``munge*`` rows are trained on 90% of the training rows
and early-stopped on the other 10% (``fit(X_fit, y_fit, X_val=X_hold,
y_val=y_hold)``: with ``X_val`` and ``y_val`` the estimator early-stops on
the distillation loss of those rows, exactly what ``early_stopping=True``
does on its own random hold-out). Every row records its accuracy (R2) and
log-loss on the held-out rows, so rules that *choose* between rows on
held-out rows are evaluated without further fits (derived rows, computed in
the report): ``auto_T14`` (``temperature="auto"``: the better of T=1 and
T=4 by held-out log-loss, costing both fits), ``kind_*`` (temperature by the
kind of teacher) and ``safe_*`` (the distilled student or the hard-label
one, whichever is better on the held-out rows).

Accuracy figures are trustworthy under load; fit times are not (they are
recorded, wall and CPU seconds, but the machine is shared).

Usage::

    nice -n 10 python benchmarks/defaults.py                 # teacher, hard, default, v01 (< 1 h)
    nice -n 10 python benchmarks/defaults.py --rows all      # every candidate (hours)
    nice -n 10 python benchmarks/defaults.py --quick         # a few minutes
    nice -n 10 python benchmarks/defaults.py --tables letter,diabetes --rows hard,es_T1
    python benchmarks/defaults.py --report-only              # rebuild .md/.json from the .jsonl

Results are appended, one line per (table, seed, teacher, row), to
``benchmarks/results/defaults_panel.jsonl`` (``_quick`` for ``--quick``); a run
skips what is already there, so an interrupted run continues where it stopped.
The summary is written to ``defaults_panel.json`` and ``defaults_panel.md``.
"""

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import fcntl  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from concurrent.futures import ProcessPoolExecutor, as_completed  # noqa: E402
from functools import lru_cache  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from datasets import (  # noqa: E402
    describe_machine,
    load_classification_table,
    load_regression_table,
)

RESULTS = Path(__file__).resolve().parent / "results"
COMMAND = "nice -n 10 python benchmarks/defaults.py"

SEEDS = (0, 1, 2)
TEST_SIZE = 0.25
HOLD_FRACTION = 0.1
OOF_FOLDS = 5
#: Early stopping's held-out share is stratified; below this many rows per class
#: a table is split without stratification.
QUICK_MAX_ROWS = 2000

#: Each table's teacher (a rotation over the four kinds a user has) and size class.
CLASSIFICATION_TEACHERS = {
    "letter": "hgb",
    "magic": "rf",
    "penbased": "vote",
    "mnist5k": "rf",
    "satimage": "lgbm",
    "optdigits": "hgb",
    "texture": "vote",
    "spambase": "lgbm",
    "phoneme": "rf",
    "ring": "hgb",
    "twonorm": "lgbm",
    "banana": "vote",
    "segment": "lgbm",
    "digits": "rf",
    "contraceptive": "hgb",
    "vowel": "rf",
    "german": "vote",
    "vehicle": "lgbm",
    "australian": "hgb",
    "breast_cancer": "vote",
    "wine": "rf",
}
REGRESSION_TEACHERS = {
    "randhie": "lgbm",
    "marketing_income": "vote",
    "fair": "rf",
    "friedman1": "hgb",
    "wine_alcohol": "vote",
    "contraceptive_children": "lgbm",
    "diabetes": "rf",
    "autompg": "hgb",
}
#: The other kind of teacher, for ``--teachers pair`` (probability-only
#: tree-vote teachers against boosting teachers with real logits).
PARTNER = {"rf": "hgb", "vote": "lgbm", "hgb": "rf", "lgbm": "vote"}
#: Teachers whose probabilities are tree votes (no logits of their own).
VOTE_TEACHERS = ("rf", "vote")

QUICK_CLASSIFICATION = ("magic", "satimage", "digits", "vowel")
QUICK_REGRESSION = ("diabetes", "friedman1")

#: Version 0.1's defaults, the baseline of "not slower": T=4, early stopping
#: from 10,000 rows only ("auto"), patience 10.
V01_CLASSIFIER = dict(temperature=4.0, early_stopping="auto", n_iter_no_change=10)
V01_REGRESSOR = dict(early_stopping="auto", n_iter_no_change=10)
#: The exploration's rows were defined on version 0.1's defaults (patience 10;
#: no early stopping below 10,000 rows where ``holdout=False``): pinned here,
#: so that they mean what they meant whatever the package's defaults.
_P10 = dict(n_iter_no_change=10)

CLASSIFICATION_ROWS = {
    "hard": dict(alpha=0.0),
    "default": dict(holdout=False),
    "v01": dict(holdout=False, **V01_CLASSIFIER),
    "es_T4": dict(temperature=4.0, **_P10),
    "es_T2": dict(temperature=2.0, **_P10),
    "es_T1": dict(temperature=1.0, **_P10),
    "es_T1_a05": dict(temperature=1.0, alpha=0.5, **_P10),
    "es_T4_a05": dict(temperature=4.0, alpha=0.5, **_P10),
    "oof_T1": dict(temperature=1.0, oof=True, only=("rf",), **_P10),
    "oof_T4": dict(temperature=4.0, oof=True, only=("rf",), **_P10),
    "munge1_T1": dict(temperature=1.0, munge=1, **_P10),
    "munge1_T4": dict(temperature=4.0, munge=1, **_P10),
    "pub_T1": dict(temperature=1.0, holdout=False, early_stopping=True, **_P10),
    "full_T1": dict(temperature=1.0, holdout=False, early_stopping="auto", **_P10),
    "full_T2": dict(temperature=2.0, holdout=False, early_stopping="auto", **_P10),
    "munge1_T2": dict(temperature=2.0, munge=1, **_P10),
    "es20_T2": dict(temperature=2.0, n_iter_no_change=20),
    "es20_T4": dict(temperature=4.0, n_iter_no_change=20),
    "pub20_T2": dict(temperature=2.0, n_iter_no_change=20, holdout=False, early_stopping=True),
}
REGRESSION_ROWS = {
    "hard": dict(alpha=0.0),
    "default": dict(holdout=False),
    "v01": dict(holdout=False, **V01_REGRESSOR),
    "es_a1": dict(alpha=1.0, **_P10),
    "es_a09": dict(alpha=0.9, **_P10),
    "es_a05": dict(alpha=0.5, **_P10),
    "oof_a1": dict(alpha=1.0, oof=True, **_P10),
    "oof_a05": dict(alpha=0.5, oof=True, **_P10),
    "munge1_a1": dict(alpha=1.0, munge=1, **_P10),
    "munge1_a05": dict(alpha=0.5, munge=1, **_P10),
    "pub_a05": dict(alpha=0.5, holdout=False, early_stopping=True, **_P10),
    "es20_a1": dict(alpha=1.0, n_iter_no_change=20),
    "pub_a1": dict(alpha=1.0, holdout=False, early_stopping=True, **_P10),
    "pub20_a1": dict(alpha=1.0, n_iter_no_change=20, holdout=False, early_stopping=True),
}


#: Rows of a run without --rows: the teacher, the hard-label student, the
#: package's defaults and version 0.1's (``--rows all`` runs every candidate
#: of the exploration, several hours on 2 cores).
DEFAULT_ROWS = ("hard", "default", "v01")


# ---------------------------------------------------------------------------
# Teachers
# ---------------------------------------------------------------------------


def make_teacher(kind, task, seed):
    """An unfitted teacher of the given kind, single-threaded."""
    from sklearn import ensemble

    classify = task == "classification"
    if kind == "rf":
        cls = ensemble.RandomForestClassifier if classify else ensemble.RandomForestRegressor
        return cls(n_estimators=300, n_jobs=1, random_state=seed)
    if kind == "hgb":
        cls = (
            ensemble.HistGradientBoostingClassifier
            if classify
            else ensemble.HistGradientBoostingRegressor
        )
        return cls(random_state=seed)
    if kind == "lgbm":
        import lightgbm

        cls = lightgbm.LGBMClassifier if classify else lightgbm.LGBMRegressor
        return cls(n_jobs=1, verbose=-1, random_state=seed)
    if kind == "vote":
        if classify:
            members = [
                ("rf", ensemble.RandomForestClassifier(200, n_jobs=1, random_state=seed)),
                ("et", ensemble.ExtraTreesClassifier(200, n_jobs=1, random_state=seed)),
                ("hgb", ensemble.HistGradientBoostingClassifier(random_state=seed)),
            ]
            return ensemble.VotingClassifier(members, voting="soft")
        members = [
            ("rf", ensemble.RandomForestRegressor(200, n_jobs=1, random_state=seed)),
            ("et", ensemble.ExtraTreesRegressor(200, n_jobs=1, random_state=seed)),
            ("hgb", ensemble.HistGradientBoostingRegressor(random_state=seed)),
        ]
        return ensemble.VotingRegressor(members)
    raise ValueError(kind)


def _row_keys(X):
    """One bytes key per row of X (as float64), for exact row matching."""
    X = np.ascontiguousarray(X, dtype=np.float64)
    return [row.tobytes() for row in X]


def out_of_fold_outputs(teacher, kind, X, y, task, seed):
    """The teacher's honest outputs on its own training rows.

    A random forest's out-of-bag outputs, computed from the fitted forest
    (``estimators_samples_``; no refit), each row averaged over the trees
    whose bootstrap sample missed it; for any other teacher, 5-fold
    cross-fitted outputs (``cross_val_predict`` of clones of the teacher).
    """
    from sklearn.base import clone
    from sklearn.model_selection import KFold, StratifiedKFold, cross_val_predict

    classify = task == "classification"
    if kind == "rf":
        n = len(X)
        width = len(teacher.classes_) if classify else 1
        total = np.zeros((n, width))
        count = np.zeros(n)
        for tree, samples in zip(teacher.estimators_, teacher.estimators_samples_, strict=True):
            out_of_bag = np.ones(n, dtype=bool)
            out_of_bag[samples] = False
            rows = X[out_of_bag]
            if classify:
                total[out_of_bag] += tree.predict_proba(rows)
            else:
                total[out_of_bag] += tree.predict(rows).reshape(-1, 1)
            count[out_of_bag] += 1
        never = count == 0
        outputs = total / np.maximum(count, 1)[:, None]
        if never.any():
            full = teacher.predict_proba(X[never]) if classify else teacher.predict(X[never])
            outputs[never] = np.reshape(full, (never.sum(), width))
        return outputs if classify else outputs.ravel()
    if classify:
        cv = StratifiedKFold(OOF_FOLDS, shuffle=True, random_state=seed)
        return cross_val_predict(clone(teacher), X, y, cv=cv, method="predict_proba")
    cv = KFold(OOF_FOLDS, shuffle=True, random_state=seed)
    return cross_val_predict(clone(teacher), X, y, cv=cv)


class _OutOfFoldBase:
    """A fitted teacher whose outputs on its own training rows are out-of-fold.

    The distiller calls its teacher on ``X`` (and, when a transfer set or
    ``X_unlabeled`` is given, on X with those rows appended), in batches of
    10,000 rows, and on ``X_val``; none of these calls says which rows are
    training rows. So rows are matched by value: every training row's exact
    float64 bytes are a key to its out-of-fold output (duplicated rows share
    the mean of theirs), and any row that is not a training row (a test row,
    a synthetic Munge row) gets the teacher's ordinary output. This is
    correct whatever the batching, ordering or concatenation, as long as the
    rows reach the teacher unmodified (numeric arrays, as in this panel).
    ``n_matched_`` counts the rows that got out-of-fold outputs.
    """

    def __init__(self, estimator, X, outputs):
        self.estimator = estimator
        keys = _row_keys(X)
        index, groups = {}, []
        for key in keys:
            groups.append(index.setdefault(key, len(index)))
        groups = np.asarray(groups)
        outputs = np.asarray(outputs, dtype=np.float64).reshape(len(keys), -1)
        sums = np.zeros((len(index), outputs.shape[1]))
        np.add.at(sums, groups, outputs)
        self._index = index
        self._outputs = sums / np.bincount(groups)[:, None]
        self.n_features_in_ = X.shape[1]
        self.n_matched_ = 0

    def _replace(self, X, outputs):
        found = np.array([self._index.get(key, -1) for key in _row_keys(X)])
        hit = found >= 0
        self.n_matched_ += int(hit.sum())
        outputs = np.array(outputs, dtype=np.float64).reshape(len(found), -1)
        outputs[hit] = self._outputs[found[hit]]
        return outputs


class OutOfFoldClassifier(_OutOfFoldBase):
    __doc__ = _OutOfFoldBase.__doc__

    def __init__(self, estimator, X, outputs):
        super().__init__(estimator, X, outputs)
        self.classes_ = estimator.classes_

    def predict_proba(self, X):
        return self._replace(X, self.estimator.predict_proba(X))

    def predict(self, X):
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


class OutOfFoldRegressor(_OutOfFoldBase):
    __doc__ = _OutOfFoldBase.__doc__

    def predict(self, X):
        return self._replace(X, self.estimator.predict(X)).ravel()


class AutoTemperatureClassifier:
    """``temperature="auto"`` on top of the public API: the reference of the derived rows.

    Holds out ``validation_fraction`` of the rows (stratified), fits one
    ``DistilledClassifier`` per candidate temperature on the rest,
    early-stopped on the held-out rows (``X_val``/``y_val``), and keeps the
    one with the lowest held-out log-loss against the labels. Its cost is
    the sum of the candidates' early-stopped fits (two for ``(1, 4)``). The
    panel does not fit it again: the ``es_T*`` rows are exactly these fits
    (same hold-out), and the derived rows ``auto_T14``/``auto_T124`` pick
    among them with the same rule.
    """

    def __init__(
        self,
        teacher,
        temperatures=(1.0, 4.0),
        validation_fraction=HOLD_FRACTION,
        random_state=None,
        **params,
    ):
        self.teacher = teacher
        self.temperatures = temperatures
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.params = params

    def fit(self, X, y):
        from sklearn.metrics import log_loss
        from sklearn.model_selection import train_test_split

        from skdistill import DistilledClassifier

        X_fit, X_hold, y_fit, y_hold = train_test_split(
            X, y, test_size=self.validation_fraction, stratify=y, random_state=self.random_state
        )
        self.scores_ = {}
        best = None
        for t in self.temperatures:
            model = DistilledClassifier(
                self.teacher, temperature=t, random_state=self.random_state, **self.params
            ).fit(X_fit, y_fit, X_val=X_hold, y_val=y_hold)
            proba = np.clip(model.predict_proba(X_hold), 1e-12, 1)
            self.scores_[t] = log_loss(y_hold, proba, labels=model.classes_)
            if best is None or self.scores_[t] < self.scores_[best[0]]:
                best = (t, model)
        self.temperature_, self.best_estimator_ = best
        self.classes_ = self.best_estimator_.classes_
        return self

    def predict(self, X):
        return self.best_estimator_.predict(X)

    def predict_proba(self, X):
        return self.best_estimator_.predict_proba(X)


# ---------------------------------------------------------------------------
# One (table, seed, teacher): the teacher and every requested row
# ---------------------------------------------------------------------------


@lru_cache(maxsize=4)
def _load(task, name):
    if task == "classification":
        return load_classification_table(name)
    X, y = load_regression_table(name)
    return X, y, None


def split_table(task, name, seed, max_rows=None):
    """Train/test (75/25, stratified for classification) and the 10% hold-out of train."""
    from sklearn.model_selection import train_test_split

    X, y, test = _load(task, name)
    classify = task == "classification"
    if test is None:
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, test_size=TEST_SIZE, stratify=y if classify else None, random_state=seed
        )
    else:
        X_train, y_train, (X_test, y_test) = X, y, test
    if max_rows and len(X_train) > max_rows:
        X_train, _, y_train, _ = train_test_split(
            X_train,
            y_train,
            train_size=max_rows,
            stratify=y_train if classify else None,
            random_state=seed,
        )
    X_fit, X_hold, y_fit, y_hold = train_test_split(
        X_train,
        y_train,
        test_size=HOLD_FRACTION,
        stratify=y_train if classify else None,
        random_state=seed + 1000,
    )
    return dict(
        X_train=X_train,
        y_train=y_train,
        X_fit=X_fit,
        y_fit=y_fit,
        X_hold=X_hold,
        y_hold=y_hold,
        X_test=X_test,
        y_test=y_test,
    )


def _binary_columns(X):
    """Columns holding only 0 and 1 (one-hot codes): nominal for Munge."""
    return [j for j in range(X.shape[1]) if np.isin(np.unique(X[:, j]), (0.0, 1.0)).all()]


def _student(task, teacher, spec, seed, X):
    from skdistill import DistilledClassifier, DistilledRegressor, Munge

    params = {k: v for k, v in spec.items() if k not in ("holdout", "oof", "munge", "only")}
    if spec.get("munge"):
        params["transfer"] = Munge(
            size_multiplier=spec["munge"], categorical_features=_binary_columns(X) or None
        )
    cls = DistilledClassifier if task == "classification" else DistilledRegressor
    return cls(teacher, random_state=seed, **params)


def _student_metrics(task, model, teacher, data, teacher_test):
    from sklearn.metrics import accuracy_score, log_loss, r2_score

    X_test, y_test, X_hold, y_hold = data["X_test"], data["y_test"], data["X_hold"], data["y_hold"]
    if task == "classification":
        pred = model.predict(X_test)
        proba_hold = model.predict_proba(X_hold)
        return dict(
            score=accuracy_score(y_test, pred),
            agree=float(np.mean(pred == teacher_test)),
            hold_score=accuracy_score(y_hold, model.predict(X_hold)),
            hold_loss=log_loss(y_hold, np.clip(proba_hold, 1e-12, 1), labels=model.classes_),
        )
    pred = model.predict(X_test)
    hold_pred = model.predict(X_hold)
    return dict(
        score=r2_score(y_test, pred),
        agree=r2_score(teacher_test, pred),
        hold_score=r2_score(y_hold, hold_pred),
        hold_loss=float(np.mean((y_hold - hold_pred) ** 2)),
    )


def _append(path, record):
    line = json.dumps(record) + "\n"
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        fh.write(line)
        fh.flush()
        fcntl.flock(fh, fcntl.LOCK_UN)


def run_task(task, name, seed, kind, rows, max_rows, path):
    """Fit the teacher and the missing rows of one (table, seed, teacher); append them."""
    import torch
    from sklearn.metrics import accuracy_score, r2_score
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    threadpool_limits(1)
    specs = CLASSIFICATION_ROWS if task == "classification" else REGRESSION_ROWS
    data = split_table(task, name, seed, max_rows)
    base = dict(
        table=name,
        task=task,
        seed=seed,
        teacher=kind,
        max_rows=max_rows,
        n_train=len(data["X_train"]),
        n_fit=len(data["X_fit"]),
        n_hold=len(data["X_hold"]),
        n_test=len(data["X_test"]),
        n_features=data["X_train"].shape[1],
    )
    if task == "classification":
        base["n_classes"] = int(len(np.unique(data["y_train"])))
    done = []

    def record(row, **values):
        rec = dict(base, row=row, **values, load=os.getloadavg()[0], at=time.time())
        _append(path, rec)
        done.append(rec)

    teacher = make_teacher(kind, task, seed)
    wall, cpu = time.perf_counter(), time.process_time()
    teacher.fit(data["X_train"], data["y_train"])
    teacher_s, teacher_cpu = time.perf_counter() - wall, time.process_time() - cpu
    teacher_test = teacher.predict(data["X_test"])
    if "teacher" in rows:
        score = (accuracy_score if task == "classification" else r2_score)(
            data["y_test"], teacher_test
        )
        train_score = teacher.score(data["X_train"], data["y_train"])
        record(
            "teacher",
            score=score,
            agree=1.0,
            fit_s=teacher_s,
            cpu_s=teacher_cpu,
            train_score=train_score,
        )

    oof_teacher, oof_s, oof_cpu = None, 0.0, 0.0
    for row in rows:
        if row == "teacher":
            continue
        spec = dict(specs[row])
        holdout = spec.pop("holdout", True)
        use_oof = spec.get("oof", False)
        this_teacher = teacher
        if use_oof:
            if oof_teacher is None:
                wall, cpu = time.perf_counter(), time.process_time()
                outputs = out_of_fold_outputs(
                    teacher, kind, data["X_train"], data["y_train"], task, seed
                )
                wrapper = OutOfFoldClassifier if task == "classification" else OutOfFoldRegressor
                oof_teacher = wrapper(teacher, data["X_train"], outputs)
                oof_s, oof_cpu = time.perf_counter() - wall, time.process_time() - cpu
            this_teacher = oof_teacher
            oof_teacher.n_matched_ = 0
        X_fit = data["X_fit"] if holdout else data["X_train"]
        model = _student(task, this_teacher, spec, seed, X_fit)
        wall, cpu = time.perf_counter(), time.process_time()
        if holdout:
            model.fit(data["X_fit"], data["y_fit"], X_val=data["X_hold"], y_val=data["y_hold"])
        else:
            model.fit(data["X_train"], data["y_train"])
        fit_s, fit_cpu = time.perf_counter() - wall, time.process_time() - cpu
        extra = {}
        if use_oof:
            extra = dict(oof_s=oof_s, oof_matched=oof_teacher.n_matched_)
            fit_s, fit_cpu = fit_s + oof_s, fit_cpu + oof_cpu
        metrics = _student_metrics(task, model, teacher, data, teacher_test)
        record(row, **metrics, fit_s=fit_s, cpu_s=fit_cpu, epochs=int(model.n_iter_), **extra)
    return done


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------


def read_jsonl(path):
    if not path.exists():
        return []
    records = []
    with open(path) as fh:
        for line in fh:
            line = line.strip()
            if line:
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:  # a line cut by an interrupted run
                    pass
    return records


def _key(rec):
    return (rec["table"], rec["seed"], rec["teacher"], rec["row"])


def index_records(records):
    """The last record of every (table, seed, teacher, row)."""
    return {_key(rec): rec for rec in records}


def derive_rows(by_key):
    """Rows that choose between measured rows on the held-out rows (no extra fit).

    Fit times add up: the rule has to fit every candidate it chooses between.
    """
    groups = {}
    for (table, seed, teacher, row), rec in by_key.items():
        groups.setdefault((table, seed, teacher), {})[row] = rec
    derived = {}
    # A kind_* row mixes two rows by the kind of teacher: only where the run
    # has both (on some tables), or it would be one of them under another name.
    present = {key[3] for key in by_key}
    for (table, seed, teacher), recs in groups.items():
        task = next(iter(recs.values()))["task"]

        def choose(
            name, candidates, by="hold_loss", cost=None, recs=recs, key=(table, seed, teacher)
        ):
            if not all(c in recs for c in candidates):
                return
            if by == "hold_loss":
                best = min(candidates, key=lambda c: (recs[c]["hold_loss"], candidates.index(c)))
            else:
                best = max(candidates, key=lambda c: (recs[c]["hold_score"], -candidates.index(c)))
            rec = dict(recs[best], row=name, chosen=best)
            members = cost or candidates
            rec["fit_s"] = sum(recs[c]["fit_s"] for c in members)
            rec["cpu_s"] = sum(recs[c]["cpu_s"] for c in members)
            rec["epochs"] = sum(recs[c]["epochs"] for c in members)
            derived[(*key, name)] = rec

        def alias(name, chosen, other, recs=recs, key=(table, seed, teacher)):
            if chosen in recs and other in present:
                derived[(*key, name)] = dict(recs[chosen], row=name, chosen=chosen)

        def by_kind(name, vote_row, boost_row, vote=teacher in VOTE_TEACHERS):
            chosen, other = (vote_row, boost_row) if vote else (boost_row, vote_row)
            alias(name, chosen, other)

        if task == "classification":
            choose("auto_T14", ["es_T1", "es_T4"])
            choose("auto_T124", ["es_T1", "es_T2", "es_T4"])
            choose("auto_T14_acc", ["es_T1", "es_T4"], by="hold_score")
            by_kind("kind_T1_T4", "es_T1", "es_T4")
            by_kind("kind_T1_T2", "es_T1", "es_T2")
            by_kind("kind_T2_T4", "es_T2", "es_T4")
            by_kind("kind_fT2_def", "full_T2", "v01")
            by_kind("kind_oofT1_T4", "oof_T1", "es_T4")
            by_kind("kind_oofT1_T1", "oof_T1", "es_T1")
            alias("rfoof_T1", "oof_T1" if teacher == "rf" else "es_T1", "oof_T1")
            choose("safe_T1", ["es_T1", "hard"], by="hold_score")
            choose("safe_T14", ["es_T1", "es_T4", "hard"], by="hold_score")
        else:
            alias("kind_oof_a05", "oof_a05" if teacher == "rf" else "es_a05", "oof_a05")
            choose("safe_a05", ["es_a05", "hard"], by="hold_score")
            choose("auto_a", ["es_a1", "es_a05"], by="hold_score")
    return derived


def _mean(values):
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else float("nan")


def table_stats(by_key, task):
    """Per (table, teacher, row): means over seeds, and the per-seed records."""
    stats = {}
    for (table, _seed, teacher, row), rec in by_key.items():
        if rec["task"] != task:
            continue
        stats.setdefault((table, teacher), {}).setdefault(row, []).append(rec)
    out = {}
    for (table, teacher), rows in stats.items():
        cell = {}
        for row, recs in rows.items():
            cell[row] = dict(
                score=_mean([r["score"] for r in recs]),
                score_sd=float(np.std([r["score"] for r in recs])),
                agree=_mean([r.get("agree") for r in recs]),
                fit_s=_mean([r["fit_s"] for r in recs]),
                cpu_s=_mean([r["cpu_s"] for r in recs]),
                epochs=_mean([r.get("epochs") for r in recs]),
                n_seeds=len(recs),
                by_seed={r["seed"]: dict(score=r["score"], cpu_s=r["cpu_s"]) for r in recs},
                chosen=[r.get("chosen") for r in recs if r.get("chosen")],
            )
        first = next(iter(rows.values()))[0]
        out[(table, teacher)] = dict(
            rows=cell,
            n_train=first["n_train"],
            n_test=first["n_test"],
            n_features=first["n_features"],
            n_classes=first.get("n_classes"),
        )
    return out


def _matched(cell, row, other, field="score"):
    """Mean of row minus other over the seeds both have (None without any)."""
    a, b = cell[row]["by_seed"], cell[other]["by_seed"]
    seeds = sorted(set(a) & set(b))
    if not seeds:
        return None
    return float(np.mean([a[s][field] - b[s][field] for s in seeds]))


def _ratio(cell, row, other):
    a, b = cell[row]["by_seed"], cell[other]["by_seed"]
    seeds = sorted(set(a) & set(b))
    if not seeds:
        return None
    return sum(a[s]["cpu_s"] for s in seeds), sum(b[s]["cpu_s"] for s in seeds)


#: The rows shown in every per-table table: the package's defaults (chosen by
#: the exploration: early stopping at every size on a stratified 10% hold-out
#: with patience 20, T=2, alpha=0.9 for the classifier, alpha=1 for the
#: regressor) and version 0.1's.
RECOMMENDED = {
    "classification": ["default", "v01"],
    "regression": ["default", "v01"],
}

#: The row whose fit time "no slower on average" is judged against.
BASELINE = "v01"

#: The bar, in score units (accuracy as a fraction, R2).
BAR = {
    "classification": dict(worst=-0.005, teacher_gap=0.01),
    "regression": dict(worst=-0.02, teacher_gap_small=0.05),
}
SMALL_ROWS = 10_000


def summarise(stats, task):
    """Per-candidate summary against the bar.

    Every comparison is made on the seeds both rows have (per table, mean
    over those seeds), then averaged over tables.
    """
    rows = sorted({row for cell in stats.values() for row in cell["rows"]})
    summary = {}
    for row in rows:
        if row in ("teacher", "hard"):
            continue
        gains, teacher_gaps, small_gaps, cpu_ratio, worst = [], [], [], [], None
        cpu = cpu_default = 0.0
        n_tables = 0
        for (table, _teacher), cell in stats.items():
            r = cell["rows"]
            if row not in r or "hard" not in r or "teacher" not in r:
                continue
            gain = _matched(r, row, "hard")
            if gain is None:
                continue
            n_tables += 1
            gains.append(gain)
            if worst is None or gain < worst[0]:
                worst = (gain, table)
            gap = -_matched(r, row, "teacher")
            if r["teacher"]["score"] > r["hard"]["score"]:
                teacher_gaps.append(gap)
            if cell["n_train"] < SMALL_ROWS:
                small_gaps.append((gap, table))
            if BASELINE in r:
                pair = _ratio(r, row, BASELINE)
                if pair:
                    cpu += pair[0]
                    cpu_default += pair[1]
                    cpu_ratio.append(pair[0] / max(pair[1], 1e-9))
        if not n_tables:
            continue
        s = dict(
            n_tables=n_tables,
            mean_gain=float(np.mean(gains)),
            worst_gain=worst[0],
            worst_table=worst[1],
            n_below=int(sum(g < BAR[task]["worst"] for g in gains)),
            teacher_gap=float(np.mean(teacher_gaps)) if teacher_gaps else float("nan"),
            n_teacher_tables=len(teacher_gaps),
            cpu_total_ratio=cpu / cpu_default if cpu_default else float("nan"),
            cpu_geomean_ratio=(
                float(np.exp(np.mean(np.log(cpu_ratio)))) if cpu_ratio else float("nan")
            ),
        )
        passes = [s["worst_gain"] >= BAR[task]["worst"], s["mean_gain"] > 0]
        if task == "classification":
            passes.append(not s["teacher_gap"] > BAR[task]["teacher_gap"])
        else:
            worst_small = max(small_gaps) if small_gaps else (float("nan"), None)
            s["worst_small_teacher_gap"], s["worst_small_table"] = worst_small
            passes.append(not worst_small[0] > BAR[task]["teacher_gap_small"])
        passes.append(not s["cpu_total_ratio"] > 1.0)
        s["checks"] = passes
        s["passes"] = all(passes)
        summary[row] = s
    return summary


def _pts(x, task):
    return f"{100 * x:+.2f}" if task == "classification" else f"{x:+.3f}"


def render_summary(summary, task):
    unit = "points of accuracy" if task == "classification" else "R2"
    if task == "classification":
        head = (
            "| row | tables | mean gain vs hard | worst gain (table) | tables below -0.5 | "
            "teacher gap where teacher > hard | CPU vs v0.1 defaults (total / geomean) | "
            "never -0.5 | gain>0 | gap<=1 | not slower | passes |"
        )
    else:
        head = (
            "| row | tables | mean gain vs hard | worst gain (table) | tables below -0.02 | "
            "worst teacher gap, < 10k rows (table) | CPU vs v0.1 defaults (total / geomean) | "
            "never -0.02 | gain>0 | gap<=0.05 | not slower | passes |"
        )
    lines = [
        f"Gains and gaps in {unit}; means over seeds per table, then over tables.",
        "",
        head,
        "|" + "---|" * (head.count("|") - 1),
    ]
    order = sorted(summary, key=lambda r: (not summary[r]["passes"], -summary[r]["mean_gain"]))
    for row in order:
        s = summary[row]
        ok = ["yes" if c else "**no**" for c in s["checks"]]
        if task == "classification":
            gap = f"{_pts(s['teacher_gap'], task)} ({s['n_teacher_tables']} tables)"
        else:
            gap = f"{_pts(s['worst_small_teacher_gap'], task)} ({s['worst_small_table']})"
        lines.append(
            f"| {row} | {s['n_tables']} | {_pts(s['mean_gain'], task)} | "
            f"{_pts(s['worst_gain'], task)} ({s['worst_table']}) | {s['n_below']} | {gap} | "
            f"{s['cpu_total_ratio']:.2f} / {s['cpu_geomean_ratio']:.2f} | "
            + " | ".join(ok)
            + f" | {'**PASS**' if s['passes'] else 'fail'} |"
        )
    return "\n".join(lines)


def render_tables(stats, task, rows):
    fmt = (lambda x: f"{100 * x:.2f}") if task == "classification" else (lambda x: f"{x:.3f}")
    head = "| table (teacher) | n_train / n_test | " + " | ".join(rows) + " |"
    lines = [
        "Score (accuracy % or R2) mean over seeds; below it: agreement with the teacher "
        "(R2 against its predictions), CPU seconds of the fit, epochs.",
        "",
        head,
        "|" + "---|" * (len(rows) + 2),
    ]
    order = sorted(stats, key=lambda k: -stats[k]["n_train"])
    for table, teacher in order:
        cell = stats[(table, teacher)]
        r = cell["rows"]
        scores, details = [], []
        for row in rows:
            if row not in r:
                scores.append("")
                continue
            c = r[row]
            sd = f" ±{fmt(c['score_sd'])}" if c["n_seeds"] > 1 else ""
            scores.append(f"{fmt(c['score'])}{sd}")
            if row == "teacher":
                details.append(f"cpu {c['cpu_s']:.1f}")
            else:
                details.append(f"agr {fmt(c['agree'])}, cpu {c['cpu_s']:.1f}, ep {c['epochs']:.0f}")
        lines.append(
            f"| {table} ({teacher}) | {cell['n_train']} / {cell['n_test']} | "
            + " | ".join(scores)
            + " |"
        )
        lines.append("| | | " + " | ".join(details) + " |")
    return "\n".join(lines)


def build_report(records, meta, out_md, out_json, rows_cls, rows_reg):
    by_key = index_records(records)
    by_key.update(derive_rows(by_key))
    report = dict(meta=meta)
    md = [
        "# Defaults that never lose: the panel",
        "",
        f"Machine: {meta['machine']}",
        "",
        f"Load average (1/5/15 min) at report time: {meta['load']}; during the run: "
        f"{meta.get('load_during', 'n/a')}. Accuracy figures are unaffected by load; fit "
        "times are not (CPU seconds are given, which suffer less).",
        "",
        f"skdistill: {meta['skdistill']}. Command: `{meta['command']}`.",
        "",
        *([f"Note: {meta['note']}", ""] if meta.get("note") else []),
        "Rows are described in the docstring of `benchmarks/defaults.py`. `hard`: the same "
        "student on hard labels (alpha=0) early-stopped on a 10% hold-out; `default`: "
        "the package's defaults; `v01`: version 0.1's (T=4, early stopping from 10,000 "
        "rows, patience 10); `es_*`: early stopping on a 10% hold-out at every size; `oof_*`: "
        "out-of-bag (random forest) or 5-fold cross-fitted teacher outputs on the "
        "training rows; `munge1_*`: plus Munge(size_multiplier=1); derived rows choose "
        "between measured rows on the held-out rows (`auto_T14`: temperature 1 or 4 by "
        "held-out log-loss; `kind_A_B`: A for vote teachers (random forest, RF+ET+HGB soft "
        "vote), B for boosting teachers; `safe_*`: distilled or hard-label student, "
        "whichever is better on the held-out rows; their fit times add up).",
        "",
    ]
    for task in ("classification", "regression"):
        stats = table_stats(by_key, task)
        if not stats:
            continue
        summary = summarise(stats, task)
        report[task] = dict(
            summary=summary,
            tables={f"{t} ({k})": v for (t, k), v in stats.items()},
        )
        ranked = sorted(summary, key=lambda r: (not summary[r]["passes"], -summary[r]["mean_gain"]))
        picked = ["teacher", "hard", *RECOMMENDED[task]]
        shown = picked + [r for r in ranked if r not in picked][:4]
        shown = [r for r in shown if any(r in c["rows"] for c in stats.values())]
        md += [
            f"## {task.capitalize()}: per-candidate summary against the bar",
            "",
            render_summary(summary, task),
            "",
            f"## {task.capitalize()}: per table",
            "",
            render_tables(stats, task, shown),
            "",
        ]
    out_md.write_text("\n".join(md) + "\n")
    out_json.write_text(json.dumps(report, indent=1, default=str) + "\n")
    return report


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------


def _skdistill_version():
    import skdistill

    return f"{skdistill.__version__} from {Path(skdistill.__file__).parent}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="4 classification + 2 regression tables, 1 seed, <= 2000 training rows",
    )
    parser.add_argument("--tables", help="comma-separated table names (default: all)")
    parser.add_argument(
        "--rows", help="comma-separated rows/candidates, or 'all' (default: DEFAULT_ROWS)"
    )
    parser.add_argument("--seeds", help="comma-separated seeds (default: 0,1,2)")
    parser.add_argument(
        "--teachers",
        default="rotate",
        help="'rotate' (each table's own), 'pair' (also the other kind), "
        "or a comma-separated list of kinds (rf,hgb,lgbm,vote)",
    )
    parser.add_argument("--max-rows", type=int, default=None, help="cap on training rows")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--task", choices=("classification", "regression", "both"), default="both")
    parser.add_argument(
        "--out", default=None, help="result prefix (default defaults_panel[_quick])"
    )
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--note", default=None, help="a line for the report's header")
    args = parser.parse_args(argv)

    prefix = args.out or ("defaults_panel_quick" if args.quick else "defaults_panel")
    RESULTS.mkdir(parents=True, exist_ok=True)
    jsonl = RESULTS / f"{prefix}.jsonl"
    seeds = (
        [int(s) for s in args.seeds.split(",")]
        if args.seeds
        else ([0] if args.quick else list(SEEDS))
    )
    max_rows = args.max_rows or (QUICK_MAX_ROWS if args.quick else None)
    tables_cls = list(QUICK_CLASSIFICATION if args.quick else CLASSIFICATION_TEACHERS)
    tables_reg = list(QUICK_REGRESSION if args.quick else REGRESSION_TEACHERS)
    if args.tables:
        wanted = args.tables.split(",")
        unknown = set(wanted) - set(CLASSIFICATION_TEACHERS) - set(REGRESSION_TEACHERS)
        if unknown:
            parser.error(f"unknown tables {sorted(unknown)}")
        tables_cls = [t for t in CLASSIFICATION_TEACHERS if t in wanted]
        tables_reg = [t for t in REGRESSION_TEACHERS if t in wanted]
    if args.task == "classification":
        tables_reg = []
    elif args.task == "regression":
        tables_cls = []
    rows_cls = ["teacher", *CLASSIFICATION_ROWS]
    rows_reg = ["teacher", *REGRESSION_ROWS]
    if args.rows != "all":
        wanted = args.rows.split(",") if args.rows else DEFAULT_ROWS
        rows_cls = ["teacher"] + [r for r in CLASSIFICATION_ROWS if r in wanted]
        rows_reg = ["teacher"] + [r for r in REGRESSION_ROWS if r in wanted]

    def teachers_for(table, own):
        if args.teachers == "rotate":
            return [own]
        if args.teachers == "pair":
            return [own, PARTNER[own]]
        return args.teachers.split(",")

    tasks = []
    for seed in seeds:
        for task, tables, owners, rows in (
            ("classification", tables_cls, CLASSIFICATION_TEACHERS, rows_cls),
            ("regression", tables_reg, REGRESSION_TEACHERS, rows_reg),
        ):
            for table in tables:
                for kind in teachers_for(table, owners[table]):
                    tasks.append((task, table, seed, kind, rows))

    load_start = os.getloadavg()
    meta = dict(
        machine=describe_machine(),
        command=COMMAND + " " + " ".join(_without_note(argv if argv is not None else sys.argv[1:])),
        skdistill=_skdistill_version(),
        python=platform.python_version(),
        seeds=seeds,
        max_rows=max_rows,
        load_at_start=[round(x, 2) for x in load_start],
        note=args.note,
    )
    started = time.time()
    if not args.report_only:
        done = {
            (r["table"], r["seed"], r["teacher"], r["row"])
            for r in read_jsonl(jsonl)
            if r.get("max_rows") == max_rows
        }
        todo = []
        for task, table, seed, kind, rows in tasks:
            specs = CLASSIFICATION_ROWS if task == "classification" else REGRESSION_ROWS
            missing = [
                r
                for r in rows
                if (table, seed, kind, r) not in done
                and kind in specs.get(r, {}).get("only", (kind,))
            ]
            if missing:
                todo.append((task, table, seed, kind, missing))

        def cost(item):
            task, table, seed, kind, rows = item
            X, _, _ = _load(task, table)
            n = min(len(X) * (1 - TEST_SIZE), max_rows or np.inf)
            return (seed, -n * (1 + X.shape[1] / 100))

        todo.sort(key=cost)
        print(
            f"{len(todo)} of {len(tasks)} (table, seed, teacher) tasks to run; "
            f"results appended to {jsonl}",
            flush=True,
        )
        loads = []
        with ProcessPoolExecutor(max_workers=args.workers) as pool:
            futures = {
                pool.submit(run_task, task, table, seed, kind, rows, max_rows, jsonl): (
                    table,
                    seed,
                    kind,
                )
                for task, table, seed, kind, rows in todo
            }
            for future in as_completed(futures):
                table, seed, kind = futures[future]
                try:
                    recs = future.result()
                except Exception as error:  # report and go on
                    print(f"FAILED {table} seed {seed} {kind}: {error!r}", flush=True)
                    continue
                loads.append(os.getloadavg()[0])
                line = ", ".join(f"{r['row']} {r['score']:.4f}" for r in recs)
                elapsed = time.time() - started
                print(f"[{elapsed:6.0f}s] {table} seed {seed} {kind}: {line}", flush=True)
        meta["load_during"] = (
            f"mean {np.mean(loads):.2f}, max {np.max(loads):.2f}" if loads else "n/a"
        )
        meta["run_s"] = round(time.time() - started, 1)
    records = [
        r
        for r in read_jsonl(jsonl)
        if r.get("max_rows") == max_rows
        and r["seed"] in seeds
        and r["table"] in set(tables_cls) | set(tables_reg)
    ]
    meta["load"] = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    out_md, out_json = RESULTS / f"{prefix}.md", RESULTS / f"{prefix}.json"
    build_report(
        records,
        meta,
        out_md,
        out_json,
        rows_cls + _derived_names("classification"),
        rows_reg + _derived_names("regression"),
    )
    print(f"wrote {out_md} and {out_json}", flush=True)


def _without_note(argv):
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--note":
            skip = True
        elif not arg.startswith("--note="):
            out.append(arg)
    return out


def _derived_names(task):
    if task == "classification":
        return [
            "auto_T14",
            "auto_T124",
            "auto_T14_acc",
            "kind_T1_T4",
            "kind_T1_T2",
            "kind_T2_T4",
            "kind_fT2_def",
            "kind_oofT1_T4",
            "kind_oofT1_T1",
            "rfoof_T1",
            "safe_T1",
            "safe_T14",
        ]
    return ["kind_oof_a05", "safe_a05", "auto_a"]


if __name__ == "__main__":
    main()
