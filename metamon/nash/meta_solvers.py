"""Meta-solvers: functions from a win-rate matrix ``M`` (``(K, K)``, see
:mod:`metamon.nash.meta_game`) to a mixture ``σ`` (``(K,)``, a probability vector).

========== ====================================================================================
name       what it returns
========== ====================================================================================
nash       an exact Nash equilibrium of the symmetric constant-sum game, by linear programming
uniform    ``1/K`` each (PSRO with it is "fictitious play over the population")
prd        projected replicator dynamics (OpenSpiel-style): an approximate Nash, time-averaged
alpharank  the α-Rank stationary distribution: a *ranking* of policies, **not** a Nash
           equilibrium; its exploitability is in general not 0
========== ====================================================================================

:func:`get_meta_solver` takes one of these names (with keyword options, e.g.
``get_meta_solver("prd", iterations=50_000)``) or any callable ``M → σ`` of the user's own.

When the Nash equilibrium is not unique (e.g. two identical policies) the LP returns one vertex
of the equilibrium set -- HiGHS's choice, deterministic for a given ``M`` -- with no
max-entropy tie-breaking. Read the support of σ with that in mind, and with the noise of ``M``
(see :mod:`metamon.nash.exploitability` for intervals).
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Dict, NamedTuple, Optional, Sequence, Union

import numpy as np
from scipy.optimize import linprog
from scipy.special import logsumexp

from metamon.errors import UnknownNameError
from metamon.nash.errors import NashError
from metamon.nash.meta_game import check_mixture, check_win_rate_matrix

__all__ = [
    "MetaSolver",
    "ZeroSumSolution",
    "maximin_strategy",
    "solve_zero_sum",
    "nash",
    "uniform",
    "prd",
    "alpharank",
    "META_SOLVERS",
    "get_meta_solver",
]

#: a meta-solver maps a ``(K, K)`` win-rate matrix to a ``(K,)`` mixture
MetaSolver = Callable[[np.ndarray], np.ndarray]


class ZeroSumSolution(NamedTuple):
    """An equilibrium of the zero-sum game with row payoffs ``A`` (``(m, n)``): ``row`` (``(m,)``)
    and ``col`` (``(n,)``) are maximin/minimax strategies and ``value`` = ``rowᵀ A col``."""

    row: np.ndarray
    col: np.ndarray
    value: float


def maximin_strategy(a: np.ndarray) -> tuple[np.ndarray, float]:
    """The row player's maximin strategy of the zero-sum game with row payoffs ``a`` (``(m, n)``)
    and its guaranteed value, by one linear program solved with HiGHS::

        maximise   v                          over x ∈ ℝ^m, v ∈ ℝ
        subject to Σ_i x_i a[i, j] ≥ v        for every column j   (x guarantees v against all j)
                   Σ_i x_i = 1,  x ≥ 0

    written for ``scipy.optimize.linprog`` as minimise ``−v`` with ``A_ub = [−aᵀ | 1]``,
    ``b_ub = 0``. By the minimax theorem the optimum ``v*`` is the value of the game. Raises
    :class:`NashError` if HiGHS reports a failure."""
    a = np.asarray(a, dtype=float)
    if a.ndim != 2 or 0 in a.shape or not np.all(np.isfinite(a)):
        raise NashError(f"A payoff matrix must be a finite non-empty 2-D array, got shape {a.shape}")
    m, n = a.shape
    c = np.zeros(m + 1)
    c[-1] = -1.0
    a_ub = np.hstack([-a.T, np.ones((n, 1))])
    a_eq = np.hstack([np.ones((1, m)), np.zeros((1, 1))])
    bounds = [(0.0, None)] * m + [(None, None)]
    res = linprog(c, A_ub=a_ub, b_ub=np.zeros(n), A_eq=a_eq, b_eq=[1.0], bounds=bounds, method="highs")
    if res.status != 0:
        raise NashError(f"The Nash linear program failed (HiGHS status {res.status}: {res.message})")
    x = np.clip(res.x[:m], 0.0, None)
    return x / x.sum(), float(res.x[-1])


def solve_zero_sum(a: np.ndarray) -> ZeroSumSolution:
    """A Nash equilibrium of the general two-player zero-sum game with row payoffs ``a``
    (``(m, n)``; the column player receives ``−a``): two LPs (:func:`maximin_strategy` for the
    row player on ``a`` and for the column player on ``−aᵀ``)."""
    a = np.asarray(a, dtype=float)
    row, _ = maximin_strategy(a)
    col, _ = maximin_strategy(-a.T)
    return ZeroSumSolution(row, col, float(row @ a @ col))


def nash(m: np.ndarray) -> np.ndarray:
    """An exact Nash equilibrium σ of the symmetric constant-sum game ``M``.

    Solves the LP of :func:`maximin_strategy` on ``A = M − ½`` (antisymmetric, value 0): σ
    maximises its guaranteed advantage ``min_j (σᵀA)_j``. At the optimum ``(σᵀA)_j ≥ 0`` for
    every ``j``, i.e. ``(Mσ)_j ≤ ½``: no policy beats σ more than half the time, so ``(σ, σ)``
    is a symmetric Nash equilibrium and σ's exploitability is 0 (up to LP round-off, ~1e-15)."""
    m = check_win_rate_matrix(m)
    sigma, _ = maximin_strategy(m - 0.5)
    return sigma


def uniform(m: np.ndarray) -> np.ndarray:
    """``1/K`` on every policy."""
    k = check_win_rate_matrix(m).shape[0]
    return np.full(k, 1.0 / k)


def _project_floored_simplex(v: np.ndarray, floor: float) -> np.ndarray:
    """Euclidean projection of ``v`` onto ``{x : x_i ≥ floor, Σ x = 1}`` (sort-based)."""
    k = v.shape[0]
    y = v - floor
    total = 1.0 - k * floor
    u = np.sort(y)[::-1]
    excess = np.cumsum(u) - total
    ranks = np.arange(1, k + 1)
    r = ranks[u - excess / ranks > 0][-1]
    return np.maximum(y - excess[r - 1] / r, 0.0) + floor


def prd(m: np.ndarray, iterations: int = 10_000, step: float = 0.1, floor: float = 1e-6,
        initial: Optional[Sequence[float]] = None) -> np.ndarray:
    """Projected replicator dynamics (Lanctot et al. 2017, as in OpenSpiel), one population.

    With ``A = M − ½`` and σ⁰ = ``initial`` (default uniform), each of ``iterations`` Euler
    steps is::

        u      = A σᵗ                                  # advantage of each policy against σᵗ
        σᵗ⁺¹   = Π( σᵗ + step · σᵗ ⊙ (u − σᵗ·u) )      # replicator step, then projection

    where ``Π`` is the Euclidean projection onto the simplex with every entry ≥ ``floor`` (the
    exploration floor: no policy goes extinct, so one that becomes good later can regrow;
    requires ``floor · K ≤ 1``). Returned: the average of σ¹..σᵀ, because in zero-sum games
    the replicator orbits cycle around the equilibrium while their time-average approaches it.

    ``step`` is in units of win-rate advantage (entries of ``A`` lie in [−½, ½]); the
    dynamics run for continuous time ``iterations · step`` (1000 by default), and the
    exploitability of the result shrinks roughly like 1/(that time): about 1e-3 on RPS-like
    3×3 and random 10×10 games with the defaults. It is an approximate solver; use ``nash`` for
    an exact equilibrium."""
    m = check_win_rate_matrix(m)
    k = m.shape[0]
    if iterations < 1 or step <= 0 or not 0 <= floor <= 1.0 / k:
        raise NashError(f"prd needs iterations ≥ 1, step > 0 and 0 ≤ floor ≤ 1/K; "
                        f"got {iterations}, {step}, {floor}")
    a = m - 0.5
    sigma = np.full(k, 1.0 / k) if initial is None else check_mixture(initial, k)
    sigma = _project_floored_simplex(sigma, floor)
    total = np.zeros(k)
    for _ in range(iterations):
        u = a @ sigma
        sigma = sigma + step * sigma * (u - sigma @ u)
        if sigma.min() < floor or abs(sigma.sum() - 1.0) > 1e-12:
            sigma = _project_floored_simplex(sigma, floor)
        total += sigma
    return total / total.sum()


def alpharank(m: np.ndarray, alpha: float = 100.0, population_size: int = 50) -> np.ndarray:
    """α-Rank (Omidshafiei et al. 2019), single-population form. **A ranking, not a Nash
    solver**: the returned vector is the stationary distribution of an evolutionary Markov
    chain over the policies; it need not be an equilibrium and its exploitability is in
    general > 0. Example: on biased rock-paper-scissors (:mod:`metamon.nash.matrix_game`) it
    returns ≈ uniform, exploitability 1/9, while the Nash is (3/7, 3/7, 1/7): with large ``α``
    every "beats" edge of the cycle fixates almost surely, whatever its margin.

    The chain's states are monomorphic populations (all ``population_size`` = ``m_p``
    individuals play one policy ``s``). A single mutant ``r`` appears (each ``r ≠ s`` with
    rate ``η = 1/(K−1)``) and takes over with the Fermi fixation probability::

        f_r(k) = ((k−1) M[r,r] + (m_p−k) M[r,s]) / (m_p−1)       # mutant fitness, k mutants
        f_s(k) = (k M[s,r] + (m_p−k−1) M[s,s]) / (m_p−1)         # resident fitness
        ρ(r←s) = 1 / Σ_{l=0}^{m_p−1} Π_{k=1}^{l} exp(−α (f_r(k) − f_s(k)))

    (computed in log space, so large ``α`` does not overflow). ``C[s, r] = η ρ(r←s)`` and
    ``C[s, s] = 1 − Σ_r C[s, r]``; the result ``π`` solves ``πᵀC = πᵀ``, ``Σ π = 1``. For a
    win-rate matrix, ``f_r − f_s = m_p (M[r,s] − ½)/(m_p − 1)`` for every ``k``, and the top
    cycle of the "who beats whom" tournament is the chain's unique closed class, so ``π`` is
    unique. Larger ``α`` concentrates ``π`` on that class."""
    m = check_win_rate_matrix(m)
    k = m.shape[0]
    if alpha <= 0 or population_size < 2:
        raise NashError(f"alpharank needs alpha > 0 and population_size ≥ 2; got {alpha}, {population_size}")
    if k == 1:
        return np.ones(1)
    mp = population_size
    mutants = np.arange(1, mp)  # k = 1 .. m_p - 1
    c = np.zeros((k, k))
    for s in range(k):
        for r in range(k):
            if r == s:
                continue
            f_r = ((mutants - 1) * m[r, r] + (mp - mutants) * m[r, s]) / (mp - 1)
            f_s = (mutants * m[s, r] + (mp - mutants - 1) * m[s, s]) / (mp - 1)
            log_terms = np.concatenate([[0.0], -alpha * np.cumsum(f_r - f_s)])
            c[s, r] = np.exp(-logsumexp(log_terms)) / (k - 1)
        c[s, s] = 1.0 - c[s].sum()
    system = np.vstack([c.T - np.eye(k), np.ones((1, k))])
    rhs = np.concatenate([np.zeros(k), [1.0]])
    pi, *_ = np.linalg.lstsq(system, rhs, rcond=None)
    pi = np.clip(pi, 0.0, None)
    return pi / pi.sum()


#: the meta-solvers known by name
META_SOLVERS: Dict[str, MetaSolver] = {"nash": nash, "uniform": uniform, "prd": prd, "alpharank": alpharank}


def get_meta_solver(solver: Union[str, MetaSolver], **options: Any) -> MetaSolver:
    """The meta-solver named ``solver`` (see :data:`META_SOLVERS`), with ``options`` bound as
    keyword arguments; or ``solver`` itself if it is a callable ``M → σ`` (then ``options``
    must be empty). An unknown name raises :class:`~metamon.errors.UnknownNameError` listing the
    names."""
    if callable(solver):
        if options:
            raise NashError("Options can only be given with a solver name; bind them into your callable yourself")
        return solver
    if not isinstance(solver, str) or solver not in META_SOLVERS:
        raise UnknownNameError("meta-solver", str(solver), META_SOLVERS)
    fn = META_SOLVERS[solver]
    return functools.partial(fn, **options) if options else fn
