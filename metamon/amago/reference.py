"""Damping in training: the agent's frozen reference policy, the β·KL − η·H actor term, and the
per-update bookkeeping (per-update KL, adaptive controller, EMA copy, reference refresh).

The math lives in :mod:`metamon.amago.damping` (pure functions); this module applies it to an
:class:`~metamon.amago.agent.Agent`. Off unless gin gives the agent a :class:`DampingConfig`
(``Agent.damping = @DampingConfig()``, see ``metamon/configs/training/vanilla_selfplay_*.gin``).

**The policy network** is (tstep_encoder, traj_encoder, actor): logits
z(s) = actor(traj_encoder(tstep_encoder(obs, rl2s), time_idxs)) of shape (B, L, G, A), one
distribution per gamma head. The legal set of a state is where the logits are finite (a masked
actor puts −inf on illegal actions; rows with no legal action stay finite and are padding or
terminal states, masked anyway). Distributions are the softmax of the logits over the legal set
(the actor's sampling clip ``clip_prob_low/high`` is not part of the damped distribution).

**The reference** π_ref is a frozen copy of the *whole* policy network (:func:`damping.frozen_copy`
of encoders and actor: the encoders drift under the same KL), evaluated in eval mode under
``torch.no_grad`` on the same batch. It is *not* a registered sub-module of the agent: it is not
in ``agent.parameters()``, ``trainable_params``, the optimizer, or the saved weights / training
state. :meth:`PolicyDamping.reset` snapshots the agent's *current* weights; the Experiment calls
it (``Agent.reset_reference``) after building the agent, after loading weights
(``--init_from_checkpoint``) and after resuming a checkpoint, so the reference is never a random
initialisation that the loaded weights replaced (the seeds' bug). A resumed run therefore restarts
its reference from the resumed weights (the reference at the kill is not stored).

**The actor term** per state t ∈ 0..L−2 (the actor loss's indices; the same mask: position t+1
real and a_t known), per gamma head g::

    ℓ_damp(t, g) = β(k) · KL(π_θ,g(·|s_t) ‖ π_ref,g(·|s_t)) − η(k) · H(π_θ,g(·|s_t))

added to the unreduced actor loss, so ``weighted_loss`` counts it once. k = optimizer updates done.
β(k) = min(β_base (1 + k/T_β)^(−α_β), β_max) with β_base = β₀, or the adaptive controller's β;
η(k) = max(η₀ (1 + k/T_η)^(−α_η), η_min). The current logits come from a second pass of the
actor head on the same trajectory embedding (the Agent's distribution holds clipped
probabilities, not logits), so with actor dropout the KL sees its own dropout draw.

**After every optimizer update** (:meth:`PolicyDamping.after_update`, called by the Experiment):

* per-update KL = masked mean of KL(π_θ(k+1) ‖ π_θ(k)) on the update's last micro-batch, both in
  eval mode (θ(k) is a frozen ``previous`` copy kept in step with the policy); it feeds the
  :class:`~metamon.amago.damping.AdaptiveKLController` (when ``adaptive``), whose LR multiplier
  the Experiment's ``LambdaLR`` reads (composed with warm-up) from the next update on;
* the EMA copy (``refresh_mode="ema"``) moves toward the policy;
* every ``refresh_every_updates`` updates the reference becomes the current policy (or its EMA):
  the design that converges in self-play (``metamon.selfplay.matrix_games``, method ``damped``).

Logged (on log steps, under train-update): "Damping/KL to Reference" (drift), "Damping/Entropy",
"Damping/KL per Update", "Damping/KL Coefficient" (β), "Damping/Entropy Coefficient" (η),
"Damping/LR Multiplier", "Damping/Updates", "Damping/Refreshes"; the Experiment logs
"Learning Rate" (the LR the optimizer used).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Optional

import gin
import torch
from torch import nn

from metamon.amago.damping import (
    AdaptiveKLController,
    RefreshSchedule,
    damping_penalty,
    ema_update_,
    entropy_coef_schedule,
    frozen_copy,
    kl_coef_schedule,
    masked_reverse_kl,
    refresh_reference_,
)
from metamon.amago.loading import Batch, known_action_mask, valid_step_mask
from metamon.amago.utils import AmagoError, masked_avg

__all__ = ["DampingConfig", "PolicyNetwork", "PolicyDamping", "loss_mask"]


@gin.configurable
@dataclass
class DampingConfig:
    """Gin knobs of damping (names follow the seeds' ``MetamonAMAGOExperiment`` parameters).

    KL weight β: ``kl_coef_init`` β₀, ``kl_coef_max`` (cap), ``kl_power_alpha`` α_β,
    ``kl_schedule_steps`` T_β (updates). Entropy bonus η: ``ent_coef_init`` η₀, ``ent_coef_min``
    (floor), ``ent_power_alpha`` α_η, ``ent_schedule_steps`` T_η. Adaptive controller (on with
    ``adaptive``; it then owns β's base and an LR multiplier m): ``target_kl_per_step`` κ* (the
    per-update KL it aims at), ``kl_tolerance`` τ (band [κ*/τ, κ*τ]), ``kl_coef_growth_factor`` /
    ``kl_coef_decay_factor`` (β × when above / below the band), ``lr_shrink_factor`` /
    ``lr_grow_factor`` (m × when above / below), ``min_lr_multiplier`` / ``max_lr_multiplier``
    (m's bounds: the seeds' absolute min_lr / max_lr divided by the base learning rate),
    ``adapt_interval`` (updates averaged per decision), ``couple_lr_to_kl_coef`` (m = β₀/β).
    Reference refresh: ``refresh_every_updates`` (None: never inside a run; a generational loop
    starts each generation from a fresh reference), ``refresh_mode`` "current" or "ema",
    ``ema_decay``. ``track_update_kl`` computes the per-update KL (forced on by ``adaptive``).
    """

    kl_coef_init: float = 0.05
    kl_coef_max: float = 0.5
    kl_power_alpha: float = 0.0
    kl_schedule_steps: float = 1e6
    ent_coef_init: float = 0.0
    ent_coef_min: float = 0.0
    ent_power_alpha: float = 0.0
    ent_schedule_steps: float = 1e6
    adaptive: bool = False
    target_kl_per_step: float = 0.01
    kl_tolerance: float = 1.5
    kl_coef_growth_factor: float = 1.5
    kl_coef_decay_factor: float = 0.9
    lr_shrink_factor: float = 0.5
    lr_grow_factor: float = 1.1
    min_lr_multiplier: float = 0.01
    max_lr_multiplier: float = 10.0
    adapt_interval: int = 1
    couple_lr_to_kl_coef: bool = False
    refresh_every_updates: Optional[int] = None
    refresh_mode: Literal["current", "ema"] = "current"
    ema_decay: float = 0.99
    track_update_kl: bool = True

    def __post_init__(self):
        if self.kl_coef_init < 0 or self.ent_coef_init < 0 or self.ent_coef_min < 0:
            raise AmagoError("DampingConfig: kl_coef_init, ent_coef_init and ent_coef_min must be >= 0")
        if self.kl_coef_max < self.kl_coef_init:
            raise AmagoError(
                f"DampingConfig.kl_coef_max ({self.kl_coef_max}) must be >= kl_coef_init ({self.kl_coef_init})")
        if self.adaptive and self.kl_coef_init <= 0:
            raise AmagoError("DampingConfig.adaptive needs kl_coef_init > 0 (the controller scales β)")


def loss_mask(batch: Batch) -> torch.Tensor:
    """(B, L−1) bool: the actor loss's mask (position t+1 real and a_t known)."""
    return valid_step_mask(batch.rl2s)[:, 1:] & known_action_mask(batch)


class PolicyNetwork(nn.Module):
    """(tstep_encoder, traj_encoder, actor) as one module: :meth:`logits` of a batch.

    Built on an agent's own sub-modules it is a view (no copy); :func:`damping.frozen_copy` of it
    is a reference.
    """

    def __init__(self, tstep_encoder: nn.Module, traj_encoder: nn.Module, actor: nn.Module):
        super().__init__()
        self.tstep_encoder, self.traj_encoder, self.actor = tstep_encoder, traj_encoder, actor

    def logits(self, batch: Batch, straight_from_obs: dict) -> torch.Tensor:
        """(B, L, G, A) logits of every position of ``batch``."""
        emb = self.tstep_encoder(batch.obs, batch.rl2s)
        s, _ = self.traj_encoder(emb, batch.time_idxs)
        return self.actor.actor_network_forward(s, straight_from_obs=straight_from_obs)


class PolicyDamping:
    """Runtime damping state of one agent (module docstring): the reference, the ``previous``
    and EMA copies, the controller and the update counter. Not an ``nn.Module``."""

    def __init__(self, config: DampingConfig):
        self.config = config
        c = config
        self.kl_schedule = kl_coef_schedule(c.kl_coef_init, c.kl_schedule_steps, c.kl_power_alpha, c.kl_coef_max)
        self.ent_schedule = entropy_coef_schedule(
            c.ent_coef_init, c.ent_schedule_steps, c.ent_power_alpha, c.ent_coef_min)
        self.controller: Optional[AdaptiveKLController] = None
        if c.adaptive:
            self.controller = AdaptiveKLController(
                target_kl=c.target_kl_per_step, beta=c.kl_coef_init, tolerance=c.kl_tolerance,
                beta_up=c.kl_coef_growth_factor, beta_down=c.kl_coef_decay_factor,
                beta_max=c.kl_coef_max, lr_down=c.lr_shrink_factor, lr_up=c.lr_grow_factor,
                lr_min=c.min_lr_multiplier, lr_max=c.max_lr_multiplier,
                couple_lr_to_beta=c.couple_lr_to_kl_coef, interval=c.adapt_interval,
            )
        self.refresh = RefreshSchedule(c.refresh_every_updates, c.refresh_mode, c.ema_decay)
        self.updates = 0
        self.refreshes = 0
        self.last_update_kl = math.nan
        self.reference: Optional[PolicyNetwork] = None
        self.previous: Optional[PolicyNetwork] = None
        self.ema: Optional[PolicyNetwork] = None

    # --------------------------------------------------------------------------- coefficients

    @property
    def tracks_update_kl(self) -> bool:
        return self.config.track_update_kl or self.controller is not None

    def kl_coef(self) -> float:
        """β(k): the power law with base β₀, or the controller's β (capped at kl_coef_max)."""
        base = None if self.controller is None else self.controller.beta
        return self.kl_schedule(self.updates, init=base)

    def entropy_coef(self) -> float:
        """η(k)."""
        return self.ent_schedule(self.updates)

    @property
    def lr_multiplier(self) -> float:
        return 1.0 if self.controller is None else self.controller.lr_multiplier

    # ----------------------------------------------------------------------------- reference

    def reset(self, current: PolicyNetwork) -> None:
        """Reference, previous and EMA copies ← frozen copies of ``current`` (its weights now)."""
        self.reference = frozen_copy(current)
        self.previous = frozen_copy(current) if self.tracks_update_kl else None
        self.ema = frozen_copy(current) if self.refresh.mode == "ema" else None

    def _require_reference(self) -> PolicyNetwork:
        if self.reference is None:
            raise AmagoError("damping has no reference policy yet: call Agent.reset_reference() "
                             "after the agent's weights are set (the Experiment does)")
        return self.reference

    # -------------------------------------------------------------------------------- the term

    def actor_term(
        self, current: PolicyNetwork, s: torch.Tensor, batch: Batch, straight: dict, info: Optional[dict]
    ) -> torch.Tensor:
        """ℓ_damp (B, L−1, G, 1) for the actor loss; ``s`` (B, L, D) is the agent's trajectory
        embedding of ``batch`` (with its graph). Fills ``info`` (log steps) with the metrics."""
        reference = self._require_reference()
        logits = current.actor.actor_network_forward(s, straight_from_obs=straight)[:, :-1]   # (B, L−1, G, A)
        with torch.no_grad():
            ref_logits = reference.logits(batch, straight)[:, :-1]
        legal = torch.isfinite(logits)
        beta, eta = self.kl_coef(), self.entropy_coef()
        penalty, kl, entropy = damping_penalty(logits, ref_logits, legal, beta, eta)        # (B, L−1, G)
        if info is not None:
            mask = loss_mask(batch)[:, :, None].expand_as(kl)
            info["Damping/KL to Reference"] = masked_avg(kl.detach(), mask).item()
            info["Damping/Entropy"] = masked_avg(entropy.detach(), mask).item()
            info["Damping/KL per Update"] = self.last_update_kl
            info["Damping/KL Coefficient"] = beta
            info["Damping/Entropy Coefficient"] = eta
            info["Damping/LR Multiplier"] = self.lr_multiplier
            info["Damping/Updates"] = self.updates
            info["Damping/Refreshes"] = self.refreshes
        return penalty.unsqueeze(-1)

    # ------------------------------------------------------------------------ after an update

    @torch.no_grad()
    def after_update(self, current: PolicyNetwork, batch: Batch, straight: dict) -> None:
        """Bookkeeping after one optimizer update whose last micro-batch was ``batch``
        (module docstring): per-update KL → controller, EMA, refresh, counter."""
        self.updates += 1
        if self.tracks_update_kl:
            was_training = current.actor.training  # the view itself is always in train mode
            current.eval()
            new = current.logits(batch, straight)[:, :-1]
            current.train(was_training)
            old = self.previous.logits(batch, straight)[:, :-1]
            mask = loss_mask(batch)[:, :, None].expand(new.shape[:3])
            kl = masked_reverse_kl(new, old, torch.isfinite(new))
            self.last_update_kl = float(masked_avg(kl, mask))
            refresh_reference_(self.previous, current)
            if self.controller is not None:
                self.controller.update(self.last_update_kl)
        if self.ema is not None:
            ema_update_(self.ema, current, self.refresh.ema_decay)
        if self.refresh.due(self.updates):
            refresh_reference_(self._require_reference(), self.ema if self.ema is not None else current)
            self.refreshes += 1

    # ------------------------------------------------------------------------------ resume

    def state_dict(self) -> dict:
        """Counters and controller state (JSON-able); the reference weights are not included."""
        state = {"updates": self.updates, "refreshes": self.refreshes}
        if self.controller is not None:
            state["controller"] = self.controller.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        self.updates = int(state["updates"])
        self.refreshes = int(state["refreshes"])
        if self.controller is not None and "controller" in state:
            self.controller.load_state_dict(state["controller"])
