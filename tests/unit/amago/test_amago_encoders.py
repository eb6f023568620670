"""Timestep/trajectory encoders and the shared net utilities of metamon.amago."""

import math

import gin
import numpy as np
import pytest
import torch
from gymnasium import spaces

import metamon.amago
from metamon.amago.nets.traj_encoders import FFTrajEncoder, GRUTrajEncoder, TformerTrajEncoder
from metamon.amago.nets.transformer import VanillaAttention
from metamon.amago.nets.tstep_encoders import FFTstepEncoder
from metamon.amago.nets.utils import (
    InputNorm,
    Normalization,
    activation_switch,
    add_activation_log,
    symexp,
    symlog,
)
from metamon.amago.utils import AmagoError, masked_avg


def _tformer_keys(n_layers=2, d_model=16, heads=4, d_ff=32, tstep_dim=10, sigma=True, normformer=True, norm="layer"):
    """Expected state-dict keys/shapes (AMAGO 3.1.1's layout, so its checkpoints load)."""
    sig = {"gamma": (1,)} if sigma else {}
    norm_params = {"weight", "bias"} if norm == "layer" else {"scale"}
    keys = {"tformer.inp.weight": (d_model, tstep_dim), "tformer.inp.bias": (d_model,)}
    for i in range(n_layers):
        p = f"tformer.layers.{i}."
        keys[p + "attention_layer.head_scaler"] = (1, 1, heads, 1)
        linears = {
            "attention_layer.qkv_projection": (3 * d_model, d_model, False),
            "attention_layer.out_projection": (d_model, d_model, True),
            "ff1": (d_ff, d_model, True),
            "ff2": (d_model, d_ff, True),
        }
        for name, (d_out, d_in, bias) in linears.items():
            keys[f"{p}{name}.weight"] = (d_out, d_in)
            if bias:
                keys[f"{p}{name}.bias"] = (d_out,)
            if sigma:
                keys[f"{p}{name}.gamma"] = sig["gamma"]
                keys[f"{p}{name}.u"] = (d_out,)
                keys[f"{p}{name}.v"] = (d_in,)
        norms = {"norm1": d_model, "norm3": d_model}
        if normformer:
            norms.update(norm2=d_model, norm4=d_ff)
        for name, width in norms.items():
            for param in norm_params:
                keys[f"{p}{name}.norm.{param}"] = (width,)
    for param in norm_params:
        keys[f"tformer.norm.norm.{param}"] = (d_model,)
    return keys


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"sigma_reparam": False}, {"normformer_norms": False}, {"norm": "rmsnorm", "sigma_reparam": False}],
)
def test_tformer_state_dict_matches_appendix_a(kwargs):
    enc = TformerTrajEncoder(tstep_dim=10, max_seq_len=8, d_model=16, n_layers=2, n_heads=4, d_ff=32, **kwargs)
    got = {k: tuple(v.shape) for k, v in enc.state_dict().items()}
    expected = _tformer_keys(
        sigma=kwargs.get("sigma_reparam", True),
        normformer=kwargs.get("normformer_norms", True),
        norm=kwargs.get("norm", "layer"),
    )
    assert got == expected
    assert enc.emb_dim == 16


def test_tformer_defaults_and_gin_bindings_resolve():
    enc = TformerTrajEncoder(tstep_dim=4, max_seq_len=3)
    assert enc.emb_dim == 256 and len(enc.tformer.layers) == 3
    layer = enc.tformer.layers[0]
    assert layer.ff1.weight.shape == (1024, 256)
    assert layer.attention_layer.n_heads == 8
    assert layer.dropout_ff.p == 0.05 and enc.tformer.dropout_emb.p == 0.05
    assert type(layer.attention_layer.self_attention).__name__ == "FlashAttention"

    gin.bind_parameter("traj_encoders.TformerTrajEncoder.d_model", 16)
    gin.bind_parameter("amago.nets.traj_encoders.TformerTrajEncoder.n_layers", 1)
    gin.parse_config(
        """
        TformerTrajEncoder.n_heads = 2
        TformerTrajEncoder.attention_type = @VanillaAttention
        VanillaAttention.dropout = 0.25
        """
    )
    enc = TformerTrajEncoder(tstep_dim=4, max_seq_len=3)
    assert enc.emb_dim == 16 and len(enc.tformer.layers) == 1
    attn = enc.tformer.layers[0].attention_layer.self_attention
    assert isinstance(attn, VanillaAttention) and attn.causal
    # the encoder passes dropout=dropout_attn explicitly, which wins over the binding
    assert attn.dropout == 0.0


def test_flash_window_size_gin_binding():
    gin.parse_config("amago.nets.transformer.FlashAttention.window_size = (32, 0)")
    enc = TformerTrajEncoder(tstep_dim=4, max_seq_len=3, d_model=8, n_heads=2, d_ff=8, n_layers=1)
    assert enc.tformer.layers[0].attention_layer.self_attention.window_size == (32, 0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"pos_emb": "learned"}, "pos_emb 'learned'"),
        ({"norm": "batch"}, "normalization 'batch'.*norm"),
        ({"activation": "swish"}, "activation 'swish'.*leaky_relu"),
        ({"n_heads": 3}, "divisible by n_heads"),
    ],
)
def test_tformer_bad_options_give_clear_errors(kwargs, match):
    with pytest.raises(AmagoError, match=match):
        TformerTrajEncoder(tstep_dim=4, max_seq_len=3,
                           **{"d_model": 8, "n_heads": 2, "d_ff": 8, "n_layers": 1, **kwargs})


def test_tformer_is_causal_and_checks_input_dim():
    torch.manual_seed(0)
    enc = TformerTrajEncoder(tstep_dim=4, max_seq_len=6, d_model=8, n_heads=2, d_ff=8, n_layers=2).eval()
    seq = torch.randn(2, 6, 4)
    t = torch.arange(6).view(1, 6, 1).expand(2, 6, 1)
    out, _ = enc(seq, t)
    seq2 = seq.clone()
    seq2[:, 4:] = 9.0
    out2, _ = enc(seq2, t)
    torch.testing.assert_close(out[:, :4], out2[:, :4])
    assert (out[:, 4:] - out2[:, 4:]).abs().max() > 1e-3
    log = {}
    enc(seq, t, log_dict=log)
    assert set(log) == {f"activation-tformer-out-{s}" for s in ("max", "min", "std", "mean")}
    with pytest.raises(AmagoError, match=r"seq of shape \(B, L, 4\)"):
        enc(torch.randn(2, 6, 5), t)


def test_ff_traj_encoder_is_per_timestep():
    torch.manual_seed(0)
    enc = FFTrajEncoder(tstep_dim=4, max_seq_len=5, d_model=8, n_layers=2).eval()
    assert enc.emb_dim == 8 and enc.layers[0].ff1.weight.shape == (32, 8)
    seq = torch.randn(2, 5, 4)
    out, h = enc(seq, None, hidden_state="untouched")
    assert out.shape == (2, 5, 8) and h == "untouched"
    single, _ = enc(seq[:, 2:3], None)
    torch.testing.assert_close(single[:, 0], out[:, 2])
    assert enc.init_hidden_state(2, "cpu") is None


def test_gru_traj_encoder_stepwise_equals_full_and_reset_zeroes_done_rows():
    torch.manual_seed(0)
    enc = GRUTrajEncoder(tstep_dim=4, max_seq_len=5, d_hidden=6, n_layers=2, d_output=8).eval()
    seq = torch.randn(3, 4, 4)
    with torch.no_grad():
        full, _ = enc(seq, None)
        h = enc.init_hidden_state(3, "cpu")
        assert h.shape == (2, 3, 6) and not h.any()
        steps = []
        for t in range(4):
            o, h = enc(seq[:, t : t + 1], None, hidden_state=h)
            steps.append(o)
    torch.testing.assert_close(torch.cat(steps, 1), full, atol=1e-6, rtol=0)
    reset = enc.reset_hidden_state(h, np.array([False, True, False]))
    assert not reset[:, 1].any()
    torch.testing.assert_close(reset[:, [0, 2]], h[:, [0, 2]])
    assert h[:, 1].abs().sum() > 0  # the caller's tensor is not modified


def test_gru_traj_encoder_keys_and_output_are_amagos():
    """Keys rnn.{weight_ih,weight_hh,bias_ih,bias_hh}_l{k}, out, out_norm.norm (metamon's small_rnn /
    minikazam layout); output = LayerNorm(Linear(GRU(seq)))."""
    enc = GRUTrajEncoder(tstep_dim=5, max_seq_len=4, d_hidden=6, n_layers=2, d_output=3).eval()
    expected = {"out.weight": (3, 6), "out.bias": (3,), "out_norm.norm.weight": (3,), "out_norm.norm.bias": (3,)}
    for k, d_in in ((0, 5), (1, 6)):
        expected.update({f"rnn.weight_ih_l{k}": (18, d_in), f"rnn.weight_hh_l{k}": (18, 6),
                         f"rnn.bias_ih_l{k}": (18,), f"rnn.bias_hh_l{k}": (18,)})
    assert {k: tuple(v.shape) for k, v in enc.state_dict().items()} == expected
    seq = torch.randn(2, 4, 5)
    with torch.no_grad():
        out, _ = enc(seq, None)
        by_hand = torch.nn.functional.layer_norm(enc.out(enc.rnn(seq)[0]), (3,), enc.out_norm.norm.weight,
                                                 enc.out_norm.norm.bias)
    torch.testing.assert_close(out, by_hand)


# ---------------------------------------------------------------- FFTstepEncoder


def _spaces():
    obs_space = spaces.Dict(
        {
            "b": spaces.Box(-1, 1, shape=(2,), dtype=np.float32),
            "a": spaces.Box(-1, 1, shape=(), dtype=np.float32),
            "c": spaces.Box(0, 1, shape=(2, 2), dtype=np.float32),
        }
    )
    rl2_space = spaces.Box(-np.inf, np.inf, shape=(4,), dtype=np.float32)
    return obs_space, rl2_space


def _obs(batch=2, length=3):
    g = torch.Generator().manual_seed(0)
    return {
        "a": torch.randn(batch, length, generator=g),
        "b": torch.randn(batch, length, 2, generator=g),
        "c": torch.randn(batch, length, 2, 2, generator=g),
        "missing_action_mask": torch.ones(batch, length, dtype=torch.bool),
    }


def _captured_input(enc, obs, rl2s):
    seen = {}
    handle = enc.in_norm.register_forward_hook(lambda m, args, out: seen.setdefault("x", args[0]))
    out = enc(obs, rl2s)
    handle.remove()
    return seen["x"], out


def test_ff_tstep_encoder_flattens_keys_alphabetically_and_ignores_extras():
    obs_space, rl2_space = _spaces()
    enc = FFTstepEncoder(obs_space, rl2_space, n_layers=2, d_hidden=8, d_output=5)
    assert enc.emb_dim == 5 and enc.obs_keys == ["a", "b", "c"]
    obs, rl2s = _obs(), torch.randn(2, 3, 4)
    x, out = _captured_input(enc, obs, rl2s)
    expected = torch.cat([obs["a"][..., None], obs["b"], obs["c"].reshape(2, 3, 4), rl2s], dim=-1)
    torch.testing.assert_close(x, expected)
    assert out.shape == (2, 3, 5)

    keys = {k: tuple(v.shape) for k, v in enc.state_dict().items()}
    assert keys == {
        "in_norm.mu": (11,),
        "in_norm.nu": (11,),
        "in_norm._t": (1,),
        "base.in_layer.weight": (8, 11),
        "base.in_layer.bias": (8,),
        "base.layers.0.weight": (8, 8),
        "base.layers.0.bias": (8,),
        "base.out_layer.weight": (5, 8),
        "base.out_layer.bias": (5,),
        "out_norm.norm.weight": (5,),
        "out_norm.norm.bias": (5,),
    }


def test_ff_tstep_encoder_specify_keys_hide_rl2s_and_errors():
    obs_space, rl2_space = _spaces()
    gin.parse_config(
        """
        FFTstepEncoder.specify_obs_keys = ["c", "a"]
        FFTstepEncoder.hide_rl2s = True
        FFTstepEncoder.d_output = 6
        """
    )
    enc = FFTstepEncoder(obs_space, rl2_space)
    assert enc.obs_keys == ["a", "c"] and enc.emb_dim == 6
    assert enc.base.in_layer.weight.shape == (512, 1 + 4 + 4)
    obs, rl2s = _obs(), torch.randn(2, 3, 4)
    x, _ = _captured_input(enc, obs, rl2s)
    torch.testing.assert_close(x, torch.cat([obs["a"][..., None], obs["c"].reshape(2, 3, 4), torch.zeros(2, 3, 4)], -1))
    gin.clear_config()
    with pytest.raises(AmagoError, match=r"specify_obs_keys names \['zzz'\]"):
        FFTstepEncoder(obs_space, rl2_space, specify_obs_keys=["zzz"])
    del obs["b"]
    with pytest.raises(AmagoError, match="key 'b' is missing"):
        FFTstepEncoder(obs_space, rl2_space)(obs, rl2s)


def test_ff_tstep_encoder_input_norm_updates_only_in_train_mode():
    obs_space, rl2_space = _spaces()
    enc = FFTstepEncoder(obs_space, rl2_space, d_hidden=8, d_output=4)
    obs, rl2s = _obs(), torch.randn(2, 3, 4)
    enc.eval()
    enc(obs, rl2s)
    assert enc.in_norm._t.item() == 1.0 and not enc.in_norm.mu.any()
    enc.train()
    enc(obs, rl2s)
    assert enc.in_norm._t.item() == 2.0 and enc.in_norm.mu.abs().sum() > 0
    off = FFTstepEncoder(obs_space, rl2_space, d_hidden=8, d_output=4, normalize_inputs=False)
    x = torch.randn(2, 3, 11)
    assert off.in_norm(x) is x


# ---------------------------------------------------------------- net utilities


def test_input_norm_hand_computed_update_ignores_all_pad_rows():
    norm = InputNorm(2, beta=0.5)
    x = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [4.0, 4.0]]])  # last row: padding
    norm.train()
    out = norm(x)
    # t: 1 -> 2, beta_t = 0.5 / (1 - 0.5**2) = 2/3; mean = [2, 3], mean sq = [5, 10]
    torch.testing.assert_close(norm._t, torch.tensor([2.0]))
    torch.testing.assert_close(norm.mu, torch.tensor([4 / 3, 2.0]))
    torch.testing.assert_close(norm.nu, torch.tensor([1 / 3 + 10 / 3, 1 / 3 + 20 / 3]))
    sigma = torch.tensor([math.sqrt(17 / 9 + 1e-5), math.sqrt(3 + 1e-5)])
    torch.testing.assert_close(norm.sigma, sigma)
    torch.testing.assert_close(out[0, 0], torch.tensor([(1 - 4 / 3) / sigma[0], 0.0]))
    # a batch of padding only changes nothing
    norm(torch.full((2, 3, 2), 4.0))
    assert norm._t.item() == 2.0
    # eval mode never updates
    norm.eval()
    norm(torch.randn(1, 2, 2))
    assert norm._t.item() == 2.0
    torch.testing.assert_close(norm.mu, torch.tensor([4 / 3, 2.0]))


def test_input_norm_small_sigma_falls_back_to_centering():
    norm = InputNorm(2, init_nu=0.0)  # ν = μ = 0 -> σ = sqrt(1e-5) < 0.01
    x = torch.tensor([[3.0, -2.0]])
    torch.testing.assert_close(norm.normalize(x), x)
    gin.parse_config("InputNorm.beta = 0.25")
    assert InputNorm(3).beta == 0.25


def test_symlog_symexp_and_masked_avg():
    x = torch.tensor([-10.0, -1.0, 0.0, 2.0])
    torch.testing.assert_close(symlog(x), torch.tensor([-math.log(11), -math.log(2), 0.0, math.log(3)]))
    torch.testing.assert_close(symexp(symlog(x)), x)
    values = torch.arange(12.0).view(2, 3, 2)
    mask = torch.tensor([[True, False, True], [False, False, True]])[..., None]
    # (0 + 1 + 4 + 5 + 10 + 11) / 6
    torch.testing.assert_close(masked_avg(values, mask), torch.tensor(31 / (6 + 1e-5)))


def test_normalization_kinds_and_activation_switch():
    x = torch.tensor([[3.0, 4.0]])
    rms = Normalization("rmsnorm", 2)
    torch.testing.assert_close(rms(x), x / math.sqrt(12.5 + 1e-5))
    assert list(rms.state_dict()) == ["norm.scale"]
    torch.testing.assert_close(Normalization("unitball", 2)(x), x / (5 + 1e-5))
    xg = x.clone().requires_grad_()
    Normalization("unitball-detach", 2)(xg).sum().backward()
    torch.testing.assert_close(xg.grad, torch.full((1, 2), 1 / (5 + 1e-5)))
    assert torch.equal(Normalization("none", 2)(x), x)
    assert sorted(Normalization("layer", 2).state_dict()) == ["norm.bias", "norm.weight"]
    torch.testing.assert_close(activation_switch("leaky_relu")(torch.tensor([-1.0])), torch.tensor([-0.01]))
    assert activation_switch("gelu")(torch.tensor([0.0])).item() == 0.0
    with pytest.raises(AmagoError, match="activation 'adaptive'"):
        activation_switch("adaptive")


def test_add_activation_log_and_package_metadata():
    log = {}
    add_activation_log("enc", torch.tensor([1.0, 3.0]), log)
    assert {k: round(v.item(), 4) for k, v in log.items()} == {
        "activation-enc-max": 3.0,
        "activation-enc-min": 1.0,
        "activation-enc-std": round(math.sqrt(2), 4),
        "activation-enc-mean": 2.0,
    }
    add_activation_log("enc", torch.ones(2), None)  # no-op
    assert metamon.amago.__version__ == "3.1.1"
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        metamon.amago.Nope  # noqa: B018 (the attribute access itself must raise)
