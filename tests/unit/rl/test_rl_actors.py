"""MetamonMaskedActor / MetamonMaskedResidualActor: strict masking vs the reference's clipped leak."""

import math

import gin
import pytest
import torch

from metamon.rl import MetamonRLError
from metamon.rl.actors import MetamonMaskedActor, MetamonMaskedResidualActor

A, D = 4, 8
GAMMAS = torch.tensor([0.9, 0.999])  # G = 2



def actor(cls=MetamonMaskedActor, logits=(0.0, 0.0, 0.0, 0.0), **kwargs):
    """An actor whose logits are ``logits`` for every state and gamma (zeroed last layer)."""
    torch.manual_seed(0)
    if cls is MetamonMaskedActor:
        kwargs.setdefault("d_hidden", 16)
    head = cls(state_dim=D, action_dim=A, discrete=True, gammas=GAMMAS, **kwargs)
    last = head.base.out_layer if cls is MetamonMaskedActor else head.out_layer
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
    assert head.inp.out_features == 12 and len(head.blocks) == 1 and head.strict_mask is False
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
