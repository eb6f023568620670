"""Causal pre-norm Transformer over timestep embeddings, with a sliding KV cache for rollouts.

Shapes: B batch, L sequence length, H heads, E = head_dim, D = d_model, F = d_ff,
N parallel environments at inference, S = max_seq_len (cache slots).

Training runs the whole window causally. Inference feeds one timestep at a time (L = 1): every
layer writes its key/value into slot ``seq_lens[n]`` of the cache and attends to slots
0 … seq_lens[n]. When a row's cache is full the oldest slot is dropped (the keys/values of the
remaining tokens are *not* recomputed: a "stale" sliding cache, as in the reference).

Attention modules (``attention_type``, built as ``attention_type(causal=True, dropout=...)``):
``FlashAttention`` (torch SDPA, optional sliding ``window_size``), ``VanillaAttention`` (written
out, never windowed) and ``ClippedSlidingSinkAttention`` (sliding window + sink keys + logit clip).
"""

import abc
import math
from typing import Optional

import gin
import torch
import torch.nn.functional as F
from torch import nn

from metamon.amago.nets.utils import Normalization, activation_switch
from metamon.amago.utils import AmagoError


@gin.configurable
class SigmaReparam(nn.Linear):
    """Linear layer with σ-reparameterised weights: y = x · ((γ / σ(W)) W)ᵀ + b.

    Parameters: ``weight`` W (d_out, d_in), optional ``bias`` (d_out,), scalar ``gamma`` (1,),
    init 1. Buffers ``u`` (d_out,), ``v`` (d_in,): estimates of W's top singular vectors.

    * In train mode each forward does one power-iteration step (no gradient):
      u ← normalize(W v), v ← normalize(Wᵀ u). Eval mode reuses the stored u, v.
    * σ = uᵀ W v with u, v detached (the gradient flows through W).
    * Init (``fast_init=False``): W ~ truncated normal(std 0.02); u, v are the exact top
      singular vectors (SVD); bias keeps nn.Linear's default init. ``fast_init=True`` keeps
      nn.Linear's default init for W and uses random unit u, v (cheap when weights will be
      loaded from a checkpoint anyway).
    """

    def __init__(self, d_in: int, d_out: int, bias: bool = True, fast_init: bool = False):
        super().__init__(d_in, d_out, bias=bias)
        self.gamma = nn.Parameter(torch.ones(1))
        if fast_init:
            u = F.normalize(torch.randn(d_out), dim=0)
            v = F.normalize(torch.randn(d_in), dim=0)
        else:
            with torch.no_grad():
                nn.init.trunc_normal_(self.weight, std=0.02)
                left, _, right_h = torch.linalg.svd(self.weight, full_matrices=False)
            u, v = left[:, 0].clone(), right_h[0].clone()
        self.register_buffer("u", u)
        self.register_buffer("v", v)

    def spectral_norm(self) -> torch.Tensor:
        """σ = uᵀ W v (scalar), differentiable in W only."""
        return torch.einsum("o,oi,i->", self.u.detach(), self.weight, self.v.detach())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            with torch.no_grad():
                w = self.weight.detach().to(self.u.dtype)
                self.u.copy_(F.normalize(w @ self.v, dim=0))
                self.v.copy_(F.normalize(w.t() @ self.u, dim=0))
        w_hat = (self.gamma / self.spectral_norm()) * self.weight
        return F.linear(x, w_hat, self.bias)


class _KVCacheAttention(nn.Module, abc.ABC):
    """Shared logic of the attention modules (no parameters).

    ``forward(qkv (B,L,3,H,E), key_cache=None, val_cache=None, cache_seqlens=None) -> (B,L,H,E)``

    * No cache: the whole sequence at once; query i may attend key j where :meth:`_allowed`
      (i, j) holds; dropout on the attention probabilities in train mode only; scale 1/√E.
    * With caches ``key_cache``/``val_cache`` (N, S, H, E) and ``cache_seqlens`` int (N,), L must
      be 1: k, v of row n are written (in place) into slot seqlens[n], then the query (at slot
      i = seqlens[n]) attends to the filled slots j ≤ i where :meth:`_allowed` (i, j) holds.
      Slot positions stand for time: after the cache slides, slot j is i − j steps back. Unused
      slots (NaN-filled) are zeroed first.

    ``window_size = (left, right)`` limits query i to keys i − left … i + right (right is 0 when
    causal); −1 means unlimited on that side, (−1, −1) is full attention.
    """

    def __init__(self, causal: bool, dropout: float, window_size: tuple = (-1, -1)):
        super().__init__()
        window_size = tuple(window_size)
        if len(window_size) != 2 or any(w < -1 for w in window_size):
            raise AmagoError(
                f"attention window_size must be (left, right) with entries >= -1, got {window_size}"
            )
        self.causal = causal
        self.dropout = dropout
        self.window_size = window_size

    @abc.abstractmethod
    def _attend(self, q, k, v, mask, is_causal, dropout_p):
        """q (B,H,Lq,E), k/v (B,H,Lk,E), mask bool broadcastable to (B,H,Lq,Lk) or None → (B,H,Lq,E).
        Key index j of k/v is the key's position (no cache) or cache slot."""

    @property
    def _plain_causal(self) -> bool:
        """True when the allowed pairs are exactly j ≤ i (the kernels' own causal mode, no mask)."""
        return self.causal and self.window_size == (-1, -1)

    def _allowed(self, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
        """Bool, broadcast of query positions ``i`` and key positions ``j``: may i attend j."""
        left, right = self.window_size
        allowed = torch.ones(torch.broadcast_shapes(i.shape, j.shape), dtype=torch.bool, device=i.device)
        if self.causal:
            allowed &= j <= i
        if left != -1:
            allowed &= j >= i - left
        if right != -1 and not self.causal:
            allowed &= j <= i + right
        return allowed

    def forward(
        self,
        qkv: torch.Tensor,
        key_cache: Optional[torch.Tensor] = None,
        val_cache: Optional[torch.Tensor] = None,
        cache_seqlens: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        if qkv.dim() != 5 or qkv.shape[2] != 3:
            raise AmagoError(f"attention expects qkv of shape (B, L, 3, H, E), got {tuple(qkv.shape)}")
        q, k, v = qkv.unbind(dim=2)  # each (B, L, H, E)
        if key_cache is None:
            plain_causal = self._plain_causal
            mask = None
            if not plain_causal:
                positions = torch.arange(qkv.shape[1], device=qkv.device)
                mask = self._allowed(positions[:, None], positions[None, :])  # (L, L)
            dropout_p = self.dropout if self.training else 0.0
            out = self._attend(
                q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), mask, plain_causal, dropout_p
            )
            return out.transpose(1, 2)
        if val_cache is None or cache_seqlens is None:
            raise AmagoError("attention with a key_cache also needs val_cache and cache_seqlens")
        if qkv.shape[1] != 1:
            raise AmagoError(f"KV-cache attention takes one timestep at a time, got L={qkv.shape[1]}")
        rows = torch.arange(qkv.shape[0], device=qkv.device)
        pos = cache_seqlens.long()  # (N,)
        key_cache[rows, pos] = k[:, 0].to(key_cache.dtype)
        val_cache[rows, pos] = v[:, 0].to(val_cache.dtype)
        slots = torch.arange(key_cache.shape[1], device=qkv.device)[None, :]  # (1, S)
        allowed = (slots <= pos[:, None]) & self._allowed(pos[:, None], slots)  # (N, S)
        keep = allowed[:, :, None, None]
        keys = torch.where(keep, key_cache, 0.0).to(q.dtype)  # (N, S, H, E)
        vals = torch.where(keep, val_cache, 0.0).to(q.dtype)
        out = self._attend(
            q.transpose(1, 2), keys.transpose(1, 2), vals.transpose(1, 2), allowed[:, None, None, :], False, 0.0
        )
        return out.transpose(1, 2)


@gin.configurable
class FlashAttention(_KVCacheAttention):
    """Attention through ``torch.nn.functional.scaled_dot_product_attention``.

    On GPU, PyTorch dispatches to its fused flash / memory-efficient kernels; on CPU the same
    module runs the reference math. (Unlike AMAGO's class of the same name it needs no
    ``flash_attn`` package and keeps the input dtype instead of casting to bf16.)
    gin: ``window_size=(-1, -1)`` (full causal attention; e.g. (32, 0) = query i sees keys
    i − 32 … i, as flash_attn's sliding window does), implemented with an explicit mask when set,
    both for whole sequences and with the KV cache (where the window counts cache slots, i.e.
    steps back in time).
    """

    def __init__(self, causal: bool = True, dropout: float = 0.0, window_size: tuple = (-1, -1)):
        super().__init__(causal=causal, dropout=dropout, window_size=window_size)

    def _attend(self, q, k, v, mask, is_causal, dropout_p):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p, is_causal=is_causal)


@gin.configurable
class VanillaAttention(_KVCacheAttention):
    """Attention written out: softmax(q kᵀ / √E + mask) with dropout, times v (full window)."""

    def __init__(self, causal: bool = True, dropout: float = 0.0):
        super().__init__(causal=causal, dropout=dropout)

    def _attend(self, q, k, v, mask, is_causal, dropout_p):
        scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (B, H, Lq, Lk)
        if is_causal:
            mask = torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool, device=q.device).tril()
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        probs = F.dropout(torch.softmax(scores, dim=-1), p=dropout_p, training=dropout_p > 0)
        return probs @ v


@gin.configurable
class ClippedSlidingSinkAttention(_KVCacheAttention):
    """Causal sliding-window attention with attention-sink keys and clipped logits (no parameters).

    With s = q·k/√E the scaled logit of query i and key j (positions without a cache, slots with
    the KV cache)::

        allowed(i, j) = j ≤ i  and  (i − j ≤ window_size  or  j < sink_size)
        s' = s + sink_bias · [j < sink_size]
        s' = clamp(s', −logit_clip, logit_clip)          only when logit_clip > 0
        out_i = Σ_j softmax_j(s' masked to allowed) · v_j

    With the rolling KV cache the sink is the oldest ``sink_size`` cache slots, not the
    episode's first steps (as in the reference). Attention dropout is always 0 (the ``dropout``
    argument is accepted and ignored); unlike the reference's FlexAttention kernel it also runs
    without a cache in eval mode. Computed as plain masked scores, on any device.

    gin: ``window_size`` (required, > 0), ``logit_clip=0``, ``sink_size=0``, ``sink_bias=0``.
    """

    def __init__(
        self,
        causal: bool = True,
        dropout: float = 0.0,
        window_size: int = gin.REQUIRED,
        logit_clip: float = 0.0,
        sink_size: int = 0,
        sink_bias: float = 0.0,
    ):
        if isinstance(window_size, bool) or not isinstance(window_size, int) or window_size < 1:
            raise AmagoError(f"ClippedSlidingSinkAttention.window_size must be an int > 0, got {window_size!r}")
        if not causal:
            raise AmagoError("ClippedSlidingSinkAttention is causal only (causal=False was given)")
        if isinstance(sink_size, bool) or not isinstance(sink_size, int) or sink_size < 0:
            raise AmagoError(f"ClippedSlidingSinkAttention.sink_size must be an int >= 0, got {sink_size!r}")
        if not logit_clip >= 0:
            raise AmagoError(f"ClippedSlidingSinkAttention.logit_clip must be >= 0 (0 = no clip), got {logit_clip!r}")
        super().__init__(causal=True, dropout=0.0, window_size=(window_size, 0))
        self.logit_clip = float(logit_clip)
        self.sink_size = sink_size
        self.sink_bias = float(sink_bias)

    @property
    def _plain_causal(self) -> bool:
        return False

    def _allowed(self, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
        return (j <= i) & ((i - j <= self.window_size[0]) | (j < self.sink_size))

    def _attend(self, q, k, v, mask, is_causal, dropout_p):
        scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (B, H, Lq, Lk)
        if self.sink_bias and self.sink_size:
            is_sink = torch.arange(k.shape[-2], device=k.device) < self.sink_size
            scores = scores + self.sink_bias * is_sink.to(scores.dtype)
        if self.logit_clip > 0:
            scores = scores.clamp(-self.logit_clip, self.logit_clip)
        scores = scores.masked_fill(~mask, float("-inf"))
        return torch.softmax(scores, dim=-1) @ v


def _linear(d_in: int, d_out: int, bias: bool, sigma_reparam: bool) -> nn.Linear:
    return SigmaReparam(d_in, d_out, bias=bias) if sigma_reparam else nn.Linear(d_in, d_out, bias=bias)


class AttentionLayer(nn.Module):
    """Multi-head self-attention block: QKV projection → attention → per-head gain → output.

    * ``qkv_projection``: D → 3·H·E, no bias, then ``dropout_qkv``. Its output channels are
      ordered (three, head_dim, heads) with the head index fastest, i.e. reshaped to
      (B, L, 3, E, H) and then transposed to (B, L, 3, H, E).
    * ``self_attention``: the attention module, (B,L,3,H,E) → (B,L,H,E).
    * ``head_scaler`` (1, 1, H, 1), init 1, trainable iff ``head_scaling`` (always in the
      state dict).
    * heads concatenated head-major (H, E) → H·E, then ``out_projection``: H·E → D with bias.
    """

    def __init__(
        self,
        self_attention: nn.Module,
        d_model: int,
        n_heads: int,
        dropout_qkv: float = 0.0,
        head_scaling: bool = True,
        sigma_reparam: bool = True,
    ):
        super().__init__()
        if d_model % n_heads != 0:
            raise AmagoError(f"d_model ({d_model}) must be divisible by n_heads ({n_heads})")
        self.n_heads = n_heads
        self.head_dim = d_model // n_heads
        self.self_attention = self_attention
        self.qkv_projection = _linear(d_model, 3 * n_heads * self.head_dim, False, sigma_reparam)
        self.dropout_qkv = nn.Dropout(dropout_qkv)
        self.out_projection = _linear(n_heads * self.head_dim, d_model, True, sigma_reparam)
        self.head_scaler = nn.Parameter(torch.ones(1, 1, n_heads, 1), requires_grad=head_scaling)

    def forward(self, x, key_cache=None, val_cache=None, cache_seqlens=None):
        batch, length, _ = x.shape
        qkv = self.dropout_qkv(self.qkv_projection(x))
        qkv = qkv.view(batch, length, 3, self.head_dim, self.n_heads).transpose(-1, -2)
        out = self.self_attention(qkv, key_cache, val_cache, cache_seqlens)  # (B, L, H, E)
        out = (out * self.head_scaler).reshape(batch, length, self.n_heads * self.head_dim)
        return self.out_projection(out)


class TransformerLayer(nn.Module):
    """Pre-norm layer with optional NormFormer norms (norm2 after attention, norm4 mid-FFN).

        a = attention_layer(norm1(x));        x ← x + norm2(a)
        f = norm4(act(ff1(norm3(x))));        x ← x + dropout_ff(ff2(f))

    ff1: D → F, ff2: F → D (with bias, SigmaReparam if ``sigma_reparam``). Without
    ``normformer_norms`` norm2 and norm4 do not exist (identity).
    """

    def __init__(
        self,
        attention_layer: AttentionLayer,
        d_model: int,
        d_ff: int,
        dropout_ff: float = 0.05,
        activation: str = "leaky_relu",
        norm: str = "layer",
        sigma_reparam: bool = True,
        normformer_norms: bool = True,
    ):
        super().__init__()
        self.attention_layer = attention_layer
        self.ff1 = _linear(d_model, d_ff, True, sigma_reparam)
        self.ff2 = _linear(d_ff, d_model, True, sigma_reparam)
        self.norm1 = Normalization(norm, d_model)
        self.norm2 = Normalization(norm, d_model) if normformer_norms else None
        self.norm3 = Normalization(norm, d_model)
        self.norm4 = Normalization(norm, d_ff) if normformer_norms else None
        self.activation = activation_switch(activation)
        self.dropout_ff = nn.Dropout(dropout_ff)

    def forward(self, x, key_cache=None, val_cache=None, cache_seqlens=None):
        a = self.attention_layer(self.norm1(x), key_cache, val_cache, cache_seqlens)
        x = x + (self.norm2(a) if self.norm2 is not None else a)
        f = self.activation(self.ff1(self.norm3(x)))
        if self.norm4 is not None:
            f = self.norm4(f)
        return x + self.dropout_ff(self.ff2(f))


class FixedPosEmb(nn.Module):
    """Sinusoidal embedding of the absolute timestep p (no parameters).

    emb[2i] = sin(p · ω_i), emb[2i+1] = cos(p · ω_i), ω_i = exp(−2i · ln(10000) / d_model).
    (B, L, 1) or (B, L) integer positions → (B, L, d_model) float32.
    """

    def __init__(self, d_model: int):
        super().__init__()
        if d_model % 2 != 0:
            raise AmagoError(f'pos_emb="fixed" needs an even d_model, got d_model={d_model}')
        freqs = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
        self.register_buffer("freqs", freqs, persistent=False)

    def forward(self, pos_idxs: torch.Tensor) -> torch.Tensor:
        if pos_idxs.dim() == 3:
            pos_idxs = pos_idxs.squeeze(-1)
        angles = pos_idxs.to(torch.float32)[..., None] * self.freqs  # (B, L, D/2)
        return torch.stack((angles.sin(), angles.cos()), dim=-1).flatten(-2)


@gin.configurable
class LearnablePosEmb(nn.Module):
    """Learned embedding table over absolute timesteps 0 … max_time_idx − 1 (gin-REQUIRED).

    (B, L, 1) or (B, L) integer positions → (B, L, d_model). Parameter ``embeddings.weight``.
    """

    def __init__(self, d_model: int, max_time_idx: int = gin.REQUIRED):
        super().__init__()
        self.max_time_idx = max_time_idx
        self.embeddings = nn.Embedding(max_time_idx, d_model)

    def forward(self, pos_idxs: torch.Tensor) -> torch.Tensor:
        if pos_idxs.dim() == 3:
            pos_idxs = pos_idxs.squeeze(-1)
        if pos_idxs.numel() and int(pos_idxs.max()) >= self.max_time_idx:
            raise AmagoError(
                f"timestep {int(pos_idxs.max())} is out of range for LearnablePosEmb.max_time_idx="
                f"{self.max_time_idx}; bind a larger LearnablePosEmb.max_time_idx"
            )
        return self.embeddings(pos_idxs.long())


class TformerHiddenState:
    """KV cache of a Transformer for N parallel sequences.

    ``key_cache``, ``val_cache``: (n_layers, N, S, H, E), unused slots NaN. ``seq_lens``:
    int32 (N,), the number of filled slots per row. ``state[i]`` gives layer i's
    (key_cache[i], val_cache[i], seq_lens) — views, so the layer writes in place.
    """

    def __init__(self, key_cache: torch.Tensor, val_cache: torch.Tensor, seq_lens: torch.Tensor):
        self.key_cache = key_cache
        self.val_cache = val_cache
        self.seq_lens = seq_lens

    @classmethod
    def empty(cls, n_layers, batch_size, max_seq_len, n_heads, head_dim, dtype, device):
        """NaN-filled caches and zero ``seq_lens`` for ``batch_size`` rows."""
        shape = (n_layers, batch_size, max_seq_len, n_heads, head_dim)
        return cls(
            torch.full(shape, float("nan"), dtype=dtype, device=device),
            torch.full(shape, float("nan"), dtype=dtype, device=device),
            torch.zeros(batch_size, dtype=torch.int32, device=device),
        )

    @property
    def max_seq_len(self) -> int:
        return self.key_cache.shape[2]

    def __len__(self) -> int:
        return self.key_cache.shape[1]

    def __getitem__(self, layer: int):
        return self.key_cache[layer], self.val_cache[layer], self.seq_lens

    def update(self) -> None:
        """After every layer wrote this step: seq_lens += 1; rows that reached S slots drop the
        oldest slot (shift left by one, last slot ← NaN) and go back to S − 1."""
        self.seq_lens += 1
        full = self.seq_lens == self.max_seq_len
        if bool(full.any()):
            for cache in (self.key_cache, self.val_cache):
                rows = cache[:, full]
                cache[:, full] = torch.cat((rows[:, :, 1:], torch.full_like(rows[:, :, :1], float("nan"))), dim=2)
            self.seq_lens[full] -= 1

    def reset(self, dones) -> None:
        """Forget the history of rows where ``dones`` (bool, N) is True: seq_lens ← 0."""
        dones = torch.as_tensor(dones, dtype=torch.bool, device=self.seq_lens.device).reshape(-1)
        if dones.shape[0] != len(self):
            raise AmagoError(f"dones has {dones.shape[0]} entries but the hidden state holds {len(self)} rows")
        self.seq_lens[dones] = 0

    def select(self, idx: torch.Tensor) -> "TformerHiddenState":
        """A copy holding only rows ``idx`` (LongTensor (n,)), in that order."""
        idx = torch.as_tensor(idx, dtype=torch.long, device=self.seq_lens.device)
        return TformerHiddenState(
            self.key_cache[:, idx].clone(), self.val_cache[:, idx].clone(), self.seq_lens[idx].clone()
        )

    def assign(self, idx: torch.Tensor, other: "TformerHiddenState") -> None:
        """Write ``other``'s rows back into rows ``idx`` of this state (inverse of select)."""
        idx = torch.as_tensor(idx, dtype=torch.long, device=self.seq_lens.device)
        if len(other) != idx.shape[0] or other.key_cache.shape[2:] != self.key_cache.shape[2:]:
            raise AmagoError(
                f"cannot assign a hidden state of {len(other)} rows, cache {tuple(other.key_cache.shape)}, "
                f"to {idx.shape[0]} rows of a cache {tuple(self.key_cache.shape)}"
            )
        self.key_cache[:, idx] = other.key_cache.to(self.key_cache.dtype)
        self.val_cache[:, idx] = other.val_cache.to(self.val_cache.dtype)
        self.seq_lens[idx] = other.seq_lens.to(self.seq_lens.dtype)


class Transformer(nn.Module):
    """Input projection + position embedding → layers → final norm.

        h⁰ = dropout_emb(inp(seq) + pos_embedding(pos_idxs));  h = layers(h⁰);  out = norm(h)

    seq (B, L, inp_dim), pos_idxs (B, L, 1) long → (B, L, d_model). With a
    :class:`TformerHiddenState` (L = 1) each layer uses its cache and the state is advanced.
    """

    def __init__(
        self,
        inp_dim: int,
        d_model: int,
        layers: list,
        pos_embedding: nn.Module,
        dropout_emb: float = 0.05,
        norm: str = "layer",
    ):
        super().__init__()
        self.inp = nn.Linear(inp_dim, d_model)
        self.pos_embedding = pos_embedding
        self.dropout_emb = nn.Dropout(dropout_emb)
        self.layers = nn.ModuleList(layers)
        self.norm = Normalization(norm, d_model)

    def forward(self, seq, pos_idxs, hidden_state: Optional[TformerHiddenState] = None):
        if pos_idxs is None:
            raise AmagoError("the Transformer needs pos_idxs (time_idxs of shape (B, L, 1))")
        x = self.dropout_emb(self.inp(seq) + self.pos_embedding(pos_idxs).to(seq.dtype))
        for i, layer in enumerate(self.layers):
            cache = hidden_state[i] if hidden_state is not None else (None, None, None)
            x = layer(x, *cache)
        if hidden_state is not None:
            hidden_state.update()
        return self.norm(x), hidden_state
