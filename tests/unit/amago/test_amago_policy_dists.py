"""Discrete / DiscreteLikeContinuous: clipping, strict masking, sample and log-prob layouts."""

import math

import gin
import pytest
import torch

from metamon.amago.nets.policy_dists import Discrete, DiscreteActionDist, DiscreteLikeContinuous
from metamon.amago.utils import AmagoError


def _logits_for(probs):
    return torch.log(torch.tensor(probs, dtype=torch.float32))


def test_clipping_clamps_high_and_low_then_renormalises():
    # p = [0.995, 0.0045, 0.0005] -> p~ = [0.99, 0.0045, 0.001], sum 0.9955
    dist = Discrete(d_action=3)(_logits_for([0.995, 0.0045, 0.0005]))
    assert isinstance(dist, DiscreteActionDist)
    expected = torch.tensor([0.99 / 0.9955, 0.0045 / 0.9955, 0.001 / 0.9955])
    torch.testing.assert_close(dist.probs, expected, atol=1e-6, rtol=0)
    assert dist.probs.sum().item() == pytest.approx(1.0, abs=1e-6)


def test_log_prob_gradient_is_zero_above_the_high_clip():
    logits = _logits_for([0.995, 0.0045, 0.0005]).requires_grad_(True)
    Discrete(d_action=3)(logits).log_prob(torch.tensor(0)).backward()
    assert torch.equal(logits.grad, torch.zeros(3))  # clamp slope 0, normaliser detached

    logits = _logits_for([0.995, 0.0045, 0.0005]).requires_grad_(True)
    Discrete(d_action=3)(logits).log_prob(torch.tensor(1)).backward()
    # d log p~_1 / d logits = e_1 - p  restricted to p_1's own softmax path
    expected = torch.tensor([-0.995, 1 - 0.0045, -0.0005])
    torch.testing.assert_close(logits.grad, expected, atol=1e-5, rtol=0)


def test_unmasked_minus_inf_logits_leak_clip_prob_low():
    # 9 of 13 actions "illegal" through -inf logits (the reference masking): each keeps 0.001 / Z
    logits = torch.zeros(13)
    logits[4:] = -math.inf
    probs = Discrete(d_action=13)(logits).probs
    z = 4 * 0.25 + 9 * 0.001
    torch.testing.assert_close(probs[4:], torch.full((9,), 0.001 / z), atol=1e-7, rtol=0)
    assert probs[4:].sum().item() == pytest.approx(0.0089197, abs=1e-6)
    assert probs[:4].sum().item() == pytest.approx(1.0 / z, abs=1e-6)


def test_strict_legal_mask_zeroes_illegal_actions_and_skips_all_illegal_rows():
    logits = torch.zeros(2, 4)
    logits[0, 1] = 5.0  # a favoured but illegal action
    legal = torch.tensor([[True, False, True, False], [False, False, False, False]])
    dist = Discrete(d_action=4)(logits, legal_mask=legal)
    p_row0 = torch.softmax(logits[0], -1).clamp(0.001, 0.99)[[0, 2]]
    assert dist.probs[0, 1].item() == 0.0 and dist.probs[0, 3].item() == 0.0
    torch.testing.assert_close(dist.probs[0, [0, 2]], p_row0 / p_row0.sum())
    torch.testing.assert_close(dist.probs[1], torch.full((4,), 0.25))  # unmasked
    assert not torch.isnan(dist.probs).any()
    lp = dist.log_prob(torch.tensor([1, 1]))
    assert torch.isfinite(lp).all()
    assert lp[1].item() == pytest.approx(math.log(0.25), abs=1e-6)
    assert lp[0].item() < -15.0  # log of the eps floor, not -inf
    assert (dist.sample((50,))[..., 0, 0] % 2 == 0).all()  # never samples 1 or 3


def test_legal_mask_errors_name_the_input():
    with pytest.raises(AmagoError, match="bool"):
        Discrete(d_action=4)(torch.zeros(2, 4), legal_mask=torch.ones(2, 4))
    with pytest.raises(AmagoError, match="legal_mask of shape"):
        Discrete(d_action=4)(torch.zeros(2, 4), legal_mask=torch.ones(3, 4, dtype=torch.bool))
    with pytest.raises(AmagoError, match="d_action=4"):
        Discrete(d_action=4)(torch.zeros(2, 5))
    with pytest.raises(AmagoError, match="clip_prob_low"):
        Discrete(d_action=4, clip_prob_low=0.5, clip_prob_high=0.4)
    with pytest.raises(AmagoError, match="d_action"):
        Discrete(d_action=0)


def test_sample_mode_and_log_prob_layouts():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 5, 4)  # (B, L, G, A)
    dist = Discrete(d_action=4)(logits)
    assert dist.batch_shape == (2, 3, 5)
    sample = dist.sample()
    assert sample.shape == (2, 3, 5, 1) and sample.dtype == torch.long
    assert dist.sample((7,)).shape == (7, 2, 3, 5, 1)
    assert dist.mode.shape == (2, 3, 5, 1)
    assert torch.equal(dist.mode[..., 0], dist.probs.argmax(-1))
    lp_trailing = dist.log_prob(sample)
    lp_plain = dist.log_prob(sample[..., 0])
    assert lp_trailing.shape == (2, 3, 5, 1) and lp_plain.shape == (2, 3, 5)
    expected = dist.probs.gather(-1, sample).log()
    torch.testing.assert_close(lp_trailing, expected)
    torch.testing.assert_close(lp_plain, expected[..., 0])
    # G = 1: an index tensor shaped like the batch shape is read as plain indices
    dist1 = Discrete(d_action=4)(logits[:, :, :1])
    idx = torch.tensor([[[0], [1], [2]], [[3], [0], [1]]])
    torch.testing.assert_close(dist1.log_prob(idx), dist1.probs.gather(-1, idx[..., None])[..., 0].log())


def test_gin_binding_and_activation_log():
    gin.parse_config("policy_dists.Discrete.clip_prob_low = 0.1")
    dist = Discrete(d_action=2)(torch.tensor([10.0, -10.0]))
    torch.testing.assert_close(dist.probs, torch.tensor([0.99 / 1.09, 0.1 / 1.09]))
    log = {}
    Discrete(d_action=2)(torch.tensor([0.0, 0.0]), log_dict=log)
    assert set(log) == {f"activation-Discrete-probs-{s}" for s in ("max", "min", "std", "mean")}
    assert log["activation-Discrete-probs-mean"].item() == pytest.approx(0.5)


def _wrapped(probs_list):
    return DiscreteLikeContinuous(Discrete(d_action=len(probs_list[0]))(_logits_for(probs_list)))


def test_discrete_like_continuous_log_prob_and_padding():
    dist = _wrapped([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    assert dist.batch_shape == (2,) and dist.event_shape == (3,)
    one_hot = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    torch.testing.assert_close(dist.log_prob(one_hot), torch.log(torch.tensor([0.2, 0.8])))
    padded = torch.ones(2, 3)  # clamp(PAD, 0, 1): no valid one-hot, must not raise
    torch.testing.assert_close(dist.log_prob(padded), torch.log(torch.tensor([0.7, 0.1])))
    # extra leading sample dim broadcasts
    assert dist.log_prob(one_hot.expand(4, 2, 3)).shape == (4, 2)
    entropy = -(dist.probs * dist.probs.log()).sum(-1)
    torch.testing.assert_close(dist.entropy(), entropy)
    assert torch.equal(dist.mode, torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]))


def test_discrete_like_continuous_samples_follow_probs():
    torch.manual_seed(0)
    dist = _wrapped([[0.6, 0.3, 0.1]])
    hard = dist.sample((4000,))
    assert hard.shape == (4000, 1, 3) and not hard.requires_grad
    assert torch.equal(hard.sum(-1), torch.ones(4000, 1))
    torch.testing.assert_close(hard.mean(0)[0], torch.tensor([0.6, 0.3, 0.1]), atol=0.03, rtol=0)
    soft = dist.rsample((4000,))
    assert torch.equal(soft.detach().sum(-1), torch.ones(4000, 1))
    assert set(soft.detach().unique().tolist()) == {0.0, 1.0}
    torch.testing.assert_close(soft.detach().mean(0)[0], torch.tensor([0.6, 0.3, 0.1]), atol=0.03, rtol=0)


def test_discrete_like_continuous_rsample_is_straight_through():
    logits = torch.tensor([0.5, 0.0, -0.5], requires_grad=True)
    dist = DiscreteLikeContinuous(Discrete(d_action=3)(logits))
    (dist.rsample() * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0


def test_discrete_like_continuous_gin_and_errors():
    gin.parse_config("DiscreteLikeContinuous.gumbel_softmax_temperature = 2.0")
    assert _wrapped([[0.5, 0.5]]).gumbel_softmax_temperature == 2.0
    with pytest.raises(AmagoError, match="Categorical"):
        DiscreteLikeContinuous(torch.zeros(3))
