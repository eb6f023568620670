"""Checks and augmentation shared by every turn encoder that reads tokenized observations.

A turn (timestep) encoder of this package reads ``obs["text_tokens"]`` (B, L, W) integer
vocabulary ids (``-1`` = unknown word), ``obs["numbers"]`` (B, L, N) floats and ``rl2s``
(B, L, A+1) = [previous reward, one-hot previous action]. The helpers here check those inputs
and the constructor arguments, naming the encoder class and the bad value
(:class:`~metamon.rl.MetamonRLError`), so that each encoder keeps only its own math:

* :func:`positive_int`, :func:`vector_size`, :func:`resolve_tokenizer`, :func:`check_obs_space`
  (constructor arguments);
* :func:`check_inputs` (shapes and dtypes of one forward call) and :func:`check_token_ids`
  (ids within ``-1 .. V-1`` at the timesteps that are not AMAGO padding);
* :func:`padded_steps`: AMAGO right-pads a batch with 4.0 in every tensor, so a timestep whose
  rl2s are all 4.0 is padding (:data:`metamon.amago.loading.MAGIC_PAD_VAL`);
* :func:`mask_tokens`: metamon 1.4.0's ``token_mask_aug`` (training only): each sequence is left
  alone with probability 0.2; otherwise a rate r ~ U[0, 0.33) is drawn for it and each of its
  L·W words becomes the unknown id -1 with probability r.
"""

from __future__ import annotations

import os
from typing import Union

import gymnasium as gym
import torch

from metamon.amago.loading import MAGIC_PAD_VAL
from metamon.rl import MetamonRLError
from metamon.tokenizer import UNKNOWN_TOKEN, PokemonTokenizer, get_tokenizer

__all__ = [
    "OBS_KEYS",
    "TOKEN_MASK_SKIP_PROB",
    "TOKEN_MASK_MAX_RATE",
    "positive_int",
    "vector_size",
    "resolve_tokenizer",
    "check_obs_space",
    "check_inputs",
    "padded_steps",
    "check_token_ids",
    "mask_tokens",
]

OBS_KEYS = ("text_tokens", "numbers")
TOKEN_MASK_SKIP_PROB = 0.2  # metamon 1.4.0: a sequence is left unmasked with this probability
TOKEN_MASK_MAX_RATE = 0.33  # ... otherwise its word-masking rate is drawn from U[0, this)


def positive_int(owner: str, name: str, value) -> int:
    """``value`` when it is an int >= 1, else :class:`MetamonRLError` naming ``owner.name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise MetamonRLError(f"{owner}.{name} must be an int >= 1, got {value!r}")
    return value


def check_obs_space(owner: str, obs_space) -> None:
    """The observation space must hold the keys :data:`OBS_KEYS` (a TokenizedObservationSpace)."""
    missing = [k for k in OBS_KEYS if k not in getattr(obs_space, "spaces", {})]
    if missing:
        raise MetamonRLError(
            f"{owner} needs an observation space with keys {list(OBS_KEYS)} "
            f"(a TokenizedObservationSpace); {missing} missing from {obs_space!r}"
        )


def check_encoder_args(owner: str, obs_space, dropout: float, **sizes: int) -> None:
    """The argument checks every turn encoder makes: ``obs_space`` holds :data:`OBS_KEYS`, each
    of ``sizes`` (in order; they include ``d_model`` and ``n_heads``) is an int >= 1,
    ``d_model % n_heads == 0`` and ``0 <= dropout < 1``; else :class:`MetamonRLError` naming
    ``owner.<argument>``."""
    check_obs_space(owner, obs_space)
    for name, value in sizes.items():
        positive_int(owner, name, value)
    d_model, n_heads = sizes["d_model"], sizes["n_heads"]
    if d_model % n_heads:
        raise MetamonRLError(f"{owner}.d_model ({d_model}) must be divisible by n_heads ({n_heads})")
    if not 0.0 <= dropout < 1.0:
        raise MetamonRLError(f"{owner}.dropout must be in [0, 1), got {dropout!r}")


def vector_size(owner: str, obs_space: gym.spaces.Dict, key: str) -> int:
    """The length of the 1-D space ``obs_space[key]`` (W for text_tokens, N for numbers)."""
    space = obs_space[key]
    shape = getattr(space, "shape", None)
    if shape is None or len(shape) != 1:
        raise MetamonRLError(f"{owner} needs obs_space[{key!r}] to be a 1-D Box, got {space!r}")
    return int(shape[0])


def resolve_tokenizer(owner: str, tokenizer: Union[str, os.PathLike, PokemonTokenizer]) -> PokemonTokenizer:
    """A vocabulary name or file path loaded with :func:`~metamon.tokenizer.get_tokenizer`, or a
    ``PokemonTokenizer`` as is; anything else (or an empty vocabulary) is an error."""
    if isinstance(tokenizer, (str, os.PathLike)):
        tokenizer = get_tokenizer(tokenizer)
    if not isinstance(tokenizer, PokemonTokenizer):
        raise MetamonRLError(
            f"{owner}.tokenizer must be a vocabulary name, a vocabulary file or a "
            f"PokemonTokenizer, got {type(tokenizer).__name__}"
        )
    if len(tokenizer) < 1:
        raise MetamonRLError(f"{owner}.tokenizer has an empty vocabulary")
    return tokenizer


def check_inputs(owner: str, obs: dict, rl2s: torch.Tensor, n_words: int, n_numbers: int,
                 rl2_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(tokens (B, L, W) long, numbers (B, L, N) float)`` after checking every shape and dtype."""
    missing = [k for k in OBS_KEYS if k not in obs]
    if missing:
        raise MetamonRLError(
            f"{owner} expects observation keys {list(OBS_KEYS)}; missing {missing} (got {sorted(obs)})"
        )
    tokens, numbers = obs["text_tokens"], obs["numbers"]
    if tokens.dim() != 3 or tokens.shape[-1] != n_words:
        raise MetamonRLError(f"obs['text_tokens'] must be (B, L, {n_words}), got {tuple(tokens.shape)}")
    lead = tokens.shape[:2]
    if tuple(numbers.shape) != (*lead, n_numbers):
        raise MetamonRLError(f"obs['numbers'] must be {(*lead, n_numbers)}, got {tuple(numbers.shape)}")
    if tuple(rl2s.shape) != (*lead, rl2_dim):
        raise MetamonRLError(f"rl2s must be {(*lead, rl2_dim)}, got {tuple(rl2s.shape)}")
    if tokens.is_floating_point():
        raise MetamonRLError(f"obs['text_tokens'] must hold integers, got {tokens.dtype}")
    return tokens.long(), numbers.float()


def padded_steps(rl2s: torch.Tensor) -> torch.Tensor:
    """Bool (B, L): True where the timestep is AMAGO padding (every rl2 value is 4.0)."""
    return (rl2s == MAGIC_PAD_VAL).all(dim=-1)


def check_token_ids(owner: str, tokens: torch.Tensor, padded: torch.Tensor, vocab_size: int,
                    tokenizer_name) -> None:
    """Every id of a real (not padded) timestep must lie in ``-1 .. vocab_size - 1``."""
    bad = ((tokens < UNKNOWN_TOKEN) | (tokens >= vocab_size)) & ~padded.unsqueeze(-1)
    if bad.any():
        value = int(tokens[bad][0])
        raise MetamonRLError(
            f"obs['text_tokens'] holds id {value}, outside -1..{vocab_size - 1} of tokenizer "
            f"{tokenizer_name!r}: the observations were tokenized with another vocabulary (set "
            f"{owner}.tokenizer to the one the data used)"
        )


def mask_tokens(tokens: torch.Tensor) -> torch.Tensor:
    """metamon 1.4.0's ``token_mask_aug`` on ids (B, L, W) (module docstring); a new tensor."""
    B, L, W = tokens.shape
    device = tokens.device
    augment = torch.rand(B, 1, 1, device=device) >= TOKEN_MASK_SKIP_PROB
    rate = TOKEN_MASK_MAX_RATE * torch.rand(B, 1, 1, device=device)
    drop = augment & (torch.rand(B, L, W, device=device) < rate)
    return tokens.masked_fill(drop, UNKNOWN_TOKEN)
