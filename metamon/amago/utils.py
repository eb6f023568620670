"""Small shared helpers: the package's error and warning types and a masked mean."""

import warnings

import torch

MAGIC_PAD_VAL = 4.0
"""Value used to right-pad every tensor of a batch; a timestep whose features are all equal to
it is padding (see ``metamon.amago.loading``)."""


class AmagoError(ValueError):
    """Bad input to the sequence-RL core (a wrong shape, an unknown option name, ...)."""


class AmagoWarning(UserWarning):
    """Something is probably misconfigured, but training can continue."""


def amago_warning(msg: str) -> None:
    """Emit ``msg`` as an :class:`AmagoWarning`, reported at the line that called this helper."""
    warnings.warn(msg, category=AmagoWarning, stacklevel=2)


def masked_avg(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``x`` over the positions where ``mask`` is set.

    avg = Σ (x · m) / (Σ m + 1e-5), summed over *every* element; ``mask`` (bool or float) is
    broadcast to ``x``'s shape first (ordinary right-aligned broadcasting), so a mask of shape
    (B, L, 1, 1, 1) weights every critic and gamma entry of ``x`` (B, L, C, G, 1).
    Returns a scalar tensor.
    """
    mask = mask.to(x.dtype).expand_as(x)
    return (x * mask).sum() / (mask.sum() + 1e-5)
