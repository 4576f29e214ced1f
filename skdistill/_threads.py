"""Torch's CPU threads while a student trains: a size rule and a measured choice.

Torch's intra-op threads are OpenMP threads that spin while they wait for
each other. A training step of a small network is a few hundred small
operations, each a barrier: when other processes hold the CPUs, a thread
waits, spinning, for a teammate that is not scheduled. Measured on a
2-CPU machine shared with other work (``docs/benchmarks.md``, "CPU threads"):
a step of the default student at batch 256 took 5 ms on one thread and
150-970 ms on two; a default fit (20k rows, 5 epochs) took 3 s on one
thread and over 30 s on two.

- :func:`training_threads`: one thread for a fit whose step is small
  (``batch_size`` x the module's multiply-adds per row below
  ``ONE_THREAD_BELOW_MACS``: the default student up to a batch of about
  850), where a second thread gains little even on a quiet machine. The
  calling thread's count is restored when the fit ends, raised or not.
- :class:`AdaptiveThreads`: for larger steps, where more threads pay on a
  quiet machine and cost up to 40x on a busy one, a skorch callback that
  times training steps on one thread and on the caller's count, keeps the
  faster, and checks again after a number of steps that doubles while the
  choice stands.

Neither ever raises the thread count above the caller's, and neither
changes anything once the fit has returned.
"""

# Authors: The skdistill developers
# SPDX-License-Identifier: BSD-3-Clause

import time
from contextlib import contextmanager

import numpy as np
import torch
from skorch.callbacks import Callback
from torch import nn

__all__ = ["ONE_THREAD_BELOW_MACS", "AdaptiveThreads", "linear_macs", "training_threads"]

#: Multiply-adds per training step (forward, batch x per-row) below which a
#: CPU fit runs on one thread: 256 rows x the default student's 75,776
#: weights is 19.4M; the 784-800-800-10 student at batch 256 is 326M.
ONE_THREAD_BELOW_MACS = 64_000_000

#: Layers with parameters whose cost the rule may neglect next to the
#: Linear layers'.
_CHEAP_LAYERS = (nn.LayerNorm, nn.BatchNorm1d)


def linear_macs(module):
    """Multiply-adds per row of a module's Linear layers; None if other layers hold weights.

    A module with weights elsewhere (a convolution, a recurrent layer, a
    custom parameter) has a cost this count cannot tell: None.

    Parameters
    ----------
    module : nn.Module

    Returns
    -------
    macs : int or None
    """
    macs = 0
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            macs += layer.in_features * layer.out_features
        elif (
            not isinstance(layer, _CHEAP_LAYERS) and next(layer.parameters(False), None) is not None
        ):
            return None
    return macs


def _step_threads(net, n_rows, caller_threads):
    """The thread count the size rule gives a net's CPU fit on ``n_rows`` rows."""
    if net.device is None or torch.device(net.device).type != "cpu":
        return caller_threads
    module = net.module if isinstance(net.module, nn.Module) else getattr(net, "module_", None)
    macs = None if module is None else linear_macs(module)
    if macs is None:
        return caller_threads
    batch = net.batch_size if net.batch_size > 0 else n_rows
    return 1 if min(batch, n_rows) * macs < ONE_THREAD_BELOW_MACS else caller_threads


@contextmanager
def training_threads(net, n_rows):
    """Torch's threads for the fit of ``net`` on ``n_rows`` rows; the caller's restored after.

    One thread when the net trains on the CPU and its steps are small (see
    the module's description); the caller's count otherwise, which
    :class:`AdaptiveThreads` may lower during the fit. The calling thread's
    count is restored on exit, whether the fit raised or not (skorch does
    not call ``on_train_end`` when it raises).

    Parameters
    ----------
    net : skorch.NeuralNet
        The net about to be fitted: its ``device``, ``batch_size`` and
        ``module`` (an instance, or the initialized ``module_``).
    n_rows : int
        Training rows (the batch when ``batch_size`` is -1 or larger).
    """
    before = torch.get_num_threads()
    try:
        wanted = _step_threads(net, n_rows, before)
        if wanted < before:
            torch.set_num_threads(wanted)
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


class AdaptiveThreads(Callback):
    """Choose between one thread and the caller's count by timing training steps.

    Active on the CPU when the fit starts with more than one thread. After
    one warm-up step, up to ``probe_steps`` steps on each alternate (one
    thread first); a step on several threads slower than twice the
    one-thread median ends the probe at once (on a busy machine such steps
    cost 5-40x, and more would waste time); the faster median wins. The
    probe runs again after ``first_interval`` steps, an interval that
    doubles, up to ``max_interval``, while the choice stands and starts
    over when it changes. The caller's count is restored at the end of
    training.

    Parameters
    ----------
    probe_steps : int, default=3
        Timed steps per thread count in a probe.
    first_interval : int, default=64
        Steps between the first probe and the second.
    max_interval : int, default=4096
        Most steps between two probes.

    Attributes
    ----------
    threads_ : int
        The thread count chosen last.
    probes_ : list of dict
        Per probe, the median step seconds of each count tried.
    """

    def __init__(self, probe_steps=3, first_interval=64, max_interval=4096):
        self.probe_steps = probe_steps
        self.first_interval = first_interval
        self.max_interval = max_interval

    def on_train_begin(self, net, **kwargs):
        self.caller_threads_ = torch.get_num_threads()
        on_cpu = net.device is not None and torch.device(net.device).type == "cpu"
        self.active_ = on_cpu and self.caller_threads_ > 1
        self.threads_ = self.caller_threads_
        self.interval_ = self.first_interval
        self.countdown_ = 1  # the first step warms up
        self.plan_, self.times_, self.probes_ = [], {}, []

    def on_batch_begin(self, net, batch=None, training=False, **kwargs):
        if not (training and self.active_):
            return
        if self.countdown_ == 0 and not self.plan_:
            self.plan_ = [1, self.caller_threads_] * self.probe_steps
            self.times_ = {1: [], self.caller_threads_: []}
        threads = self.plan_[0] if self.plan_ else self.threads_
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        self.started_ = time.perf_counter()

    def on_batch_end(self, net, batch=None, training=False, **kwargs):
        if not (training and self.active_):
            return
        seconds = time.perf_counter() - self.started_
        if not self.plan_:
            self.countdown_ -= 1
            return
        threads = self.plan_.pop(0)
        self.times_[threads].append(seconds)
        if threads != 1 and seconds > 2 * np.median(self.times_[1]):
            self.plan_ = []  # clearly slower: a busy machine
        if not self.plan_:
            self._choose()

    def _choose(self):
        medians = {threads: float(np.median(times)) for threads, times in self.times_.items()}
        choice = min(medians, key=medians.get)
        if choice == self.threads_:
            self.interval_ = min(self.max_interval, 2 * self.interval_)
        else:
            self.interval_ = self.first_interval
        self.threads_, self.countdown_ = choice, self.interval_
        self.probes_.append(medians)

    def on_train_end(self, net, **kwargs):
        if self.active_ and torch.get_num_threads() != self.caller_threads_:
            torch.set_num_threads(self.caller_threads_)
