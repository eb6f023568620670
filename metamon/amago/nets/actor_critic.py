"""Actor and critic heads on top of the trajectory encoder, and PopArt value normalisation.

Shapes: B batch, L timesteps, D state dim (trajectory-encoder output), A actions, G gammas
(discount factors trained in parallel), C critics in the ensemble, K action samples,
n two-hot bins.

* Actors map states (B, L, D) to a policy distribution with batch shape (B, L, G). Each gamma
  has its own logits; raw outputs are laid out **gamma-major** (unit g·A + a).
* ``NCritics`` (discrete actions) outputs Q_{c,g}(s, ·) for every action from the state alone
  and contracts it with an action vector: sum_a Q_{c,g}(s, a) · action[a] -> (1, B, L, C, G, 1).
* ``NCriticsTwoHot`` is a classifier over n fixed return bins, fed (state, phi(gamma), action).
* ``PopArtLayer`` keeps running return statistics per gamma and rescales critic outputs so
  that the de-normalised values never jump when the statistics move.
"""

import math
from abc import ABC, abstractmethod
from typing import Optional, Sequence, Union

import gin
import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Categorical

from metamon.amago.nets.policy_dists import Discrete, NormalizedCategorical, PolicyOutput
from metamon.amago.nets.utils import MLP, Normalization, activation_switch, symexp, symlog
from metamon.amago.utils import AmagoError, amago_warning


def _as_gammas(gammas: Union[torch.Tensor, Sequence[float]]) -> torch.Tensor:
    """Validate the discount factors: a non-empty 1-D float32 tensor (G,) with values in [0, 1].

    On the ``meta`` device (a network built without memory, to read its shapes) the values are
    unknown and only the shape is checked.
    """
    gammas = torch.as_tensor(gammas, dtype=torch.float32)
    if gammas.dim() != 1 or gammas.numel() == 0:
        raise AmagoError(f"gammas must be a non-empty 1-D sequence, got shape {tuple(gammas.shape)}")
    if not gammas.is_meta and ((gammas < 0) | (gammas > 1)).any():
        raise AmagoError(f"gammas must lie in [0, 1], got {gammas.tolist()}")
    return gammas


def gamma_features(gammas: torch.Tensor) -> torch.Tensor:
    """phi(gamma) = symlog(1 / clamp(1 - gamma, 1e-6, 1)), elementwise (the critic's gamma input).

    The effective horizon 1/(1 - gamma) on a log scale: 0.9 -> 2.3979, 0.999 -> 6.9088.
    """
    return symlog(1.0 / torch.clamp(1.0 - gammas, 1e-6, 1.0))


# ----------------------------------------------------------------------------------- actors


class BaseActorHead(nn.Module, ABC):
    """Policy head: state (B, L, D) -> distribution with batch shape (B, L, G).

    Subclasses implement :meth:`actor_network_forward`, returning raw parameters of shape
    (B, L, G, P) with P = ``policy_dist.input_dimension``, and may override :meth:`legal_mask`
    to return a bool (B, L, A) tensor (True = legal) that ``Discrete`` applies as a strict mask.

    Args (supplied by the agent, not gin):
        state_dim: D. action_dim: A. discrete: the action space is ``Discrete(A)`` (only
        discrete spaces are supported). gammas: (G,) discount factors.
    """

    def __init__(
        self,
        state_dim: int,
        action_dim: int,
        discrete: bool,
        gammas: Union[torch.Tensor, Sequence[float]],
    ):
        super().__init__()
        if not discrete:
            raise AmagoError(
                "Only discrete action spaces are supported by the actor heads "
                "(continuous policy distributions are not implemented)"
            )
        self.state_dim = state_dim
        self.action_dim = action_dim
        self.discrete = discrete
        self.num_gammas = len(_as_gammas(gammas))
        self.policy_dist: PolicyOutput = Discrete(d_action=action_dim)

    @property
    def actions_differentiable(self) -> bool:
        return self.policy_dist.actions_differentiable

    @abstractmethod
    def actor_network_forward(
        self,
        state: torch.Tensor,
        log_dict: Optional[dict] = None,
        straight_from_obs: Optional[dict] = None,
    ) -> torch.Tensor:
        """state (B, L, D) -> raw distribution parameters (B, L, G, P)."""

    def legal_mask(self, straight_from_obs: Optional[dict]) -> Optional[torch.Tensor]:
        """Bool (B, L, A), True where an action is legal, or None for no mask (the default)."""
        return None

    def forward(
        self,
        state: torch.Tensor,
        log_dict: Optional[dict] = None,
        straight_from_obs: Optional[dict] = None,
    ) -> torch.distributions.Distribution:
        if state.dim() != 3:
            raise AmagoError(f"actor state must be (B, L, D), got shape {tuple(state.shape)}")
        B, L, _ = state.shape
        params = self.actor_network_forward(
            state, log_dict=log_dict, straight_from_obs=straight_from_obs
        )
        expected = (B, L, self.num_gammas, self.policy_dist.input_dimension)
        if tuple(params.shape) != expected:
            raise AmagoError(
                f"{type(self).__name__}.actor_network_forward returned shape "
                f"{tuple(params.shape)}, expected (B, L, G, P) = {expected}"
            )
        legal = self.legal_mask(straight_from_obs)
        if legal is not None:
            if tuple(legal.shape) != (B, L, self.action_dim):
                raise AmagoError(
                    f"{type(self).__name__}.legal_mask returned shape {tuple(legal.shape)}, "
                    f"expected (B, L, A) = {(B, L, self.action_dim)}"
                )
            legal = legal.unsqueeze(2)  # (B, L, 1, A): the same mask for every gamma
        return self.policy_dist(params, log_dict=log_dict, legal_mask=legal)


@gin.configurable
class Actor(BaseActorHead):
    """MLP actor: ``base`` = Linear(D, d_hidden) -> act -> dropout -> (n_layers - 1) x
    [Linear(d_hidden, d_hidden) -> act -> dropout] -> Linear(d_hidden, G·P), reshaped to
    (B, L, G, P) gamma-major (output unit g·P + p is gamma g's parameter p).

    State-dict keys: ``base.in_layer.*``, ``base.layers.{j}.*``, ``base.out_layer.*``.
    """

    def __init__(
        self,
        state_dim: int,
        action_dim: int,
        discrete: bool,
        gammas: Union[torch.Tensor, Sequence[float]],
        n_layers: int = 2,
        d_hidden: int = 256,
        activation: str = "leaky_relu",
        dropout_p: float = 0.0,
    ):
        super().__init__(state_dim, action_dim, discrete, gammas)
        self.base = MLP(
            d_inp=state_dim,
            d_hidden=d_hidden,
            n_layers=n_layers,
            d_output=self.num_gammas * self.policy_dist.input_dimension,
            activation=activation,
            dropout_p=dropout_p,
        )

    def actor_network_forward(self, state, log_dict=None, straight_from_obs=None):
        out = self.base(state)                                               # (B, L, G·P)
        return out.view(*state.shape[:2], self.num_gammas, self.policy_dist.input_dimension)


def _residual_block(d: int, d_ff: int, activation: str, normalization: str, dropout_p: float) -> nn.Sequential:
    """[0] Linear(d, d_ff), [1] norm(d_ff), [2] act, [3] Linear(d_ff, d), [4] norm(d), [5] dropout;
    the caller adds the input back: x + block(x)."""
    return nn.Sequential(
        nn.Linear(d, d_ff),
        Normalization(normalization, d_ff),
        activation_switch(activation),
        nn.Linear(d_ff, d),
        Normalization(normalization, d),
        nn.Dropout(dropout_p),
    )


@gin.configurable
class ResidualActor(BaseActorHead):
    """Residual MLP actor (AMAGO's layout)::

        h = inp(s)       = Linear(f, f)(drop(act(Linear(D, f)(s))))    MLP, no activation after
        h = h + drop(norm(Linear(r, f)(act(norm(Linear(f, r)(h))))))  × residual_blocks
        out = Linear(f, G·P)(h) -> (B, L, G, P) gamma-major

    with f = ``feature_dim``, r = ``residual_ff_dim``. State-dict keys: ``inp.in_layer.*`` (f, D),
    ``inp.out_layer.*`` (f, f), ``residual_blocks.{b}.0.*`` (r, f), ``residual_blocks.{b}.1.norm.*``
    (r), ``residual_blocks.{b}.3.*`` (f, r), ``residual_blocks.{b}.4.norm.*`` (f), ``out.*``
    (G·P, f); index 2 is the activation. The dropout at the end of each block (index 5, no
    parameters) is this package's placement; ``dropout_p`` is 0 by default and in every
    reference config.
    """

    def __init__(
        self,
        state_dim: int,
        action_dim: int,
        discrete: bool,
        gammas: Union[torch.Tensor, Sequence[float]],
        feature_dim: int = 256,
        residual_ff_dim: int = 512,
        residual_blocks: int = 2,
        activation: str = "leaky_relu",
        normalization: str = "layer",
        dropout_p: float = 0.0,
    ):
        super().__init__(state_dim, action_dim, discrete, gammas)
        self.inp = MLP(
            d_inp=state_dim, d_hidden=feature_dim, n_layers=1, d_output=feature_dim,
            activation=activation, dropout_p=dropout_p,
        )
        self.residual_blocks = nn.ModuleList(
            _residual_block(feature_dim, residual_ff_dim, activation, normalization, dropout_p)
            for _ in range(residual_blocks)
        )
        self.out = nn.Linear(feature_dim, self.num_gammas * self.policy_dist.input_dimension)

    def actor_network_forward(self, state, log_dict=None, straight_from_obs=None):
        h = self.inp(state)
        for block in self.residual_blocks:
            h = h + block(h)
        out = self.out(h)
        return out.view(*state.shape[:2], self.num_gammas, self.policy_dist.input_dimension)


# ---------------------------------------------------------------------------------- critics


class _EnsembleLinear(nn.Module):
    """C independent affine maps in one einsum: y[..., c, :] = x[..., (c,) :] @ W[c] + b[c].

    ``weight`` (C, d_in, d_out), ``bias`` (1, 1, C, d_out). Input (..., d_in) is shared by all
    members (first layer); input (..., C, d_in) feeds member c its own slice (deeper layers).
    Init: W ~ U(±sqrt(3 / d_in)), b ~ U(±sqrt(1 / d_in)).
    """

    def __init__(self, num_members: int, d_in: int, d_out: int, shared_input: bool):
        super().__init__()
        self.shared_input = shared_input
        w_bound, b_bound = (3.0 / d_in) ** 0.5, (1.0 / d_in) ** 0.5
        self.weight = nn.Parameter(torch.empty(num_members, d_in, d_out).uniform_(-w_bound, w_bound))
        self.bias = nn.Parameter(torch.empty(1, 1, num_members, d_out).uniform_(-b_bound, b_bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.shared_input:
            y = torch.einsum("...d,cdh->...ch", x, self.weight)
        else:
            y = torch.einsum("...cd,cdh->...ch", x, self.weight)
        return y + self.bias


class EinMixEnsemble(nn.Module):
    """C independent MLPs evaluated as one batched op.

        h = drop(act(inp_layer(x)))                     x (..., D_in) -> (..., C, H)
        h = drop(act(core_layers[j](h))), j < n_layers - 1             (..., C, H)
        y = output_layer(h)                                            (..., C, out)

    ``forward(x)`` returns (y, h). Parameters: ``inp_layer.weight`` (C, D_in, H),
    ``core_layers.{j}.weight`` (C, H, H), ``output_layer.weight`` (C, H, out); every bias
    is (1, 1, C, ·), so x needs at least two leading dims (e.g. (B, L, D_in)).
    """

    def __init__(
        self,
        num_members: int,
        d_inp: int,
        d_hidden: int,
        d_output: int,
        n_layers: int,
        activation: str = "leaky_relu",
        dropout_p: float = 0.0,
    ):
        super().__init__()
        if n_layers < 1:
            raise AmagoError(f"critic n_layers must be >= 1, got {n_layers}")
        if num_members < 1:
            raise AmagoError(f"num_critics must be >= 1, got {num_members}")
        self.num_members = num_members
        self.inp_layer = _EnsembleLinear(num_members, d_inp, d_hidden, shared_input=True)
        self.core_layers = nn.ModuleList(
            _EnsembleLinear(num_members, d_hidden, d_hidden, shared_input=False)
            for _ in range(n_layers - 1)
        )
        self.output_layer = _EnsembleLinear(num_members, d_hidden, d_output, shared_input=False)
        self.activation = activation_switch(activation)
        self.dropout = nn.Dropout(dropout_p)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.dim() < 3:
            raise AmagoError(f"EinMixEnsemble input must be (B, L, ..., D_in), got {tuple(x.shape)}")
        h = self.dropout(self.activation(self.inp_layer(x)))
        for layer in self.core_layers:
            h = self.dropout(self.activation(layer(h)))
        return self.output_layer(h), h


class BaseCriticHead(nn.Module, ABC):
    """Critic ensemble head: ``forward(state (B, L, D), action (K, B, L, G, A), log_dict=None)``.

    Subclasses implement :meth:`critic_network_forward` on validated inputs. ``len(head)`` is
    the ensemble size C.

    Args (supplied by the agent, not gin): state_dim D, action_dim A, discrete, gammas (G,),
    num_critics C.
    """

    def __init__(
        self,
        state_dim: int,
        action_dim: int,
        discrete: bool,
        gammas: Union[torch.Tensor, Sequence[float]],
        num_critics: int,
    ):
        super().__init__()
        self.state_dim = state_dim
        self.action_dim = action_dim
        self.discrete = discrete
        self.num_critics = num_critics
        self.register_buffer("gammas", _as_gammas(gammas), persistent=False)
        self.num_gammas = len(self.gammas)

    def __len__(self) -> int:
        return self.num_critics

    @abstractmethod
    def critic_network_forward(self, state, action, log_dict=None):
        """Validated state (B, L, D) and action (K, B, L, G, A) -> the head's output."""

    def forward(self, state: torch.Tensor, action: torch.Tensor, log_dict: Optional[dict] = None):
        if state.dim() != 3:
            raise AmagoError(f"critic state must be (B, L, D), got shape {tuple(state.shape)}")
        if action.dim() != 5:
            raise AmagoError(
                f"critic action must be (K, B, L, G, A), got shape {tuple(action.shape)}"
            )
        B, L, _ = state.shape
        if tuple(action.shape[1:]) != (B, L, self.num_gammas, self.action_dim):
            raise AmagoError(
                f"critic action shape {tuple(action.shape)} does not match "
                f"(K, B, L, G, A) = (K, {B}, {L}, {self.num_gammas}, {self.action_dim})"
            )
        return self.critic_network_forward(state, action, log_dict=log_dict)


@gin.configurable
class NCritics(BaseCriticHead):
    """Ensemble of C Q-networks for discrete actions, one output unit per (gamma, action).

        Q = net(state)          (B, L, C, G·A), gamma-major (unit g·A + a) -> (B, L, C, G, A)
        out = sum_a Q[..., a] · action[..., a]                       -> (1, B, L, C, G, 1)

    ``action`` must have K = 1: a one-hot gives Q(s, a); a probability vector pi(·|s) gives the
    exact expectation E_{a~pi} Q(s, a). Submodule ``net`` is an :class:`EinMixEnsemble`
    with D_in = D and out = G·A.
    """

    def __init__(
        self,
        state_dim: int,
        action_dim: int,
        discrete: bool,
        gammas: Union[torch.Tensor, Sequence[float]],
        num_critics: int,
        d_hidden: int = 256,
        n_layers: int = 2,
        dropout_p: float = 0.0,
        activation: str = "leaky_relu",
    ):
        super().__init__(state_dim, action_dim, discrete, gammas, num_critics)
        if not discrete:
            raise AmagoError(
                "NCritics supports discrete action spaces only (continuous critics are not implemented)"
            )
        self.net = EinMixEnsemble(
            num_members=num_critics,
            d_inp=state_dim,
            d_hidden=d_hidden,
            d_output=self.num_gammas * action_dim,
            n_layers=n_layers,
            activation=activation,
            dropout_p=dropout_p,
        )

    def critic_network_forward(self, state, action, log_dict=None):
        if action.shape[0] != 1:
            raise AmagoError(
                f"NCritics (discrete) takes one action vector per state (K = 1), got K = {action.shape[0]}"
            )
        B, L, _ = state.shape
        q, _ = self.net(state)                                             # (B, L, C, G·A)
        q = q.view(B, L, self.num_critics, self.num_gammas, self.action_dim)
        # sum_a Q_{c,g}(s, a) · action[a]: action (1, B, L, G, A) -> (1, B, L, 1, G, A)
        return (q.unsqueeze(0) * action.unsqueeze(3)).sum(dim=-1, keepdim=True)


@gin.configurable
class NCriticsTwoHot(BaseCriticHead):
    """Ensemble of C return classifiers over n bins (the ``discrete`` flag is ignored).

    Input per (k, b, l, g): concat(state (D), phi(gamma_g) (1), clamp(action, ±0.999) (A)),
    so D_in = D + 1 + A and a one-hot action enters as 0.999. Output: a Categorical with batch
    shape (K, B, L, C, G) over n bins, with
        p = softmax(logits);  p~ = clamp(p, 1e-6, 0.999);  p^ = p~ / stopgrad(sum p~).

    Bins: with f = symlog if ``use_symlog`` else identity, b_j = linspace(f(m), f(M), n) (the
    ``bin_vals`` buffer, not saved in the state dict), m = ``min_return``, M = ``max_return``.
    Only ``None`` means unset (0 is a valid bound, unlike AMAGO 3.1.1's ``or`` fallback); an
    unset bound warns and falls back to -1e5 / +1e5. Bounds are in reward_multiplier-scaled
    return units.
    """

    def __init__(
        self,
        state_dim: int,
        action_dim: int,
        discrete: bool,
        gammas: Union[torch.Tensor, Sequence[float]],
        num_critics: int,
        d_hidden: int = 256,
        n_layers: int = 2,
        dropout_p: float = 0.0,
        activation: str = "leaky_relu",
        min_return: Optional[float] = None,
        max_return: Optional[float] = None,
        output_bins: int = 128,
        use_symlog: bool = True,
    ):
        super().__init__(state_dim, action_dim, discrete, gammas, num_critics)
        if min_return is None or max_return is None:
            amago_warning(
                "NCriticsTwoHot: min_return and/or max_return are unset; falling back to "
                "-1e5 / +1e5. Bind NCriticsTwoHot.min_return / max_return to the range of "
                "(reward_multiplier-scaled) returns of your task for a finer value resolution."
            )
        min_return = -1e5 if min_return is None else float(min_return)
        max_return = 1e5 if max_return is None else float(max_return)
        if not min_return < max_return:
            raise AmagoError(
                f"NCriticsTwoHot needs min_return < max_return, got {min_return} >= {max_return}"
            )
        if output_bins < 2:
            raise AmagoError(f"NCriticsTwoHot needs output_bins >= 2, got {output_bins}")
        self.use_symlog = use_symlog
        self.output_bins = output_bins
        bounds = self._transform(torch.tensor([min_return, max_return], device="cpu"))  # CPU: read back below
        self.register_buffer(
            "bin_vals", torch.linspace(bounds[0].item(), bounds[1].item(), output_bins), persistent=False
        )
        self.register_buffer("gamma_feature", gamma_features(self.gammas), persistent=False)
        self.net = EinMixEnsemble(
            num_members=num_critics,
            d_inp=state_dim + 1 + action_dim,
            d_hidden=d_hidden,
            d_output=output_bins,
            n_layers=n_layers,
            activation=activation,
            dropout_p=dropout_p,
        )

    def _transform(self, x: torch.Tensor) -> torch.Tensor:
        """f: symlog when ``use_symlog``, else the identity."""
        return symlog(x) if self.use_symlog else x

    def _untransform(self, x: torch.Tensor) -> torch.Tensor:
        """f^-1: symexp when ``use_symlog``, else the identity."""
        return symexp(x) if self.use_symlog else x

    def critic_network_forward(self, state, action, log_dict=None):
        K, B, L, G, _ = action.shape
        inp = torch.cat(
            [
                state[None, :, :, None, :].expand(K, B, L, G, self.state_dim),
                self.gamma_feature.view(1, 1, 1, G, 1).expand(K, B, L, G, 1).to(state.dtype),
                action.clamp(-0.999, 0.999),
            ],
            dim=-1,
        )                                                                  # (K, B, L, G, D+1+A)
        logits, _ = self.net(inp)                                          # (K, B, L, G, C, n)
        logits = logits.transpose(3, 4)                                    # (K, B, L, C, G, n)
        probs = F.softmax(logits, dim=-1).clamp(1e-6, 0.999)
        probs = probs / probs.sum(dim=-1, keepdim=True).detach()
        return NormalizedCategorical(probs)

    def bin_dist_to_raw_vals(self, dist: Categorical) -> torch.Tensor:
        """Decode a bin distribution (..., n) to values (..., 1): v = f^-1(sum_j p_j b_j).

        The expectation is taken in f-space, then inverted.
        """
        return self._untransform((dist.probs * self.bin_vals).sum(dim=-1, keepdim=True))

    @torch.no_grad()
    def raw_vals_to_labels(self, y: torch.Tensor) -> torch.Tensor:
        """Two-hot labels (..., n) for scalar targets y (..., 1) (no gradient).

        With z = f(y): lo = clip(#{j: b_j <= z} - 1, 0, n-1), hi = clip(n - #{j: b_j > z}, 0, n-1);
        if lo == hi the label is one-hot at lo (edge saturation), else
        w_lo = |b_hi - z| / (|b_lo - z| + |b_hi - z|) at lo and 1 - w_lo at hi, so that
        sum_j label_j b_j = z for every z inside [b_0, b_{n-1}].
        """
        if y.shape[-1] != 1:
            raise AmagoError(f"raw_vals_to_labels expects values of shape (..., 1), got {tuple(y.shape)}")
        n = self.output_bins
        z = self._transform(y.to(self.bin_vals.dtype))                        # (..., 1)
        lo = ((self.bin_vals <= z).sum(dim=-1, keepdim=True) - 1).clamp(0, n - 1)
        hi = (n - (self.bin_vals > z).sum(dim=-1, keepdim=True)).clamp(0, n - 1)
        dist_lo = (self.bin_vals[lo] - z).abs()
        dist_hi = (self.bin_vals[hi] - z).abs()
        w_lo = torch.where(lo == hi, torch.ones_like(z), dist_hi / (dist_lo + dist_hi))
        labels = torch.zeros(*y.shape[:-1], n, dtype=z.dtype, device=z.device)
        labels.scatter_add_(-1, lo, w_lo)
        labels.scatter_add_(-1, hi, 1.0 - w_lo)
        return labels


# ----------------------------------------------------------------------------------- PopArt


@gin.configurable(denylist=["enabled"])
class PopArtLayer(nn.Module):
    """Adaptive value normalisation (PopArt) with one set of statistics per gamma.

    Buffers, each (G, 1): mu = 0, nu = init_nu, w = 1, b = 0, _t = 1.
        sigma = clamp(sqrt(clamp(nu - mu^2, 1e-4, 1e8)), 1e-4, 1e6)
        forward(x, normalized=True)  = w·x + b                 (x (..., G, 1))
        forward(x, normalized=False) = sigma·(w·x + b) + mu    (de-normalised)
        normalize_values(y)          = (y - mu) / sigma
    ``update_stats`` moves mu, nu and then rescales w, b so the de-normalised output of any x is
    unchanged; hence w·sigma stays sqrt(init_nu). With ``enabled=False`` (set by the agent, not
    gin) ``forward`` and ``normalize_values`` are the identity and ``update_stats`` does nothing.
    """

    def __init__(self, gammas: int, enabled: bool = True, beta: float = 5e-4, init_nu: float = 100.0):
        super().__init__()
        if not 0.0 < beta <= 1.0:
            raise AmagoError(f"PopArtLayer beta must be in (0, 1], got {beta}")
        self.enabled = enabled
        self.beta = beta
        self.register_buffer("mu", torch.zeros(gammas, 1))
        self.register_buffer("nu", torch.full((gammas, 1), float(init_nu)))
        self.register_buffer("w", torch.ones(gammas, 1))
        self.register_buffer("b", torch.zeros(gammas, 1))
        self.register_buffer("_t", torch.ones(gammas, 1))

    @property
    def sigma(self) -> torch.Tensor:
        """(G, 1) standard deviation of the tracked returns."""
        return torch.clamp(torch.sqrt(torch.clamp(self.nu - self.mu**2, 1e-4, 1e8)), 1e-4, 1e6)

    def normalize_values(self, y: torch.Tensor) -> torch.Tensor:
        """(y - mu) / sigma for y (..., G, 1)."""
        if not self.enabled:
            return y
        return (y - self.mu) / self.sigma

    def inverse(self, y_norm: torch.Tensor) -> torch.Tensor:
        """The output x with forward(x) = y_norm: (y_norm − b) / w for y_norm (..., G, 1)."""
        if not self.enabled:
            return y_norm
        return (y_norm - self.b) / self.w

    def forward(self, x: torch.Tensor, normalized: bool = True) -> torch.Tensor:
        if not self.enabled:
            return x
        out = self.w * x + self.b
        return out if normalized else self.sigma * out + self.mu

    @torch.no_grad()
    def update_stats(self, y: torch.Tensor, mask: torch.Tensor) -> None:
        """Fold targets y (B, L-1, 1, G, 1) at valid positions ``mask`` (same shape, bool or 0/1)
        into the statistics:

            t <- t + 1;  beta_t = beta / (1 - (1 - beta)^t)
            m1, m2 = masked mean of y, y^2 over (B, L-1, 1), per gamma
            mu <- (1 - beta_t) mu + beta_t m1;   nu <- (1 - beta_t) nu + beta_t m2
            w <- w sigma_old / sigma_new;  b <- (sigma_old b + mu_old - mu_new) / sigma_new

        A gamma with no valid position keeps its mu and nu (w and b are then unchanged).
        """
        if not self.enabled:
            return
        if y.dim() != 5 or y.shape[-2:] != self.mu.shape:
            raise AmagoError(
                f"PopArt update_stats expects y of shape (B, L-1, 1, G, 1) with G = "
                f"{self.mu.shape[0]}, got {tuple(y.shape)}"
            )
        mask = mask.to(y.dtype).expand_as(y)
        count = mask.sum(dim=(0, 1, 2))                                    # (G, 1)
        safe_count = count.clamp_min(1.0)
        mean = (y * mask).sum(dim=(0, 1, 2)) / safe_count
        mean_sq = (y.square() * mask).sum(dim=(0, 1, 2)) / safe_count

        self._t += 1
        # beta / (1 - (1 - beta)^t), with expm1/log1p to avoid float32 cancellation near t = 1
        beta_t = self.beta / -torch.expm1(self._t * math.log1p(-self.beta))
        beta_t = torch.where(count > 0, beta_t, torch.zeros_like(beta_t))
        mu_old, sigma_old = self.mu.clone(), self.sigma
        self.mu.copy_((1.0 - beta_t) * self.mu + beta_t * mean)
        self.nu.copy_((1.0 - beta_t) * self.nu + beta_t * mean_sq)
        sigma_new = self.sigma
        self.w.copy_(self.w * sigma_old / sigma_new)
        self.b.copy_((sigma_old * self.b + mu_old - self.mu) / sigma_new)
