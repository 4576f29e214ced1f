import numpy as np
import pytest
import torch
import torch.nn.functional as F

from skdistill.losses import NO_LABEL, DistillationLoss, logit_mse, pack_targets, soft_target_kl


def _random_logits(n_rows=8, n_classes=5, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n_rows, n_classes, generator=generator) * 3


@pytest.mark.parametrize("temperature", [1.0, 4.0, 20.0])
def test_soft_term_is_t_squared_batchmean_kl(temperature):
    student, teacher = _random_logits(seed=0), _random_logits(seed=1)
    expected = temperature**2 * F.kl_div(
        F.log_softmax(student / temperature, dim=1),
        F.log_softmax(teacher / temperature, dim=1),
        reduction="batchmean",
        log_target=True,
    )
    got = soft_target_kl(student, teacher, temperature).mean()
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("temperature", [1.0, 5.0])
def test_soft_term_gradient_is_t_times_q_minus_p(temperature):
    # d(T^2 KL)/dz = T (q_T - p_T); averaged over rows gives a 1/N factor.
    student = _random_logits(seed=2).double().requires_grad_()
    teacher = _random_logits(seed=3).double()
    soft_target_kl(student, teacher, temperature).mean().backward()
    q = torch.softmax(student.detach() / temperature, dim=1)
    p = torch.softmax(teacher / temperature, dim=1)
    expected = temperature * (q - p) / len(student)
    torch.testing.assert_close(student.grad, expected)


def test_high_temperature_limit_is_logit_matching():
    # Hinton 2015: for zero-mean logits and large T, T^2 KL -> sum (z - v)^2 / (2 C).
    student, teacher = _random_logits(seed=4), _random_logits(seed=5)
    student = student - student.mean(dim=1, keepdim=True)
    teacher = teacher - teacher.mean(dim=1, keepdim=True)
    n_classes = student.shape[1]
    kl = soft_target_kl(student, teacher, temperature=1e4)
    torch.testing.assert_close(kl, logit_mse(student, teacher) / n_classes, rtol=1e-3, atol=1e-5)


def test_extreme_temperatures_stay_finite():
    student, teacher = _random_logits(seed=6) * 100, _random_logits(seed=7) * 100
    for temperature in [1e-3, 1e6]:
        assert torch.isfinite(soft_target_kl(student, teacher, temperature)).all()


def test_logit_mse_ignores_per_row_constants():
    student, teacher = _random_logits(seed=8), _random_logits(seed=9)
    shifted = teacher + torch.arange(len(teacher)).unsqueeze(1)
    torch.testing.assert_close(logit_mse(student, teacher), logit_mse(student, shifted))


def test_pack_targets_layout():
    targets = pack_targets(np.ones((3, 2)), np.array([1, NO_LABEL, 0]), np.array([1.0, 2.0, 0.5]))
    assert targets.dtype == np.float32
    np.testing.assert_array_equal(targets[:, -2], [1, -1, 0])
    np.testing.assert_array_equal(targets[:, -1], [1.0, 2.0, 0.5])


def test_objective_mixes_soft_and_hard_terms_with_alpha():
    student, teacher = _random_logits(seed=10), _random_logits(seed=11)
    labels = torch.arange(len(student)) % student.shape[1]
    targets = torch.from_numpy(pack_targets(teacher.numpy(), labels.numpy()))
    soft = soft_target_kl(student, teacher, 3.0).mean()
    hard = F.cross_entropy(student, labels)
    got = DistillationLoss(temperature=3.0, alpha=0.25)(student, targets)
    torch.testing.assert_close(got, 0.25 * soft + 0.75 * hard)


def test_rows_without_label_only_get_the_soft_term():
    student, teacher = _random_logits(seed=12), _random_logits(seed=13)
    labels = np.full(len(student), NO_LABEL)
    targets = torch.from_numpy(pack_targets(teacher.numpy(), labels))
    got = DistillationLoss(temperature=2.0, alpha=0.5)(student, targets)
    torch.testing.assert_close(got, 0.5 * soft_target_kl(student, teacher, 2.0).mean())


def test_sample_weights_weigh_rows():
    student, teacher = _random_logits(seed=14), _random_logits(seed=15)
    weights = np.zeros(len(student))
    weights[0] = len(student)  # all the weight on the first row
    targets = torch.from_numpy(pack_targets(teacher.numpy(), None, weights))
    got = DistillationLoss(temperature=2.0, alpha=1.0)(student, targets)
    torch.testing.assert_close(got, soft_target_kl(student[:1], teacher[:1], 2.0)[0])


def test_logit_mse_objective():
    student, teacher = _random_logits(seed=16), _random_logits(seed=17)
    targets = torch.from_numpy(pack_targets(teacher.numpy()))
    got = DistillationLoss(alpha=1.0, loss="logit_mse")(student, targets)
    torch.testing.assert_close(got, logit_mse(student, teacher).mean())
