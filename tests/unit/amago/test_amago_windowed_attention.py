"""Windowed attention without flash_attn: FlashAttention(window_size=(w, 0)) and
ClippedSlidingSinkAttention against a naive per-query loop, with and without the KV cache."""

import math

import gin
import pytest
import torch

from metamon.amago.nets.traj_encoders import TformerTrajEncoder
from metamon.amago.nets.transformer import ClippedSlidingSinkAttention, FlashAttention, VanillaAttention
from metamon.amago.utils import AmagoError


def naive(qkv, allowed, sink_size=0, sink_bias=0.0, logit_clip=0.0):
    """out[b, i, h] = Σ_j softmax_j(score(i, j)) v[b, j, h] over the j with allowed(i, j), one query
    and one key at a time."""
    B, L, _, H, E = qkv.shape
    out = torch.zeros(B, L, H, E, dtype=torch.float64)
    qkv = qkv.double()
    for b in range(B):
        for h in range(H):
            for i in range(L):
                keys = [j for j in range(L) if allowed(i, j)]
                scores = []
                for j in keys:
                    s = float(qkv[b, i, 0, h] @ qkv[b, j, 1, h]) / math.sqrt(E)
                    if j < sink_size:
                        s += sink_bias
                    if logit_clip > 0:
                        s = max(-logit_clip, min(logit_clip, s))
                    scores.append(s)
                weights = torch.softmax(torch.tensor(scores, dtype=torch.float64), dim=0)
                for w, j in zip(weights, keys):
                    out[b, i, h] += w * qkv[b, j, 2, h]
    return out.float()


def cached(attention, qkv, slots):
    """Feed qkv one step at a time through a KV cache of ``slots`` slots that slides like
    TformerHiddenState (drop the oldest slot when full)."""
    B, L, _, H, E = qkv.shape
    keys = torch.full((B, slots, H, E), float("nan"))
    vals = torch.full((B, slots, H, E), float("nan"))
    lens = torch.zeros(B, dtype=torch.int32)
    outs = []
    for t in range(L):
        outs.append(attention(qkv[:, t:t + 1], keys, vals, lens))
        lens += 1
        if int(lens[0]) == slots:
            keys = torch.cat([keys[:, 1:], torch.full_like(keys[:, :1], float("nan"))], dim=1)
            vals = torch.cat([vals[:, 1:], torch.full_like(vals[:, :1], float("nan"))], dim=1)
            lens -= 1
    return torch.cat(outs, dim=1)


QKV = torch.randn(2, 9, 3, 2, 4, generator=torch.Generator().manual_seed(0)) * 2


@pytest.mark.parametrize("w", [0, 1, 3, 8, 20])
def test_flash_window_matches_the_naive_loop(w):
    out = FlashAttention(window_size=(w, 0)).eval()(QKV)
    torch.testing.assert_close(out, naive(QKV, lambda i, j: i - w <= j <= i), atol=1e-5, rtol=0)
    # with the cache (enough slots that nothing slides) the same numbers come out step by step
    torch.testing.assert_close(cached(FlashAttention(window_size=(w, 0)).eval(), QKV, 16), out, atol=1e-5, rtol=0)


def test_flash_window_edges():
    full = FlashAttention().eval()(QKV)
    torch.testing.assert_close(FlashAttention(window_size=(8, 0)).eval()(QKV), full, atol=1e-6, rtol=0)  # w >= L-1
    torch.testing.assert_close(FlashAttention(window_size=(0, 0)).eval()(QKV), QKV[:, :, 2], atol=1e-6, rtol=0)
    # Vanilla stays unwindowed (AMAGO's): no window_size argument at all
    with pytest.raises(TypeError):
        VanillaAttention(window_size=(2, 0))
    torch.testing.assert_close(VanillaAttention().eval()(QKV), full, atol=1e-5, rtol=0)


def test_windowed_flash_in_a_trajectory_encoder_rolls_out_like_training():
    torch.manual_seed(0)
    gin.parse_config("FlashAttention.window_size = (2, 0)")
    enc = TformerTrajEncoder(tstep_dim=5, max_seq_len=16, d_model=8, n_heads=2, d_ff=16, n_layers=2).eval()
    seq = torch.randn(3, 9, 5)
    time_idxs = torch.arange(9).view(1, 9, 1).expand(3, 9, 1)
    with torch.no_grad():
        full, _ = enc(seq, time_idxs)
        hidden, outs = enc.init_hidden_state(3, "cpu"), []
        for t in range(9):
            out, hidden = enc(seq[:, t:t + 1], time_idxs[:, t:t + 1], hidden_state=hidden)
            outs.append(out)
    torch.testing.assert_close(torch.cat(outs, 1), full, atol=1e-5, rtol=0)


@pytest.mark.parametrize("window, sink_size, sink_bias, clip", [
    (2, 0, 0.0, 0.0), (2, 2, 0.0, 0.0), (3, 2, 1.5, 0.0), (1, 3, -2.0, 1.0), (8, 2, 5.0, 0.5), (2, 0, 0.0, 0.3),
])
def test_sink_attention_matches_the_naive_loop(window, sink_size, sink_bias, clip):
    attn = ClippedSlidingSinkAttention(window_size=window, logit_clip=clip, sink_size=sink_size, sink_bias=sink_bias)
    expected = naive(QKV, lambda i, j: j <= i and (i - j <= window or j < sink_size), sink_size, sink_bias, clip)
    for mode in (attn.train(), attn.eval()):  # dropout is 0: both modes agree
        torch.testing.assert_close(mode(QKV), expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(cached(attn, QKV, 16), expected, atol=1e-5, rtol=0)


def test_sink_attention_by_hand():
    """One head, E = 1, L = 4, window 1, sink 1 with bias 1, clip 2: query 3 sees keys 0, 2, 3."""
    q = torch.tensor([1.0, 1.0, 1.0, 3.0])
    k = torch.tensor([1.0, 0.5, 0.2, 1.0])
    v = torch.tensor([10.0, 20.0, 30.0, 40.0])
    qkv = torch.stack([q, k, v], dim=-1).view(1, 4, 3, 1, 1)
    attn = ClippedSlidingSinkAttention(window_size=1, logit_clip=2.0, sink_size=1, sink_bias=1.0)
    out = attn(qkv)[0, :, 0, 0]
    s0, s2, s3 = min(3 * 1.0 + 1.0, 2.0), 3 * 0.2, min(3 * 1.0, 2.0)  # scale 1/sqrt(1)
    w = torch.softmax(torch.tensor([s0, s2, s3]), 0)
    assert out[3].item() == pytest.approx(float(w @ torch.tensor([10.0, 30.0, 40.0])), abs=1e-5)
    assert out[0].item() == pytest.approx(10.0)  # the first query sees only itself


def test_sink_is_the_oldest_cache_slots_once_the_cache_slides():
    """With 5 slots the cache holds the last 5 steps; the sink bias then lands on the oldest slot,
    which is step t-4, not step 0 (the reference's behaviour)."""
    attn = ClippedSlidingSinkAttention(window_size=2, sink_size=1, sink_bias=3.0)
    out = cached(attn, QKV, 5)
    L = QKV.shape[1]
    for t in range(L):
        start = max(0, t - 4)  # the steps in the cache at step t: start … t, in slots 0 …
        window = QKV[:, start:t + 1]
        expected = naive(window, lambda i, j: j <= i and (i - j <= 2 or j < 1), 1, 3.0)[:, -1]
        torch.testing.assert_close(out[:, t], expected, atol=1e-5, rtol=0)


def test_sink_attention_gin_and_errors():
    gin.parse_config("""
        TformerTrajEncoder.attention_type = @ClippedSlidingSinkAttention
        ClippedSlidingSinkAttention.window_size = 96
        ClippedSlidingSinkAttention.logit_clip = 50
        ClippedSlidingSinkAttention.sink_size = 5
        TformerTrajEncoder.dropout_attn = 0.3
    """)
    enc = TformerTrajEncoder(tstep_dim=4, max_seq_len=8, d_model=8, n_heads=2, d_ff=16, n_layers=1)
    attn = enc.tformer.layers[0].attention_layer.self_attention
    assert isinstance(attn, ClippedSlidingSinkAttention)
    got = (attn.window_size, attn.logit_clip, attn.sink_size, attn.sink_bias, attn.dropout)
    assert got == ((96, 0), 50.0, 5, 0.0, 0.0)
    assert not list(attn.parameters()) and not list(attn.buffers())
    gin.clear_config()
    with pytest.raises(RuntimeError, match=r"Required bindings for `ClippedSlidingSinkAttention`.*window_size"):
        ClippedSlidingSinkAttention()
    for bad, match in ((dict(window_size=0), "window_size must be an int > 0"),
                       (dict(window_size=4, sink_size=-1), "sink_size must be an int >= 0"),
                       (dict(window_size=4, logit_clip=-1.0), "logit_clip must be >= 0"),
                       (dict(window_size=4, causal=False), "causal only")):
        with pytest.raises(AmagoError, match=match):
            ClippedSlidingSinkAttention(**bad)
