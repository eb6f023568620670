"""Off-policy sequence agents: `Agent` (AMAGO) and `MultiTaskAgent` (AMAGO-2), and their losses.

Shapes: B batch, L observations per window, A actions, G gammas, C critics, K action samples,
D state dim, n two-hot bins. A batch holds L observations but only L−1 transitions.

Training forward (both agents):
    s = traj_encoder(tstep_encoder(obs, rl2s), time_idxs)          (B, L, D), one pass, no target encoder
    a_buf = clamp(actions, 0, 1), last action repeated once        (B, L, G, A)
    r = R·rews, d = dones                                          (B, L−1, 1, 1, 1)
    m_t = valid(rl2s[:, t+1])                                      (B, L−1)  (the step that holds a_t, r_t)
    y = r + γ·(1 − d)·Q̄(s_{t+1})       (targets, no grad; random-subset min/mean over critics;
                                         td_steps = n: the n-step return, see `td_targets`)
    critic loss  Agent: (PopArt(x(s_t, a_t)) − PopArt_norm(y))²    MultiTaskAgent: −Σ_j twohot(y)_j log p_j
                 + cql_alpha·(log Σ_{a legal} exp Q̂(s_t, a) − Q̂(s_t, a_t))  (CQL(H), Q̂ normalised; off at 0)
    actor loss   −online_coeff·PopArt(min_c V(s_t)) − offline_coeff·f(A_t)·log π(a_t|s_t)
    advantage    V(s) = Σ_a π(a|s)·Q(s, a), in the critic's output units, no grad:
                 "q" (AMAGO): A_t = Q(s_t, a_t) − V(s_t)
                 "td":        A_t = y_t − V(s_t), the one-step TD error of V (the data action's
                              effect read from the reward and next state it led to, so it needs
                              no per-action Q of the actions the data never takes)

The loss contract: ``forward`` returns an `AgentOutput` with the unreduced losses, the masks that
say which entries count (m_t and a_t known, see ``loading.known_action_mask``) and the logged
statistics; `weighted_loss` reduces it to the one optimised scalar.

Schedules around those losses (gin arguments of `Agent`; the defaults leave the losses exactly
as above). ``forward(batch, log_step, update=u)`` takes the number u of optimizer updates finished
before this batch (`Experiment` passes its ``grad_update_counter``, which checkpoints carry):

    critic warm-up     u < critic_warmup_steps: the actor loss is a constant 0 (no graph), so the
                       actor gets no gradient at all and AdamW skips its parameters (not even
                       weight decay moves them); the critic, PopArt and the encoders train as usual
    filter gate        f ≡ 1 (plain BC) until the critic's normalised TD loss is good enough, then
                       the configured filter, for good (`metamon.amago.filter_gate.FilterGate`)
    critic isolation   detach_critic_from_encoders: the critic sees stopgrad(s), so its loss
                       trains the critic head only; separate_critic_encoder: the critic reads
                       its own tstep/traj encoder pair (critic_tstep_encoder, critic_traj_encoder)
    advantage policy   advantage_policy = "initial": the π in V(s) is a frozen copy of the policy
                       as the run's weights were set (advantage_reference), not the policy being
                       trained, so the filter stops following the policy's own choices
    advantage ensemble advantage_ensemble = "max" / "min": the filter reads max_c / min_c of the
                       per-critic advantages A_c = Q_c(s, a) − V_c(s) instead of their mean, so a
                       binary filter drops a data action only when every critic rates it below
                       its V ("max"), or keeps it only when every critic rates it above ("min");
                       an int k takes the k-th largest: keep when at least k critics approve

On log steps ``forward`` also fills ``AgentOutput.steps`` (`metamon.amago.diagnostics`:
approval by action slot, critic argmax rate, normalised TD loss, ...) and their summary.

Only discrete action spaces are supported. All randomness (ensemble draws, action samples) uses
torch's global RNG.
"""

from __future__ import annotations

import itertools
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, NamedTuple, Optional

import gin
import torch
import torch.distributed as dist
from gymnasium import spaces
from torch import nn

from metamon.amago.damping import frozen_copy, refresh_reference_
from metamon.amago.diagnostics import StepDiagnostics, critic_argmax, normalized_td_loss, summarize
from metamon.amago.filter_gate import FilterGate
from metamon.amago.loading import Batch, known_action_mask, valid_step_mask
from metamon.amago.nets.actor_critic import Actor, NCritics, NCriticsTwoHot, PopArtLayer
from metamon.amago.nets.policy_dists import DiscreteLikeContinuous
from metamon.amago.reference import DampingConfig, PolicyDamping, PolicyNetwork
from metamon.amago.utils import AmagoError, masked_avg

DEFAULT_MULTIGAMMAS = (0.1, 0.9, 0.95, 0.97, 0.99, 0.995)
ADVANTAGE_ESTIMATORS = ("q", "td")
ADVANTAGE_POLICIES = ("current", "initial")
ADVANTAGE_ENSEMBLES = ("mean", "max", "min")
#: state-dict prefixes of run-start state, not policy weights: a run that starts from another
#: run's checkpoint (``Experiment.load_policy_weights``) keeps its own fresh schedule there and
#: takes its advantage reference from the loaded policy (``Agent.set_advantage_reference``)
SCHEDULE_STATE_PREFIXES = ("filter_gate.", "advantage_reference.")


@gin.configurable
class Multigammas:
    """Extra discount factors trained next to the rollout gamma when ``use_multigamma`` is on.

    gammas = (``discrete`` if use_multigamma else []) + [Agent.gamma]; ``continuous`` exists for
    configuration compatibility (continuous action spaces are not supported).
    """

    def __init__(self, discrete=DEFAULT_MULTIGAMMAS, continuous=DEFAULT_MULTIGAMMAS):
        self.discrete = [float(g) for g in discrete]
        self.continuous = [float(g) for g in continuous]


# ------------------------------------------------------------------------------------- filters


@gin.configurable
def binary_filter(adv: torch.Tensor, threshold: float = 0.0) -> torch.Tensor:
    """f(A) = 1[A > threshold] as float. adv (B, L−1, G, 1) -> same shape."""
    return (adv > threshold).to(adv.dtype)


@gin.configurable
def exp_filter(
    adv: torch.Tensor,
    beta: float = 1.0,
    clip_adv_low: Optional[float] = None,
    clip_adv_high: Optional[float] = None,
    clip_weights_low: Optional[float] = 1e-7,
    clip_weights_high: Optional[float] = None,
) -> torch.Tensor:
    """f(A) = clamp(exp(β·clamp(A, clip_adv_low, clip_adv_high)), clip_weights_low, clip_weights_high).

    Any bound left None is not applied. adv (B, L−1, G, 1) -> same shape.
    """
    if clip_adv_low is not None or clip_adv_high is not None:
        adv = adv.clamp(clip_adv_low, clip_adv_high)
    weights = torch.exp(beta * adv)
    if clip_weights_low is not None or clip_weights_high is not None:
        weights = weights.clamp(clip_weights_low, clip_weights_high)
    return weights


@gin.configurable
def leaky_relu_filter(
    adv: torch.Tensor,
    beta: float = 2.0,
    tau: float = 1e-2,
    neg_slope: float = 0.05,
    target_f0: float = 1e-2,
    clip_weights_low: Optional[float] = 1e-7,
    clip_weights_high: Optional[float] = 10.0,
) -> torch.Tensor:
    """f(A) = clamp(f0 + s·τ/β + LeakyReLU_s((A − τ)/β), low, high), s = neg_slope, f0 = target_f0.

    The offset makes f(0) = f0. adv (B, L−1, G, 1) -> same shape.
    """
    weights = (
        target_f0
        + neg_slope * tau / beta
        + torch.nn.functional.leaky_relu((adv - tau) / beta, negative_slope=neg_slope)
    )
    if clip_weights_low is not None or clip_weights_high is not None:
        weights = weights.clamp(clip_weights_low, clip_weights_high)
    return weights


# -------------------------------------------------------------------------------------- losses


def td_targets(
    rews: torch.Tensor,
    dones: torch.Tensor,
    gammas: torch.Tensor,
    next_values: torch.Tensor,
    steps: int = 1,
    valid: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """n-step TD targets, n = ``steps`` (1: AMAGO's y_{t,c,g} = r_t + γ_g·(1 − d_t)·Q̄_{c,g}(s_{t+1})).

    With V̄(s_{t+1}) = ``next_values[:, t]``, G⁰_t = V̄(s_t) and Gʲ_t = r_t + γ·(1 − d_t)·Gʲ⁻¹_{t+1}:

        y_t = Gⁿ_t = Σ_{k<m} γ^k r_{t+k} + γ^m V̄(s_{t+m})   (no term after a done)

    where m ≤ n stops at the window's last observation, and at the last valid transition when
    ``valid`` (B, L−1) bool marks the real ones (padding is never read): a window cut short
    bootstraps from the last state it holds. Past a done every later term is 0.

    rews (B, L−1, 1) (already scaled by R), dones (B, L−1, 1) bool, gammas (G,),
    next_values (B, L−1, C, G, 1) -> (B, L−1, C, G, 1).
    """
    r = rews[:, :, None, None, :]
    discount = gammas.view(1, 1, 1, -1, 1) * (1.0 - dones.to(next_values.dtype)[:, :, None, None, :])
    y = r + discount * next_values                  # G¹
    if steps > 1:
        if valid is None:
            valid = torch.ones(rews.shape[:2], dtype=torch.bool, device=rews.device)
        continues = valid[:, 1:, None, None, None]  # transition t+1 is real: follow it, else bootstrap
        for _ in range(steps - 1):                  # Gʲ⁺¹_t from Gʲ at s_{t+1}
            ahead = torch.where(continues, y[:, 1:], next_values[:, :-1])
            y = r + discount * torch.cat((ahead, next_values[:, -1:]), dim=1)
    return y


def ensemble_advantage(q: torch.Tensor, v: torch.Tensor, how: str | int) -> torch.Tensor:
    """A = reduce_c (q_c − v_c) with reduce = mean, max, min or the k-th largest over the C critics.

    q is the critics' Q(s_t, a_t) ("q" estimator) or the one-step TD target y_t = r_t +
    γ·(1 − d_t)·V̄(s_{t+1}) ("td": A_t = y_t − V(s_t), an unbiased estimate of the data
    action's advantage when V is exact), v the critics' V(s_t) = Σ_a π(a|s_t)·Q_c(s_t, a).

    "max": a binary filter 1[A > 0] drops a data action only when every critic rates it below
    its own V (A_c ≤ 0 for all c); "min": it keeps one only when every critic rates it above.
    An int k (1 ≤ k ≤ C) takes the k-th largest A_c, a quorum: 1[A > 0] keeps a data action when
    at least k critics rate it above their V ("max" is k = 1, "min" k = C).
    Each critic is compared with its own V, so an offset a critic adds to every action cancels.
    q (B, L−1, C or 1, G, 1) (1: a target shared by the critics), v (B, L−1, C, G, 1) -> (B, L−1, G, 1).
    """
    if how == "mean":  # = mean_c q_c − mean_c v_c, computed as AMAGO does
        return q.mean(dim=2) - v.mean(dim=2)
    adv = q - v
    C = adv.shape[2]
    k = {"max": 1, "min": C}.get(how, how)
    return adv.kthvalue(C - k + 1, dim=2).values  # the k-th largest = the (C − k + 1)-th smallest


def reduce_critic_ensemble(y: torch.Tensor, num_draws: int, use_min: bool) -> torch.Tensor:
    """REDQ-style reduction: for every (b, t, g) draw ``num_draws`` critic indices uniformly with
    replacement and take the min (``use_min``) or the mean of those critics' targets.

    y (B, L−1, C, G, 1) -> (B, L−1, 1, G, 1).
    """
    B, T, C, G, _ = y.shape
    idx = torch.randint(C, (B, T, num_draws, G, 1), device=y.device)
    picked = y.gather(2, idx)
    return picked.min(dim=2, keepdim=True).values if use_min else picked.mean(dim=2, keepdim=True)


def critic_loss_mse(q_pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """ℓ = (PopArt(x(s_t, a_t)) − stopgrad(ŷ_t))².  q_pred (B, L−1, C, G, 1), target (B, L−1, 1, G, 1)."""
    return (q_pred - target.detach()).pow(2)


def critic_loss_twohot(log_probs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """ℓ = −Σ_j label_j(y_t)·log p_j(s_t, a_t).  log_probs (B, L−1, C, G, n), labels (B, L−1, 1, G, n)
    -> (B, L−1, C, G, 1)."""
    return -(labels.detach() * log_probs).sum(dim=-1, keepdim=True)


def conservative_penalty(q_all: torch.Tensor, q_data: torch.Tensor, legal: Optional[torch.Tensor]) -> torch.Tensor:
    """CQL(H): ℓ = log Σ_{a legal} exp Q̂(s_t, a) − Q̂(s_t, a_t) (Kumar et al. 2020, "Conservative
    Q-Learning for Offline Reinforcement Learning").

    Q̂ in PopArt-normalised units. ℓ ≥ 0 (a log-sum-exp is at least its largest term); its
    gradient lowers every legal action's Q̂ in proportion to softmax(Q̂) and raises the data
    action's by 1, so actions the data rarely takes in s end up below those it takes. Illegal
    actions (``legal`` False; a step with no legal action keeps them all) are left out.
    q_all (B, L−1, C, G, A), q_data (B, L−1, C, G, 1), legal (B, L−1, A) bool or None
    -> (B, L−1, C, G, 1).
    """
    if legal is not None:
        legal = legal.bool() | ~legal.bool().any(dim=-1, keepdim=True)
        q_all = q_all.masked_fill(~legal[:, :, None, None, :], float("-inf"))
    return torch.logsumexp(q_all, dim=-1, keepdim=True) - q_data


def filtered_bc_loss(log_probs: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """ℓ = −stopgrad(f_t)·log π(a_t|s_t).  Both (B, L−1, G, 1)."""
    return -weights.detach() * log_probs


@dataclass(frozen=True)
class AgentOutput:
    """What one training forward returns (B batch, L observations, G gammas, C critics).

    actor        (B, L−1, G, 1) unreduced actor loss
    critic       (B, L−1, C, G, 1) unreduced critic loss, or None when the agent trains no critic
    actor_mask   (B, L−1, G, 1) bool: entry (b, t) counts iff position t+1 is real (not padding)
                 and a_t is known (``loading.known_action_mask``)
    critic_mask  (B, L−1, C, G, 1) bool, the same mask broadcast over critics (None with critic)
    metrics      scalar statistics for logging (filled on log steps, else empty)
    steps        per-step diagnostics of the counted entries (log steps only, else None)
    """

    actor: torch.Tensor
    critic: Optional[torch.Tensor]
    actor_mask: torch.Tensor
    critic_mask: Optional[torch.Tensor]
    metrics: dict
    steps: Optional[StepDiagnostics] = None


class CriticTerms(NamedTuple):
    """What an agent's critic pass returns (B batch, L observations, C critics, G gammas).

    loss          (B, L−1, C, G, 1) unreduced critic loss
    adv           (B, L−1, G, 1) filter input, no grad (None when the agent does not filter)
    online_value  (B, L−1, G, 1) the online (DPG) value, or None when online_coeff == 0
    td_sq_err     (B, L−1, C, G, 1) squared TD error in PopArt-normalised units, no grad
    td_target     (B, L−1, 1, G, 1) the PopArt-normalised TD target ŷ, no grad
    """

    loss: torch.Tensor
    adv: Optional[torch.Tensor]
    online_value: Optional[torch.Tensor]
    td_sq_err: torch.Tensor
    td_target: torch.Tensor


def weighted_loss(
    out: AgentOutput, critic_loss_weight: float
) -> tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
    """The optimised loss of one batch and its two terms (masked means over every entry):

        actor  = Σ actor·M_a / (Σ M_a + 1e-5)            (``utils.masked_avg``)
        critic = Σ critic·M_c / (Σ M_c + 1e-5)           (None when ``out.critic`` is None)
        total  = actor + critic_loss_weight·critic        (total = actor without a critic)

    Returns scalar tensors ``(total, actor, critic)``.
    """
    actor = masked_avg(out.actor, out.actor_mask)
    if out.critic is None:
        return actor, actor, None
    critic = masked_avg(out.critic, out.critic_mask)
    return actor + critic_loss_weight * critic, actor, critic


# --------------------------------------------------------------------------------------- agent


@contextmanager
def _eval_mode(module: nn.Module):
    """Run ``module`` in eval mode (no dropout, so no RNG draws), then restore its mode."""
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)


def _mean_over_processes(value: float) -> float:
    """The mean of a finite ``value`` over the processes of a torch.distributed run (NaN values
    count for nothing; NaN if no process has one); ``value`` itself outside one."""
    if not (dist.is_available() and dist.is_initialized()):
        return value
    finite = value == value
    pair = torch.tensor([value if finite else 0.0, float(finite)], dtype=torch.float64)
    if dist.get_backend() == "nccl":
        pair = pair.cuda()
    dist.all_reduce(pair)
    return float(pair[0] / pair[1]) if pair[1] > 0 else float("nan")


def _masked_stats(x: torch.Tensor, mask: torch.Tensor) -> tuple:
    """(mean, min, max) of x over the entries where mask (broadcast to x) is True; zeros if none."""
    vals = x[mask.expand_as(x)]
    if vals.numel() == 0:
        return 0.0, 0.0, 0.0
    return vals.mean().item(), vals.min().item(), vals.max().item()


@gin.configurable
class Agent(nn.Module):
    """AMAGO's off-policy agent: a shared sequence encoder, a per-gamma actor and a critic ensemble.

    Structural arguments (from ``build_agent``): ``obs_space`` (gym Dict), ``rl2_space`` (Box (A+1,)),
    ``action_space`` (gym Discrete, at most 256 actions), ``max_seq_len``, ``tstep_encoder_type``,
    ``traj_encoder_type``. Every other argument comes from its default or gin (AMAGO 3.1.1 defaults).
    ``online_coeff``, ``offline_coeff``, ``num_actions_for_value_in_actor_loss`` and
    ``critic_type`` default to None, which reads the class's ``class_defaults`` (Agent: 1.0, 0.1,
    1, NCritics), so a subclass changes those defaults without re-declaring the constructor.

    Sub-modules (state-dict prefixes): ``tstep_encoder``, ``traj_encoder``, ``critics``,
    ``target_critics``, ``maximized_critics``, ``actor``, ``target_actor``, ``popart``. Targets are
    hard copies at construction and are never trained (``requires_grad=False``).

    With discrete actions the Agent takes exact expectations over π, so
    ``num_actions_for_value_in_critic_loss`` / ``_actor_loss`` are accepted for configuration
    compatibility but have no effect (AMAGO forces both to 1 here).

    PopArt statistics are only updated in training mode, so an eval-mode forward (validation loss)
    leaves the agent unchanged.

    ``damping`` (a :class:`~metamon.amago.reference.DampingConfig`, default None = off) adds
    β·KL(π_θ ‖ π_ref) − η·H(π_θ) to the actor loss against a frozen reference copy of the policy
    network (:mod:`metamon.amago.reference`); :meth:`reset_reference` snapshots the current weights
    and :meth:`after_update` does the per-update bookkeeping (both called by the Experiment).

    Schedules (module docstring; defaults = AMAGO's behaviour, the state dict is unchanged):

    * ``critic_warmup_steps`` N: the first N updates train only the critic (and, unless it is
      detached, the encoders through the critic loss); the actor loss is 0 with no graph. An
      enabled filter gate cannot open before update N.
    * ``filter_gate_td_threshold`` / ``filter_gate_min_steps`` / ``filter_gate_max_steps`` /
      ``filter_gate_ema_decay``: the `FilterGate` (sub-module ``filter_gate``) keeps the filter
      weight at 1 until its criterion holds on the test-time head's normalised TD loss; a gate
      with threshold None and min_steps 0 is always open.
    * ``detach_critic_from_encoders``: the critic loss trains only the critic head (it sees
      stopgrad(s)); with a warm-up the critic then learns on the initial encoder's features.
    * ``separate_critic_encoder``: the critic reads its own ``critic_tstep_encoder`` /
      ``critic_traj_encoder`` (same types, trained by the critic loss only; one more encoder
      pass per batch). Not together with ``detach_critic_from_encoders``.
    * ``advantage_estimator``: what the filter reads (module docstring): ``"q"`` (AMAGO's
      Q(s, a) − V(s)) or ``"td"`` (the one-step TD error y − V(s)).
    * ``advantage_policy``: the π of the filter's V(s) = Σ_a π(a|s) Q(s, a). ``"current"``
      (AMAGO): the policy being trained, so a data action is approved more often once the policy
      already agrees with it. ``"initial"``: the sub-module ``advantage_reference``, a frozen copy
      of (tstep_encoder, traj_encoder, actor) taken when the run's weights are set
      (:meth:`set_advantage_reference`: construction, or the checkpoint a run starts from). It is
      saved with the weights, so a resumed run keeps it. A data action is then approved when the
      critic rates it above what the starting policy would do, whatever the policy has learnt
      since (one step of policy improvement, as in Brandfonbrener et al. 2021, "Offline RL
      without off-policy evaluation"). Needs ``online_coeff = 0``: the online term's value must
      follow the current policy. The critic's TD target is unchanged (the target actor's π). The
      copy costs one more policy forward per batch and the policy's memory again (with a Gemma
      turn encoder, a second Gemma).
    * ``advantage_ensemble``: how the C critics' advantages A_c = Q_c(s, a) − V_c(s) (or, with
      ``"td"``, y − V_c(s)) become the filter's A: ``"mean"`` (AMAGO), ``"max"``, ``"min"`` or
      an int k, the k-th largest (:func:`ensemble_advantage`). With a binary filter, ``"max"``
      drops a data action only when the critics agree it is worse than V: where they disagree
      (the values of actions the data never takes are not identified, so independently
      initialised critics can differ there) the action keeps its behaviour-cloning weight; k
      keeps it when at least k of the C critics rate it above their V.

    * ``td_steps`` n: the critic's target is the n-step return (:func:`td_targets`: n rewards,
      then the target critics' V̄ under the target actor, cut at a done or the window's end;
      1 is AMAGO's one-step target). With ``advantage_estimator = "td"`` the filter then reads
      the n-step TD error.
    * ``cql_alpha`` α > 0: the critic loss gains α·:func:`conservative_penalty` (CQL(H)) per
      critic and gamma, in PopArt-normalised units. Each critic output is otherwise trained only
      where the data takes its action, so the values of actions a player rarely takes in a state
      are extrapolations (offsets per action slot); the penalty pulls them below the data's.
      0 (the default) is AMAGO's critic loss.

    Measured (docs/results.md, fourteenth follow-up): with only a win/loss reward, n-step
    targets and this penalty make the critic rank actions by how often the data take them,
    not by their value (on a known-values task whose logged player prefers a worse action they
    fall below chance); with per-step rewards the critic ranks by value. A filter built on them
    then keeps the data's most frequent choices.

    In training mode a forward needs ``update`` (the updates finished before it) when a warm-up
    or an enabled gate is configured.
    """

    class_defaults = {
        "online_coeff": 1.0,
        "offline_coeff": 0.1,
        "num_actions_for_value_in_actor_loss": 1,
        "critic_type": NCritics,
    }

    def __init__(
        self,
        obs_space: spaces.Dict,
        rl2_space: spaces.Box,
        action_space: spaces.Discrete,
        max_seq_len: int,
        tstep_encoder_type: Callable,
        traj_encoder_type: Callable,
        num_critics: int = 4,
        num_critics_td: int = 2,
        online_coeff: Optional[float] = None,
        offline_coeff: Optional[float] = None,
        gamma: float = 0.999,
        reward_multiplier: float = 10.0,
        tau: float = 0.003,
        fake_filter: bool = False,
        num_actions_for_value_in_critic_loss: int = 1,
        num_actions_for_value_in_actor_loss: Optional[int] = None,
        fbc_filter_func: Callable = binary_filter,
        popart: bool = True,
        use_target_actor: bool = True,
        use_multigamma: bool = True,
        actor_type: Callable = Actor,
        critic_type: Optional[Callable] = None,
        pass_obs_keys_to_actor: Optional[list] = None,
        damping: Optional[DampingConfig] = None,
        critic_warmup_steps: int = 0,
        filter_gate_td_threshold: Optional[float] = None,
        filter_gate_min_steps: int = 0,
        filter_gate_max_steps: Optional[int] = None,
        filter_gate_ema_decay: float = 0.95,
        detach_critic_from_encoders: bool = False,
        separate_critic_encoder: bool = False,
        advantage_estimator: str = "q",
        advantage_policy: str = "current",
        advantage_ensemble: str | int = "mean",
        td_steps: int = 1,
        cql_alpha: float = 0.0,
    ):
        super().__init__()
        defaults = self.class_defaults
        online_coeff = defaults["online_coeff"] if online_coeff is None else online_coeff
        offline_coeff = defaults["offline_coeff"] if offline_coeff is None else offline_coeff
        if num_actions_for_value_in_actor_loss is None:
            num_actions_for_value_in_actor_loss = defaults["num_actions_for_value_in_actor_loss"]
        critic_type = defaults["critic_type"] if critic_type is None else critic_type
        if not isinstance(action_space, spaces.Discrete):
            raise AmagoError(
                f"{type(self).__name__} supports only gym Discrete action spaces, got {action_space!r}"
            )
        if action_space.n > 256:
            raise AmagoError(f"Discrete action spaces are capped at 256 actions (uint8), got {action_space.n}")
        if num_critics < 1 or num_critics_td < 1:
            raise AmagoError(f"num_critics and num_critics_td must be >= 1, got {num_critics}, {num_critics_td}")
        if online_coeff < 0 or offline_coeff < 0 or online_coeff == offline_coeff == 0:
            raise AmagoError(
                "online_coeff and offline_coeff must be >= 0 and not both 0, "
                f"got online_coeff={online_coeff}, offline_coeff={offline_coeff}"
            )
        if not 0.0 < tau <= 1.0:
            raise AmagoError(f"tau must be in (0, 1], got {tau}")
        if min(num_actions_for_value_in_critic_loss, num_actions_for_value_in_actor_loss) < 1:
            raise AmagoError("num_actions_for_value_in_critic_loss / _actor_loss must be >= 1")
        if not isinstance(critic_warmup_steps, int) or critic_warmup_steps < 0:
            raise AmagoError(f"critic_warmup_steps must be an int >= 0, got {critic_warmup_steps!r}")
        if not isinstance(td_steps, int) or isinstance(td_steps, bool) or td_steps < 1:
            raise AmagoError(f"td_steps must be an int >= 1, got {td_steps!r}")
        if not isinstance(cql_alpha, (int, float)) or isinstance(cql_alpha, bool) or not 0 <= cql_alpha < float("inf"):
            raise AmagoError(f"cql_alpha must be a finite number >= 0, got {cql_alpha!r}")
        if detach_critic_from_encoders and separate_critic_encoder:
            raise AmagoError("choose one of detach_critic_from_encoders and separate_critic_encoder")
        if advantage_estimator not in ADVANTAGE_ESTIMATORS:
            raise AmagoError(f"advantage_estimator must be one of {ADVANTAGE_ESTIMATORS}, got {advantage_estimator!r}")
        if advantage_policy not in ADVANTAGE_POLICIES:
            raise AmagoError(f"advantage_policy must be one of {ADVANTAGE_POLICIES}, got {advantage_policy!r}")
        quorum = isinstance(advantage_ensemble, int) and not isinstance(advantage_ensemble, bool)
        if not (advantage_ensemble in ADVANTAGE_ENSEMBLES or (quorum and 1 <= advantage_ensemble <= num_critics)):
            raise AmagoError(
                f"advantage_ensemble must be one of {ADVANTAGE_ENSEMBLES} or an int k in [1, num_critics="
                f"{num_critics}] (at least k critics), got {advantage_ensemble!r}"
            )
        if advantage_policy != "current" and (online_coeff > 0 or fake_filter):
            raise AmagoError(
                f"advantage_policy={advantage_policy!r} changes only the filter's V: it needs online_coeff=0 "
                f"and a filter (fake_filter=False), got online_coeff={online_coeff}, fake_filter={fake_filter}"
            )
        gate_set = filter_gate_td_threshold is not None or filter_gate_min_steps > 0
        if fake_filter and online_coeff == 0 and (
            critic_warmup_steps or gate_set or detach_critic_from_encoders or separate_critic_encoder
        ):
            raise AmagoError(
                "critic_warmup_steps, the filter gate and the critic-encoder options need a critic, but "
                "fake_filter=True with online_coeff=0 trains none (imitation learning)"
            )

        self.obs_space, self.rl2_space, self.action_space = obs_space, rl2_space, action_space
        self.action_dim = int(action_space.n)
        self.discrete = True
        self.max_seq_len = max_seq_len
        self.num_critics = num_critics
        self.num_critics_td = num_critics_td
        self.online_coeff = online_coeff
        self.offline_coeff = offline_coeff
        self.gamma = gamma
        self.reward_multiplier = reward_multiplier
        self.tau = tau
        self.fake_filter = fake_filter
        self.num_actions_for_value_in_critic_loss = num_actions_for_value_in_critic_loss
        self.num_actions_for_value_in_actor_loss = num_actions_for_value_in_actor_loss
        self.fbc_filter_func = fbc_filter_func
        self.use_target_actor = use_target_actor
        self.use_multigamma = use_multigamma
        self.pass_obs_keys_to_actor = list(pass_obs_keys_to_actor or [])

        gammas = (Multigammas().discrete if use_multigamma else []) + [gamma]
        if any(not 0.0 <= g < 1.0 for g in gammas):
            raise AmagoError(f"every gamma must be in [0, 1), got {gammas}")
        self.register_buffer("gammas", torch.tensor(gammas, dtype=torch.float32), persistent=False)

        self.tstep_encoder = tstep_encoder_type(obs_space=obs_space, rl2_space=rl2_space)
        self.traj_encoder = traj_encoder_type(tstep_dim=self.tstep_encoder.emb_dim, max_seq_len=max_seq_len)
        self.emb_dim = self.traj_encoder.emb_dim

        def critic():
            return critic_type(
                state_dim=self.emb_dim,
                action_dim=self.action_dim,
                discrete=True,
                gammas=self.gammas,
                num_critics=num_critics,
            )

        def actor():
            return actor_type(state_dim=self.emb_dim, action_dim=self.action_dim, discrete=True, gammas=self.gammas)

        self.critics, self.target_critics, self.maximized_critics = critic(), critic(), critic()
        self.actor, self.target_actor = actor(), actor()
        self.popart = PopArtLayer(gammas=len(gammas), enabled=popart)
        if online_coeff > 0 and not self.actor.actions_differentiable:
            raise AmagoError("online_coeff > 0 needs an actor whose actions are differentiable")
        for target, online in (
            (self.target_critics, self.critics),
            (self.maximized_critics, self.critics),
            (self.target_actor, self.actor),
        ):
            target.load_state_dict(online.state_dict())
            target.requires_grad_(False)
        self.critic_warmup_steps = critic_warmup_steps
        self.detach_critic_from_encoders = bool(detach_critic_from_encoders)
        self.separate_critic_encoder = bool(separate_critic_encoder)
        self.advantage_estimator = advantage_estimator
        self.advantage_ensemble = advantage_ensemble
        self.td_steps = td_steps
        self.cql_alpha = float(cql_alpha)
        self.filter_gate = FilterGate(
            td_threshold=filter_gate_td_threshold,
            min_steps=max(filter_gate_min_steps, critic_warmup_steps) if gate_set else 0,
            max_steps=filter_gate_max_steps,
            ema_decay=filter_gate_ema_decay,
        )
        if self.separate_critic_encoder:  # built last: the shared modules' initialisation is unchanged
            self.critic_tstep_encoder = tstep_encoder_type(obs_space=obs_space, rl2_space=rl2_space)
            self.critic_traj_encoder = traj_encoder_type(
                tstep_dim=self.critic_tstep_encoder.emb_dim, max_seq_len=max_seq_len
            )
            if self.critic_traj_encoder.emb_dim != self.emb_dim:
                raise AmagoError("the critic encoder's emb_dim differs from the shared encoder's")
        self.advantage_policy = advantage_policy
        self.advantage_reference = None
        if advantage_policy == "initial":  # built after every other module: their initialisation is unchanged
            self.advantage_reference = frozen_copy(self.policy_network())
        # damping (metamon.amago.reference): plain attribute, so the reference copies it holds are
        # not sub-modules (not in parameters(), the optimizer or the saved weights)
        self.damping = None if damping is None else PolicyDamping(damping)

    # ----------------------------------------------------------------------- damping

    def policy_network(self) -> PolicyNetwork:
        """A view (no copy) of (tstep_encoder, traj_encoder, actor): the network damping copies."""
        return PolicyNetwork(self.tstep_encoder, self.traj_encoder, self.actor)

    def reset_reference(self) -> None:
        """Damping's reference (and its previous/EMA copies) ← the current weights; no-op
        without damping. The Experiment calls it whenever the agent's weights are set."""
        if self.damping is not None:
            self.damping.reset(self.policy_network())

    def set_advantage_reference(self) -> None:
        """``advantage_reference`` ← the current policy network (``advantage_policy="initial"``;
        no-op otherwise). The Experiment calls it when a run starts from loaded weights, not on
        a resume (the resumed state holds the run's reference)."""
        if self.advantage_reference is not None:
            refresh_reference_(self.advantage_reference, self.policy_network())

    def _advantage_pi(self, pi, batch: Batch, straight: dict):
        """The π of the filter's V: ``pi`` itself, or the frozen reference's (no grad, eval mode)."""
        ref = self.advantage_reference
        if ref is None:
            return pi
        with torch.no_grad(), _eval_mode(ref):
            s_ref, _ = ref.traj_encoder(ref.tstep_encoder(batch.obs, batch.rl2s), batch.time_idxs)
            return self._policy(ref.actor(s_ref, straight_from_obs=straight))

    def after_update(self, batch: Batch) -> None:
        """Damping's bookkeeping after an optimizer update (``reference.PolicyDamping.after_update``);
        no-op without damping."""
        if self.damping is not None:
            self.damping.after_update(self.policy_network(), batch, self._straight_from_obs(batch.obs))

    # ----------------------------------------------------------------------- public helpers

    @property
    def trainable_params(self) -> Iterator[nn.Parameter]:
        """Parameters the optimizer updates: those of tstep_encoder, traj_encoder, critics and
        actor (and the critic's own encoders with ``separate_critic_encoder``) that require
        gradients (a frozen or LoRA-wrapped backbone contributes only its trainable part)."""
        modules = (self.tstep_encoder, self.traj_encoder, self.critics, self.actor, *self.critic_encoders)
        return (p for p in itertools.chain.from_iterable(m.parameters() for m in modules) if p.requires_grad)

    @property
    def critic_encoders(self) -> tuple:
        """(critic_tstep_encoder, critic_traj_encoder) with ``separate_critic_encoder``, else ()."""
        if not self.separate_critic_encoder:
            return ()
        return (self.critic_tstep_encoder, self.critic_traj_encoder)

    @torch.no_grad()
    def soft_sync_targets(self) -> None:
        """θ_tgt ← (1 − τ)·θ_tgt + τ·θ for target_critics and target_actor; maximized_critics ← critics."""
        for target, online in ((self.target_critics, self.critics), (self.target_actor, self.actor)):
            for p_tgt, p in zip(target.parameters(), online.parameters()):
                p_tgt.mul_(1.0 - self.tau).add_(p, alpha=self.tau)
        for p_max, p in zip(self.maximized_critics.parameters(), self.critics.parameters()):
            p_max.copy_(p)

    def _straight_from_obs(self, obs: dict) -> dict:
        missing = [k for k in self.pass_obs_keys_to_actor if k not in obs]
        if missing:
            raise AmagoError(
                f"pass_obs_keys_to_actor names {missing}, which the observation does not contain "
                f"(available keys: {sorted(obs)})"
            )
        return {k: obs[k] for k in self.pass_obs_keys_to_actor}

    def _policy(self, dist):
        """The view of the actor's distribution the losses use (Agent: as is)."""
        return dist

    @torch.no_grad()
    def get_actions(
        self,
        obs: dict,
        rl2s: torch.Tensor,
        time_idxs: torch.Tensor,
        hidden_state=None,
        sample: bool = True,
    ):
        """Rollout step: obs dict of (N, L, …), rl2s (N, L, A+1), time_idxs (N, L, 1) long.

        Returns (actions (N, L, 1) uint8 for the last (test-time) gamma, new hidden state).
        ``sample=False`` takes the argmax of the clipped probabilities p̂.
        """
        emb = self.tstep_encoder(obs, rl2s)
        state, hidden_state = self.traj_encoder(emb, time_idxs, hidden_state=hidden_state)
        dist = self.actor(state, straight_from_obs=self._straight_from_obs(obs))
        actions = dist.sample() if sample else dist.probs.argmax(dim=-1, keepdim=True)  # (N, L, G, 1)
        return actions[:, :, -1].to(torch.uint8), hidden_state

    # ------------------------------------------------------------------------ training pass

    @property
    def uses_critic(self) -> bool:
        """False for pure behaviour cloning (fake_filter and online_coeff == 0): the critic is skipped."""
        return not (self.fake_filter and self.online_coeff == 0)

    def forward(self, batch: Batch, log_step: bool, update: Optional[int] = None) -> AgentOutput:
        """Unreduced losses, their masks and (on log steps) statistics for one batch.

        ``update``: the optimizer updates finished before this batch (`Experiment` passes its
        ``grad_update_counter``); required in training mode with a critic warm-up or an enabled
        filter gate, ignored otherwise.
        """
        log_dict = {} if log_step else None
        emb = self.tstep_encoder(batch.obs, batch.rl2s, log_dict=log_dict)
        s, _ = self.traj_encoder(emb, batch.time_idxs, log_dict=log_dict)  # (B, L, D)
        B, L, _ = s.shape
        G = len(self.gammas)
        actions = batch.actions.clamp(0.0, 1.0)                                   # pads -> all ones
        a_buf = torch.cat((actions, actions[:, -1:]), dim=1)                       # (B, L, A)
        a_buf = a_buf.unsqueeze(2).expand(B, L, G, self.action_dim)               # (B, L, G, A)
        mask = valid_step_mask(batch.rl2s)[:, 1:]                                  # (B, L−1)
        trained = mask & known_action_mask(batch)                                  # (B, L−1)
        rews = self.reward_multiplier * batch.rews                                 # (B, L−1, 1)
        straight = self._straight_from_obs(batch.obs)
        pi = self._policy(self.actor(s, log_dict=log_dict, straight_from_obs=straight))
        log_pi = self._buffer_log_prob(pi, a_buf)[:, :-1]                          # (B, L−1, G, 1)
        warming_up = self._critic_warmup_active(update)

        info = {} if log_step else None
        actor_loss = torch.zeros(B, L - 1, G, 1, device=s.device, dtype=log_pi.dtype)
        critic, s_critic = None, None
        if self.uses_critic:
            s_critic = self._critic_state(batch, s)
            pi_v = self._advantage_pi(pi, batch, straight)
            critic = self._critic_terms(s, s_critic, a_buf, pi_v, rews, batch.dones, mask, straight, info)
        gate_open = self._step_filter_gate(critic, trained, update)
        if self.online_coeff > 0 and not warming_up:
            actor_loss = actor_loss - self.online_coeff * critic.online_value
        if self.fake_filter:
            weights = torch.ones_like(log_pi)
        else:
            with torch.no_grad():
                weights = self.fbc_filter_func(critic.adv)
            if not gate_open:
                weights = torch.ones_like(weights)
        if self.offline_coeff > 0 and not warming_up:
            actor_loss = actor_loss + self.offline_coeff * filtered_bc_loss(log_pi, weights)
        if self.damping is not None and not warming_up:  # β·KL(π_θ ‖ π_ref) − η·H(π_θ), reference.py
            actor_loss = actor_loss + self.damping.actor_term(self.policy_network(), s, batch, straight, info)

        steps = None
        if log_step:
            self._log_policy(info, pi, mask)
            self._log_filter(info, log_pi, weights, mask)
            self._log_rewards(info, batch, mask)
            info.update(log_dict)
            steps = self._step_diagnostics(s_critic, pi, log_pi, a_buf, critic, trained, straight)
            info.update(summarize(steps, self.gammas.tolist(), self.action_dim))
            info["Critic Warm-up Active"] = float(warming_up)
            info["Filter Gate Open"] = float(gate_open)
            if self.filter_gate.enabled:
                info["Filter Gate TD EMA"] = float(self.filter_gate.td_ema)
        critic_mask = None
        if critic is not None:
            critic_mask = trained[:, :, None, None, None].expand(critic.loss.shape)
        return AgentOutput(
            actor=actor_loss,
            critic=None if critic is None else critic.loss,
            actor_mask=trained[:, :, None, None].expand(actor_loss.shape),
            critic_mask=critic_mask,
            metrics=info or {},
            steps=steps,
        )

    # ------------------------------------------------------------------ schedules and views

    def _critic_warmup_active(self, update: Optional[int]) -> bool:
        """True while training within the first ``critic_warmup_steps`` updates."""
        if self.critic_warmup_steps == 0 or not self.training:
            return False
        if update is None:
            raise AmagoError(
                "critic_warmup_steps > 0 needs the update index: call agent(batch, log_step, update=u) "
                "(Experiment passes its grad_update_counter)"
            )
        return update < self.critic_warmup_steps

    def _step_filter_gate(self, critic: Optional[CriticTerms], trained: torch.Tensor, update: Optional[int]) -> bool:
        """Advance the filter gate with this batch's test-head normalised TD loss (training mode
        only; averaged over processes in a distributed run) and say whether it is open."""
        gate = self.filter_gate
        if not gate.enabled or critic is None or not self.training:
            return gate.open
        if update is None:
            raise AmagoError(
                "the filter gate needs the update index: call agent(batch, log_step, update=u) "
                "(Experiment passes its grad_update_counter)"
            )
        with torch.no_grad():
            sq_err = critic.td_sq_err[:, :, :, -1:, 0][trained]                    # (N, C, 1)
            target = critic.td_target[:, :, 0, -1:, 0][trained]                     # (N, 1)
            td = float(normalized_td_loss(sq_err, target)[0])
        return gate.step(_mean_over_processes(td), update)

    def _critic_state(self, batch: Batch, s: torch.Tensor) -> torch.Tensor:
        """The state the critic reads (B, L, D): s, stopgrad(s), or its own encoders' output."""
        if self.separate_critic_encoder:
            emb = self.critic_tstep_encoder(batch.obs, batch.rl2s)
            return self.critic_traj_encoder(emb, batch.time_idxs)[0]
        return s.detach() if self.detach_critic_from_encoders else s

    def _q_every_action(self, s: torch.Tensor) -> torch.Tensor:
        """Raw critic outputs for every action: s (B, T, D) -> (B, T, C, G, A) (with gradient)."""
        B, T, _ = s.shape
        A, G = self.action_dim, len(self.gammas)
        eye = torch.eye(A, device=s.device, dtype=s.dtype)
        onehots = eye[:, None, None, None, :].expand(A, B, T, G, A).reshape(1, A * B, T, G, A)
        q = self.critics(s.repeat(A, 1, 1), onehots)[0]                            # (A·B, T, C, G, 1)
        return q.view(A, B, T, q.shape[2], G).permute(1, 2, 3, 4, 0)

    @torch.no_grad()
    def _q_all_actions(self, s: torch.Tensor) -> torch.Tensor:
        """`_q_every_action` without gradient, critics in eval mode (diagnostics)."""
        with _eval_mode(self.critics):
            return self._q_every_action(s)

    def _conservative(self, q_all: torch.Tensor, q_data: torch.Tensor, straight: dict) -> torch.Tensor:
        """:func:`conservative_penalty` over the actor's legal actions at t < L−1."""
        legal = self.actor.legal_mask(straight)
        return conservative_penalty(q_all, q_data, None if legal is None else legal[:, :-1])

    @torch.no_grad()
    def _step_diagnostics(self, s_critic, pi, log_pi, a_buf, critic, trained, straight) -> StepDiagnostics:
        """`StepDiagnostics` of the counted steps (``trained``, (B, L−1)) of this batch."""
        m = trained
        steps = StepDiagnostics(
            action=a_buf[:, :-1, 0].argmax(dim=-1)[m],
            log_pi=log_pi[..., 0].detach()[m],
            entropy=pi.entropy()[:, :-1].detach()[m],
            policy_argmax=pi.probs[:, :-1].argmax(dim=-1)[m],
            probs=pi.probs[:, :-1].detach()[m],
        )
        if critic is None:
            return steps
        if critic.adv is not None:
            steps.adv = critic.adv[..., 0][m]
        steps.td_sq_err = critic.td_sq_err[..., 0][m]
        steps.td_target = critic.td_target[:, :, 0, :, 0][m]
        q_all = self._q_all_actions(s_critic[:, :-1].detach()).mean(dim=2)         # (B, L−1, G, A)
        legal = self.actor.legal_mask(straight)
        steps.critic_argmax = critic_argmax(q_all[m], None if legal is None else legal[:, :-1][m])
        return steps

    def _buffer_log_prob(self, pi, a_buf: torch.Tensor) -> torch.Tensor:
        """log π̂_g(argmax a_buf) -> (B, L, G, 1); padded all-ones rows read as index 0
        (a validating one-hot distribution would reject them; padding is masked anyway)."""
        return pi.log_prob(a_buf.argmax(dim=-1, keepdim=True))

    def _target_policy(self, s: torch.Tensor, straight: dict):
        actor = self.target_actor if self.use_target_actor else self.actor
        return self._policy(actor(s, straight_from_obs=straight))

    def _critic_terms(self, s, sc, a_buf, pi, rews, dones, mask, straight, info) -> CriticTerms:
        """NCritics losses with PopArt (exact expectations over π̂ for discrete actions).

        ``s`` is the actor's state (for the target policy), ``sc`` the critic's (``s`` itself
        unless the critic is detached or has its own encoder). Returns `CriticTerms`: the loss,
        the advantage (raw scale, no grad), the online value PopArt(min_c V(s_t)) with gradient
        into π only (None when online_coeff == 0) and the normalised TD error and target.
        """
        q_raw = self.critics(sc[:, :-1], a_buf[None, :, :-1])[0]                  # (B, L−1, C, G, 1)
        probs = pi.probs if self.online_coeff > 0 else pi.probs.detach()           # V only filters then
        v_raw = self.maximized_critics(sc.detach(), probs[None])[0]                # (B, L, C, G, 1)
        with torch.no_grad():
            pi_tgt = self._target_policy(s, straight)
            q_next = self.target_critics(sc, pi_tgt.probs[None])[0]                # (B, L, C, G, 1)
            q_next = self.popart(q_next, normalized=False)[:, 1:]
            y = reduce_critic_ensemble(
                td_targets(rews, dones, self.gammas, q_next, self.td_steps, mask),
                self.num_critics_td,
                use_min=self.online_coeff > 0,
            )                                                                       # (B, L−1, 1, G, 1)
            td_mask = mask[:, :, None, None, None].expand_as(y)
            if self.training:
                self.popart.update_stats(y, td_mask)
            y_norm = self.popart.normalize_values(y)
        q_norm = self.popart(q_raw)
        critic_loss = critic_loss_mse(q_norm, y_norm)
        if self.cql_alpha > 0:
            q_all = self.popart(self._q_every_action(sc[:, :-1]))                   # (B, L−1, C, G, A)
            critic_loss = critic_loss + self.cql_alpha * self._conservative(q_all, q_norm, straight)
        with torch.no_grad():  # in the critic's output units x (before PopArt's affine w·x + b)
            q_side = self.popart.inverse(y_norm) if self.advantage_estimator == "td" else q_raw
            adv = ensemble_advantage(q_side, v_raw[:, :-1], self.advantage_ensemble)
        online_value = self.popart(v_raw.min(dim=2).values)[:, :-1] if self.online_coeff > 0 else None
        if info is not None:
            self._log_td(info, self.popart(q_raw, normalized=False).detach(), q_raw.detach(), y, mask)
        return CriticTerms(critic_loss, adv, online_value, critic_loss.detach(), y_norm)

    # ------------------------------------------------------------------------------ logging

    def _log_policy(self, info: dict, pi, mask: torch.Tensor) -> None:
        """Policy statistics at the test-time gamma over valid positions t < L−1."""
        probs = pi.probs[:, :-1, -1].detach()                                       # (B, L−1, A)
        entropy = pi.entropy()[:, :-1, -1].detach()
        info["Policy Per-timestep Entropy (test-time gamma)"] = _masked_stats(entropy, mask)[0]
        info["Policy Per-timstep Low Prob. (test-time gamma)"] = _masked_stats(probs.min(-1).values, mask)[0]
        high_mean, _, high_max = _masked_stats(probs.max(-1).values, mask)
        info["Policy Per-timestep High Prob. (test-time gamma)"] = high_mean
        info["Policy Overall Highest Prob."] = high_max

    def _log_filter(self, info: dict, log_pi, weights, mask) -> None:
        m = mask[:, :, None, None]
        lp_mean, lp_min, lp_max = _masked_stats(log_pi.detach(), m)
        info["Minimum Action Logprob"] = lp_min
        info["Maximum Action Logprob"] = lp_max
        info["Mean Action Logprob"] = lp_mean
        f_mean, f_min, f_max = _masked_stats(weights, m)
        info["Filter Max"], info["Filter Min"], info["Filter Mean"] = f_max, f_min, f_mean
        flat = weights.flatten().float()
        info["Filter 95th Percentile"] = torch.quantile(flat, 0.95).item()
        info["Filter 75th Percentile"] = torch.quantile(flat, 0.75).item()
        approved = (weights > 0).float()
        info["Pct. of Actions Approved by Binary FBC Filter (All Gammas)"] = 100.0 * _masked_stats(approved, m)[0]
        for g, gamma in enumerate(self.gammas.tolist()):
            info[f"Pct. of Actions Approved by Binary FBC (gamma = {gamma: .3f})"] = (
                100.0 * _masked_stats(approved[:, :, g], mask[:, :, None])[0]
            )

    _log_rewards_scaled = False  # Agent logs rewards in raw units, MultiTaskAgent in R-scaled units

    def _log_rewards(self, info: dict, batch: Batch, mask) -> None:
        rews = batch.rews * (self.reward_multiplier if self._log_rewards_scaled else 1.0)
        mean, lo, hi = _masked_stats(rews, mask[:, :, None])
        info["Mean Reward (in training sequences)"] = mean
        info["Min Reward (in training sequences)"] = lo
        info["Max Reward (in training sequences)"] = hi
        info["Sequences Containing Done"] = float((batch.dones[..., 0] & mask).any(dim=1).sum().item())

    def _log_td(self, info: dict, q_rescaled, q_raw, y, mask) -> None:
        """q_* (B, L−1, C, G, 1), y (B, L−1, 1, G, 1), mask (B, L−1)."""
        m = mask[:, :, None, None, None]
        for g, gamma in enumerate(self.gammas.tolist()):
            info[f"Q(s, a) (global mean, rescaled) gamma={gamma:.3f}"] = _masked_stats(
                q_rescaled[:, :, :, g], m[..., 0])[0]
            info[f"Q(s,a) (global mean, raw scale) gamma={gamma:.3f}"] = _masked_stats(q_raw[:, :, :, g], m[..., 0])[0]
            ens_std = q_raw[:, :, :, g].std(dim=2) if q_raw.shape[2] > 1 else torch.zeros_like(q_raw[:, :, 0, g])
            info[f"Q(s, a) Ensemble Stdev. (raw scale, ignoring padding) gamma={gamma:.3f}"] = _masked_stats(
                ens_std, mask[:, :, None]
            )[0]
        valid_q = q_rescaled[m.expand_as(q_rescaled)]
        info["Q(s, a) (global std, rescaled, ignoring padding)"] = valid_q.std().item() if valid_q.numel() > 1 else 0.0
        y_mean, y_min, y_max = _masked_stats(y, m)
        info["Min TD Target"], info["Max TD Target"] = y_min, y_max
        info["TD Target (test-time gamma)"] = _masked_stats(y[:, :, :, -1], m[..., 0])[0]
        for name in ("mu", "nu", "w", "b"):
            info[f"PopArt {name} (mean over gamma)"] = getattr(self.popart, name).mean().item()
        info["PopArt sigma (mean over gamma)"] = self.popart.sigma.mean().item()


@gin.configurable
class MultiTaskAgent(Agent):
    """AMAGO-2 agent: a two-hot classification critic and K-sample value estimates.

    Differences from `Agent` (same constructor, sub-modules and masks):
    * critic loss = −Σ_j twohot(y)_j·log p_j(s_t, a_t) (cross-entropy, no PopArt in the loss;
      PopArt statistics still track y for logging and the online term);
    * π is viewed as `DiscreteLikeContinuous` (one-hot actions); the critic takes
      (state, φ(γ), action), so E_π[Q] is estimated with K samples:
        Q̄(s_{t+1}) = mean_k decode(target_critics(s_{t+1}, a′_k)),  a′_k ~ π_tgt, k ≤ K_c
        V(s_t)      = mean_{k,c} decode(critics(s_t, a_k)),           a_k ~ π,     k ≤ K_a
        A_t         = mean_c decode(critics(s_t, a_t)) − V(s_t)       (R-scaled return units)
    * online term: −PopArt_norm(min_c mean_k decode(maximized_critics(stopgrad s, ã_k))) with ã_k
      straight-through Gumbel-softmax samples.
    Defaults (``class_defaults``): online_coeff 0, offline_coeff 1, K_a = 3, critic_type
    NCriticsTwoHot. The constructor is Agent's, so gin applies ``MultiTaskAgent.x`` bindings first,
    then ``Agent.x`` bindings for the arguments still unset, then these defaults.
    """

    class_defaults = {
        **Agent.class_defaults,
        "online_coeff": 0.0,
        "offline_coeff": 1.0,
        "num_actions_for_value_in_actor_loss": 3,
        "critic_type": NCriticsTwoHot,
    }
    _log_rewards_scaled = True

    def _policy(self, dist):
        return DiscreteLikeContinuous(dist)

    def _buffer_log_prob(self, pi, a_buf: torch.Tensor) -> torch.Tensor:
        """log π̂_g at the one-hot buffer action's argmax -> (B, L, G, 1) (never validated:
        padded all-ones rows would be rejected; padding is masked anyway)."""
        return pi.log_prob(a_buf).unsqueeze(-1)

    def _decode(self, critics, s: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """decode(critics(s, a)) for actions (K, B, L, G, A) -> values (K, B, L, C, G, 1)."""
        return critics.bin_dist_to_raw_vals(critics(s, actions))

    def _critic_terms(self, s, sc, a_buf, pi, rews, dones, mask, straight, info) -> CriticTerms:
        """Two-hot critic loss (B, L−1, C, G, 1), advantage (B, L−1, G, 1) or None under fake_filter,
        online value (B, L−1, G, 1) or None when online_coeff == 0, and the TD error and target
        of the decoded values in PopArt-normalised units. ``s`` is the actor's state, ``sc``
        the critic's (see `Agent._critic_terms`)."""
        dist_data = self.critics(sc, a_buf[None])                                   # batch (1, B, L, C, G)
        with torch.no_grad():
            q_data = self.critics.bin_dist_to_raw_vals(dist_data)[0]               # (B, L, C, G, 1)
            a_next = self._target_policy(s, straight).sample((self.num_actions_for_value_in_critic_loss,))
            q_next = self._decode(self.target_critics, sc, a_next).mean(dim=0)[:, 1:]  # (B, L−1, C, G, 1)
            y = reduce_critic_ensemble(
                td_targets(rews, dones, self.gammas, q_next, self.td_steps, mask),
                self.num_critics_td,
                use_min=self.online_coeff > 0,
            )                                                                       # (B, L−1, 1, G, 1)
            if self.training:
                self.popart.update_stats(y, mask[:, :, None, None, None].expand_as(y))
            labels = self.critics.raw_vals_to_labels(y)                             # (B, L−1, 1, G, n)
            adv = None
            if not self.fake_filter:
                a_pi = pi.sample((self.num_actions_for_value_in_actor_loss,))       # (K, B, L, G, A)
                v = self._decode(self.critics, sc, a_pi).mean(dim=0)               # (B, L, C, G, 1)
                q_side = y if self.advantage_estimator == "td" else q_data[:, :-1]
                adv = ensemble_advantage(q_side, v[:, :-1], self.advantage_ensemble)
            y_norm = self.popart.normalize_values(y)
            td_sq_err = (self.popart.normalize_values(q_data[:, :-1]) - y_norm).pow(2)
        critic_loss = critic_loss_twohot(dist_data.logits[0, :, :-1], labels)
        if self.cql_alpha > 0:  # on the decoded values, in PopArt-normalised units
            normalize = self.popart.normalize_values
            q_all = normalize(self._q_every_action(sc[:, :-1]))                    # (B, L−1, C, G, A)
            q_taken = normalize(self.critics.bin_dist_to_raw_vals(dist_data)[0, :, :-1])
            critic_loss = critic_loss + self.cql_alpha * self._conservative(q_all, q_taken, straight)
        online_value = None
        if self.online_coeff > 0:
            a_rs = pi.rsample((self.num_actions_for_value_in_actor_loss,))         # straight-through
            v_on = self._decode(self.maximized_critics, sc.detach(), a_rs).mean(dim=0).min(dim=2).values
            online_value = self.popart.normalize_values(v_on)[:, :-1]
        if info is not None:
            q = q_data[:, :-1]
            self._log_td(info, q, q, y, mask)
        return CriticTerms(critic_loss, adv, online_value, td_sq_err, y_norm)

    def _q_every_action(self, s: torch.Tensor) -> torch.Tensor:
        """Decoded critic values for every action: s (B, T, D) -> (B, T, C, G, A) (with gradient)."""
        B, T, _ = s.shape
        A, G = self.action_dim, len(self.gammas)
        eye = torch.eye(A, device=s.device, dtype=s.dtype)
        onehots = eye[:, None, None, None, :].expand(A, B, T, G, A)
        q = self._decode(self.critics, s, onehots)                                  # (A, B, T, C, G, 1)
        return q[..., 0].permute(1, 2, 3, 4, 0)
