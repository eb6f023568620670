"""``MetamonDiscrete``: metamon's policy output for the masked actors, a temperature on AMAGO's
clipped categorical.

With z the logits (..., A) (illegal actions already at −inf when the actor masks) and T =
``temperature``::

    p  = softmax(z / T)
    p~ = clamp(p, 0.001, 0.99)                  (``clip_prob_low`` / ``clip_prob_high``)
    p^ = p~ / stopgrad(Σ_a p~)

which is :class:`metamon.amago.nets.policy_dists.Discrete` applied to z / T (so T = 1 is exactly
``Discrete``, strict ``legal_mask`` included). No parameters. ``MetamonDiscrete.temperature`` is a
gin binding (metamon's registry binds it from ``initialize_agent(action_temperature=...)``); T < 1
sharpens the policy, T > 1 flattens it.
"""

from __future__ import annotations

from typing import Optional

import gin
import torch

from metamon.amago.nets.policy_dists import Discrete, DiscreteActionDist
from metamon.rl import MetamonRLError

__all__ = ["MetamonDiscrete"]


@gin.configurable
class MetamonDiscrete(Discrete):
    """:class:`~metamon.amago.nets.policy_dists.Discrete` on logits / ``temperature`` (module docstring).

    Args:
        d_action: A.
        temperature: T > 0 (default 1).
        clip_prob_low, clip_prob_high: as for ``Discrete``.
    """

    def __init__(self, d_action: int, temperature: float = 1.0, clip_prob_low: float = 0.001,
                 clip_prob_high: float = 0.99):
        super().__init__(d_action, clip_prob_low=clip_prob_low, clip_prob_high=clip_prob_high)
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature > 0:
            raise MetamonRLError(f"MetamonDiscrete.temperature must be a number > 0, got {temperature!r}")
        self.temperature = float(temperature)

    def __call__(self, logits: torch.Tensor, log_dict: Optional[dict] = None,
                 legal_mask: Optional[torch.Tensor] = None) -> DiscreteActionDist:
        if self.temperature != 1.0:
            logits = logits / self.temperature
        return super().__call__(logits, log_dict=log_dict, legal_mask=legal_mask)
