"""Heuristic opponents (poke-env ``Player`` subclasses) and their registry.

Every built-in baseline is registered by class name::

    from metamon.baselines import get_baseline, get_all_baseline_names, make_player
    Grunt = get_baseline("Grunt")
    player = Grunt(battle_format="gen9randombattle", server_configuration=...)
    player = make_player("Grunt", "gen9randombattle", server_configuration=..., seed=0)

``get_baseline`` also accepts a dotted path ``"package.module.ClassName"`` to any poke-env
``Player`` subclass, so your own players can be used wherever a baseline name is expected.

``BASELINES_BY_GEN[gen][tier]`` lists the baselines meant for a generation and tier (every
built-in uses the default gens 1, 2, 3, 4, 9 and tiers ou, uu, ubers, nu).
``HEURISTIC_COMPOSITE_BASELINES`` is the opponent set of metamon's "heuristic composite score".
Head-to-head runs: ``python -m metamon.baselines.compete --help``.

Modules: :mod:`~.registry` (names, classes, :func:`make_player`), :mod:`~.player` (the
:class:`Baseline` class), :mod:`~.calc` (the battle arithmetic; :mod:`~.base` re-exports it
with ``Baseline`` under metamon's old path), :mod:`~.simple`, :mod:`~.heuristics`,
:mod:`~.kaizo` (the baselines, registered when imported here), :mod:`~.compete` (the CLI).
"""

from __future__ import annotations

from metamon.baselines.player import Baseline
from metamon.baselines.registry import (
    ALL_BASELINES,
    BASELINES_BY_GEN,
    HEURISTIC_COMPOSITE_BASELINES,
    SUPPORTED_GENS,
    SUPPORTED_TIERS,
    get_all_baseline_names,
    get_baseline,
    make_player,
    register_baseline,
)

# Importing a baseline module registers its baselines; this order is the order of
# ALL_BASELINES and of every BASELINES_BY_GEN list.
# isort: off
from metamon.baselines.simple import (
    BasicSwitcher,
    Gen1Trainer,
    Gen1TrainerGoodSwitching,
    MaxBPBaseline,
    PokeEnvHeuristic,
    RandomBaseline,
)
from metamon.baselines.heuristics import BugCatcher, Gen1BossAI, Grunt, GymLeader
from metamon.baselines.kaizo import EmeraldKaizo
# isort: on

__all__ = [
    "ALL_BASELINES",
    "BASELINES_BY_GEN",
    "HEURISTIC_COMPOSITE_BASELINES",
    "SUPPORTED_GENS",
    "SUPPORTED_TIERS",
    "register_baseline",
    "get_baseline",
    "get_all_baseline_names",
    "make_player",
    "Baseline",
    "BasicSwitcher",
    "BugCatcher",
    "EmeraldKaizo",
    "Gen1BossAI",
    "Gen1Trainer",
    "Gen1TrainerGoodSwitching",
    "Grunt",
    "GymLeader",
    "MaxBPBaseline",
    "PokeEnvHeuristic",
    "RandomBaseline",
]
