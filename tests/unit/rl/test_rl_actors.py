"""MetamonMaskedActor / MetamonMaskedResidualActor: strict masking vs the reference's clipped leak,
metamon's key layout, and their policy output MetamonDiscrete (temperature)."""

import math

import gin
import pytest
import torch

from metamon.amago.nets.policy_dists import Discrete
from metamon.rl import MetamonRLError
from metamon.rl.actors import MetamonMaskedActor, MetamonMaskedResidualActor
from metamon.rl.policy_dists import MetamonDiscrete

A, D = 4, 8
GAMMAS = torch.tensor([0.9, 0.999])  # G = 2



def actor(cls=MetamonMaskedActor, logits=(0.0, 0.0, 0.0, 0.0), **kwargs):
    """An actor whose logits are ``logits`` for every state and gamma (zeroed last layer)."""
    torch.manual_seed(0)
    if cls is MetamonMaskedActor:
        kwargs.setdefault("d_hidden", 16)
    head = cls(state_dim=D, action_dim=A, discrete=True, gammas=GAMMAS, **kwargs)
    last = head.base.out_layer if cls is MetamonMaskedActor else head.out
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(torch.tensor(logits).repeat(len(GAMMAS)))
    return head


# rows: (b=0, l=0) two illegal actions; (0, 1) everything legal; (0, 2) everything illegal
ILLEGAL = torch.tensor([[[False, True, False, True], [False] * 4, [True] * 4]])
STATE = torch.randn(1, 3, D)


def probs(head, illegal=ILLEGAL):
    return head(STATE, straight_from_obs={"illegal_actions": illegal}).probs  # (B, L, G, A)


def test_strict_mask_gives_exact_zeros():
    p = probs(actor())
    assert p.shape == (1, 3, 2, A)
    for g in range(2):
        assert p[0, 0, g].tolist() == [0.5, 0.0, 0.5, 0.0]
        assert p[0, 1, g].tolist() == [0.25] * 4
        assert p[0, 2, g].tolist() == [0.25] * 4  # all illegal -> left unmasked


def test_leaky_mask_matches_the_reference_clip():
    p = probs(actor(strict_mask=False))
    # softmax(-inf) = 0, clamped up to 0.001, renormalised by 1.002
    expected = [0.5 / 1.002, 0.001 / 1.002, 0.5 / 1.002, 0.001 / 1.002]
    torch.testing.assert_close(p[0, 0, 1], torch.tensor(expected), rtol=1e-6, atol=0)
    assert p[0, 2, 0].tolist() == [0.25] * 4
    # log-prob of an illegal expert action stays finite, about log(0.000998) = -6.91
    dist = actor(strict_mask=False)(STATE, straight_from_obs={"illegal_actions": ILLEGAL})
    lp = dist.log_prob(torch.ones(1, 3, 2, 1, dtype=torch.long))
    assert lp[0, 0, 0, 0].item() == pytest.approx(math.log(0.001 / 1.002), abs=1e-5)


def test_masking_uses_the_logits_not_only_uniform_rows():
    head = actor(logits=(2.0, 5.0, 0.0, -1.0))
    p = probs(head)[0, 0, 0]
    # legal {0, 2}: softmax over (2, 0) -> (0.8808, 0.1192); illegal 1 would have had 0.94
    torch.testing.assert_close(p, torch.tensor([0.880797, 0.0, 0.119203, 0.0]), atol=1e-5, rtol=0)
    samples = head(STATE, straight_from_obs={"illegal_actions": ILLEGAL}).sample((500,))
    assert samples.shape == (500, 1, 3, 2, 1)
    assert set(samples[:, 0, 0].unique().tolist()) <= {0, 2}


def test_masking_off_and_gradients():
    p = probs(actor(mask_illegal_actions=False))
    assert p[0, 0, 0].tolist() == [0.25] * 4
    head = actor(logits=(1.0, 0.0, 0.5, 0.0))
    head.zero_grad()
    dist = head(STATE, straight_from_obs={"illegal_actions": ILLEGAL})
    loss = -dist.log_prob(torch.zeros(1, 3, 2, 1, dtype=torch.long)).sum()
    loss.backward()
    grad = head.base.out_layer.bias.grad
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_residual_actor_and_gin_bindings():
    gin.parse_config([
        "MetamonMaskedResidualActor.feature_dim = 12",
        "MetamonMaskedResidualActor.residual_blocks = 1",
        "MetamonMaskedResidualActor.strict_mask = False",
    ])
    head = actor(MetamonMaskedResidualActor)
    assert head.inp.out_layer.out_features == 12 and len(head.residual_blocks) == 1 and head.strict_mask is False
    assert probs(head)[0, 0, 0, 1].item() == pytest.approx(0.001 / 1.002, rel=1e-6)
    gin.clear_config()
    gin.parse_config(["MetamonMaskedActor.n_layers = 3", "MetamonMaskedActor.d_hidden = 10"])
    head = MetamonMaskedActor(state_dim=D, action_dim=A, discrete=True, gammas=GAMMAS)
    assert head.base.in_layer.out_features == 10 and head.mask_illegal_actions and head.strict_mask
    assert probs(head).shape == (1, 3, 2, A)


def test_clear_errors():
    head = actor()
    with pytest.raises(MetamonRLError, match=r'pass_obs_keys_to_actor = \["illegal_actions"\]'):
        head(STATE, straight_from_obs=None)
    with pytest.raises(MetamonRLError, match=r'pass_obs_keys_to_actor = \["illegal_actions"\]'):
        head(STATE, straight_from_obs={"numbers": STATE})
    with pytest.raises(MetamonRLError, match=r"must have shape \(B, L, A\) = \(1, 3, 4\)"):
        head(STATE, straight_from_obs={"illegal_actions": ILLEGAL[..., :3]})
    # without masking the key is not needed
    assert actor(mask_illegal_actions=False)(STATE).probs.shape == (1, 3, 2, A)


# ------------------------------------------------------------------ metamon's key layout


def test_masked_actors_have_metamons_keys():
    """metamon_models.md §4: actor.base.* for the MLP head, actor.inp/residual_blocks/out for the
    residual head (G = 2 gammas, A = 4 actions here)."""
    mlp = MetamonMaskedActor(state_dim=D, action_dim=A, discrete=True, gammas=GAMMAS, n_layers=2, d_hidden=16)
    assert {k: tuple(v.shape) for k, v in mlp.state_dict().items()} == {
        "base.in_layer.weight": (16, D), "base.in_layer.bias": (16,),
        "base.layers.0.weight": (16, 16), "base.layers.0.bias": (16,),
        "base.out_layer.weight": (2 * A, 16), "base.out_layer.bias": (2 * A,),
    }
    res = MetamonMaskedResidualActor(state_dim=D, action_dim=A, discrete=True, gammas=GAMMAS, feature_dim=6,
                                     residual_ff_dim=10, residual_blocks=3)
    shapes = {k: tuple(v.shape) for k, v in res.state_dict().items()}
    assert shapes["inp.in_layer.weight"] == (6, D) and shapes["inp.out_layer.weight"] == (6, 6)
    assert shapes["residual_blocks.2.0.weight"] == (10, 6) and shapes["residual_blocks.2.1.norm.weight"] == (10,)
    assert shapes["residual_blocks.2.3.weight"] == (6, 10) and shapes["residual_blocks.2.4.norm.bias"] == (6,)
    assert shapes["out.weight"] == (2 * A, 6) and len(shapes) == 4 + 8 * 3 + 2


# -------------------------------------------------------------------------- MetamonDiscrete


def test_metamon_discrete_by_hand():
    dist = MetamonDiscrete(d_action=3, temperature=0.5)
    logits = torch.tensor([1.0, 0.0, -1.0])
    e = [math.exp(2.0), 1.0, math.exp(-2.0)]  # softmax(logits / 0.5)
    p = [x / sum(e) for x in e]  # 0.8668, 0.1173, 0.0159: inside the clip, nothing changes
    torch.testing.assert_close(dist(logits).probs, torch.tensor(p), atol=1e-6, rtol=0)
    # T = 0.1 pushes action 0 past 0.99 and action 2 below 0.001: clamp, then renormalise
    sharp = MetamonDiscrete(d_action=3, temperature=0.1)(logits).probs
    e = [1.0, math.exp(-10.0), math.exp(-20.0)]
    clamped = [min(max(x / sum(e), 0.001), 0.99) for x in e]  # 0.99, 4.54e-5 -> 0.001, 0.001
    torch.testing.assert_close(sharp, torch.tensor([c / sum(clamped) for c in clamped]), atol=1e-7, rtol=0)
    # T = 2 flattens
    flat = MetamonDiscrete(d_action=3, temperature=2.0)(logits).probs
    e = [math.exp(0.5), 1.0, math.exp(-0.5)]
    torch.testing.assert_close(flat, torch.tensor([x / sum(e) for x in e]), atol=1e-6, rtol=0)


def test_metamon_discrete_equals_discrete_at_temperature_one():
    logits = torch.randn(2, 5, 3, 7) * 4
    logits[0, 0, :, 2] = float("-inf")
    legal = torch.rand(2, 5, 1, 7) > 0.3
    for mask in (None, legal):
        a = MetamonDiscrete(d_action=7)(logits, legal_mask=mask)
        b = Discrete(d_action=7)(logits, legal_mask=mask)
        assert torch.equal(a.probs, b.probs)


def test_metamon_discrete_gradient_stops_at_the_sum():
    logits = torch.tensor([0.3, -0.2, 0.1], requires_grad=True)
    probs = MetamonDiscrete(d_action=3, temperature=0.5)(logits).probs
    probs[0].backward()
    # d p^_0 / dz = (d p_0 / dz) / S with S = 1 (nothing clipped): the softmax Jacobian row / T
    p = torch.softmax(logits.detach() / 0.5, 0)
    expected = p[0] * (torch.tensor([1.0, 0.0, 0.0]) - p) / 0.5
    torch.testing.assert_close(logits.grad, expected, atol=1e-6, rtol=0)


def test_masked_actors_use_metamon_discrete_and_its_gin_temperature():
    for cls in (MetamonMaskedActor, MetamonMaskedResidualActor):
        assert type(actor(cls).policy_dist) is MetamonDiscrete and actor(cls).policy_dist.temperature == 1.0
    gin.parse_config("MetamonDiscrete.temperature = 0.5")
    head = actor(logits=(1.0, 0.0, 0.0, -1.0), strict_mask=False)
    assert head.policy_dist.temperature == 0.5
    p = probs(head, illegal=torch.zeros(1, 3, A, dtype=torch.bool))[0, 0, 0]
    e = torch.exp(torch.tensor([2.0, 0.0, 0.0, -2.0]))
    torch.testing.assert_close(p, e / e.sum(), atol=1e-6, rtol=0)
    # masking still happens before the temperature: illegal actions keep exactly 0 (strict)
    assert probs(actor(logits=(1.0, 0.0, 0.0, -1.0)))[0, 0, 0, 1].item() == 0.0
    with pytest.raises(MetamonRLError, match="temperature must be a number > 0"):
        MetamonDiscrete(d_action=3, temperature=0)
