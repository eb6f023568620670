"""The front end shared by metamon's two turn encoders, and their common ``TstepEncoder`` base.

``MetamonTstepEncoder`` (:mod:`metamon.rl.tstep_encoders`) and ``MetamonPerceiverTstepEncoder``
(:mod:`metamon.rl.perceiver_tstep_encoder`) embed one turn the same way and differ only in the
body that reads the embedded tokens. Shapes: R = B·L rows (each timestep is encoded on its own),
W words, N numbers, A+1 rl2 width, E = ``extra_emb_dim``, d = ``d_model``, K =
``numerical_tokens``, V = vocabulary size. Dropout p = ``dropout``; leaky ReLU slope 0.01.

::

    extras  = leaky_relu(extra_emb(symlog(rl2s)))                       extra_emb: A+1 -> E
    numeric = [numbers | extras]                                         (R, N+E), numbers as is
    rows    = clamp(id + 1, 0, V)                                        row 0 = unknown word (-1)
    text    = leaky_relu(drop(multimodal_fuse.text_emb(token_embedding.text_emb[rows])))  (R, W, d)
    nums    = leaky_relu(drop(multimodal_fuse.num_emb(numeric))).view(K, d)               (R, K, d)
    tokens  = [text | nums]                                              (R, W+K, d)

Numeric token j is units j·d … j·d+d−1 of ``num_emb``'s output. State-dict keys (relative to the
encoder): ``extra_emb.{weight,bias}`` (E, A+1), ``turn_embedding.token_embedding.text_emb.weight``
(V+1, d), ``turn_embedding.multimodal_fuse.text_emb.{weight,bias}`` (d, d),
``turn_embedding.multimodal_fuse.num_emb.{weight,bias}`` (K·d, N+E).

Ids and padding: the ids of real timesteps must lie in -1 … V−1 (checked, with an error naming the
tokenizer). metamon clamps rows to V+1, one past the table, which never acts on valid ids; here
the upper bound is V so that AMAGO padding (every value 4.0: text id 4, numbers 4.0, rl2s 4.0)
never indexes outside the table even with a vocabulary of fewer than 5 words. Padded timesteps
are otherwise encoded like any other (their outputs are masked out of every loss, and padding
sits at the right end, where the causal trajectory encoder cannot carry it to a real timestep).

``token_mask_aug`` (training mode only) is metamon 1.4.0's word dropout
(:func:`metamon.rl.turn_inputs.mask_tokens`), applied to the ids before the embedding.
"""

from __future__ import annotations

from typing import Optional

import gymnasium as gym
import torch
import torch.nn.functional as F
from torch import nn

from metamon.amago.nets.tstep_encoders import TstepEncoder
from metamon.amago.nets.utils import symlog
from metamon.rl import MetamonRLError
from metamon.rl.turn_inputs import (
    check_encoder_args,
    check_inputs,
    check_token_ids,
    mask_tokens,
    padded_steps,
    resolve_tokenizer,
    vector_size,
)

__all__ = ["TokenEmbedding", "MultiModalFusion", "MetamonTurnEncoder"]


class TokenEmbedding(nn.Module):
    """``text_emb``: Embedding(V+1, d); ids (R, W) in -1 … V−1 -> (R, W, d), id k at row k+1."""

    def __init__(self, vocab_size: int, d_model: int):
        super().__init__()
        self.vocab_size = vocab_size
        self.text_emb = nn.Embedding(vocab_size + 1, d_model)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.text_emb((ids + 1).clamp(0, self.vocab_size))


class MultiModalFusion(nn.Module):
    """Word embeddings (R, W, d) and numeric features (R, N+E) -> tokens (R, W+K, d), text first.

    ``text_emb``: Linear(d, d); ``num_emb``: Linear(N+E, K·d); each followed by dropout, then
    leaky ReLU (module docstring).
    """

    def __init__(self, d_model: int, numeric_dim: int, numerical_tokens: int, dropout: float):
        super().__init__()
        self.d_model = d_model
        self.numerical_tokens = numerical_tokens
        self.text_emb = nn.Linear(d_model, d_model)
        self.num_emb = nn.Linear(numeric_dim, numerical_tokens * d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, words: torch.Tensor, numeric: torch.Tensor) -> torch.Tensor:
        text = F.leaky_relu(self.dropout(self.text_emb(words)))
        nums = F.leaky_relu(self.dropout(self.num_emb(numeric)))
        nums = nums.view(numeric.shape[0], self.numerical_tokens, self.d_model)
        return torch.cat([text, nums], dim=1)


class MetamonTurnEncoder(TstepEncoder):
    """The rl2 embedding, checks and augmentation of metamon's turn encoders (module docstring).

    Subclasses call this constructor, then set ``self.turn_embedding``: a module holding the
    ``token_embedding`` and ``multimodal_fuse`` that :meth:`front_end` makes, whose
    ``forward(ids (R, W) long, numeric (R, N+E))`` returns (R, emb_dim).
    """

    def __init__(
        self,
        obs_space: gym.spaces.Dict,
        rl2_space: gym.spaces.Box,
        tokenizer,
        extra_emb_dim: int,
        d_model: int,
        n_layers: int,
        n_heads: int,
        numerical_tokens: int,
        token_mask_aug: bool,
        dropout: float,
    ):
        super().__init__(obs_space=obs_space, rl2_space=rl2_space)
        owner = type(self).__name__
        check_encoder_args(owner, obs_space, dropout, extra_emb_dim=extra_emb_dim, d_model=d_model,
                           n_layers=n_layers, n_heads=n_heads, numerical_tokens=numerical_tokens)
        if tokenizer is None:
            raise MetamonRLError(
                f"{owner}.tokenizer is required: bind {owner}.tokenizer to the vocabulary the "
                "observations were tokenized with (a name such as 'allreplays-v3' or a file)"
            )
        tokenizer = resolve_tokenizer(owner, tokenizer)
        self.tokenizer_name = getattr(tokenizer, "name", None)
        self.vocab_size = len(tokenizer)
        self.n_words = vector_size(owner, obs_space, "text_tokens")
        self.n_numbers = vector_size(owner, obs_space, "numbers")
        self.rl2_dim = int(rl2_space.shape[-1])
        self.d_model = d_model
        self.numerical_tokens = numerical_tokens
        self.extra_emb_dim = extra_emb_dim
        self.dropout = dropout
        self.token_mask_aug = bool(token_mask_aug)
        self.extra_emb = nn.Linear(self.rl2_dim, extra_emb_dim)

    def front_end(self) -> tuple[TokenEmbedding, MultiModalFusion]:
        """New ``(token_embedding, multimodal_fuse)`` modules for this encoder's sizes."""
        return (
            TokenEmbedding(self.vocab_size, self.d_model),
            MultiModalFusion(self.d_model, self.n_numbers + self.extra_emb_dim, self.numerical_tokens, self.dropout),
        )

    def inner_forward(self, obs: dict, rl2s: torch.Tensor, log_dict: Optional[dict] = None) -> torch.Tensor:
        owner = type(self).__name__
        tokens, numbers = check_inputs(owner, obs, rl2s, self.n_words, self.n_numbers, self.rl2_dim)
        check_token_ids(owner, tokens, padded_steps(rl2s), self.vocab_size, self.tokenizer_name)
        if self.token_mask_aug and self.training:
            tokens = mask_tokens(tokens)
        B, L, W = tokens.shape
        extras = F.leaky_relu(self.extra_emb(symlog(rl2s.to(self.extra_emb.weight.dtype))))  # (B, L, E)
        numeric = torch.cat([numbers.to(extras.dtype), extras], dim=-1)  # (B, L, N+E)
        out = self.turn_embedding(tokens.reshape(B * L, W), numeric.reshape(B * L, -1))  # (B*L, emb_dim)
        return out.reshape(B, L, -1)
