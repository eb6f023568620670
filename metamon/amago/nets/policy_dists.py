"""Policy output layers: raw actor-network outputs -> torch action distributions.

An actor head produces raw parameters of shape (B, L, G, P) (batch, window, gammas,
``input_dimension``). A parameter-free :class:`PolicyOutput` turns them into a
``torch.distributions.Distribution`` with batch shape (B, L, G).

Only discrete action spaces are supported:

* :class:`Discrete` - clipped categorical over A actions (the ``Agent`` policy);
* :class:`DiscreteLikeContinuous` - the same clipped probabilities viewed as a distribution
  over one-hot vectors with a straight-through Gumbel-softmax ``rsample`` (used by the
  ``MultiTaskAgent``, whose critic takes actions as vectors).

Clipping (``Discrete``), with p = softmax(logits) over the last dim:

    p~ = clamp(p, clip_prob_low, clip_prob_high)          # no action below/above the clip
    p~ = p~ * legal                                        # optional strict mask (see below)
    p^ = p~ / stopgrad(sum_a p~)                           # renormalise, gradient only via p~

Because the normaliser carries no gradient, d log p^(a) = d log p~(a), which is exactly zero
when p(a) > clip_prob_high or p(a) < clip_prob_low (clamp has zero slope there): behaviour
cloning cannot push an action's probability past the clip.
"""

from abc import ABC, abstractmethod
from typing import Optional

import gin
import torch
import torch.nn.functional as F
from torch.distributions import Categorical, Distribution, constraints
from torch.distributions.utils import probs_to_logits

from metamon.amago.nets.utils import add_activation_log
from metamon.amago.utils import AmagoError


class NormalizedCategorical(Categorical):
    """A ``Categorical`` over probabilities that are already normalised, kept exactly as given.

    ``torch.distributions.Categorical(probs=p)`` stores p / sum(p). When p = p~ / stopgrad(S)
    that division is numerically a no-op but routes a gradient through sum(p~), undoing the
    stop-gradient. This class stores ``probs`` unchanged, so every statistic (``probs``,
    ``logits`` = log(clamp(probs, eps, 1 - eps)), ``log_prob``, ``entropy``) follows the
    caller's normalisation and its gradient.

    Args:
        probs: (..., n) non-negative, summing to 1 over the last dim (not re-checked).
    """

    def __init__(self, probs: torch.Tensor):
        super().__init__(probs=probs, validate_args=False)
        self.probs = probs


class DiscreteActionDist(NormalizedCategorical):
    """The action distribution returned by :class:`Discrete`: batch shape (...,), A actions.

    Actions are integer indices carried with a trailing unit dim, the layout of a
    ``Discrete`` action in the replay data:

    * ``sample(sample_shape)`` -> long (*sample_shape, ..., 1);
    * ``mode`` -> long (..., 1), the argmax of p^;
    * ``log_prob(a)``: ``a`` of shape batch_shape + (1,) (trailing unit dim) returns
      log p^(a) of the same shape (..., 1); ``a`` broadcastable to batch_shape (no trailing
      dim, e.g. (...,) indices) returns batch-shaped (...,). The rule is by rank: an index
      tensor with exactly one more dim than the batch shape and a last dim of 1 is read as
      "trailing unit dim". Strictly masked actions have p^ = 0 and log p^ = log(eps) ~ -15.9.
    """

    def sample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:
        return super().sample(sample_shape).unsqueeze(-1)

    @property
    def mode(self) -> torch.Tensor:
        return self.probs.argmax(dim=-1, keepdim=True)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        if value.dim() == len(self.batch_shape) + 1 and value.shape[-1] == 1:
            return super().log_prob(value.squeeze(-1)).unsqueeze(-1)
        return super().log_prob(value)


class PolicyOutput(ABC):
    """Maps raw actor outputs (..., input_dimension) to a distribution with batch shape (...).

    Args:
        d_action: size of the action space (A for ``Discrete(A)``).
    """

    def __init__(self, d_action: int):
        if isinstance(d_action, bool) or not isinstance(d_action, int) or d_action < 1:
            raise AmagoError(f"d_action must be a positive int, got {d_action!r}")
        self.d_action = d_action

    @property
    @abstractmethod
    def input_dimension(self) -> int:
        """P, the number of raw parameters per (b, l, g) the actor network must output."""

    @property
    @abstractmethod
    def actions_differentiable(self) -> bool:
        """Whether the returned distribution can be differentiated through its actions
        (``rsample`` or exact probabilities), as the online (DPG-style) actor loss needs."""

    @abstractmethod
    def __call__(
        self,
        vec: torch.Tensor,
        log_dict: Optional[dict] = None,
        legal_mask: Optional[torch.Tensor] = None,
    ) -> Distribution:
        """Build the distribution from ``vec`` (..., input_dimension)."""


@gin.configurable
class Discrete(PolicyOutput):
    """Clipped categorical policy over ``d_action`` actions (formula in the module docstring).

    ``__call__(logits (..., A), log_dict=None, legal_mask=None)`` returns a
    :class:`DiscreteActionDist` with batch shape (...,). ``legal_mask`` (bool, broadcastable
    to the logits' shape, True = legal) applies *strict* masking after the clip: illegal
    actions get probability exactly 0. Rows where no action is legal are left unmasked, so a
    padded timestep (all-True "illegal" flags) still yields finite probabilities. Without a
    mask, logits of -inf become p = 0, are clipped up to ``clip_prob_low`` and keep about
    clip_prob_low / Z after renormalising.

    ``actions_differentiable`` is True: losses differentiate through the probabilities p^.
    When ``log_dict`` is a dict, activation statistics of p^ are logged as "Discrete-probs".

    Args:
        d_action: A.
        clip_prob_low / clip_prob_high: clamp range of the softmax probabilities
            (0 <= low < high <= 1).
    """

    def __init__(self, d_action: int, clip_prob_low: float = 0.001, clip_prob_high: float = 0.99):
        super().__init__(d_action)
        if not 0.0 <= clip_prob_low < clip_prob_high <= 1.0:
            raise AmagoError(
                "Discrete needs 0 <= clip_prob_low < clip_prob_high <= 1, got "
                f"clip_prob_low={clip_prob_low}, clip_prob_high={clip_prob_high}"
            )
        self.clip_prob_low = clip_prob_low
        self.clip_prob_high = clip_prob_high

    @property
    def input_dimension(self) -> int:
        return self.d_action

    @property
    def actions_differentiable(self) -> bool:
        return True

    def __call__(
        self,
        logits: torch.Tensor,
        log_dict: Optional[dict] = None,
        legal_mask: Optional[torch.Tensor] = None,
    ) -> DiscreteActionDist:
        if logits.shape[-1] != self.d_action:
            raise AmagoError(
                f"Discrete expects logits with last dim d_action={self.d_action}, "
                f"got shape {tuple(logits.shape)}"
            )
        probs = F.softmax(logits, dim=-1)                                  # p
        probs = probs.clamp(self.clip_prob_low, self.clip_prob_high)       # p~
        if legal_mask is not None:
            probs = probs * self._usable_mask(legal_mask, logits.shape)     # strict mask
        probs = probs / probs.sum(dim=-1, keepdim=True).detach()           # p^
        add_activation_log("Discrete-probs", probs, log_dict)
        return DiscreteActionDist(probs)

    @staticmethod
    def _usable_mask(legal_mask: torch.Tensor, logits_shape: torch.Size) -> torch.Tensor:
        """legal_mask with all-illegal rows turned all-legal, as a 0/1 float-ready bool."""
        if legal_mask.dtype != torch.bool:
            raise AmagoError(f"legal_mask must be a bool tensor, got dtype {legal_mask.dtype}")
        try:
            shape = torch.broadcast_shapes(legal_mask.shape, logits_shape)
        except RuntimeError:
            shape = None
        if shape != logits_shape:
            raise AmagoError(
                f"legal_mask of shape {tuple(legal_mask.shape)} does not broadcast to the "
                f"logits' shape {tuple(logits_shape)}"
            )
        no_legal_action = ~legal_mask.any(dim=-1, keepdim=True)
        return legal_mask | no_legal_action


@gin.configurable
class DiscreteLikeContinuous(Distribution):
    """A discrete policy viewed as a distribution over one-hot action vectors.

    Wraps the (clipped, renormalised) categorical produced by :class:`Discrete` so that
    actions are vectors (…, A), as a critic that takes (state, action) inputs needs.
    With p^ the wrapped probabilities (batch shape (...,), A events):

    * ``probs`` = p^ and ``logits`` = log p^ (log of clamp(p^, eps, 1 - eps));
    * ``sample(sample_shape)`` -> float one-hot (*sample_shape, ..., A), no gradient;
    * ``rsample(sample_shape)`` -> straight-through Gumbel-softmax with ``hard=True`` at
      temperature tau: forward value one-hot(argmax(logits + Gumbel noise)), gradient of
      softmax((logits + noise) / tau);
    * ``log_prob(a)`` for a (..., A) -> (...,): log p^ gathered at argmax(a). Inputs are never
      validated: a padded row of all ones reads as index 0 (padding is masked by the caller);
    * ``entropy()`` = -sum_a p^ log p^; ``mode`` = one-hot of argmax p^.

    Args:
        categorical: a ``torch.distributions.Categorical`` (e.g. the output of ``Discrete``).
        gumbel_softmax_temperature: tau of ``rsample``.
    """

    arg_constraints = {}
    support = constraints.one_hot
    has_rsample = True

    def __init__(self, categorical: Categorical, gumbel_softmax_temperature: float = 0.5):
        if not isinstance(categorical, Categorical):
            raise AmagoError(
                "DiscreteLikeContinuous wraps a torch Categorical, got "
                f"{type(categorical).__name__}"
            )
        if not gumbel_softmax_temperature > 0:
            raise AmagoError(
                f"gumbel_softmax_temperature must be > 0, got {gumbel_softmax_temperature}"
            )
        self.probs = categorical.probs
        self.logits = probs_to_logits(self.probs)
        self.gumbel_softmax_temperature = gumbel_softmax_temperature
        super().__init__(
            batch_shape=self.probs.shape[:-1],
            event_shape=self.probs.shape[-1:],
            validate_args=False,
        )

    def sample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:
        with torch.no_grad():
            idx = Categorical(probs=self.probs, validate_args=False).sample(sample_shape)
            return F.one_hot(idx, self.event_shape[0]).to(self.probs.dtype)

    def rsample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:
        logits = self.logits.expand(torch.Size(sample_shape) + self.logits.shape)
        return F.gumbel_softmax(logits, tau=self.gumbel_softmax_temperature, hard=True, dim=-1)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        idx = value.argmax(dim=-1, keepdim=True)                          # (..., 1)
        shape = torch.broadcast_shapes(value.shape, self.logits.shape)
        idx = idx.expand(shape[:-1] + (1,))
        return self.logits.expand(shape).gather(-1, idx).squeeze(-1)

    def entropy(self) -> torch.Tensor:
        return -(self.probs * self.logits).sum(dim=-1)

    @property
    def mode(self) -> torch.Tensor:
        return F.one_hot(self.probs.argmax(dim=-1), self.event_shape[0]).to(self.probs.dtype)
