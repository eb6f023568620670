"""Damping functions: masked KL / entropy (exact values, gradients), schedules, the adaptive
controller (on a real optimizer), reference refresh and EMA."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from metamon.amago.damping import (
    AdaptiveKLController,
    PowerLawSchedule,
    RefreshSchedule,
    controlled_lr_lambda,
    damping_penalty,
    ema_update,
    ema_update_,
    entropy_coef_schedule,
    frozen_copy,
    kl_coef_schedule,
    linear_warmup,
    masked_entropy,
    masked_log_softmax,
    masked_reverse_kl,
    refresh_reference_,
)
from metamon.amago.utils import AmagoError

LEGAL_2_OF_3 = torch.tensor([True, True, False])


# ------------------------------------------------------------------ KL and entropy values


def test_kl_of_hand_computed_masked_distributions():
    # π = (1/2, 1/2, ·), the illegal third logit is large and must be ignored;
    # ref logits are log(0.2, 0.6, 0.2): renormalised over the legal set -> (1/4, 3/4)
    logits = torch.tensor([0.0, 0.0, 7.0])
    ref = torch.log(torch.tensor([0.2, 0.6, 0.2]))
    kl = masked_reverse_kl(logits, ref, LEGAL_2_OF_3)
    # KL = 1/2 ln((1/2)/(1/4)) + 1/2 ln((1/2)/(3/4)) = 1/2 ln(4/3)
    expected = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    assert expected == pytest.approx(0.5 * math.log(4 / 3))
    assert kl.shape == ()
    assert kl.item() == pytest.approx(expected, abs=1e-7)
    # the reverse direction is a different number: 1/4 ln(1/2) + 3/4 ln(3/2)
    back = masked_reverse_kl(ref, logits, LEGAL_2_OF_3)
    assert back.item() == pytest.approx(0.25 * math.log(0.5) + 0.75 * math.log(1.5), abs=1e-7)


def test_entropy_of_hand_computed_masked_distributions():
    assert masked_entropy(torch.tensor([0.0, 0.0, 7.0]), LEGAL_2_OF_3).item() == pytest.approx(math.log(2))
    p = torch.tensor([0.7, 0.2, 0.1])
    h = masked_entropy(torch.log(p), torch.ones(3, dtype=torch.bool))
    expected = -(0.7 * math.log(0.7) + 0.2 * math.log(0.2) + 0.1 * math.log(0.1))
    assert h.item() == pytest.approx(expected, abs=1e-6)  # 0.801819


def test_masked_log_softmax_is_zero_on_illegal_entries_and_normalised_on_legal_ones():
    logp = masked_log_softmax(torch.tensor([1.0, 2.0, 50.0]), LEGAL_2_OF_3)
    assert logp[2].item() == 0.0
    assert logp[:2].exp().sum().item() == pytest.approx(1.0)
    assert (logp[1] - logp[0]).item() == pytest.approx(1.0)


def test_kl_zero_against_itself_and_penalty_composition():
    logits = torch.tensor([[0.3, -1.0, 2.0, 0.5]])
    mask = torch.tensor([[True, True, False, True]])
    assert masked_reverse_kl(logits, logits + 3.0, mask).item() == pytest.approx(0.0, abs=1e-6)
    ref = torch.tensor([[1.0, 0.0, 0.0, -1.0]])
    penalty, kl, entropy = damping_penalty(logits, ref, mask, kl_coef=0.3, entropy_coef=0.02)
    assert torch.allclose(penalty, 0.3 * kl - 0.02 * entropy)
    assert torch.allclose(kl, masked_reverse_kl(logits, ref, mask))
    assert torch.allclose(entropy, masked_entropy(logits, mask))


def test_shapes_broadcast_mask_and_no_legal_action_rows():
    logits = torch.randn(2, 5, 4)
    ref = torch.randn(2, 5, 4)
    mask = torch.tensor([True, False, True, True])  # broadcast over (B, L)
    assert masked_reverse_kl(logits, ref, mask).shape == (2, 5)
    assert masked_entropy(logits, mask).shape == (2, 5)
    none_legal = torch.zeros(2, 5, 4, dtype=torch.bool)
    assert torch.equal(masked_reverse_kl(logits, ref, none_legal), torch.zeros(2, 5))
    assert torch.equal(masked_entropy(logits, none_legal), torch.zeros(2, 5))


def test_bad_masks_and_shapes_are_typed_errors():
    logits = torch.zeros(2, 3)
    with pytest.raises(AmagoError, match="bool"):
        masked_entropy(logits, torch.ones(2, 3))
    with pytest.raises(AmagoError, match="broadcast"):
        masked_entropy(logits, torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(AmagoError, match="broadcast"):
        masked_entropy(logits, torch.ones(5, 2, 3, dtype=torch.bool))
    with pytest.raises(AmagoError, match="same shape"):
        masked_reverse_kl(logits, torch.zeros(2, 4), torch.ones(3, dtype=torch.bool))


# ------------------------------------------------------------------------------ gradients


def test_kl_gradient_matches_the_formula_and_is_zero_on_illegal_actions():
    logits = torch.tensor([0.0, 0.0, 7.0], requires_grad=True)
    ref = torch.log(torch.tensor([0.2, 0.6, 0.2]))
    masked_reverse_kl(logits, ref, LEGAL_2_OF_3).backward()
    # dKL/dz_a = π_a (d_a − Σ_b π_b d_b), d = log π − log π_ref = (ln 2, ln 2/3)
    d = [math.log(2.0), math.log(2.0 / 3.0)]
    mean_d = 0.5 * d[0] + 0.5 * d[1]
    expected = torch.tensor([0.5 * (d[0] - mean_d), 0.5 * (d[1] - mean_d), 0.0])
    torch.testing.assert_close(logits.grad, expected, atol=1e-6, rtol=0)
    assert logits.grad[2].item() == 0.0


def test_minus_inf_logits_give_finite_values_and_gradients():
    logits = torch.tensor([[0.5, -math.inf, 1.0], [-math.inf, -math.inf, -math.inf]], requires_grad=True)
    ref = torch.tensor([[0.0, -math.inf, 0.0], [-math.inf, -math.inf, -math.inf]])
    mask = torch.tensor([[True, False, True], [False, False, False]])
    penalty, kl, entropy = damping_penalty(logits, ref, mask, kl_coef=1.0, entropy_coef=0.5)
    assert torch.isfinite(penalty).all() and torch.isfinite(kl).all() and torch.isfinite(entropy).all()
    assert kl[1].item() == 0.0 and entropy[1].item() == 0.0
    penalty.sum().backward()
    assert torch.isfinite(logits.grad).all()
    assert logits.grad[0, 1].item() == 0.0
    assert torch.equal(logits.grad[1], torch.zeros(3))


def test_no_gradient_reaches_the_reference_tensor():
    logits = torch.randn(3, 4, requires_grad=True)
    ref = torch.randn(3, 4, requires_grad=True)
    masked_reverse_kl(logits, ref, torch.ones(4, dtype=torch.bool)).sum().backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0
    assert ref.grad is None


def test_no_gradient_reaches_the_reference_network_and_it_is_outside_the_optimizer():
    torch.manual_seed(0)
    policy = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))
    reference = frozen_copy(policy)
    optimizer = torch.optim.SGD(policy.parameters(), lr=0.5)
    x = torch.randn(16, 4)
    mask = torch.tensor([True, True, False])
    # at π_θ = π_ref the KL and its gradient vanish
    masked_reverse_kl(policy(x), reference(x), mask).mean().backward()
    assert all(p.grad.abs().max() < 1e-6 for p in policy.parameters())
    optimizer.zero_grad()
    (-policy(x)[:, 0].mean()).backward()  # move the policy away from the reference
    optimizer.step()
    optimizer.zero_grad()
    kl = masked_reverse_kl(policy(x), reference(x), mask).mean()
    assert kl.item() > 1e-4
    kl.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in policy.parameters())
    assert all(p.grad is None and not p.requires_grad for p in reference.parameters())
    trained = {id(p) for group in optimizer.param_groups for p in group["params"]}
    assert not trained & {id(p) for p in reference.parameters()}
    assert not reference.training


# ------------------------------------------------------------------------------ schedules


def test_kl_coef_schedule_values():
    beta = kl_coef_schedule(beta0=0.05, steps=1e6, alpha=0.5, beta_max=0.5)  # the seeds' _damped
    assert beta(0) == pytest.approx(0.05)
    assert beta(3e6) == pytest.approx(0.05 * 4 ** -0.5)  # 0.025
    assert beta(1e4) == pytest.approx(0.05 * 1.01 ** -0.5)
    capped = kl_coef_schedule(beta0=1.0, steps=100, alpha=0.5, beta_max=0.5)
    assert capped(0) == 0.5 and capped(300) == pytest.approx(0.5) and capped(800) == pytest.approx(1 / 3)
    constant = kl_coef_schedule(beta0=0.1, steps=1e6, alpha=0.0, beta_max=0.2)  # the seeds' _v1
    assert constant(0) == constant(1e9) == pytest.approx(0.1)
    # a controller's β becomes the base: same decay shape, different level
    assert beta(3e6, init=0.2) == pytest.approx(0.1)


def test_entropy_coef_schedule_values():
    eta = entropy_coef_schedule(eta0=0.01, steps=1e6, alpha=0.7, eta_min=0.001)
    assert eta(0) == pytest.approx(0.01)
    assert eta(1e6) == pytest.approx(0.01 * 2 ** -0.7)  # 0.0061557
    assert eta(1e12) == pytest.approx(0.001)  # the floor


def test_schedule_rejects_bad_parameters():
    with pytest.raises(AmagoError):
        PowerLawSchedule(init=0.1, steps=0, alpha=0.5)
    with pytest.raises(AmagoError):
        PowerLawSchedule(init=0.1, steps=10, alpha=-1)


def test_linear_warmup_matches_the_experiment():
    assert [linear_warmup(s, 4) for s in range(6)] == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    assert linear_warmup(0, 0) == 1.0


# ------------------------------------------------------------------------------ controller


def _controller(**kw) -> AdaptiveKLController:
    args = dict(target_kl=0.01, beta=0.1, tolerance=1.5, beta_up=2.0, beta_down=0.5, beta_max=0.4,
                lr_down=0.5, lr_up=1.25, lr_min=0.25, lr_max=2.0)
    args.update(kw)
    return AdaptiveKLController(**args)


def test_controller_moves_beta_and_multiplier_out_of_band_and_holds_inside():
    c = _controller()
    assert c.update(0.012) == "hold"  # inside [0.01/1.5, 0.015]
    assert (c.beta, c.lr_multiplier) == (0.1, 1.0)
    assert c.update(0.02) == "tighten"
    assert c.beta == pytest.approx(0.2) and c.lr_multiplier == pytest.approx(0.5)
    assert c.update(0.05) == "tighten"
    assert c.beta == pytest.approx(0.4) and c.lr_multiplier == pytest.approx(0.25)
    assert c.update(0.05) == "tighten"  # clipped at beta_max and lr_min
    assert c.beta == pytest.approx(0.4) and c.lr_multiplier == pytest.approx(0.25)
    assert c.update(0.001) == "loosen"
    assert c.beta == pytest.approx(0.2) and c.lr_multiplier == pytest.approx(0.3125)
    assert c.num_adjustments == 4


def test_controller_interval_averages_a_window():
    c = _controller(interval=3)
    assert [c.update(k) for k in (0.03, 0.0, 0.0)] == ["wait", "wait", "hold"]  # mean 0.01
    assert [c.update(k) for k in (0.06, 0.0, 0.0)] == ["wait", "wait", "tighten"]  # mean 0.02
    assert c.beta == pytest.approx(0.2)


def test_controller_switches_and_coupling():
    c = _controller(adapt_lr=False)
    c.update(1.0)
    assert c.beta == pytest.approx(0.2) and c.lr_multiplier == 1.0
    c = _controller(adapt_beta=False)
    c.update(1.0)
    assert c.beta == 0.1 and c.lr_multiplier == pytest.approx(0.5)
    c = _controller(couple_lr_to_beta=True)
    c.update(1.0)  # β 0.1 -> 0.2: m = β_init / β = 0.5
    assert c.beta == pytest.approx(0.2) and c.lr_multiplier == pytest.approx(0.5)
    c.update(0.0)  # β 0.2 -> 0.1: m back to 1
    c.update(0.0)  # β 0.1 -> 0.05: m = 2 (= lr_max)
    assert c.beta == pytest.approx(0.05) and c.lr_multiplier == pytest.approx(2.0)


def test_controller_state_roundtrip_and_validation():
    c = _controller(interval=2)
    c.update(1.0)
    c.update(1.0)
    c.update(0.3)
    restored = _controller(interval=2)
    restored.load_state_dict(c.state_dict())
    assert restored.state_dict() == c.state_dict()
    assert restored.update(0.3) == c.update(0.3) == "tighten"
    for bad in (dict(target_kl=0.0), dict(tolerance=1.0), dict(beta=1.0), dict(lr_up=0.9), dict(interval=0)):
        with pytest.raises(AmagoError):
            _controller(**bad)
    with pytest.raises(AmagoError):
        _controller().update(float("nan"))
    assert _controller().update(-1e-7) == "loosen"  # rounding noise around 0 is a KL of 0


def test_controller_lr_reaches_the_optimizer_composed_with_warmup():
    """The LR the optimizer applies is base · warm-up · multiplier: measured from the parameter step."""
    p = nn.Parameter(torch.zeros(()))
    optimizer = torch.optim.SGD([p], lr=0.1)
    controller = _controller()
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, controlled_lr_lambda(4, controller))
    observed_kl = {2: 0.05, 5: 0.05, 6: 0.0}  # tighten after update 2 and 5, loosen after 6
    applied, expected = [], []
    multiplier = 1.0
    for update in range(9):
        expected.append(0.1 * linear_warmup(update, 4) * multiplier)
        before = p.item()
        optimizer.zero_grad()
        p.backward(torch.tensor(1.0))  # d(p)/dp = 1: SGD moves p by exactly −lr
        optimizer.step()
        applied.append(before - p.item())
        assert optimizer.param_groups[0]["lr"] == pytest.approx(expected[-1])
        if update in observed_kl:
            controller.update(observed_kl[update])
            multiplier = controller.lr_multiplier
        scheduler.step()
    assert applied == pytest.approx(expected, abs=1e-7)
    # warm-up 0, .025, .05, then ×0.5 from update 3, full warm-up at 4, ×0.25 from 6, ×0.3125 from 7
    assert expected == pytest.approx([0.0, 0.025, 0.05, 0.0375, 0.05, 0.05, 0.025, 0.03125, 0.03125])
    # the scheduler's state does not capture the controller; the controller saves itself
    assert scheduler.state_dict()["lr_lambdas"] == [None]
    assert controller.state_dict()["lr_multiplier"] == pytest.approx(0.3125)


def test_lr_lambda_without_controller_is_the_plain_warmup():
    factor = controlled_lr_lambda(2)
    assert [factor(s) for s in range(4)] == [0.0, 0.5, 1.0, 1.0]


# ------------------------------------------------------------------------- reference refresh


def test_refresh_schedule_says_when():
    every3 = RefreshSchedule(every_k_updates=3)
    assert [u for u in range(10) if every3.due(u)] == [3, 6, 9]
    assert not any(RefreshSchedule(every_k_updates=None).due(u) for u in range(100))
    with pytest.raises(AmagoError):
        RefreshSchedule(every_k_updates=0)
    with pytest.raises(AmagoError):
        RefreshSchedule(every_k_updates=5, mode="target")
    with pytest.raises(AmagoError):
        RefreshSchedule(every_k_updates=5, mode="ema", ema_decay=1.0)


def test_ema_update_values():
    out = ema_update(torch.tensor([1.0, 2.0]), torch.tensor([3.0, 2.0]), 0.9)
    torch.testing.assert_close(out, torch.tensor([1.2, 2.0]))
    net = nn.BatchNorm1d(2)
    ema_net = frozen_copy(net)
    with torch.no_grad():
        net.weight.fill_(3.0)
        net.running_mean.fill_(1.0)
    net.num_batches_tracked += 7
    ema_update_(ema_net, net, decay=0.75)
    torch.testing.assert_close(ema_net.weight, torch.full((2,), 1.5))  # 0.75·1 + 0.25·3
    torch.testing.assert_close(ema_net.running_mean, torch.full((2,), 0.25))
    assert ema_net.num_batches_tracked.item() == 7  # integer buffers are copied


def test_refresh_replaces_the_reference_without_sharing_storage():
    torch.manual_seed(0)
    policy = nn.Linear(3, 2)
    reference = frozen_copy(policy)
    optimizer = torch.optim.SGD(policy.parameters(), lr=1.0)
    x = torch.randn(5, 3)

    def train_step():
        optimizer.zero_grad()
        policy(x).pow(2).sum().backward()
        optimizer.step()

    train_step()
    assert not torch.equal(policy.weight, reference.weight)
    refresh_reference_(reference, policy)
    assert torch.equal(policy.weight, reference.weight) and torch.equal(policy.bias, reference.bias)
    assert not reference.weight.requires_grad
    snapshot = reference.weight.clone()
    train_step()  # training goes on; the refreshed reference stays where it was
    assert torch.equal(reference.weight, snapshot)
    assert not torch.equal(policy.weight, reference.weight)
    with pytest.raises(AmagoError):
        refresh_reference_(reference, nn.Linear(3, 4))
