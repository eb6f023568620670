"""Transformer pieces of metamon.amago: attention kernels, KV cache, σ-reparam, position embeddings."""

import math

import gin
import numpy as np
import pytest
import torch
from torch import nn

from metamon.amago.nets.traj_encoders import TformerTrajEncoder
from metamon.amago.nets.transformer import (
    AttentionLayer,
    FixedPosEmb,
    FlashAttention,
    LearnablePosEmb,
    SigmaReparam,
    TformerHiddenState,
    VanillaAttention,
)
from metamon.amago.utils import AmagoError

TSTEP, S = 6, 5  # tstep_dim, max_seq_len



def _encoder(attention_type=FlashAttention, seed=0):
    torch.manual_seed(seed)
    enc = TformerTrajEncoder(
        tstep_dim=TSTEP, max_seq_len=S, d_model=16, n_heads=4, d_ff=32, n_layers=2, attention_type=attention_type
    )
    return enc.eval()


def _inputs(n=3, t=9, seed=1):
    g = torch.Generator().manual_seed(seed)
    seq = torch.randn(n, t, TSTEP, generator=g)
    time_idxs = torch.arange(t).view(1, t, 1).expand(n, t, 1).contiguous()
    return seq, time_idxs


def _rollout(enc, seq, time_idxs, hidden=None):
    """Feed seq one step at a time through the KV cache; returns (N, T, D) outputs and the state."""
    hidden = enc.init_hidden_state(seq.shape[0], seq.device) if hidden is None else hidden
    outs = []
    with torch.no_grad():
        for t in range(seq.shape[1]):
            out, hidden = enc(seq[:, t : t + 1], time_idxs[:, t : t + 1], hidden_state=hidden)
            outs.append(out)
    return torch.cat(outs, dim=1), hidden


# ---------------------------------------------------------------- attention kernels


@pytest.mark.parametrize("attention_type", [FlashAttention, VanillaAttention])
def test_kv_cache_matches_full_causal_forward_within_window(attention_type):
    enc = _encoder(attention_type)
    seq, time_idxs = _inputs(t=S)
    with torch.no_grad():
        full, none_state = enc(seq, time_idxs)
    cached, hidden = _rollout(enc, seq, time_idxs)
    assert none_state is None
    assert full.shape == cached.shape == (3, S, 16)
    torch.testing.assert_close(cached, full, atol=1e-5, rtol=0)
    # the window is full: every row holds S - 1 tokens after the shift
    assert hidden.seq_lens.tolist() == [S - 1] * 3
    assert hidden.seq_lens.dtype == torch.int32


@pytest.mark.parametrize("attention_type", [FlashAttention, VanillaAttention])
def test_kv_cache_after_window_fills_is_a_stale_sliding_window(attention_type):
    """Past the window the cache equals causal attention limited to the S - 1 previous tokens
    (keys/values computed once, with their own history) — not a re-encoding of the last window."""
    enc = _encoder(attention_type)
    seq, time_idxs = _inputs(t=2 * S + 1)
    cached, hidden = _rollout(enc, seq, time_idxs)
    windowed = _encoder(lambda causal, dropout: FlashAttention(causal, dropout, window_size=(S - 1, 0)))
    windowed.load_state_dict(enc.state_dict())
    with torch.no_grad():
        expected, _ = windowed(seq, time_idxs)
        reencoded, _ = enc(seq[:, -S:], time_idxs[:, -S:])
    torch.testing.assert_close(cached, expected, atol=1e-5, rtol=0)
    assert (cached[:, -1] - reencoded[:, -1]).abs().max() > 1e-3
    assert int(hidden.seq_lens.max()) == S - 1


def test_cache_update_shifts_oldest_slot_out():
    enc = _encoder()
    seq, time_idxs = _inputs(t=S + 1)
    _, hidden = _rollout(enc, seq[:, : S - 1], time_idxs[:, : S - 1])
    assert hidden.seq_lens.tolist() == [S - 1] * 3
    before = hidden.key_cache.clone()
    assert torch.isnan(before[:, :, S - 1]).all() and not torch.isnan(before[:, :, : S - 1]).any()
    with torch.no_grad():
        enc(seq[:, S - 1 : S], time_idxs[:, S - 1 : S], hidden_state=hidden)
    after = hidden.key_cache
    torch.testing.assert_close(after[:, :, : S - 2], before[:, :, 1 : S - 1])
    assert not torch.isnan(after[:, :, S - 2]).any()  # the newest token
    assert torch.isnan(after[:, :, S - 1]).all()
    assert hidden.seq_lens.tolist() == [S - 1] * 3


def test_reset_hidden_state_zeroes_only_done_rows_and_restarts_them():
    enc = _encoder()
    seq, time_idxs = _inputs(t=3)
    _, hidden = _rollout(enc, seq, time_idxs)
    assert hidden.seq_lens.tolist() == [3, 3, 3]


    hidden = enc.reset_hidden_state(hidden, np.array([True, False, True]))
    assert hidden.seq_lens.tolist() == [0, 3, 0]
    new_seq, _ = _inputs(t=1, seed=7)
    zero_t = torch.zeros(3, 1, 1, dtype=torch.long)
    with torch.no_grad():
        out, hidden = enc(new_seq, zero_t, hidden_state=hidden)
        fresh, _ = enc(new_seq, zero_t)
    torch.testing.assert_close(out[[0, 2]], fresh[[0, 2]], atol=1e-5, rtol=0)
    assert (out[1] - fresh[1]).abs().max() > 1e-3  # row 1 kept its history
    with pytest.raises(AmagoError, match="dones has 2 entries"):
        enc.reset_hidden_state(hidden, np.array([True, False]))


def test_hidden_state_select_assign_round_trip():
    enc = _encoder()
    seq, time_idxs = _inputs(t=4)
    full_outs, full_state = _rollout(enc, seq, time_idxs)

    _, state = _rollout(enc, seq[:, :3], time_idxs[:, :3])
    sub = state.select(torch.tensor([2, 0]))
    assert len(sub) == 2 and sub.seq_lens.tolist() == [3, 3]
    with torch.no_grad():
        out_sub, sub = enc(seq[[2, 0], 3:4], time_idxs[[2, 0], 3:4], hidden_state=sub)
    # select made a copy: the big state did not move
    assert state.seq_lens.tolist() == [3, 3, 3]
    state.assign(torch.tensor([2, 0]), sub)
    rest = state.select(torch.tensor([1]))
    with torch.no_grad():
        out_rest, rest = enc(seq[[1], 3:4], time_idxs[[1], 3:4], hidden_state=rest)
    state.assign(torch.tensor([1]), rest)

    torch.testing.assert_close(out_sub[:, 0], full_outs[[2, 0], 3], atol=1e-5, rtol=0)
    torch.testing.assert_close(out_rest[:, 0], full_outs[[1], 3], atol=1e-5, rtol=0)
    assert state.seq_lens.tolist() == full_state.seq_lens.tolist() == [4, 4, 4]
    torch.testing.assert_close(state.key_cache, full_state.key_cache, equal_nan=True, atol=1e-6, rtol=0)
    torch.testing.assert_close(state.val_cache, full_state.val_cache, equal_nan=True, atol=1e-6, rtol=0)
    with pytest.raises(AmagoError, match="cannot assign"):
        state.assign(torch.tensor([0, 1]), rest)


def test_hidden_state_layout_and_dtype_follow_model():
    enc = _encoder()
    hidden = enc.init_hidden_state(2, torch.device("cpu"))
    assert isinstance(hidden, TformerHiddenState)
    assert hidden.key_cache.shape == (2, 2, S, 4, 4)  # (n_layers, N, S, H, E)
    assert hidden.key_cache.dtype == torch.float32
    assert torch.isnan(hidden.val_cache).all()
    k0, v0, lens = hidden[0]
    assert k0.shape == (2, S, 4, 4) and lens is hidden.seq_lens
    assert enc.double().init_hidden_state(1, "cpu").key_cache.dtype == torch.float64


def test_hidden_state_needs_eval_mode_but_eval_runs_full_windows():
    enc = _encoder()
    seq, time_idxs = _inputs(t=2)
    hidden = enc.init_hidden_state(3, "cpu")
    enc.train()
    with pytest.raises(AmagoError, match="eval mode"):
        enc(seq[:, :1], time_idxs[:, :1], hidden_state=hidden)
    enc.eval()
    with pytest.raises(AmagoError, match="one timestep at a time"):
        enc(seq, time_idxs, hidden_state=hidden)
    out, state = enc(seq, time_idxs)  # eval, no hidden state: whole window
    assert out.shape == (3, 2, 16) and state is None


def test_flash_and_vanilla_attention_agree_on_same_weights():
    flash = _encoder(FlashAttention)
    vanilla = _encoder(VanillaAttention, seed=5)
    vanilla.load_state_dict(flash.state_dict())
    seq, time_idxs = _inputs(t=7)
    with torch.no_grad():
        a, _ = flash(seq, time_idxs)
        b, _ = vanilla(seq, time_idxs)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)

    qkv = torch.randn(2, 6, 3, 2, 4)
    out_f = FlashAttention()(qkv)
    out_v = VanillaAttention()(qkv)
    torch.testing.assert_close(out_f, out_v, atol=1e-6, rtol=0)
    # first query attends only to itself: output = its own value
    torch.testing.assert_close(out_f[:, 0], qkv[:, 0, 2], atol=1e-6, rtol=0)


def test_windowed_flash_attention_mask_by_hand():
    qkv = torch.randn(1, 5, 3, 1, 2)
    out = FlashAttention(window_size=(1, 0))(qkv)
    q, k, v = qkv[0, :, 0, 0], qkv[0, :, 1, 0], qkv[0, :, 2, 0]
    i = 3  # attends to keys 2 and 3 only
    w = torch.softmax(torch.stack([q[i] @ k[2], q[i] @ k[3]]) / math.sqrt(2), dim=0)
    torch.testing.assert_close(out[0, i, 0], w[0] * v[2] + w[1] * v[3], atol=1e-6, rtol=0)
    with pytest.raises(AmagoError, match="window_size"):
        FlashAttention(window_size=(4,))


def test_attention_dropout_only_in_training():
    attn = FlashAttention(dropout=0.5)
    qkv = torch.randn(2, 6, 3, 2, 4)
    attn.eval()
    torch.testing.assert_close(attn(qkv), VanillaAttention()(qkv), atol=1e-6, rtol=0)
    attn.train()
    torch.manual_seed(0)
    assert (attn(qkv) - VanillaAttention()(qkv)).abs().max() > 1e-3


def test_qkv_channel_layout_is_three_headdim_heads_with_heads_fastest():
    class Record(nn.Module):
        def forward(self, qkv, *cache):
            self.qkv = qkv
            return qkv[:, :, 0]

    rec = Record()
    layer = AttentionLayer(rec, d_model=8, n_heads=2, sigma_reparam=False, head_scaling=False)
    x = torch.randn(1, 3, 8)
    flat = layer.qkv_projection(x)  # (1, 3, 3*2*4)
    layer(x)
    heads, head_dim = 2, 4
    for three in range(3):
        for h in range(heads):
            for e in range(head_dim):
                c = three * head_dim * heads + e * heads + h
                torch.testing.assert_close(rec.qkv[..., three, h, e], flat[..., c])
    assert not layer.head_scaler.requires_grad
    assert layer.head_scaler.shape == (1, 1, 2, 1)


# ---------------------------------------------------------------- SigmaReparam


def test_sigma_reparam_power_iteration_converges_to_top_singular_value():
    torch.manual_seed(0)
    layer = SigmaReparam(6, 4, fast_init=True)
    top = torch.linalg.matrix_norm(layer.weight.detach(), ord=2)
    x = torch.randn(3, 6)
    layer.train()
    for _ in range(200):
        layer(x)
    torch.testing.assert_close(layer.spectral_norm().detach(), top, atol=1e-5, rtol=1e-5)
    # forward = x ((γ/σ) W)ᵀ + b
    layer.eval()
    expected = x @ (layer.weight / top).T.detach() + layer.bias.detach()
    torch.testing.assert_close(layer(x).detach(), expected, atol=1e-5, rtol=1e-5)


def test_sigma_reparam_eval_mode_does_not_update_u_v():
    torch.manual_seed(1)
    layer = SigmaReparam(5, 3, fast_init=True).eval()
    u, v = layer.u.clone(), layer.v.clone()
    layer(torch.randn(2, 5))
    assert torch.equal(layer.u, u) and torch.equal(layer.v, v)
    layer.train()
    layer(torch.randn(2, 5))
    assert not torch.equal(layer.u, u)


def test_sigma_reparam_default_init_uses_exact_singular_vectors():
    torch.manual_seed(2)
    layer = SigmaReparam(7, 5, bias=False)
    assert layer.bias is None
    assert layer.weight.std().item() < 0.05  # truncated normal, std 0.02
    top = torch.linalg.matrix_norm(layer.weight.detach(), ord=2)
    torch.testing.assert_close(layer.spectral_norm().detach(), top, atol=1e-6, rtol=1e-5)
    assert sorted(dict(layer.named_parameters())) == ["gamma", "weight"]
    assert sorted(dict(layer.named_buffers())) == ["u", "v"]


def test_sigma_reparam_fast_init_is_gin_configurable():
    gin.parse_config("SigmaReparam.fast_init = True")
    torch.manual_seed(3)
    layer = SigmaReparam(6, 4)
    # random unit vectors instead of the SVD ones
    assert abs(layer.spectral_norm().item() - torch.linalg.matrix_norm(layer.weight.detach(), ord=2).item()) > 1e-3


# ---------------------------------------------------------------- position embeddings


def test_fixed_pos_emb_values():
    emb = FixedPosEmb(4)
    out = emb(torch.tensor([[[1], [0]]]))
    assert out.shape == (1, 2, 4)
    expected = torch.tensor([math.sin(1), math.cos(1), math.sin(0.01), math.cos(0.01)])
    torch.testing.assert_close(out[0, 0], expected)
    torch.testing.assert_close(out[0, 1], torch.tensor([0.0, 1.0, 0.0, 1.0]))
    assert list(emb.state_dict()) == []
    with pytest.raises(AmagoError, match="even d_model"):
        FixedPosEmb(5)


def test_learnable_pos_emb_requires_max_time_idx():
    with pytest.raises(Exception, match="max_time_idx"):
        LearnablePosEmb(8)
    gin.parse_config("LearnablePosEmb.max_time_idx = 10")
    emb = LearnablePosEmb(8)
    assert emb(torch.tensor([[[3], [9]]])).shape == (1, 2, 8)
    with pytest.raises(AmagoError, match="max_time_idx=10"):
        emb(torch.tensor([[[10]]]))
    enc = TformerTrajEncoder(tstep_dim=3, max_seq_len=4, d_model=8, n_heads=2, d_ff=8, n_layers=1, pos_emb="learnable")
    assert enc.state_dict()["tformer.pos_embedding.embeddings.weight"].shape == (10, 8)
