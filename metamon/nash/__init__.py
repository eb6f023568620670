"""PSRO toward a Nash mixture over a population of policies (layout after OpenSpiel's psro_v2).

=====================  ==========================================================================
module                 idea
=====================  ==========================================================================
``errors``             :class:`NashError`, the one error type of the package
``population``         :class:`Population`: ordered, uniquely named members (player spec strings)
``payoff``             :class:`PayoffTable`: unique battles per pair → win-rate matrix ``M``
``meta_game``          checks on ``M`` (symmetric constant-sum) and on mixtures σ
``meta_solvers``       ``M → σ``: ``nash`` (LP), ``uniform``, ``prd``, ``alpharank`` (a ranking)
``exploitability``     ``max_j (Mσ)_j − ½`` (= NashConv/2), bootstrap interval, win rate vs σ
``psro``               the loop, generic over a payoff evaluator and a best-response oracle
``matrix_game``        symmetric matrix games with an exact evaluator and oracle (the test bed)
``showdown``           :class:`ShowdownEvaluator`: payoffs from real battles (the tournament engine)
=====================  ==========================================================================

Pure numpy/scipy: nothing here imports torch, poke-env or another metamon package beyond
``metamon.errors``, ``metamon.files`` and ``metamon.stats`` -- except ``showdown``, which plays
battles through :mod:`metamon.battles` and is imported from its module
(``from metamon.nash.showdown import ShowdownEvaluator``), not from this package.
"""

from __future__ import annotations

from metamon.nash.errors import NashError
from metamon.nash.exploitability import bootstrap_exploitability, exploitability, nash_conv, win_rate_vs_mixture
from metamon.nash.meta_solvers import META_SOLVERS, get_meta_solver
from metamon.nash.payoff import PayoffCounts, PayoffTable
from metamon.nash.population import Member, Population
from metamon.nash.psro import BestResponseOracle, PayoffEvaluator, PSROResult, run_psro_loop

__all__ = [
    "NashError",
    "Member",
    "Population",
    "PayoffTable",
    "PayoffCounts",
    "META_SOLVERS",
    "get_meta_solver",
    "exploitability",
    "nash_conv",
    "bootstrap_exploitability",
    "win_rate_vs_mixture",
    "PayoffEvaluator",
    "BestResponseOracle",
    "PSROResult",
    "run_psro_loop",
]
