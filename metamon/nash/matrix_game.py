"""Symmetric zero-sum matrix games as a test bed for the PSRO loop (a tabular policy kind).

A game is an antisymmetric payoff matrix ``A`` (``(n, n)``, ``A = −Aᵀ``; ``A[i, j]`` = what
pure strategy ``i`` gains against ``j``). PSRO works with win probabilities, so the game is
mapped affinely to ``P = ½ + A / (2 · max|A|)``: ``P ∈ [0, 1]``, ``P + Pᵀ = 1``, ``diag P = ½``,
and because the map is a positive affine transformation, ``P`` and ``A`` have the same Nash
equilibria.

The policy kind is a pure strategy, spec ``"pure:<i>"``. :class:`ExactEvaluator` plays
``battles_per_pair`` deterministic "battles" per pair whose outcome counts are exactly
``P[i, j] · battles_per_pair`` (so the empirical matrix equals ``P``; the payoffs must make
these counts integers -- integer payoffs with ``battles_per_pair`` a multiple of
``2 · max|A|`` do), and :class:`ExactBestResponseOracle` returns the pure strategy of the
*whole* game with the highest win probability against σ. With these, PSRO with the ``nash``
meta-solver reaches an exact Nash equilibrium of the whole game in at most ``n`` iterations:
each iteration either adds a strategy not yet in the population or finds none better than σ,
which then is an equilibrium of the whole game.
"""

from __future__ import annotations

from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from metamon.nash.errors import NashError
from metamon.nash.meta_game import check_mixture
from metamon.nash.payoff import PairRequest
from metamon.nash.population import Member, Population

__all__ = [
    "SymmetricMatrixGame",
    "rock_paper_scissors",
    "biased_rock_paper_scissors",
    "random_symmetric_game",
    "ExactEvaluator",
    "ExactBestResponseOracle",
    "PURE_PREFIX",
]

PURE_PREFIX = "pure:"


class SymmetricMatrixGame:
    """A symmetric zero-sum game with antisymmetric payoffs ``(n, n)`` and strategy names."""

    def __init__(self, payoffs: Sequence[Sequence[float]], names: Optional[Sequence[str]] = None):
        a = np.asarray(payoffs, dtype=float)
        if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] == 0 or not np.all(np.isfinite(a)):
            raise NashError(f"Payoffs must be a finite square matrix, got shape {a.shape}")
        if not np.allclose(a, -a.T, rtol=0.0, atol=1e-12):
            raise NashError("A symmetric zero-sum game needs antisymmetric payoffs (A = -A^T)")
        self.payoffs = a
        self.names: Tuple[str, ...] = tuple(names) if names is not None else tuple(f"s{i}" for i in range(len(a)))
        if len(self.names) != len(a) or len(set(self.names)) != len(a):
            raise NashError(f"Need {len(a)} distinct strategy names, got {self.names}")

    @property
    def size(self) -> int:
        return self.payoffs.shape[0]

    def win_probabilities(self) -> np.ndarray:
        """``(n, n)`` ``P = ½ + A / (2 max|A|)`` (all ½ if ``A = 0``)."""
        scale = np.abs(self.payoffs).max()
        return np.full(self.payoffs.shape, 0.5) if scale == 0 else 0.5 + self.payoffs / (2.0 * scale)

    def member(self, strategy: int, **metadata: Any) -> Member:
        """The population member playing pure ``strategy``."""
        return Member(self.names[strategy], f"{PURE_PREFIX}{strategy}", {"strategy": int(strategy), **metadata})

    def strategy_of(self, member: Member) -> int:
        """The pure strategy a member's spec ``"pure:<i>"`` names."""
        spec = member.spec
        if not spec.startswith(PURE_PREFIX) or not spec[len(PURE_PREFIX):].isdigit():
            raise NashError(f"Member {member.name!r} has spec {spec!r}; this game plays only '{PURE_PREFIX}<i>'")
        i = int(spec[len(PURE_PREFIX):])
        if i >= self.size:
            raise NashError(f"Member {member.name!r}: strategy {i} does not exist (the game has {self.size})")
        return i

    def full_mixture(self, population: Population, sigma: Sequence[float]) -> np.ndarray:
        """σ over the population as a ``(n,)`` mixture over the game's pure strategies."""
        s = check_mixture(sigma, len(population))
        full = np.zeros(self.size)
        for member, p in zip(population, s):
            full[self.strategy_of(member)] += p
        return full

    def exploitability(self, mixture: Sequence[float]) -> float:
        """``max_j (P x)_j − ½`` of a ``(n,)`` mixture over pure strategies, in the whole game."""
        x = check_mixture(mixture, self.size)
        return float((self.win_probabilities() @ x).max() - 0.5)


def rock_paper_scissors() -> SymmetricMatrixGame:
    """RPS; its unique Nash is uniform."""
    return SymmetricMatrixGame([[0, -1, 1], [1, 0, -1], [-1, 1, 0]], ["rock", "paper", "scissors"])


def biased_rock_paper_scissors() -> SymmetricMatrixGame:
    """Payoff rows ``[0, −1, 3], [1, 0, −3], [−3, 3, 0]``; its unique Nash is (3/7, 3/7, 1/7)
    (``Aσ = 0``: ``−σ₁ + 3σ₂ = 0`` and ``σ₀ − 3σ₂ = 0``)."""
    return SymmetricMatrixGame([[0, -1, 3], [1, 0, -3], [-3, 3, 0]], ["rock", "paper", "scissors"])


def random_symmetric_game(n: int, seed: Any = None, max_payoff: int = 5) -> SymmetricMatrixGame:
    """A random ``n × n`` symmetric zero-sum game with integer payoffs uniform in
    ``[−max_payoff, max_payoff]`` above the diagonal (integers so that
    :class:`ExactEvaluator` counts are exact with ``battles_per_pair = 2 · max_payoff``)."""
    rng = np.random.default_rng(seed)
    upper = np.triu(rng.integers(-max_payoff, max_payoff + 1, size=(n, n)), 1)
    return SymmetricMatrixGame(upper - upper.T)


class ExactEvaluator:
    """:class:`~metamon.nash.psro.PayoffEvaluator` for a :class:`SymmetricMatrixGame`: for a
    pair ``(a, b)`` it yields ``battles_per_pair`` records with ids ``"<a>|<b>|<k>"``, of which
    exactly ``P[a, b] · battles_per_pair`` are wins of ``a`` and the rest losses (the same ids
    every time, so a repeated call adds nothing)."""

    def __init__(self, game: SymmetricMatrixGame, battles_per_pair: Optional[int] = None):
        scale = np.abs(game.payoffs).max()
        if battles_per_pair is None:
            battles_per_pair = max(2, int(round(2 * scale)))
        self.game = game
        self.battles_per_pair = int(battles_per_pair)
        self._p = game.win_probabilities()
        wins = self._p * self.battles_per_pair
        if not np.allclose(wins, np.round(wins), rtol=0.0, atol=1e-9):
            raise NashError(f"battles_per_pair={self.battles_per_pair} does not make every win probability times "
                            "the battle count an integer; use integer payoffs and a multiple of 2*max|A|")
        self._wins = np.round(wins).astype(int)

    def play(self, population: Population, requests: Sequence[PairRequest]) -> Iterator[List[Dict[str, str]]]:
        for a, b, _missing in requests:
            i, j = self.game.strategy_of(population[a]), self.game.strategy_of(population[b])
            yield [
                {"battle_id": f"{a}|{b}|{k}", "player": a, "opponent": b,
                 "result": "win" if k < self._wins[i, j] else "loss"}
                for k in range(self.battles_per_pair)
            ]


class ExactBestResponseOracle:
    """:class:`~metamon.nash.psro.BestResponseOracle` for a :class:`SymmetricMatrixGame`: the
    pure strategy with the highest win probability against σ in the *whole* game. Ties
    (within ``tol``) go to a strategy already in the population -- so the loop sees that
    nothing better exists -- and then to the lowest index."""

    def __init__(self, game: SymmetricMatrixGame, tol: float = 1e-12):
        self.game = game
        self.tol = tol

    def best_response(self, population: Population, sigma: np.ndarray, iteration: int) -> Member:
        values = self.game.win_probabilities() @ self.game.full_mixture(population, sigma)
        best = np.flatnonzero(values >= values.max() - self.tol)
        present: Mapping[int, Member] = {self.game.strategy_of(m): m for m in population}
        for i in best:
            if int(i) in present:
                return present[int(i)]
        return self.game.member(int(best[0]), iteration=iteration)
