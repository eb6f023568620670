"""Actor heads that never choose an action the observation marks illegal.

``MetamonMaskedActor(Actor)`` and ``MetamonMaskedResidualActor(ResidualActor)`` run their base
network to get logits ``z`` (B, L, G, A) and read ``m = straight_from_obs["illegal_actions"]``
(bool (B, L, A), True = illegal), which the Agent passes when gin sets
``Agent.pass_obs_keys_to_actor = ["illegal_actions"]`` (or ``MultiTaskAgent....``). Then::

    m'     = m & ~all_a(m)              rows where every action is illegal stay unmasked
                                        (battle over, edge cases, and AMAGO padding: 4 -> True)
    z'     = where(m'[:, :, None, :], -inf, z)       broadcast over the G gammas

The policy distribution is :class:`~metamon.rl.policy_dists.MetamonDiscrete` (metamon's): it
divides z' by ``MetamonDiscrete.temperature`` (gin, default 1, where it equals AMAGO's
``Discrete``), computes p = softmax, clamps it to [clip_prob_low, clip_prob_high] and
renormalises:

* ``strict_mask=True`` (default, our decision): :meth:`legal_mask` also hands ``~m'`` to the
  distribution, which zeroes the clamped probabilities of illegal actions before renormalising,
  so an illegal action has probability exactly 0 and is never sampled (its log-prob is
  log(eps), about -15.9; ``MetamonAMAGODataset`` marks every recorded action legal, so behaviour
  cloning never targets one). This deliberately departs from AMAGO and changes BC gradients.
* ``strict_mask=False`` reproduces the reference: the clamp lifts each illegal action back to
  ``clip_prob_low`` (0.001) before renormalising, so illegal actions keep about 0.1 % each.

``mask_illegal_actions=False`` turns both off (a plain actor that does not need the key).

State-dict keys are AMAGO's (under the agent's ``actor.`` prefix): ``base.in_layer``,
``base.layers.{j}``, ``base.out_layer`` for the MLP actor; ``inp.in_layer``, ``inp.out_layer``,
``residual_blocks.{b}.{0,1.norm,3,4.norm}``, ``out`` for the residual one.
"""

from __future__ import annotations

from typing import Optional

import gin
import torch

from metamon.amago.nets.actor_critic import Actor, ResidualActor
from metamon.rl import ILLEGAL_ACTIONS_KEY, MetamonRLError
from metamon.rl.policy_dists import MetamonDiscrete

__all__ = ["MetamonMaskedActor", "MetamonMaskedResidualActor"]


class _IllegalActionMasking:
    """Masking mixed into an AMAGO actor head, before it in the MRO (module docstring)."""

    def __init__(
        self,
        state_dim: int,
        action_dim: int,
        discrete: bool,
        gammas: torch.Tensor,
        mask_illegal_actions: bool = True,
        strict_mask: bool = True,
        **actor_kwargs,
    ):
        super().__init__(
            state_dim=state_dim, action_dim=action_dim, discrete=discrete, gammas=gammas,
            **actor_kwargs,
        )
        self.mask_illegal_actions = bool(mask_illegal_actions)
        self.strict_mask = bool(strict_mask)
        self.policy_dist = MetamonDiscrete(d_action=action_dim)  # same input_dimension A as Discrete

    def _effective_illegal(self, straight_from_obs: Optional[dict], batch_shape=None) -> torch.Tensor:
        """m' (B, L, A) bool: the illegal mask with all-illegal rows cleared."""
        if not straight_from_obs or ILLEGAL_ACTIONS_KEY not in straight_from_obs:
            got = sorted(straight_from_obs) if straight_from_obs else []
            raise MetamonRLError(
                f"{type(self).__name__} needs obs[{ILLEGAL_ACTIONS_KEY!r}] (got keys {got}): set "
                f'Agent.pass_obs_keys_to_actor = ["{ILLEGAL_ACTIONS_KEY}"] (or '
                "MultiTaskAgent.pass_obs_keys_to_actor) in gin, and make sure the observations "
                f"contain {ILLEGAL_ACTIONS_KEY!r}"
            )
        illegal = straight_from_obs[ILLEGAL_ACTIONS_KEY]
        shape = tuple(illegal.shape)
        lead = shape[:2] if batch_shape is None else tuple(batch_shape)
        if len(shape) != 3 or shape != (*lead, self.action_dim):
            raise MetamonRLError(
                f"obs[{ILLEGAL_ACTIONS_KEY!r}] must have shape (B, L, A) = "
                f"{(*lead, self.action_dim)}, got {shape}"
            )
        illegal = illegal.bool()
        return illegal & ~illegal.all(dim=-1, keepdim=True)

    def actor_network_forward(self, state, log_dict=None, straight_from_obs=None) -> torch.Tensor:
        """The base head's logits z (B, L, G, A), with -inf at illegal actions when masking."""
        logits = super().actor_network_forward(state, log_dict, straight_from_obs)
        if not self.mask_illegal_actions:
            return logits
        illegal = self._effective_illegal(straight_from_obs, logits.shape[:2])
        return logits.masked_fill(illegal.unsqueeze(2), float("-inf"))

    def legal_mask(self, straight_from_obs: Optional[dict]) -> Optional[torch.Tensor]:
        """``~m'`` (B, L, A) bool when masking strictly, else ``None``."""
        if not (self.mask_illegal_actions and self.strict_mask):
            return None
        return ~self._effective_illegal(straight_from_obs)


@gin.configurable
class MetamonMaskedActor(_IllegalActionMasking, Actor):
    """AMAGO's MLP ``Actor`` with illegal-action masking (module docstring).

    ``MetamonMaskedActor(state_dim, action_dim, discrete, gammas, mask_illegal_actions=True,
    strict_mask=True, **actor_kwargs)``: the first four come from the Agent;
    ``mask_illegal_actions`` sets illegal logits to -inf; ``strict_mask`` also hands the legal
    mask to the distribution so illegal actions get probability exactly 0 (False keeps the
    reference's clipped leak); ``actor_kwargs`` are ``Actor``'s keywords (``n_layers``,
    ``d_hidden``, ``activation``, ``dropout_p``, ...), usually from gin.
    """


@gin.configurable
class MetamonMaskedResidualActor(_IllegalActionMasking, ResidualActor):
    """AMAGO's ``ResidualActor`` with illegal-action masking (same extra arguments as
    :class:`MetamonMaskedActor`; ``actor_kwargs`` are ``ResidualActor``'s keywords such as
    ``feature_dim``, ``residual_ff_dim``, ``residual_blocks``)."""
