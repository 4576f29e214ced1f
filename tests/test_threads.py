"""Torch's CPU threads during a student's fit: the size rule and the measured choice."""

from types import SimpleNamespace

import pytest
import torch

from skdistill import _threads
from skdistill._threads import (
    ONE_THREAD_BELOW_MACS,
    AdaptiveThreads,
    linear_macs,
    training_threads,
)
from skdistill.student import MLP


def _net(module, batch_size, device="cpu"):
    return SimpleNamespace(module=module, batch_size=batch_size, device=device)


def test_linear_macs_counts_linear_layers_and_gives_up_on_others():
    assert linear_macs(MLP(32, 8, (256, 256))) == 32 * 256 + 256 * 256 + 256 * 8
    norm = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.LayerNorm(3))
    assert linear_macs(norm) == 12
    assert linear_macs(torch.nn.Sequential(torch.nn.Conv1d(1, 4, 3), torch.nn.Linear(4, 2))) is None


def test_small_steps_get_one_thread_large_ones_the_callers(two_threads):
    module = MLP(32, 8, (256, 256))  # 75,776 multiply-adds per row
    small_batch = ONE_THREAD_BELOW_MACS // linear_macs(module) - 1
    with training_threads(_net(module, small_batch), n_rows=100_000):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2
    with training_threads(_net(module, 4096), n_rows=100_000):
        assert torch.get_num_threads() == 2
    # Fewer rows than a batch make a small step; batch_size=-1 is all the rows.
    with training_threads(_net(module, 4096), n_rows=100):
        assert torch.get_num_threads() == 1
    with training_threads(_net(module, -1), n_rows=100_000):
        assert torch.get_num_threads() == 2
    # Other devices, and modules whose cost is unknown, keep the caller's count.
    for net in [_net(module, 16, device="cuda"), _net(torch.nn.Conv1d(1, 1, 1), 16)]:
        with training_threads(net, n_rows=100):
            assert torch.get_num_threads() == 2


def test_the_callers_count_is_restored_when_the_fit_raises(two_threads):
    with pytest.raises(RuntimeError, match="boom"):
        with training_threads(_net(MLP(4, 2, (8,)), 16), n_rows=100):
            torch.set_num_threads(1)  # as AdaptiveThreads may have
            raise RuntimeError("boom")
    assert torch.get_num_threads() == 2


class _Clock:
    """A fake perf_counter: each step costs what the current thread count costs."""

    def __init__(self, seconds_per_step):
        self.now, self.seconds_per_step = 0.0, seconds_per_step

    def perf_counter(self):
        return self.now

    def step(self, callback, net):
        """The step's thread count, and whether it was a probe's."""
        callback.on_batch_begin(net, training=True)
        seen, probing = torch.get_num_threads(), bool(callback.plan_)
        self.now += self.seconds_per_step[seen]
        callback.on_batch_end(net, training=True)
        return seen, probing


def _run(monkeypatch, seconds_per_step, n_steps):
    clock = _Clock(seconds_per_step)
    monkeypatch.setattr(_threads, "time", clock)
    net = SimpleNamespace(device="cpu")
    callback = AdaptiveThreads(probe_steps=3, first_interval=4, max_interval=16)
    callback.on_train_begin(net)
    seen, probing = zip(*[clock.step(callback, net) for _ in range(n_steps)], strict=True)
    callback.on_train_end(net)
    return callback, list(seen), list(probing)


def test_adaptive_threads_leave_a_busy_machines_threads_at_once(monkeypatch, two_threads):
    callback, seen, _ = _run(monkeypatch, {1: 0.01, 2: 0.5}, n_steps=30)
    # warm-up on 2, then 1 and a single slow step on 2 end the probe
    assert seen[:4] == [2, 1, 2, 1]
    assert callback.probes_[0] == pytest.approx({1: 0.01, 2: 0.5})
    assert max(seen) <= 2 and seen.count(2) <= 1 + len(callback.probes_)
    assert callback.threads_ == 1
    assert torch.get_num_threads() == 2  # the caller's, at the end


def test_adaptive_threads_keep_the_callers_count_when_it_is_faster(monkeypatch, two_threads):
    callback, seen, probing = _run(monkeypatch, {1: 0.02, 2: 0.01}, n_steps=60)
    assert callback.threads_ == 2 and seen[7:15] == [2] * 8
    assert seen[1:7] == [1, 2, 1, 2, 1, 2]  # a full probe: 3 steps each
    # The choice stood: the steps between probes doubled, up to max_interval
    # (8, 16, 16), each probe taking 6 steps.
    probe_starts = [i for i in range(1, len(seen)) if probing[i] and not probing[i - 1]]
    assert probe_starts == [1, 1 + 6 + 8, 15 + 6 + 16, 37 + 6 + 16]


def test_adaptive_threads_do_nothing_on_one_thread(monkeypatch):
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        callback, seen, _ = _run(monkeypatch, {1: 0.01}, n_steps=10)
    finally:
        torch.set_num_threads(before)
    assert set(seen) == {1} and callback.probes_ == []
