"""
==============================================================
Train the student on several GPUs with Hugging Face accelerate
==============================================================

skdistill trains its student with skorch, and skorch brings multi-GPU,
multi-node and mixed-precision training through
:class:`skorch.hf.AccelerateMixin` and Hugging Face ``accelerate``. Nothing in
skdistill is specific to it: a net class made of ``AccelerateMixin`` and
:class:`~skdistill.student.StudentNet`, holding an ``accelerate.Accelerator``,
is passed as the ``student`` of a :class:`~skdistill.DistilledClassifier`.
Its settings (optimizer, learning rate, epochs, batch size, accelerator) are
kept; skdistill puts its input standardisation in front of the module and its
distillation loss in place of the criterion.

Run it on every GPU of the machine (one process per GPU, data-parallel;
``accelerate config`` sets the defaults once)::

    pip install -e ".[accelerate]"
    accelerate launch --multi_gpu --num_processes 2 examples/accelerate_student.py
    accelerate launch --mixed_precision bf16 examples/accelerate_student.py

As a plain script it runs in one process, on one GPU or on the CPU::

    python examples/accelerate_student.py           # --quick: a few seconds on a CPU

What to know:

* Every process runs the whole script: it fits the same forest
  (``random_state`` fixed) and labels the rows with it; only the student's
  training is shared out. With a big teacher, fit it once, save it with
  ``joblib.dump`` and load it in the script instead.
* Each process takes ``batch_size`` rows per step, so a step sees
  ``batch_size * num_processes`` rows.
* The accelerator places the module; the net's ``device`` stays ``None``.
* Training here runs a fixed number of epochs, without a validation split:
  an early-stopping rule judged on each process's own validation rows could
  stop one process and not another.
* The log is printed by the main process only (``accelerator.print``); it
  prints even with ``verbose=0``, which is skorch's behaviour with this mixin.
* After training the module is unwrapped (``unwrap_after_train=True``) and
  stays on the device the accelerator chose; the fitted estimator predicts
  and pickles like any other.
* accelerate's multi-CPU mode (several processes without GPUs) wraps skorch's
  parameter-free loss in ``DistributedDataParallel``, which refuses it; its
  multi-GPU mode leaves such modules alone. ``tests/test_accelerate.py`` shows
  a two-process CPU run with a small ``Accelerator`` subclass that does the same.

This script is shown, not run, by the documentation build.
"""

import argparse

import torch
from accelerate import Accelerator
from sklearn.datasets import load_digits
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split
from skorch.hf import AccelerateMixin

from skdistill import DistilledClassifier
from skdistill.losses import DistillationLoss
from skdistill.metrics import teacher_agreement
from skdistill.student import MLP, StudentNet


class AcceleratedStudentNet(AccelerateMixin, StudentNet):
    """skdistill's student net, trained through an ``accelerate.Accelerator``."""


def make_student(accelerator, quick=False):
    """An unfitted accelerated student net, for ``DistilledClassifier(student=...)``.

    Parameters
    ----------
    accelerator : accelerate.Accelerator
        Decides the devices, the processes and the precision.
    quick : bool, default=False
        A smaller network and fewer epochs.

    Returns
    -------
    net : AcceleratedStudentNet
    """
    return AcceleratedStudentNet(
        MLP,  # called with n_features and n_classes, and the module__ settings
        module__hidden_layer_sizes=(64,) if quick else (256, 256),
        criterion=DistillationLoss,  # replaced by DistilledClassifier's own
        optimizer=torch.optim.Adam,
        lr=3e-3 if quick else 1e-3,
        max_epochs=15 if quick else 60,
        batch_size=128,
        train_split=None,
        accelerator=accelerator,
    )


def main(argv=None):
    """Distil a random forest into an accelerated student and compare them.

    Parameters
    ----------
    argv : list of str, default=None
        Command-line arguments; ``sys.argv[1:]`` when None.

    Returns
    -------
    student : DistilledClassifier
        The fitted estimator.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip("\n="))
    parser.add_argument("--quick", action="store_true", help="a small run, seconds on a CPU")
    parser.add_argument(
        "--cpu", action="store_true", help="train on the CPU even where a GPU is present"
    )
    args = parser.parse_args(argv)

    # Mixed precision and the number of processes come from `accelerate
    # launch` (or `accelerate config`); Accelerator() reads them.
    accelerator = Accelerator(cpu=args.cpu)

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.3, stratify=y, random_state=0
    )
    forest = RandomForestClassifier(n_estimators=50 if args.quick else 300, random_state=0)
    forest.fit(X_train, y_train)

    student = DistilledClassifier(
        forest,
        student=make_student(accelerator, quick=args.quick),
        temperature=4.0,
        alpha=0.9,
        random_state=0,
    ).fit(X_train, y_train)

    accelerator.print(
        f"{accelerator.num_processes} process(es) on {accelerator.device}, "
        f"mixed precision: {accelerator.mixed_precision}"
    )
    accelerator.print(f"teacher test accuracy:  {forest.score(X_test, y_test):.3f}")
    accelerator.print(f"student test accuracy:  {student.score(X_test, y_test):.3f}")
    agreement = teacher_agreement(forest.predict(X_test), student.predict(X_test))
    accelerator.print(f"agreement with teacher: {agreement:.3f}")
    return student


if __name__ == "__main__":
    main()
