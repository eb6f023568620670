"""The empirical meta-game: a symmetric constant-sum game given by a win-rate matrix.

``M`` is ``(K, K)`` with ``M[i, j]`` = probability that policy ``i`` beats policy ``j`` (draws as
half), so ``M + Mᵀ = 1`` and ``diag(M) = ½``. Both players choose among the same ``K``
policies; a mixture ``σ`` is a probability vector of length ``K``.

* ``(M σ)[j]`` is how often policy ``j`` beats an opponent drawn from ``σ``.
* ``A = M − ½`` is antisymmetric (``A = −Aᵀ``): the zero-sum form of the same game, with value 0.

This module holds the checks every solver and measure applies to its inputs.
"""

from __future__ import annotations

from typing import Sequence, Union

import numpy as np

from metamon.nash.errors import NashError

__all__ = ["check_win_rate_matrix", "check_mixture", "CONSISTENCY_ATOL"]

#: tolerance on ``M + Mᵀ = 1`` and ``diag(M) = ½``
CONSISTENCY_ATOL = 1e-9

ArrayLike = Union[np.ndarray, Sequence[Sequence[float]]]


def check_win_rate_matrix(m: ArrayLike) -> np.ndarray:
    """``m`` as a float ``(K, K)`` array, after checking that it is a win-rate matrix of a
    symmetric constant-sum game (finite, in [0, 1], ``M + Mᵀ = 1`` and ``diag = ½`` within
    :data:`CONSISTENCY_ATOL`). Raises :class:`NashError` saying which condition fails."""
    m = np.asarray(m, dtype=float)
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] == 0:
        raise NashError(f"A win-rate matrix must be square and non-empty, got shape {m.shape}")
    if not np.all(np.isfinite(m)):
        raise NashError("The win-rate matrix has non-finite entries")
    if m.min() < -CONSISTENCY_ATOL or m.max() > 1 + CONSISTENCY_ATOL:
        raise NashError(f"Win rates must lie in [0, 1]; found [{m.min():.6g}, {m.max():.6g}]")
    worst = float(np.abs(m + m.T - 1.0).max())
    if worst > CONSISTENCY_ATOL:
        i, j = np.unravel_index(np.abs(m + m.T - 1.0).argmax(), m.shape)
        raise NashError(f"The win-rate matrix is not constant-sum: M[{i},{j}] + M[{j},{i}] = {m[i, j] + m[j, i]:.12g}, "
                        "expected 1 (and 1/2 on the diagonal)")
    return m


def check_mixture(sigma: Union[np.ndarray, Sequence[float]], k: int, atol: float = 1e-6) -> np.ndarray:
    """``sigma`` as a float ``(k,)`` array after checking it is a probability vector (entries
    ≥ ``−atol``, sum within ``atol`` of 1); tiny negatives are clipped and the result
    renormalised. Raises :class:`NashError` otherwise."""
    s = np.asarray(sigma, dtype=float)
    if s.shape != (k,):
        raise NashError(f"The mixture has shape {s.shape}, expected ({k},)")
    if not np.all(np.isfinite(s)) or s.min() < -atol or abs(s.sum() - 1.0) > atol:
        raise NashError(f"The mixture is not a probability vector: {s.tolist()}")
    s = np.clip(s, 0.0, None)
    return s / s.sum()
