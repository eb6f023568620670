"""Timestep encoders: embed each (observation, previous reward and action) pair on its own.

Shapes: B batch, L timesteps, A action dim (rl2s have A + 1 features), D_t = ``emb_dim``.
"""

import abc
import math
from typing import Optional

import gin
import torch
from gymnasium import spaces
from torch import nn

from metamon.amago.nets.utils import MLP, InputNorm, Normalization, add_activation_log
from metamon.amago.utils import AmagoError


class TstepEncoder(nn.Module, abc.ABC):
    """Per-timestep encoder (never mixes information across L).

    Built by the agent as ``tstep_encoder_type(obs_space=..., rl2_space=...)`` (a gym
    ``spaces.Dict`` and the ``Box(A + 1)`` of [previous reward, previous action]); every other
    argument comes from its default or gin.

    ``forward(obs: dict[str, (B, L, *shape)], rl2s (B, L, A+1), log_dict=None) -> (B, L, emb_dim)``
    delegates to :meth:`inner_forward`. ``obs`` may hold keys that are not in ``obs_space``;
    encoders use the keys they need and ignore the rest.
    """

    def __init__(self, obs_space: spaces.Dict, rl2_space: spaces.Box):
        super().__init__()
        self.obs_space = obs_space
        self.rl2_space = rl2_space

    @property
    @abc.abstractmethod
    def emb_dim(self) -> int:
        """D_t, the last dimension of the output."""

    @abc.abstractmethod
    def inner_forward(self, obs: dict, rl2s: torch.Tensor, log_dict: Optional[dict] = None) -> torch.Tensor:
        """The encoder itself: same arguments and result as :meth:`forward`."""

    def forward(self, obs: dict, rl2s: torch.Tensor, log_dict: Optional[dict] = None) -> torch.Tensor:
        out = self.inner_forward(obs, rl2s, log_dict=log_dict)
        if out.shape[-1] != self.emb_dim:
            raise AmagoError(
                f"{type(self).__name__}.inner_forward returned last dim {out.shape[-1]}, but emb_dim is {self.emb_dim}"
            )
        return out


@gin.configurable
class FFTstepEncoder(TstepEncoder):
    """Flatten observations + rl2s → InputNorm → MLP → norm.

    x = concat(flatten(obs[k]) for k in sorted(keys), rl2s)   (B, L, Σ|k| + A + 1)
    out = out_norm(base(in_norm(x)))                           (B, L, d_output)

    ``keys`` are ``specify_obs_keys`` or every key of ``obs_space``, in alphabetical order; an
    observation of shape (B, L) counts as one feature. ``hide_rl2s`` zeroes the rl2s (shapes
    unchanged). ``normalize_inputs=False`` skips the InputNorm. ``base`` is an MLP with
    ``n_layers`` hidden layers of width ``d_hidden``.
    """

    def __init__(
        self,
        obs_space: spaces.Dict,
        rl2_space: spaces.Box,
        n_layers: int = 2,
        d_hidden: int = 512,
        d_output: int = 256,
        norm: str = "layer",
        activation: str = "leaky_relu",
        hide_rl2s: bool = False,
        normalize_inputs: bool = True,
        specify_obs_keys: Optional[list] = None,
    ):
        super().__init__(obs_space, rl2_space)
        keys = sorted(specify_obs_keys if specify_obs_keys is not None else obs_space.spaces.keys())
        missing = [k for k in keys if k not in obs_space.spaces]
        if missing:
            raise AmagoError(
                f"FFTstepEncoder.specify_obs_keys names {missing}, which are not in the observation "
                f"space (keys: {sorted(obs_space.spaces)})"
            )
        self.obs_keys = keys
        self.hide_rl2s = hide_rl2s
        self.d_output = d_output
        flat_dim = sum(math.prod(obs_space[k].shape) for k in keys) + math.prod(rl2_space.shape)
        self.in_norm = InputNorm(flat_dim, skip=not normalize_inputs)
        self.base = MLP(flat_dim, d_hidden, n_layers, d_output, activation=activation)
        self.out_norm = Normalization(norm, d_output)

    @property
    def emb_dim(self) -> int:
        return self.d_output

    def inner_forward(self, obs, rl2s, log_dict=None):
        batch, length = rl2s.shape[:2]
        flat = []
        for key in self.obs_keys:
            if key not in obs:
                raise AmagoError(f"FFTstepEncoder: observation key {key!r} is missing from obs (has {sorted(obs)})")
            flat.append(obs[key].reshape(batch, length, -1).to(rl2s.dtype))
        flat.append(torch.zeros_like(rl2s) if self.hide_rl2s else rl2s)
        x = self.in_norm(torch.cat(flat, dim=-1))
        out = self.out_norm(self.base(x))
        add_activation_log("ff-tstep-out", out, log_dict)
        return out
