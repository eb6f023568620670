"""``ScratchTstepEncoder``: this project's own turn encoder (not metamon's), per timestep.

Shapes: B sequences, L timesteps, W text words (``obs_space["text_tokens"].shape[0]``), N numbers
(``obs_space["numbers"].shape[0]``), A+1 the rl2 width (previous reward + one-hot previous action),
d = ``d_model``, S = ``scratch_tokens``, K = ``numerical_tokens``, E = ``extra_emb_dim``.
Every timestep is encoded on its own: the (B, L) grid is folded into B*L independent rows, so
nothing mixes across L (the AMAGO ``TstepEncoder`` contract).

::

    extras   = leaky_relu(Linear(A+1 -> E)(symlog(rl2s)))                    (B*L, E)
    numeric  = Linear(N+E -> K*d)([numbers | extras]).view(K, d)            (B*L, K, d)
    text     = Embedding(V+1, d)(ids) + pos_emb                             (B*L, W, d)
    scratch  = learned tokens                                              (B*L, S, d)
    h        = TransformerEncoder([scratch | numeric | text])              (B*L, S+K+W, d)
    out      = LayerNorm(flatten(h[:, :S]))                                (B, L, S*d)

``ids`` are the vocabulary ids ``0..V-1`` (V = ``len(tokenizer)``); the unknown word ``-1`` reads
the extra row V. The encoder layers are pre-norm (``norm_first``), non-causal, GELU, with a
feed-forward width of ``4*d`` (our choice). State-dict keys: ``extra_emb``,
``numbers_to_tokens``, ``token_emb``, ``pos_emb``, ``scratch``, ``transformer.layers.{i}...``,
``out_norm``.

Until this project took metamon's class names, this class was called ``MetamonTstepEncoder``; a
run saved then is recognised by its ``tstep_encoder.scratch`` / ``tstep_encoder.token_emb.weight``
weights and rebuilt with this class (:mod:`metamon.rl.legacy_encoder`).

Padding: AMAGO pads a batch with the value 4.0 in every tensor, so a padded timestep has
``text_tokens == 4`` (a real word id) and ``rl2s`` all 4.0. Timesteps whose rl2s are all 4.0 are
read as all-unknown text, so they never depend on the vocabulary size; their outputs are
masked out of every loss anyway, and padding sits at the right end, so it cannot reach a real
timestep through the causal trajectory encoder.

``token_mask_aug`` (training mode only): each sequence, with probability 0.8, draws a rate
``r ~ U[0, 0.33)`` and replaces each of its words by the unknown id with probability ``r``
(:func:`metamon.rl.turn_inputs.mask_tokens`).
"""

from __future__ import annotations

from typing import Optional, Union

import gin
import gymnasium as gym
import torch
import torch.nn.functional as F
from torch import nn

from metamon.amago.nets.tstep_encoders import TstepEncoder
from metamon.amago.nets.utils import symlog
from metamon.rl.turn_inputs import (
    check_encoder_args,
    check_inputs,
    check_token_ids,
    mask_tokens,
    padded_steps,
    resolve_tokenizer,
    vector_size,
)
from metamon.tokenizer import DEFAULT_TOKENIZER, UNKNOWN_TOKEN, PokemonTokenizer

__all__ = ["ScratchTstepEncoder"]

FF_MULT = 4  # feed-forward width = FF_MULT * d_model (our choice)
_OWNER = "ScratchTstepEncoder"


@gin.configurable
class ScratchTstepEncoder(TstepEncoder):
    """Transformer over one turn's words, numbers and previous action/reward (module docstring).

    Args:
        obs_space: ``gym.spaces.Dict`` holding at least ``"text_tokens"`` (W,) and ``"numbers"``
            (N,); other keys (``"illegal_actions"``, ...) are ignored.
        rl2_space: ``Box`` of shape (A+1,).
        tokenizer: a shipped vocabulary name, a vocabulary file path, or a ``PokemonTokenizer``;
            only its size (and name, kept as ``tokenizer_name``) is used.
        extra_emb_dim: E, width of the rl2 embedding.
        d_model, n_layers, n_heads: the turn transformer (``d_model % n_heads == 0``).
        scratch_tokens: S, learned tokens whose outputs form the embedding.
        numerical_tokens: K, tokens the numbers (with the rl2 embedding) are projected into.
        token_mask_aug: word-dropout augmentation in training mode.
        dropout: dropout inside the transformer layers.

    ``emb_dim = scratch_tokens * d_model``.
    """

    def __init__(
        self,
        obs_space: gym.spaces.Dict,
        rl2_space: gym.spaces.Box,
        tokenizer: Union[str, PokemonTokenizer] = DEFAULT_TOKENIZER,
        extra_emb_dim: int = 18,
        d_model: int = 100,
        n_layers: int = 3,
        n_heads: int = 5,
        scratch_tokens: int = 4,
        numerical_tokens: int = 6,
        token_mask_aug: bool = False,
        dropout: float = 0.05,
    ):
        super().__init__(obs_space=obs_space, rl2_space=rl2_space)
        check_encoder_args(_OWNER, obs_space, dropout, extra_emb_dim=extra_emb_dim, d_model=d_model,
                           n_layers=n_layers, n_heads=n_heads, scratch_tokens=scratch_tokens,
                           numerical_tokens=numerical_tokens)
        tokenizer = resolve_tokenizer(_OWNER, tokenizer)
        self.tokenizer_name = getattr(tokenizer, "name", None)
        self.vocab_size = len(tokenizer)
        self.n_words = vector_size(_OWNER, obs_space, "text_tokens")
        self.n_numbers = vector_size(_OWNER, obs_space, "numbers")
        self.rl2_dim = int(rl2_space.shape[-1])
        self.d_model = d_model
        self.scratch_tokens = scratch_tokens
        self.numerical_tokens = numerical_tokens
        self.token_mask_aug = bool(token_mask_aug)

        self.extra_emb = nn.Linear(self.rl2_dim, extra_emb_dim)
        self.numbers_to_tokens = nn.Linear(self.n_numbers + extra_emb_dim, numerical_tokens * d_model)
        self.token_emb = nn.Embedding(self.vocab_size + 1, d_model)  # row V = unknown word
        self.pos_emb = nn.Parameter(0.02 * torch.randn(self.n_words, d_model))
        self.scratch = nn.Parameter(0.02 * torch.randn(scratch_tokens, d_model))
        layer = nn.TransformerEncoderLayer(
            d_model, n_heads, dim_feedforward=FF_MULT * d_model, dropout=dropout,
            activation="gelu", batch_first=True, norm_first=True,
        )
        self.transformer = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.out_norm = nn.LayerNorm(scratch_tokens * d_model)

    @property
    def emb_dim(self) -> int:
        return self.scratch_tokens * self.d_model

    def _token_ids(self, tokens: torch.Tensor, rl2s: torch.Tensor) -> torch.Tensor:
        """Vocabulary ids (B, L, W) -> embedding rows, unknown (-1) -> row V (module docstring)."""
        padded = padded_steps(rl2s)  # (B, L)
        tokens = tokens.masked_fill(padded.unsqueeze(-1), UNKNOWN_TOKEN)
        check_token_ids(_OWNER, tokens, padded, self.vocab_size, self.tokenizer_name)
        if self.token_mask_aug and self.training:
            tokens = mask_tokens(tokens)
        return torch.where(tokens < 0, self.vocab_size, tokens)

    def inner_forward(
        self, obs: dict, rl2s: torch.Tensor, log_dict: Optional[dict] = None
    ) -> torch.Tensor:
        tokens, numbers = check_inputs(_OWNER, obs, rl2s, self.n_words, self.n_numbers, self.rl2_dim)
        B, L, W = tokens.shape
        S, K, d = self.scratch_tokens, self.numerical_tokens, self.d_model
        rows = self._token_ids(tokens, rl2s).reshape(B * L, W)
        text = self.token_emb(rows) + self.pos_emb  # (B*L, W, d)
        extras = F.leaky_relu(self.extra_emb(symlog(rl2s.float())))  # (B, L, E)
        numeric = self.numbers_to_tokens(torch.cat([numbers, extras], dim=-1))  # (B, L, K*d)
        numeric = numeric.reshape(B * L, K, d)
        scratch = self.scratch.expand(B * L, S, d)
        h = self.transformer(torch.cat([scratch, numeric, text], dim=1))  # (B*L, S+K+W, d)
        out = self.out_norm(h[:, :S].reshape(B * L, S * d))
        return out.reshape(B, L, S * d)
