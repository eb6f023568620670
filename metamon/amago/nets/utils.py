"""Shared network pieces: symlog, input normalisation, activation and norm switches, a small MLP
and activation logging."""

from typing import Optional

import gin
import torch
from torch import nn

from metamon.amago.utils import MAGIC_PAD_VAL, AmagoError


def symlog(x: torch.Tensor) -> torch.Tensor:
    """symlog(x) = sign(x) · log(|x| + 1): compresses large magnitudes, ≈ x near 0."""
    return torch.sign(x) * torch.log(torch.abs(x) + 1.0)


def symexp(x: torch.Tensor) -> torch.Tensor:
    """symexp(x) = sign(x) · (exp(|x|) − 1), the inverse of :func:`symlog`."""
    return torch.sign(x) * (torch.exp(torch.abs(x)) - 1.0)


@gin.configurable(denylist=["skip"])
class InputNorm(nn.Module):
    """Moving-average feature normaliser (buffers ``mu``, ``nu``: (dim,), ``_t``: (1,)).

    Statistics (updated by :meth:`update_stats`, called by ``forward`` in train mode only):
        t ← t + 1,   β_t = β / (1 − (1 − β)^t)
        μ ← (1 − β_t) μ + β_t · mean(x),   ν ← (1 − β_t) ν + β_t · mean(x²)
    where the means run over every leading position of x (..., dim) *except rows whose features
    are all equal to the padding value* 4.0. A batch made only of padding changes nothing.

    Normalisation:
        σ = clamp(nan_to_num(sqrt(ν − μ² + 1e-5)), 1e-3, 1e6)
        x̂ = clamp((x − μ) / σ, −1e4, 1e4), replaced by x − μ where σ ≤ 0.01 or x̂ is NaN.

    ``forward`` first updates the statistics (train mode) and then normalises with them.
    ``skip=True`` (not gin-configurable) makes the module the identity.
    """

    def __init__(self, dim: int, beta: float = 1e-4, init_nu: float = 1.0, skip: bool = False):
        super().__init__()
        self.beta = beta
        self.skip = skip
        self.register_buffer("mu", torch.zeros(dim))
        self.register_buffer("nu", torch.full((dim,), float(init_nu)))
        self.register_buffer("_t", torch.ones(1))

    @property
    def sigma(self) -> torch.Tensor:
        """σ = clamp(nan_to_num(sqrt(ν − μ² + 1e-5)), 1e-3, 1e6), shape (dim,)."""
        var = self.nu - self.mu**2
        return torch.clamp(torch.nan_to_num(torch.sqrt(var + 1e-5)), 1e-3, 1e6)

    @torch.no_grad()
    def update_stats(self, x: torch.Tensor) -> None:
        """Fold the non-padding rows of x (..., dim) into μ and ν (see the class docstring)."""
        rows = x.detach().reshape(-1, x.shape[-1]).to(self.mu.dtype)
        rows = rows[~(rows == MAGIC_PAD_VAL).all(dim=-1)]
        if rows.shape[0] == 0:
            return
        self._t += 1
        beta_t = self.beta / (1.0 - (1.0 - self.beta) ** self._t)
        self.mu.mul_(1.0 - beta_t).add_(beta_t * rows.mean(dim=0))
        self.nu.mul_(1.0 - beta_t).add_(beta_t * (rows**2).mean(dim=0))

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """x (..., dim) → x̂ (..., dim) with the current statistics."""
        sigma = self.sigma
        centred = x - self.mu
        x_hat = torch.clamp(centred / sigma, -1e4, 1e4)
        use_centred = (sigma <= 0.01) | torch.isnan(x_hat)
        return torch.where(use_centred, centred, x_hat)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.skip:
            return x
        if self.training:
            self.update_stats(x)
        return self.normalize(x)


_ACTIVATIONS = {
    "leaky_relu": lambda: nn.LeakyReLU(negative_slope=0.01),
    "relu": nn.ReLU,
    "gelu": nn.GELU,
}


def activation_switch(name: str) -> nn.Module:
    """A fresh activation module by name: "leaky_relu" (slope 0.01), "relu" or "gelu".

    (AMAGO's trainable "adaptive" rational activation is not implemented.)
    """
    if name not in _ACTIVATIONS:
        raise AmagoError(
            f"Unknown activation {name!r} (the `activation` option); "
            f"choose one of {sorted(_ACTIVATIONS)}"
        )
    return _ACTIVATIONS[name]()


class _RMSNorm(nn.Module):
    """x · rsqrt(mean(x²) + 1e-5) · scale over the last dim; parameter ``scale`` (d,), init 1."""

    def __init__(self, d: int):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + 1e-5) * self.scale


class _UnitBall(nn.Module):
    """x / (‖x‖₂ + 1e-5) over the last dim; the denominator is detached if ``detach``."""

    def __init__(self, detach: bool):
        super().__init__()
        self.detach = detach

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        norm = torch.linalg.vector_norm(x, dim=-1, keepdim=True) + 1e-5
        return x / (norm.detach() if self.detach else norm)


_NORMS = {
    "layer": lambda d: nn.LayerNorm(d, eps=1e-5),
    "rmsnorm": _RMSNorm,
    "unitball": lambda d: _UnitBall(detach=False),
    "unitball-detach": lambda d: _UnitBall(detach=True),
    "none": lambda d: nn.Identity(),
}


class Normalization(nn.Module):
    """Normalisation over the last dim, chosen by name; the layer itself lives in ``.norm``.

    kind: "layer" (LayerNorm, affine, eps 1e-5; keys ``norm.weight``/``norm.bias``),
    "rmsnorm" (key ``norm.scale``), "unitball", "unitball-detach" or "none" (no parameters).
    """

    def __init__(self, kind: str, d: int):
        super().__init__()
        if kind not in _NORMS:
            raise AmagoError(
                f"Unknown normalization {kind!r} (the `norm` option); choose one of {sorted(_NORMS)}"
            )
        self.kind = kind
        self.norm = _NORMS[kind](d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x)


class MLP(nn.Module):
    """Feed-forward stack: ``in_layer`` (d_inp→d_hidden), ``n_layers − 1`` hidden ``layers``
    (d_hidden→d_hidden), ``out_layer`` (d_hidden→d_output).

    h = drop(act(in_layer(x))); h = drop(act(layer(h))) for each hidden layer; y = out_layer(h).
    Shapes: (..., d_inp) → (..., d_output).
    """

    def __init__(
        self,
        d_inp: int,
        d_hidden: int,
        n_layers: int,
        d_output: int,
        activation: str = "leaky_relu",
        dropout_p: float = 0.0,
    ):
        super().__init__()
        if n_layers < 1:
            raise AmagoError(f"MLP n_layers must be >= 1, got {n_layers}")
        self.in_layer = nn.Linear(d_inp, d_hidden)
        self.layers = nn.ModuleList(nn.Linear(d_hidden, d_hidden) for _ in range(n_layers - 1))
        self.out_layer = nn.Linear(d_hidden, d_output)
        self.activation = activation_switch(activation)
        self.dropout = nn.Dropout(dropout_p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.dropout(self.activation(self.in_layer(x)))
        for layer in self.layers:
            h = self.dropout(self.activation(layer(h)))
        return self.out_layer(h)


def add_activation_log(name: str, tensor: torch.Tensor, log_dict: Optional[dict]) -> None:
    """Record max/min/std/mean of ``tensor`` under ``"activation-{name}-{stat}"`` (no-op if
    ``log_dict`` is None). Values are detached scalar tensors."""
    if log_dict is None:
        return
    t = tensor.detach().float()
    log_dict[f"activation-{name}-max"] = t.max()
    log_dict[f"activation-{name}-min"] = t.min()
    log_dict[f"activation-{name}-std"] = t.std()
    log_dict[f"activation-{name}-mean"] = t.mean()
