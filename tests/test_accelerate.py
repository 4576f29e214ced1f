"""A student trained through skorch's AccelerateMixin (Hugging Face accelerate).

Multi-GPU training needs several GPUs; what runs here is the same pattern on
the CPU: in one process, where the accelerator prepares the module, optimizer
and data loader and the distilled estimator behaves as with a plain student;
and in two processes (data-parallel, as on two GPUs, with torch's gloo
backend). ``examples/accelerate_student.py`` is run as a script too.
"""

import os
import pickle
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV

from skdistill import DistilledClassifier
from skdistill.losses import DistillationLoss
from skdistill.student import MLP, StudentNet

accelerate = pytest.importorskip("accelerate")
from skorch.hf import AccelerateMixin  # noqa: E402  (after the skip guard)

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "accelerate_student.py"

#: The student's own settings, shared by the accelerated and the plain net.
NET_SETTINGS = dict(
    module=MLP,
    module__hidden_layer_sizes=(16,),
    criterion=DistillationLoss,
    optimizer=torch.optim.Adam,
    lr=1e-2,
    max_epochs=15,
    batch_size=16,
    train_split=None,
    verbose=0,
)


class AcceleratedStudentNet(AccelerateMixin, StudentNet):
    """The pattern of the example: skdistill's net with skorch's mixin."""


class RecordingAccelerator(accelerate.Accelerator):
    """An Accelerator that remembers what it was asked to prepare."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.prepared = []

    def prepare(self, *args, **kwargs):
        self.prepared.extend(args)
        return super().prepare(*args, **kwargs)


@pytest.fixture(scope="module")
def accelerator():
    # accelerate keeps one process-wide state: one CPU accelerator for the module.
    return RecordingAccelerator(cpu=True)


def _accelerated_net(accelerator):
    # skorch prints the epoch log through accelerator.print whatever `verbose`
    # says; Python's print honours verbose=0.
    return AcceleratedStudentNet(
        **NET_SETTINGS, accelerator=accelerator, callbacks__print_log__sink=print
    )


def test_accelerated_student_trains_and_predicts(iris, iris_forest, accelerator):
    X, y = iris
    net = _accelerated_net(accelerator)
    accelerator.prepared.clear()
    student = DistilledClassifier(iris_forest, student=net, random_state=0).fit(X, y)

    fitted = student.student_
    assert isinstance(fitted, AcceleratedStudentNet)
    assert fitted.accelerator is accelerator
    assert not getattr(net, "initialized_", False)  # the user's net stays unfitted
    # The accelerator prepared the fitted module, its optimizer, the
    # distillation loss and the training batches...
    assert any(obj is fitted.module_ for obj in accelerator.prepared)
    assert isinstance(fitted.optimizer_, accelerate.optimizer.AcceleratedOptimizer)
    assert any(obj is fitted.optimizer_.optimizer for obj in accelerator.prepared)
    assert any(isinstance(obj, DistillationLoss) for obj in accelerator.prepared)
    loaders = [obj for obj in accelerator.prepared if isinstance(obj, torch.utils.data.DataLoader)]
    assert len(loaders) == 1  # skorch makes the training loader once per fit
    assert len(loaders[0].dataset) == len(X)
    # ...and gave the module back unwrapped after training.
    assert not fitted._wrapped_with_accelerator
    assert student.n_iter_ == NET_SETTINGS["max_epochs"]
    losses = fitted.history[:, "train_loss"]
    assert losses[-1] < 0.5 * losses[0]

    assert (student.predict(X) == iris_forest.predict(X)).mean() > 0.9
    # On one CPU process accelerate changes nothing numerically: the plain
    # net with the same settings and seed gives the same model.
    plain = DistilledClassifier(iris_forest, student=StudentNet(**NET_SETTINGS), random_state=0)
    np.testing.assert_array_equal(student.predict_proba(X), plain.fit(X, y).predict_proba(X))


# skorch warns that an unpickled net with device=None is put on the CPU.
@pytest.mark.filterwarnings("ignore:Setting self.device = cpu")
def test_accelerated_student_clones_pickles_and_searches(iris, iris_forest, accelerator):
    X, y = iris
    estimator = DistilledClassifier(
        iris_forest, student=_accelerated_net(accelerator), random_state=0
    )
    # accelerate's Accelerator deep-copies to itself: clones share it.
    assert clone(estimator).student.accelerator is accelerator

    search = GridSearchCV(estimator, {"temperature": [1.0, 4.0]}, cv=2).fit(X, y)
    best = search.best_estimator_
    assert isinstance(best.student_, AcceleratedStudentNet)
    assert best.teacher_ is iris_forest
    assert search.best_score_ > 0.85

    restored = pickle.loads(pickle.dumps(best))
    np.testing.assert_array_equal(restored.predict_proba(X), best.predict_proba(X))


def test_accelerated_generalist_trains_specialists(accelerator):
    from sklearn.datasets import load_digits
    from sklearn.ensemble import RandomForestClassifier

    from skdistill import SpecialistEnsemble

    X, y = load_digits(return_X_y=True)
    X, y = X[:300], y[:300]
    forest = RandomForestClassifier(n_estimators=20, random_state=0).fit(X, y)
    generalist = DistilledClassifier(forest, student=_accelerated_net(accelerator))
    ensemble = SpecialistEnsemble(forest, n_specialists=2, generalist=generalist, random_state=0)
    ensemble.fit(X, y)
    assert all(isinstance(net, AcceleratedStudentNet) for net in ensemble.specialists_)
    assert (ensemble.predict(X) == forest.predict(X)).mean() > 0.8


@pytest.mark.parametrize(
    "device",
    [
        "cpu",
        pytest.param(
            "cuda",
            marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
        ),
    ],
)
def test_example_script_runs(device):
    command = [sys.executable, str(EXAMPLE), "--quick"] + (["--cpu"] if device == "cpu" else [])
    # One torch thread: the script's network is tiny, and spare threads only
    # spin against the other processes of a busy machine.
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"1 process(es) on {device}" in result.stdout
    scores = dict(re.findall(r"^(.+?):\s+([0-9.]+)$", result.stdout, flags=re.MULTILINE))
    assert float(scores["student test accuracy"]) > 0.85
    assert float(scores["agreement with teacher"]) > 0.85


#: Run by each of two processes: the same distillation, data-parallel.
DATA_PARALLEL_SCRIPT = textwrap.dedent(
    """
    import numpy as np
    import torch
    import torch.distributed as dist
    from accelerate import Accelerator
    from sklearn.datasets import load_iris
    from sklearn.ensemble import RandomForestClassifier
    from skorch.hf import AccelerateMixin

    from skdistill import DistilledClassifier
    from skdistill.losses import DistillationLoss
    from skdistill.student import MLP, StudentNet


    class CPUAccelerator(Accelerator):
        # accelerate's multi-CPU mode wraps every prepared module in
        # DistributedDataParallel, which refuses one without parameters such
        # as skorch's criterion; its multi-GPU mode leaves those alone. Do the
        # same here.
        def prepare_model(self, model, *args, **kwargs):
            if not any(p.requires_grad for p in model.parameters()):
                return model.to(self.device)
            return super().prepare_model(model, *args, **kwargs)


    class AcceleratedStudentNet(AccelerateMixin, StudentNet):
        pass


    accelerator = CPUAccelerator(cpu=True)
    X, y = load_iris(return_X_y=True)
    forest = RandomForestClassifier(n_estimators=20, random_state=0).fit(X, y)
    net = AcceleratedStudentNet(
        MLP, module__hidden_layer_sizes=(16,), criterion=DistillationLoss,
        optimizer=torch.optim.Adam, lr=1e-2, max_epochs=30, batch_size=16,
        train_split=None, verbose=0, callbacks__print_log__sink=print,
        accelerator=accelerator,
    )
    student = DistilledClassifier(forest, student=net, random_state=0).fit(X, y)
    weights = student.student_.module_.body.layers[0].weight.detach().numpy()
    everyone = [None] * accelerator.num_processes
    dist.all_gather_object(everyone, weights)
    same = all(np.array_equal(everyone[0], other) for other in everyone)
    agreement = (student.predict(X) == forest.predict(X)).mean()
    print(
        f"rank={accelerator.process_index} processes={accelerator.num_processes} "
        f"same_weights={same} batches={len(student.student_.history[-1, 'batches'])} "
        f"agreement={agreement:.3f}"
    )
    # Tear the process group down before exit: gloo's threads, left running,
    # can abort the interpreter ("terminate called without an active exception").
    accelerator.wait_for_everyone()
    dist.destroy_process_group()
    """
)


def test_data_parallel_training_on_two_cpu_processes(tmp_path):
    script = tmp_path / "data_parallel.py"
    script.write_text(DATA_PARALLEL_SCRIPT)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc_per_node", "2", str(script)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]

    pattern = r"rank=(\d) processes=(\d) same_weights=(\w+) batches=(\d+) agreement=([0-9.]+)"
    reports = re.findall(pattern, result.stdout)
    assert sorted(rank for rank, *_ in reports) == ["0", "1"]
    for _, processes, same_weights, batches, agreement in reports:
        assert processes == "2"
        # Gradients are averaged across the processes: one model, not two.
        assert same_weights == "True"
        # Each process trains on its half of the rows: 75 rows in batches of 16.
        assert int(batches) == 5
        assert float(agreement) > 0.9
