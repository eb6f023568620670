"""Dynamic damping: a KL pull toward a frozen reference policy, an entropy bonus, their
coefficient schedules, an adaptive controller and the reference-refresh policy.

Generic over discrete policies (no game knowledge). Shapes: ``(..., A)`` logits or log-probs
over A actions with a bool ``legal_mask`` broadcastable to them (True = legal); per-state
results have shape ``(...)``. Every distribution is renormalised over the legal set, so
illegal actions never enter a sum (no 0·(−∞)) and receive exactly zero gradient.

The regularised actor objective this module supports (per state s, added to the actor loss)::

    damping(s) = β · KL(π_θ(·|s) ‖ π_ref(·|s)) − η · H(π_θ(·|s))
    KL(π ‖ ρ)  = Σ_{a legal} π(a) (log π(a) − log ρ(a))
    H(π)       = −Σ_{a legal} π(a) log π(a)

* β(t), η(t): power laws (:func:`kl_coef_schedule`, :func:`entropy_coef_schedule`), optionally
  with β's base owned by an :class:`AdaptiveKLController` that steers the per-update KL
  KL(π_new ‖ π_old) toward a target by moving β and a learning-rate multiplier.
* The LR multiplier reaches the optimizer through :func:`controlled_lr_lambda`, composed with the
  warm-up factor inside one ``LambdaLR`` (the schedule never overwrites it).
* The reference (a frozen copy of the whole policy network, :func:`frozen_copy`) is replaced by
  the current policy or its EMA copy every K updates (:class:`RefreshSchedule`,
  :func:`refresh_reference_`, :func:`ema_update_`). A fixed reference with a decaying β does not
  converge in zero-sum self-play; a periodically refreshed one does (see
  ``metamon.selfplay.matrix_games``).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Callable, Literal, Optional, Union

import torch
from torch import nn

from metamon.amago.utils import AmagoError

__all__ = [
    "masked_log_softmax",
    "masked_reverse_kl",
    "masked_entropy",
    "damping_penalty",
    "power_law",
    "PowerLawSchedule",
    "kl_coef_schedule",
    "entropy_coef_schedule",
    "AdaptiveKLController",
    "linear_warmup",
    "controlled_lr_lambda",
    "RefreshSchedule",
    "ema_update",
    "ema_update_",
    "frozen_copy",
    "refresh_reference_",
]


# ------------------------------------------------------------------ masked distributions


def _check_mask(legal_mask: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Validate ``legal_mask`` (bool, broadcastable to ``shape``) and broadcast it."""
    if legal_mask.dtype != torch.bool:
        raise AmagoError(f"legal_mask must be a bool tensor, got dtype {legal_mask.dtype}")
    try:
        # expand (not torch.broadcast_shapes, which costs ~0.4 ms) also rejects a mask with
        # more dimensions than the logits
        return legal_mask.expand(shape)
    except RuntimeError:
        raise AmagoError(
            f"legal_mask of shape {tuple(legal_mask.shape)} does not broadcast to the "
            f"logits' shape {tuple(shape)}"
        ) from None


def masked_log_softmax(logits: torch.Tensor, legal_mask: torch.Tensor) -> torch.Tensor:
    """log π(a) = x_a − log Σ_{b legal} exp(x_b) on legal actions, exactly 0 on illegal ones.

    logits (..., A) (raw logits or any log-probs: both are renormalised over the legal set),
    legal_mask bool broadcastable to (..., A) -> (..., A). Legal logits must be finite; illegal
    ones may be anything (−inf included). Rows with no legal action give 0 everywhere, with zero
    gradient (every masked sum over them is empty). The illegal entries are a filler, not a
    log-probability: always multiply by the mask.
    """
    mask = _check_mask(legal_mask, logits.shape)
    illegal = ~mask
    no_legal = illegal.all(dim=-1, keepdim=True)
    # softmax over the legal set; a row without legal actions is replaced by zeros (uniform) so
    # that even all −inf logits stay finite there
    x = logits.masked_fill(illegal & ~no_legal, -math.inf).masked_fill(no_legal, 0.0)
    logp = x.log_softmax(dim=-1)
    # -inf on illegal entries -> 0 *before* any product (masked_fill passes them zero gradient),
    # so neither the value nor the gradient can be NaN
    return logp.masked_fill(illegal, 0.0)


def masked_reverse_kl(
    logits: torch.Tensor, ref_logp: torch.Tensor, legal_mask: torch.Tensor
) -> torch.Tensor:
    """KL(π_θ ‖ π_ref) = Σ_{a legal} π_θ(a) (log π_θ(a) − log π_ref(a)), per state.

    logits (..., A): the trained policy's logits (or log-probs); ref_logp (..., A): the
    reference's logits or log-probs (illegal entries may be −inf); legal_mask bool
    broadcastable to (..., A). Both distributions are renormalised over the legal actions.
    Returns (...), ≥ 0 up to rounding (no clamp: the gradient stays exact); 0 for a state with
    no legal action. The reference is a constant target:
    ``ref_logp`` is detached, so no gradient ever reaches it. A legal action to which the
    reference gives probability 0 makes the KL +inf (as the formula says).
    """
    if logits.shape != ref_logp.shape:
        raise AmagoError(
            f"logits {tuple(logits.shape)} and ref_logp {tuple(ref_logp.shape)} must have the same shape"
        )
    mask = _check_mask(legal_mask, logits.shape)
    logp = masked_log_softmax(logits, mask)                      # log π_θ, 0 off the legal set
    ref = masked_log_softmax(ref_logp.detach(), mask)            # log π_ref, stop-gradient
    p = logp.exp() * mask                                        # π_θ, exactly 0 when illegal
    return (p * (logp - ref)).sum(dim=-1)


def masked_entropy(logits: torch.Tensor, legal_mask: torch.Tensor) -> torch.Tensor:
    """H(π_θ) = −Σ_{a legal} π_θ(a) log π_θ(a), per state, π renormalised over the legal set.

    logits (..., A), legal_mask bool broadcastable to (..., A) -> (...), in [0, log |legal|];
    0 for a state with no legal action.
    """
    mask = _check_mask(legal_mask, logits.shape)
    logp = masked_log_softmax(logits, mask)
    p = logp.exp() * mask
    return -(p * logp).sum(dim=-1)


def damping_penalty(
    logits: torch.Tensor,
    ref_logp: torch.Tensor,
    legal_mask: torch.Tensor,
    kl_coef: Union[float, torch.Tensor],
    entropy_coef: Union[float, torch.Tensor],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The per-state term to *add* to a loss: ℓ = β·KL(π_θ ‖ π_ref) − η·H(π_θ).

    Shapes as in :func:`masked_reverse_kl`. Returns ``(penalty, kl, entropy)``, each (...);
    the caller masks invalid states and averages. β = ``kl_coef``, η = ``entropy_coef``: numbers
    or tensors broadcastable to (...) (e.g. one coefficient per row), never differentiated.
    """
    kl = masked_reverse_kl(logits, ref_logp, legal_mask)
    entropy = masked_entropy(logits, legal_mask)
    if isinstance(kl_coef, torch.Tensor):
        kl_coef = kl_coef.detach()
    if isinstance(entropy_coef, torch.Tensor):
        entropy_coef = entropy_coef.detach()
    return kl_coef * kl - entropy_coef * entropy, kl, entropy


# ------------------------------------------------------------------------------ schedules


def power_law(t: float, init: float, steps: float, alpha: float) -> float:
    """init · (1 + t / steps)^(−alpha); t ≥ 0 updates, steps > 0 (the decay's time scale)."""
    return init * (1.0 + t / steps) ** (-alpha)


@dataclass(frozen=True)
class PowerLawSchedule:
    """v(t) = clip(init · (1 + t/steps)^(−alpha), floor, cap); ``None`` bounds are not applied.

    ``schedule(t, init=x)`` uses x instead of ``init`` (how an :class:`AdaptiveKLController`'s β
    becomes the schedule's base: the decay shape stays, the controller owns the level).
    """

    init: float
    steps: float
    alpha: float
    cap: Optional[float] = None
    floor: Optional[float] = None

    def __post_init__(self):
        if self.steps <= 0:
            raise AmagoError(f"PowerLawSchedule needs steps > 0, got {self.steps}")
        if self.init < 0 or self.alpha < 0:
            raise AmagoError(
                f"PowerLawSchedule needs init >= 0 and alpha >= 0, got init={self.init}, alpha={self.alpha}"
            )

    def __call__(self, t: float, init: Optional[float] = None) -> float:
        value = power_law(t, self.init if init is None else init, self.steps, self.alpha)
        if self.cap is not None:
            value = min(value, self.cap)
        if self.floor is not None:
            value = max(value, self.floor)
        return value


def kl_coef_schedule(beta0: float, steps: float, alpha: float, beta_max: float) -> PowerLawSchedule:
    """β(t) = min(β₀ (1 + t/T_β)^(−α_β), β_max)."""
    return PowerLawSchedule(init=beta0, steps=steps, alpha=alpha, cap=beta_max)


def entropy_coef_schedule(eta0: float, steps: float, alpha: float, eta_min: float) -> PowerLawSchedule:
    """η(t) = max(η₀ (1 + t/T_η)^(−α_η), η_min)."""
    return PowerLawSchedule(init=eta0, steps=steps, alpha=alpha, floor=eta_min)


# ------------------------------------------------------------------- adaptive controller


@dataclass
class AdaptiveKLController:
    """Steers the per-update KL toward ``target_kl`` by moving its own β and an LR multiplier.

    Feed it the KL between consecutive policies, KL(π_new ‖ π_old) on the update's batch, once
    per optimizer update (:meth:`update`). Every ``interval`` calls it compares the window's mean
    k̄ with the band [κ*/τ, κ*·τ] (κ* = ``target_kl``, τ = ``tolerance`` > 1)::

        k̄ > κ*·τ  (moving too fast):  β ← min(β·beta_up, beta_max),   m ← max(m·lr_down, lr_min)
        k̄ < κ*/τ  (moving too slowly): β ← max(β·beta_down, beta_min), m ← min(m·lr_up, lr_max)
        otherwise nothing changes.

    ``adapt_beta`` / ``adapt_lr`` switch either knob off. With ``couple_lr_to_beta`` the
    multiplier is not adapted on its own but follows β: m = clip(β_init / β, lr_min, lr_max),
    so the step size times the KL weight stays constant (a tighter pull also means smaller steps).

    The controller is the only writer of ``beta`` and ``lr_multiplier``; schedules read them
    (β as the base of :func:`kl_coef_schedule`, m inside :func:`controlled_lr_lambda`).
    :meth:`state_dict` / :meth:`load_state_dict` carry the state across a resume.
    The seeds' knobs map as kl_coef_growth_factor → beta_up, kl_coef_decay_factor → beta_down,
    lr_shrink/grow_factor → lr_down/lr_up, min_lr/max_lr → lr_min/lr_max × base LR.
    """

    target_kl: float
    beta: float
    tolerance: float = 1.5
    beta_up: float = 1.5
    beta_down: float = 0.9
    beta_min: float = 1e-6
    beta_max: float = 1.0
    lr_multiplier: float = 1.0
    lr_down: float = 0.5
    lr_up: float = 1.1
    lr_min: float = 0.01
    lr_max: float = 10.0
    adapt_beta: bool = True
    adapt_lr: bool = True
    couple_lr_to_beta: bool = False
    interval: int = 1
    beta_init: float = field(init=False)
    num_adjustments: int = field(init=False, default=0)
    _window: list = field(init=False, default_factory=list, repr=False)

    def __post_init__(self):
        if self.target_kl <= 0 or self.tolerance <= 1:
            raise AmagoError(
                f"AdaptiveKLController needs target_kl > 0 and tolerance > 1, got "
                f"target_kl={self.target_kl}, tolerance={self.tolerance}"
            )
        if not (0 < self.beta_min <= self.beta <= self.beta_max):
            raise AmagoError(
                f"AdaptiveKLController needs 0 < beta_min <= beta <= beta_max, got "
                f"{self.beta_min}, {self.beta}, {self.beta_max}"
            )
        if not (0 < self.lr_min <= self.lr_multiplier <= self.lr_max):
            raise AmagoError(
                f"AdaptiveKLController needs 0 < lr_min <= lr_multiplier <= lr_max, got "
                f"{self.lr_min}, {self.lr_multiplier}, {self.lr_max}"
            )
        if self.beta_up < 1 or not 0 < self.beta_down <= 1 or self.lr_up < 1 or not 0 < self.lr_down <= 1:
            raise AmagoError("AdaptiveKLController needs beta_up, lr_up >= 1 and beta_down, lr_down in (0, 1]")
        if self.interval < 1:
            raise AmagoError(f"AdaptiveKLController needs interval >= 1, got {self.interval}")
        self.beta_init = self.beta

    def update(self, kl: float) -> Literal["tighten", "loosen", "hold", "wait"]:
        """Record one per-update KL; every ``interval`` calls adapt and say what was done
        ("tighten": KL above the band, "loosen": below, "hold": inside, "wait": window not full)."""
        kl = float(kl)
        if not math.isfinite(kl):
            raise AmagoError(f"AdaptiveKLController.update needs a finite KL, got {kl}")
        self._window.append(max(kl, 0.0))  # a KL of ~0 may come out as −1e-7 after rounding
        if len(self._window) < self.interval:
            return "wait"
        mean_kl = sum(self._window) / len(self._window)
        self._window.clear()
        if mean_kl > self.target_kl * self.tolerance:
            decision, beta_factor, lr_factor = "tighten", self.beta_up, self.lr_down
        elif mean_kl < self.target_kl / self.tolerance:
            decision, beta_factor, lr_factor = "loosen", self.beta_down, self.lr_up
        else:
            return "hold"
        if self.adapt_beta:
            self.beta = min(max(self.beta * beta_factor, self.beta_min), self.beta_max)
        if self.couple_lr_to_beta:
            self.lr_multiplier = min(max(self.beta_init / self.beta, self.lr_min), self.lr_max)
        elif self.adapt_lr:
            self.lr_multiplier = min(max(self.lr_multiplier * lr_factor, self.lr_min), self.lr_max)
        self.num_adjustments += 1
        return decision

    def state_dict(self) -> dict:
        """The mutable state (β, multiplier, initial β, adjustment count, pending window)."""
        return {
            "beta": self.beta,
            "lr_multiplier": self.lr_multiplier,
            "beta_init": self.beta_init,
            "num_adjustments": self.num_adjustments,
            "window": list(self._window),
        }

    def load_state_dict(self, state: dict) -> None:
        self.beta = float(state["beta"])
        self.lr_multiplier = float(state["lr_multiplier"])
        self.beta_init = float(state["beta_init"])
        self.num_adjustments = int(state["num_adjustments"])
        self._window = [float(k) for k in state["window"]]


def linear_warmup(step: int, warmup_steps: int) -> float:
    """w(step) = step / warmup_steps while step < warmup_steps, else 1 (the Experiment's warm-up)."""
    return step / max(1, warmup_steps) if step < warmup_steps else 1.0


def controlled_lr_lambda(
    warmup_steps: int, controller: Optional[AdaptiveKLController] = None
) -> Callable[[int], float]:
    """The factor for ``torch.optim.lr_scheduler.LambdaLR``: lr(step) = base_lr · w(step) · m.

    w is :func:`linear_warmup`, m the controller's current ``lr_multiplier`` (1 without one),
    read at every ``scheduler.step()``: the warm-up and the controller compose instead of
    overwriting each other. Call order per update: ``optimizer.step()``,
    ``controller.update(kl)``, ``scheduler.step()`` — the next update then uses the new LR.
    The factor is a plain closure, so ``LambdaLR.state_dict`` does not pickle the controller
    (save it with its own :meth:`AdaptiveKLController.state_dict`).
    """

    def factor(step: int) -> float:
        multiplier = 1.0 if controller is None else controller.lr_multiplier
        return linear_warmup(step, warmup_steps) * multiplier

    return factor


# --------------------------------------------------------------------- reference refresh


@dataclass(frozen=True)
class RefreshSchedule:
    """When the reference is replaced, and by what.

    ``due(update)`` is True after every ``every_k_updates``-th optimizer update (update = number
    of updates done so far, ≥ 1); ``every_k_updates=None`` never refreshes on a count (a
    generational loop then refreshes at each generation itself). ``mode``: "current" copies the
    current policy, "ema" copies its EMA copy (kept with :func:`ema_update_` at ``ema_decay``).
    """

    every_k_updates: Optional[int]
    mode: Literal["current", "ema"] = "current"
    ema_decay: float = 0.99

    def __post_init__(self):
        if self.every_k_updates is not None and self.every_k_updates < 1:
            raise AmagoError(f"RefreshSchedule needs every_k_updates >= 1 or None, got {self.every_k_updates}")
        if self.mode not in ("current", "ema"):
            raise AmagoError(f"RefreshSchedule mode must be 'current' or 'ema', got {self.mode!r}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise AmagoError(f"RefreshSchedule needs 0 <= ema_decay < 1, got {self.ema_decay}")

    def due(self, update: int) -> bool:
        return self.every_k_updates is not None and update > 0 and update % self.every_k_updates == 0


def ema_update(ema: torch.Tensor, current: torch.Tensor, decay: float) -> torch.Tensor:
    """ē ← d · ē + (1 − d) · x, as a new tensor (no gradient). Shapes equal."""
    return (decay * ema + (1.0 - decay) * current).detach()


@torch.no_grad()
def ema_update_(ema_module: nn.Module, module: nn.Module, decay: float) -> None:
    """In place on ``ema_module``: every floating parameter and buffer p̄ ← d·p̄ + (1−d)·p;
    integer buffers (counters) are copied. The two modules must have the same structure."""
    for ema_t, t in _paired_tensors(ema_module, module, "ema_update_"):
        if ema_t.is_floating_point():
            ema_t.copy_(ema_update(ema_t, t, decay))
        else:
            ema_t.copy_(t)


def frozen_copy(module: nn.Module) -> nn.Module:
    """A deep copy in eval mode with ``requires_grad=False`` everywhere: a reference network that
    no optimizer over ``module.parameters()`` can reach and no loss can train."""
    ref = copy.deepcopy(module)
    ref.eval()
    ref.requires_grad_(False)
    return ref


@torch.no_grad()
def refresh_reference_(reference: nn.Module, source: nn.Module) -> None:
    """Copy every parameter and buffer of ``source`` (the current policy or its EMA copy) into
    ``reference`` (values only: no storage is shared, the reference stays frozen)."""
    for ref_t, t in _paired_tensors(reference, source, "refresh_reference_"):
        ref_t.copy_(t)


def _paired_tensors(target: nn.Module, source: nn.Module, caller: str) -> list:
    """[(target tensor, source tensor)] for every parameter, then every buffer, matched by name
    and shape; AmagoError if the two modules do not have the same structure."""
    target_named = list(target.named_parameters()) + list(target.named_buffers())
    source_named = list(source.named_parameters()) + list(source.named_buffers())
    names = [n for n, _ in target_named]
    if names != [n for n, _ in source_named]:
        raise AmagoError(f"{caller}: the two modules have different parameters/buffers")
    pairs = [(t, s) for (_, t), (_, s) in zip(target_named, source_named)]
    for name, (t, s) in zip(names, pairs):
        if t.shape != s.shape:
            raise AmagoError(f"{caller}: {name!r} has shape {tuple(t.shape)} vs {tuple(s.shape)}")
    return pairs
