"""The turn (timestep) encoders, registered with gin: metamon's ``MetamonTstepEncoder`` (defined
here), ``MetamonPerceiverTstepEncoder`` and this project's ``ScratchTstepEncoder`` (re-exported
from their modules). Gin files ``import metamon.rl.tstep_encoders`` to register all three.

``MetamonTstepEncoder`` is metamon's token/transformer turn encoder (all paper models,
SmallRLGen9Beta, Abra, Kadabra), built so that a published state dict loads with
``strict=True``. Shapes: R = B·L rows (each timestep on its own), W words, K =
``numerical_tokens``, S = ``scratch_tokens``, d = ``d_model``, H = ``n_heads``, T = W+K+S,
p = ``dropout``.

::

    x       = front end (metamon.rl.turn_embedding): [W text tokens | K numeric tokens]   (R, W+K, d)
    x       = [x | S zero tokens] + PE[0 … T−1]                                     (R, T, d)
    h       = emb_transformer(x)      n_layers pre-LN layers, then LayerNorm(d)     (R, T, d)
    out     = h[:, T−S:].reshape(S·d)  scratch-major: unit s·d + c                  (B, L, S·d)

* PE[t, 2i] = sin(t·ω_i), PE[t, 2i+1] = cos(t·ω_i), ω_i = exp(−2i·ln(10000)/d) (d even),
  recomputed on every call (no buffer); it is added to every token, the scratch tokens included.
  The scratch tokens are all zeros: no parameters.
* Each layer (PyTorch ``nn.TransformerEncoderLayer``, non-causal, no padding mask, LayerNorm eps
  1e-5): x += drop(MHA(LN1(x))); x += drop(linear2(drop(leaky_relu(linear1(LN2(x)))))), FF width
  4d, head dim d/H, attention-probability dropout p.
* ``emb_dim = S·d``.

State-dict keys (9 + 12·n_layers, no buffers), besides the front end's ``extra_emb.*``,
``turn_embedding.token_embedding.text_emb.weight`` and ``turn_embedding.multimodal_fuse.*``:
``turn_embedding.tformer_embedding.emb_transformer.layers.{i}.{self_attn.in_proj_weight (3d, d),
self_attn.in_proj_bias, self_attn.out_proj.*, linear1.* (4d, d), linear2.* (d, 4d), norm1.*,
norm2.*}`` and ``turn_embedding.tformer_embedding.emb_transformer.norm.*``.

AMAGO padding (4.0 everywhere) needs nothing special: text id 4 is an ordinary word, numbers 4.0
and rl2s 4.0 are ordinary inputs (see :mod:`metamon.rl.turn_embedding` for the id checks).
"""

from __future__ import annotations

import math
from typing import Union

import gin
import gymnasium as gym
import torch
import torch.nn.functional as F
from torch import nn

from metamon.rl import MetamonRLError
from metamon.rl.perceiver_tstep_encoder import MetamonPerceiverTstepEncoder
from metamon.rl.scratch_tstep_encoder import ScratchTstepEncoder
from metamon.rl.turn_embedding import MetamonTurnEncoder, MultiModalFusion, TokenEmbedding
from metamon.rl.turn_inputs import OBS_KEYS, positive_int
from metamon.tokenizer import PokemonTokenizer

__all__ = [
    "MetamonTstepEncoder",
    "MetamonPerceiverTstepEncoder",
    "ScratchTstepEncoder",
    "OBS_KEYS",
    "sinusoidal_positions",
]

FF_MULT = 4  # feed-forward width = FF_MULT * d_model


def sinusoidal_positions(length: int, d_model: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """PE (length, d_model): PE[t, 2i] = sin(t·ω_i), PE[t, 2i+1] = cos(t·ω_i), ω_i = exp(−2i·ln(10000)/d)."""
    freqs = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32, device=device) * (-math.log(10000.0) / d_model))
    angles = torch.arange(length, dtype=torch.float32, device=device)[:, None] * freqs  # (length, d/2)
    return torch.stack((angles.sin(), angles.cos()), dim=-1).flatten(-2).to(dtype)


class TransformerEmbedding(nn.Module):
    """``emb_transformer`` over [tokens | S zero scratch tokens] + sinusoidal positions; returns
    the last S outputs flattened scratch-major (module docstring)."""

    def __init__(self, d_model: int, n_layers: int, n_heads: int, scratch_tokens: int, dropout: float):
        super().__init__()
        self.d_model = d_model
        self.scratch_tokens = scratch_tokens
        layer = nn.TransformerEncoderLayer(
            d_model, n_heads, dim_feedforward=FF_MULT * d_model, dropout=dropout,
            activation=F.leaky_relu, batch_first=True, norm_first=True,
        )
        self.emb_transformer = nn.TransformerEncoder(
            layer, n_layers, norm=nn.LayerNorm(d_model), enable_nested_tensor=False
        )

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        rows, _, d = tokens.shape
        S = self.scratch_tokens
        x = torch.cat([tokens, tokens.new_zeros(rows, S, d)], dim=1)  # (R, T, d)
        x = x + sinusoidal_positions(x.shape[1], d, device=x.device, dtype=x.dtype)
        h = self.emb_transformer(x)
        return h[:, -S:].reshape(rows, S * d)


class TransformerTurnEmbedding(nn.Module):
    """metamon's ``TransformerTurnEmbedding``: ``token_embedding``, ``multimodal_fuse``, then
    ``tformer_embedding``; ids (R, W), numeric (R, N+E) -> (R, S·d)."""

    def __init__(self, token_embedding: TokenEmbedding, tformer_embedding: TransformerEmbedding,
                 multimodal_fuse: MultiModalFusion):
        super().__init__()
        self.token_embedding = token_embedding
        self.tformer_embedding = tformer_embedding
        self.multimodal_fuse = multimodal_fuse

    def forward(self, ids: torch.Tensor, numeric: torch.Tensor) -> torch.Tensor:
        return self.tformer_embedding(self.multimodal_fuse(self.token_embedding(ids), numeric))


@gin.configurable
class MetamonTstepEncoder(MetamonTurnEncoder):
    """metamon's token/transformer turn encoder (module docstring).

    Args:
        obs_space: ``gym.spaces.Dict`` with ``"text_tokens"`` (W,) and ``"numbers"`` (N,) (other
            keys are ignored).
        rl2_space: ``Box`` (A+1,).
        tokenizer: required: the vocabulary the observations were tokenized with (a name, a
            vocabulary file, or a ``PokemonTokenizer``); only its size V is used.
        extra_emb_dim, d_model, n_layers, n_heads, scratch_tokens, numerical_tokens,
        token_mask_aug, dropout: metamon's arguments, with metamon's defaults.
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
        scratch_tokens: int = 4,
        numerical_tokens: int = 6,
        token_mask_aug: bool = False,
        dropout: float = 0.05,
    ):
        super().__init__(
            obs_space, rl2_space, tokenizer, extra_emb_dim=extra_emb_dim, d_model=d_model,
            n_layers=n_layers, n_heads=n_heads, numerical_tokens=numerical_tokens,
            token_mask_aug=token_mask_aug, dropout=dropout,
        )
        self.scratch_tokens = positive_int(type(self).__name__, "scratch_tokens", scratch_tokens)
        if d_model % 2:
            raise MetamonRLError(f"{type(self).__name__}.d_model must be even (sinusoidal positions), got {d_model}")
        token_embedding, multimodal_fuse = self.front_end()
        tformer = TransformerEmbedding(d_model, n_layers, n_heads, self.scratch_tokens, dropout)
        self.turn_embedding = TransformerTurnEmbedding(token_embedding, tformer, multimodal_fuse)

    @property
    def emb_dim(self) -> int:
        return self.scratch_tokens * self.d_model
