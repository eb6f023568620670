"""Actor heads, critic ensembles (NCritics, NCriticsTwoHot), EinMixEnsemble and PopArt."""

import copy
import math

import gin
import pytest
import torch
import torch.nn.functional as F

from metamon.amago.nets.actor_critic import (
    Actor,
    EinMixEnsemble,
    NCritics,
    NCriticsTwoHot,
    PopArtLayer,
    ResidualActor,
    gamma_features,
)
from metamon.amago.utils import AmagoError, AmagoWarning

GAMMAS = [0.1, 0.9, 0.95, 0.97, 0.99, 0.995, 0.999]
B, L, D, A, G, C, H = 2, 3, 16, 5, 7, 4, 24



def _shapes(module):
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def _twohot(**kw):
    kw = {"min_return": -1100.0, "max_return": 1100.0, "output_bins": 96, "use_symlog": False, **kw}
    return NCriticsTwoHot(D, A, True, GAMMAS, C, d_hidden=H, **kw)


# ------------------------------------------------------------------------------------- actors


def test_gamma_features_for_default_gammas():
    phi = gamma_features(torch.tensor(GAMMAS))
    expected = [0.7472, 2.3979, 3.0445, 3.5361, 4.6151, 5.3033, 6.9088]
    assert [round(v, 4) for v in phi.tolist()] == expected


def test_actor_state_dict_layout_and_gamma_major_output():
    actor = Actor(D, A, True, GAMMAS, d_hidden=H, n_layers=3)
    assert _shapes(actor) == {
        "base.in_layer.weight": (H, D), "base.in_layer.bias": (H,),
        "base.layers.0.weight": (H, H), "base.layers.0.bias": (H,),
        "base.layers.1.weight": (H, H), "base.layers.1.bias": (H,),
        "base.out_layer.weight": (G * A, H), "base.out_layer.bias": (G * A,),
    }
    with torch.no_grad():
        actor.base.out_layer.weight.zero_()
        actor.base.out_layer.bias.copy_(torch.arange(G * A, dtype=torch.float32))
    raw = actor.actor_network_forward(torch.randn(B, L, D))
    assert raw.shape == (B, L, G, A)
    for g, a in [(0, 0), (0, 4), (3, 2), (6, 4)]:
        assert raw[1, 2, g, a].item() == g * A + a
    dist = actor(torch.randn(B, L, D))
    assert dist.batch_shape == (B, L, G)
    assert dist.sample().shape == (B, L, G, 1)
    assert actor.actions_differentiable


def test_actor_validates_shapes_and_applies_legal_mask_hook():
    class MaskedActor(Actor):
        def legal_mask(self, straight_from_obs):
            return ~straight_from_obs["illegal"]

    actor = MaskedActor(D, A, True, GAMMAS, d_hidden=H)
    illegal = torch.zeros(B, L, A, dtype=torch.bool)
    illegal[..., 1] = True
    illegal[1, 2] = True  # every action illegal: left unmasked
    dist = actor(torch.randn(B, L, D), straight_from_obs={"illegal": illegal})
    assert (dist.probs[..., 1][~illegal[..., 1].all(-1, keepdim=True).expand(B, L)] == 0).all()
    assert (dist.probs[1, 2] > 0).all()
    with pytest.raises(AmagoError, match=r"legal_mask returned shape"):
        actor(torch.randn(B, L, D), straight_from_obs={"illegal": illegal[..., :3]})

    class BadActor(Actor):
        def actor_network_forward(self, state, log_dict=None, straight_from_obs=None):
            return torch.zeros(*state.shape[:2], A)

    with pytest.raises(AmagoError, match=r"expected \(B, L, G, P\)"):
        BadActor(D, A, True, GAMMAS)(torch.randn(B, L, D))
    with pytest.raises(AmagoError, match=r"\(B, L, D\)"):
        actor(torch.randn(B, D))
    with pytest.raises(AmagoError, match="discrete"):
        Actor(D, A, False, GAMMAS)


def test_residual_actor_keys_and_math():
    """AMAGO's key layout (inp MLP, residual_blocks Sequential with the activation at index 2,
    out) and its math, recomputed by hand."""
    f, r = 8, 12
    actor = ResidualActor(D, A, True, GAMMAS, feature_dim=f, residual_ff_dim=r, residual_blocks=2).eval()
    expected = {"inp.in_layer.weight": (f, D), "inp.in_layer.bias": (f,),
                "inp.out_layer.weight": (f, f), "inp.out_layer.bias": (f,),
                "out.weight": (G * A, f), "out.bias": (G * A,)}
    for b in range(2):
        p = f"residual_blocks.{b}."
        expected.update({p + "0.weight": (r, f), p + "0.bias": (r,), p + "1.norm.weight": (r,),
                         p + "1.norm.bias": (r,), p + "3.weight": (f, r), p + "3.bias": (f,),
                         p + "4.norm.weight": (f,), p + "4.norm.bias": (f,)})
    assert _shapes(actor) == expected
    with torch.no_grad():
        for param in actor.parameters():
            param.normal_()
    s = torch.randn(B, L, D)
    act = F.leaky_relu
    h = actor.inp.out_layer(act(actor.inp.in_layer(s)))  # no activation after the second linear
    for block in actor.residual_blocks:
        h = h + block[4](block[3](act(block[1](block[0](h)))))
    by_hand = actor.out(h).view(B, L, G, A)  # gamma-major
    torch.testing.assert_close(actor.actor_network_forward(s), by_hand)
    assert actor(s).batch_shape == (B, L, G)


def test_gin_suffix_bindings_reach_heads_and_deepcopy_works():
    gin.parse_config(
        """
        actor_critic.Actor.d_hidden = 8
        NCriticsTwoHot.output_bins = 6
        PopArtLayer.init_nu = 4.0
        """
    )
    actor = Actor(D, A, True, GAMMAS)
    assert _shapes(actor)["base.in_layer.weight"] == (8, D)
    assert len(_twohot(output_bins=6).bin_vals) == 6
    assert PopArtLayer(G).sigma[0, 0].item() == pytest.approx(2.0)
    twin = copy.deepcopy(actor)
    assert torch.equal(twin.base.out_layer.weight, actor.base.out_layer.weight)
    with pytest.raises(ValueError):
        gin.parse_config("PopArtLayer.enabled = False")


# ------------------------------------------------------------------------------------- EinMix


def test_einmix_shapes_init_and_member_independence():
    torch.manual_seed(0)
    net = EinMixEnsemble(C, 10, H, 3, n_layers=2)
    assert _shapes(net) == {
        "inp_layer.weight": (C, 10, H), "inp_layer.bias": (1, 1, C, H),
        "core_layers.0.weight": (C, H, H), "core_layers.0.bias": (1, 1, C, H),
        "output_layer.weight": (C, H, 3), "output_layer.bias": (1, 1, C, 3),
    }
    assert net.inp_layer.weight.abs().max() <= math.sqrt(3 / 10)
    assert net.inp_layer.bias.abs().max() <= math.sqrt(1 / 10)
    assert net.core_layers[0].weight.abs().max() <= math.sqrt(3 / H)
    assert net.inp_layer.weight.abs().max() > 0.8 * math.sqrt(3 / 10)  # really U(±bound)
    x = torch.randn(B, L, 10)
    y, h = net(x)
    assert y.shape == (B, L, C, 3) and h.shape == (B, L, C, H)
    c = 2
    h1 = F.leaky_relu(x @ net.inp_layer.weight[c] + net.inp_layer.bias[0, 0, c], 0.01)
    h2 = F.leaky_relu(h1 @ net.core_layers[0].weight[c] + net.core_layers[0].bias[0, 0, c], 0.01)
    y_c = h2 @ net.output_layer.weight[c] + net.output_layer.bias[0, 0, c]
    torch.testing.assert_close(y[:, :, c], y_c, atol=1e-5, rtol=1e-5)


# ------------------------------------------------------------------------------------ NCritics


def test_ncritics_layout_one_hot_and_expectation():
    torch.manual_seed(0)
    critic = NCritics(D, A, True, GAMMAS, C, d_hidden=H)
    assert len(critic) == C
    assert _shapes(critic) == {
        "net.inp_layer.weight": (C, D, H), "net.inp_layer.bias": (1, 1, C, H),
        "net.core_layers.0.weight": (C, H, H), "net.core_layers.0.bias": (1, 1, C, H),
        "net.output_layer.weight": (C, H, G * A), "net.output_layer.bias": (1, 1, C, G * A),
    }
    state = torch.randn(B, L, D)
    q_all = critic.net(state)[0].view(B, L, C, G, A)
    actions = torch.randint(0, A, (B, L, G))
    q = critic(state, F.one_hot(actions, A).float().unsqueeze(0))
    assert q.shape == (1, B, L, C, G, 1)
    taken = q_all.gather(-1, actions[:, :, None, :, None].expand(B, L, C, G, 1))
    torch.testing.assert_close(q[0, ..., 0], taken[..., 0])
    pi = torch.softmax(torch.randn(B, L, G, A), -1)
    v = critic(state, pi.unsqueeze(0))
    torch.testing.assert_close(v[0, ..., 0], (q_all * pi[:, :, None]).sum(-1))


def test_ncritics_gamma_major_units_and_errors():
    critic = NCritics(D, A, True, GAMMAS, C, d_hidden=H)
    with torch.no_grad():
        critic.net.output_layer.weight.zero_()
        critic.net.output_layer.bias.copy_(torch.arange(G * A, dtype=torch.float32).expand(1, 1, C, G * A))
    one_hot = F.one_hot(torch.tensor(3), A).float().expand(1, B, L, G, A)
    q = critic(torch.randn(B, L, D), one_hot)
    assert q[0, 0, 0, 1, :, 0].tolist() == [g * A + 3 for g in range(G)]
    with pytest.raises(AmagoError, match="K = 2"):
        critic(torch.randn(B, L, D), one_hot.expand(2, B, L, G, A))
    with pytest.raises(AmagoError, match=r"\(K, B, L, G, A\)"):
        critic(torch.randn(B, L, D), one_hot[0])
    with pytest.raises(AmagoError, match="does not match"):
        critic(torch.randn(B, L, D), one_hot[..., :4])
    with pytest.raises(AmagoError, match="discrete"):
        NCritics(D, A, False, GAMMAS, C)


# ------------------------------------------------------------------------------ NCriticsTwoHot


def test_twohot_layout_inputs_and_clipped_probs():
    critic = _twohot()
    assert _shapes(critic) == {
        "net.inp_layer.weight": (C, D + 1 + A, H), "net.inp_layer.bias": (1, 1, C, H),
        "net.core_layers.0.weight": (C, H, H), "net.core_layers.0.bias": (1, 1, C, H),
        "net.output_layer.weight": (C, H, 96), "net.output_layer.bias": (1, 1, C, 96),
    }
    seen = []
    critic.net.register_forward_pre_hook(lambda mod, args: seen.append(args[0]))
    state = torch.randn(B, L, D)
    action = F.one_hot(torch.randint(0, A, (3, B, L, G)), A).float()
    dist = critic(state, action)
    assert dist.batch_shape == (3, B, L, C, G) and dist.probs.shape[-1] == 96
    inp = seen[0]
    assert inp.shape == (3, B, L, G, D + 1 + A)
    torch.testing.assert_close(inp[2, 1, 0, 4, :D], state[1, 0])
    torch.testing.assert_close(inp[0, 0, 0, :, D], gamma_features(torch.tensor(GAMMAS)))
    torch.testing.assert_close(inp[..., D + 1:], action * 0.999)  # one-hot enters as 0.999
    with torch.no_grad():  # one bin dominates: p = 1 -> 0.999, others 1e-6, renormalised
        critic.net.output_layer.bias[..., 10] = 1e3
    probs = critic(state, action).probs
    z = 0.999 + 95 * 1e-6
    assert probs[0, 0, 0, 0, 0, 10].item() == pytest.approx(0.999 / z, abs=5e-7)
    assert probs[0, 0, 0, 0, 0, 11].item() == pytest.approx(1e-6 / z, abs=1e-9)


def test_twohot_labels_match_reference_examples():
    critic = _twohot()
    assert critic.bin_vals[1].item() - critic.bin_vals[0].item() == pytest.approx(2200 / 95, abs=1e-3)
    labels = critic.raw_vals_to_labels(torch.tensor([[0.0], [1000.0], [5000.0], [-5000.0]]))
    assert labels.shape == (4, 96)
    assert torch.equal(labels.sum(-1), torch.ones(4))
    assert labels[0].nonzero().flatten().tolist() == [47, 48]
    assert labels[0, 47].item() == pytest.approx(0.5, abs=1e-5)
    assert labels[1].nonzero().flatten().tolist() == [90, 91]
    assert round(labels[1, 90].item(), 3) == 0.318 and round(labels[1, 91].item(), 3) == 0.682
    assert labels[2].nonzero().flatten().tolist() == [95] and labels[2, 95].item() == 1.0
    assert labels[3].nonzero().flatten().tolist() == [0] and labels[3, 0].item() == 1.0
    with pytest.raises(AmagoError, match=r"\(\.\.\., 1\)"):
        critic.raw_vals_to_labels(torch.zeros(3))


@pytest.mark.parametrize("use_symlog", [False, True])
def test_twohot_decode_of_label_roundtrips(use_symlog):
    critic = _twohot(use_symlog=use_symlog)
    y = torch.tensor([-1099.0, -731.5, -3.25, 0.0, 0.5, 17.0, 640.0, 1099.9]).view(2, 4, 1)
    labels = critic.raw_vals_to_labels(y)
    decoded = critic.bin_dist_to_raw_vals(torch.distributions.Categorical(probs=labels))
    assert decoded.shape == (2, 4, 1)
    torch.testing.assert_close(decoded, y, atol=2e-3, rtol=1e-5)
    out = critic(torch.randn(B, L, D), torch.zeros(2, B, L, G, A))
    assert critic.bin_dist_to_raw_vals(out).shape == (2, B, L, C, G, 1)


def test_twohot_bounds_unset_warn_and_zero_is_a_valid_bound():
    with pytest.warns(AmagoWarning, match="min_return"):
        critic = NCriticsTwoHot(D, A, True, GAMMAS, C, d_hidden=H)
    assert critic.bin_vals[0].item() == pytest.approx(-11.5129, abs=1e-4)
    assert critic.bin_vals[-1].item() == pytest.approx(11.5129, abs=1e-4)
    critic = _twohot(min_return=0.0, max_return=10.0, output_bins=11)
    assert critic.bin_vals.tolist() == pytest.approx(list(range(11)))
    with pytest.raises(AmagoError, match="min_return < max_return"):
        _twohot(min_return=5.0, max_return=5.0)


# -------------------------------------------------------------------------------------- PopArt


def _popart_data(seed):
    gen = torch.Generator().manual_seed(seed)
    y = 30.0 + 50.0 * torch.randn(4, 6, 1, 3, 1, generator=gen)
    mask = torch.rand(4, 6, 1, 1, 1, generator=gen) > 0.3
    return y, mask


def test_popart_buffers_and_first_update_numbers():
    popart = PopArtLayer(3)
    assert _shapes(popart) == {k: (3, 1) for k in ("mu", "nu", "w", "b", "_t")}
    y, mask = _popart_data(0)
    popart.update_stats(y, mask)
    m = mask.expand_as(y).float()
    mean = (y * m).sum((0, 1, 2)) / m.sum((0, 1, 2))
    mean_sq = (y**2 * m).sum((0, 1, 2)) / m.sum((0, 1, 2))
    beta_t = 5e-4 / (1 - (1 - 5e-4) ** 2)
    torch.testing.assert_close(popart.mu, beta_t * mean)
    torch.testing.assert_close(popart.nu, (1 - beta_t) * 100.0 + beta_t * mean_sq)
    assert popart._t.tolist() == [[2.0]] * 3
    y_new = torch.randn(5, 2, 1, 3, 1)
    torch.testing.assert_close(popart.normalize_values(y_new), (y_new - popart.mu) / popart.sigma)


def test_popart_preserves_denormalised_outputs():
    popart = PopArtLayer(3)
    x = torch.randn(7, 3, 1)
    before = popart(x, normalized=False)
    torch.testing.assert_close(popart.w * popart.sigma, torch.full((3, 1), 10.0))
    for seed in range(5):
        popart.update_stats(*_popart_data(seed))
    assert popart.mu.abs().min() > 1.0  # the statistics really moved
    torch.testing.assert_close(popart.w * popart.sigma, torch.full((3, 1), 10.0), atol=1e-4, rtol=0)
    torch.testing.assert_close(popart(x, normalized=False), before, atol=1e-4, rtol=0)
    torch.testing.assert_close(popart(x), popart.w * x + popart.b)


def test_popart_masked_entries_are_ignored():
    y, _ = _popart_data(1)
    mask = torch.zeros(4, 6, 1, 1, 1, dtype=torch.bool)
    mask[:, :2] = True
    garbage = y.clone()
    garbage[:, 2:] = 1e6
    a, b = PopArtLayer(3), PopArtLayer(3)
    a.update_stats(garbage, mask)
    b.update_stats(y[:, :2], torch.ones(4, 2, 1, 1, 1, dtype=torch.bool))
    for name in ("mu", "nu", "w", "b"):
        torch.testing.assert_close(getattr(a, name), getattr(b, name))
    c = PopArtLayer(3)  # nothing valid: statistics stay put
    c.update_stats(garbage, torch.zeros_like(mask))
    assert c.mu.abs().max().item() == 0.0 and c.nu[0, 0].item() == 100.0


def test_popart_disabled_is_identity_and_checks_shapes():
    popart = PopArtLayer(3, enabled=False)
    x = torch.randn(5, 3, 1)
    assert torch.equal(popart(x), x) and torch.equal(popart(x, normalized=False), x)
    assert torch.equal(popart.normalize_values(x), x)
    popart.update_stats(*_popart_data(0))
    assert popart.mu.abs().max().item() == 0.0
    with pytest.raises(AmagoError, match="G = 3"):
        PopArtLayer(3).update_stats(torch.zeros(4, 6, 1, 2, 1), torch.ones(4, 6, 1, 1, 1))
