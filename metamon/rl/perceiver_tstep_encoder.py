"""``MetamonPerceiverTstepEncoder``: metamon's Perceiver turn encoder (Minikazam, Kadabra2–4,
Alakazam, Superkazam, Kakuna), built so that a published state dict loads with ``strict=True``.

Shapes: R = B·L rows (each timestep on its own), T = W+K tokens from the shared front end
(:mod:`metamon.rl.turn_embedding`), d = ``d_model``, H = ``n_heads``, Q = ``latent_tokens``,
M = ``max_tokens_per_turn``, p = ``dropout``.

::

    x  = front end [W text | K numeric] + pos_emb[min(t, M−1)]     learned positions      (R, T, d)
    z  = latents                                                   learned, shared by rows (R, Q, d)
    for i < n_layers:                                              every layer reads the input
        z += MHA_c(LN_q(z), LN_kv(x), LN_kv(x));  z += FF_c(LN_ff(z))      cross block i
        z += MHA_s(LN_attn(z));                   z += FF_s(LN_ff(z))      self block i
    out = z.reshape(Q·d)                                           latent-major: unit q·d + c

* FF = Linear(d → 4d), SiLU, Linear(4d → d), Dropout(p); MHA is PyTorch's
  ``nn.MultiheadAttention`` (head dim d/H) with attention-probability dropout p. No other dropout,
  no final norm. The clamp min(t, M−1) matters when T > M (Minikazam: M = 64, T = 109, so turns'
  tokens 63 … 108 share row 63).
* ``emb_dim = Q·d``.

State-dict keys (9 + 26·n_layers, no buffers), besides the front end's ``extra_emb.*``,
``turn_embedding.token_embedding.text_emb.weight`` and ``turn_embedding.multimodal_fuse.*``:
``turn_embedding.learned_pos.pos_emb.weight`` (M, d), ``turn_embedding.perceiver.latents`` (Q, d),
``turn_embedding.perceiver.cross_blocks.{i}.{attn.in_proj_weight (3d, d), attn.in_proj_bias,
attn.out_proj.*, norm_q.*, norm_kv.*, norm_ff.*, ff.0.* (4d, d), ff.2.* (d, 4d)}`` and
``turn_embedding.perceiver.self_blocks.{i}.{attn.*, norm_attn.*, norm_ff.*, ff.0.*, ff.2.*}``.

AMAGO padding (4.0 everywhere) needs nothing special (see :mod:`metamon.rl.turn_embedding`).
"""

from __future__ import annotations

from typing import Union

import gin
import gymnasium as gym
import torch
from torch import nn

from metamon.rl.turn_embedding import MetamonTurnEncoder, MultiModalFusion, TokenEmbedding
from metamon.rl.turn_inputs import positive_int
from metamon.tokenizer import PokemonTokenizer

__all__ = ["MetamonPerceiverTstepEncoder"]

FF_MULT = 4  # feed-forward width = FF_MULT * d_model


def _feed_forward(d_model: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(d_model, FF_MULT * d_model), nn.SiLU(), nn.Linear(FF_MULT * d_model, d_model), nn.Dropout(dropout)
    )


class LearnedPositions(nn.Module):
    """``pos_emb``: Embedding(M, d); tokens (R, T, d) -> tokens + pos_emb[min(t, M−1)]."""

    def __init__(self, max_tokens: int, d_model: int):
        super().__init__()
        self.pos_emb = nn.Embedding(max_tokens, d_model)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(tokens.shape[1], device=tokens.device).clamp(max=self.pos_emb.num_embeddings - 1)
        return tokens + self.pos_emb(positions)


class CrossBlock(nn.Module):
    """z += MHA(LN_q(z), LN_kv(x), LN_kv(x)); z += FF(LN_ff(z))."""

    def __init__(self, d_model: int, n_heads: int, dropout: float):
        super().__init__()
        self.attn = nn.MultiheadAttention(d_model, n_heads, dropout=dropout, batch_first=True)
        self.norm_q = nn.LayerNorm(d_model)
        self.norm_kv = nn.LayerNorm(d_model)
        self.norm_ff = nn.LayerNorm(d_model)
        self.ff = _feed_forward(d_model, dropout)

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        kv = self.norm_kv(x)
        z = z + self.attn(self.norm_q(z), kv, kv, need_weights=False)[0]
        return z + self.ff(self.norm_ff(z))


class SelfBlock(nn.Module):
    """z += MHA(LN_attn(z)); z += FF(LN_ff(z))."""

    def __init__(self, d_model: int, n_heads: int, dropout: float):
        super().__init__()
        self.attn = nn.MultiheadAttention(d_model, n_heads, dropout=dropout, batch_first=True)
        self.norm_attn = nn.LayerNorm(d_model)
        self.norm_ff = nn.LayerNorm(d_model)
        self.ff = _feed_forward(d_model, dropout)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.norm_attn(z)
        z = z + self.attn(h, h, h, need_weights=False)[0]
        return z + self.ff(self.norm_ff(z))


class Perceiver(nn.Module):
    """``latents`` (Q, d) and n_layers (cross block, self block) pairs; x (R, T, d) -> (R, Q·d)."""

    def __init__(self, d_model: int, n_layers: int, n_heads: int, latent_tokens: int, dropout: float):
        super().__init__()
        self.latents = nn.Parameter(0.02 * torch.randn(latent_tokens, d_model))
        self.cross_blocks = nn.ModuleList(CrossBlock(d_model, n_heads, dropout) for _ in range(n_layers))
        self.self_blocks = nn.ModuleList(SelfBlock(d_model, n_heads, dropout) for _ in range(n_layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.latents.to(x.dtype).expand(x.shape[0], -1, -1)
        for cross, self_block in zip(self.cross_blocks, self.self_blocks):
            z = self_block(cross(z, x))
        return z.reshape(x.shape[0], -1)


class PerceiverTurnEmbedding(nn.Module):
    """``token_embedding``, ``multimodal_fuse``, ``learned_pos``, then ``perceiver``;
    ids (R, W), numeric (R, N+E) -> (R, Q·d)."""

    def __init__(self, token_embedding: TokenEmbedding, learned_pos: LearnedPositions, perceiver: Perceiver,
                 multimodal_fuse: MultiModalFusion):
        super().__init__()
        self.token_embedding = token_embedding
        self.learned_pos = learned_pos
        self.perceiver = perceiver
        self.multimodal_fuse = multimodal_fuse

    def forward(self, ids: torch.Tensor, numeric: torch.Tensor) -> torch.Tensor:
        tokens = self.multimodal_fuse(self.token_embedding(ids), numeric)
        return self.perceiver(self.learned_pos(tokens))


@gin.configurable
class MetamonPerceiverTstepEncoder(MetamonTurnEncoder):
    """metamon's Perceiver turn encoder (module docstring).

    Args:
        obs_space, rl2_space, tokenizer: as for ``MetamonTstepEncoder`` (the tokenizer is
            required; bind ``MetamonPerceiverTstepEncoder.tokenizer``).
        extra_emb_dim, d_model, n_layers, n_heads, numerical_tokens, token_mask_aug, dropout: as for
            ``MetamonTstepEncoder``.
        latent_tokens: Q, the learned latents whose outputs form the embedding.
        max_tokens_per_turn: M, rows of the learned position table (positions past M−1 share
            the last row).
    """

    def __init__(
        self,
        obs_space: gym.spaces.Dict,
        rl2_space: gym.spaces.Box,
        tokenizer: Union[str, PokemonTokenizer] = gin.REQUIRED,
        extra_emb_dim: int = 18,
        d_model: int = 100,
        n_layers: int = 3,
        n_heads: int = 5,
        latent_tokens: int = 8,
        numerical_tokens: int = 6,
        token_mask_aug: bool = False,
        dropout: float = 0.05,
        max_tokens_per_turn: int = 128,
    ):
        super().__init__(
            obs_space, rl2_space, tokenizer, extra_emb_dim=extra_emb_dim, d_model=d_model,
            n_layers=n_layers, n_heads=n_heads, numerical_tokens=numerical_tokens,
            token_mask_aug=token_mask_aug, dropout=dropout,
        )
        owner = type(self).__name__
        self.latent_tokens = positive_int(owner, "latent_tokens", latent_tokens)
        self.max_tokens_per_turn = positive_int(owner, "max_tokens_per_turn", max_tokens_per_turn)
        token_embedding, multimodal_fuse = self.front_end()
        self.turn_embedding = PerceiverTurnEmbedding(
            token_embedding,
            LearnedPositions(max_tokens_per_turn, d_model),
            Perceiver(d_model, n_layers, n_heads, latent_tokens, dropout),
            multimodal_fuse,
        )

    @property
    def emb_dim(self) -> int:
        return self.latent_tokens * self.d_model
