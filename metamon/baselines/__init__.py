"""Heuristic opponents (poke-env ``Player`` subclasses) and their registry.

Every built-in baseline is registered by class name::

    from metamon.baselines import get_baseline, get_all_baseline_names
    Grunt = get_baseline("Grunt")
    player = Grunt(battle_format="gen9randombattle", server_configuration=...)

``get_baseline`` also accepts a dotted path ``"package.module.ClassName"`` to any poke-env
``Player`` subclass, so your own players can be used wherever a baseline name is expected.

``BASELINES_BY_GEN[gen][tier]`` lists the baselines meant for a generation and tier (every
built-in uses the default gens 1, 2, 3, 4, 9 and tiers ou, uu, ubers, nu).
``HEURISTIC_COMPOSITE_BASELINES`` is the opponent set of metamon's "heuristic composite score".
Head-to-head runs: ``python -m metamon.baselines.compete --help``.
"""

from __future__ import annotations

import importlib
from typing import Dict, List, Sequence, Type

from poke_env.player import Player

from metamon.errors import MetamonError, UnknownNameError

__all__ = [
    "ALL_BASELINES",
    "BASELINES_BY_GEN",
    "HEURISTIC_COMPOSITE_BASELINES",
    "SUPPORTED_GENS",
    "SUPPORTED_TIERS",
    "register_baseline",
    "get_baseline",
    "get_all_baseline_names",
]

SUPPORTED_GENS = tuple(range(1, 10))
SUPPORTED_TIERS = ("ou", "uu", "ru", "nu", "pu", "ubers", "lc", "randombattle")

ALL_BASELINES: Dict[str, Type[Player]] = {}
BASELINES_BY_GEN: Dict[int, Dict[str, List[Type[Player]]]] = {
    gen: {tier: [] for tier in SUPPORTED_TIERS} for gen in SUPPORTED_GENS
}

HEURISTIC_COMPOSITE_BASELINES = [
    "PokeEnvHeuristic",
    "Gen1BossAI",
    "Grunt",
    "GymLeader",
    "EmeraldKaizo",
    "RandomBaseline",
]


def register_baseline(
    gens: Sequence[int] = (1, 2, 3, 4, 9),
    formats: Sequence[str] = ("ou", "uu", "ubers", "nu"),
):
    """Class decorator adding a ``Player`` subclass to :data:`ALL_BASELINES` (under its class
    name) and to ``BASELINES_BY_GEN[gen][tier]`` for every listed gen and tier.

    Raises ``ValueError`` for a gen outside 1-9, a tier outside :data:`SUPPORTED_TIERS`, a class
    that is not a poke-env ``Player`` or a name that is already registered.
    """
    bad_gens = [g for g in gens if g not in SUPPORTED_GENS]
    if bad_gens:
        raise ValueError(f"register_baseline: unsupported gen(s) {bad_gens}; use {list(SUPPORTED_GENS)}")
    bad_tiers = [f for f in formats if f not in SUPPORTED_TIERS]
    if bad_tiers:
        raise ValueError(f"register_baseline: unsupported tier(s) {bad_tiers}; use {list(SUPPORTED_TIERS)}")

    def decorator(cls: Type[Player]) -> Type[Player]:
        if not (isinstance(cls, type) and issubclass(cls, Player)):
            raise ValueError(f"register_baseline: {cls!r} is not a poke-env Player subclass")
        if cls.__name__ in ALL_BASELINES:
            raise ValueError(f"register_baseline: a baseline named {cls.__name__!r} is already registered")
        ALL_BASELINES[cls.__name__] = cls
        for gen in gens:
            for tier in formats:
                BASELINES_BY_GEN[gen][tier].append(cls)
        return cls

    return decorator


def _import_player(path: str) -> Type[Player]:
    module_name, _, class_name = path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as error:
        raise UnknownNameError("baseline", path, ALL_BASELINES) from error
    if not (isinstance(cls, type) and issubclass(cls, Player)):
        raise MetamonError(f"Baseline {path!r} is not a poke-env Player subclass (got {cls!r})")
    return cls


def get_baseline(name: str) -> Type[Player]:
    """The baseline class registered as ``name``, or the ``Player`` subclass at the dotted
    path ``name`` ("package.module.ClassName"). Unknown names raise
    :class:`metamon.errors.UnknownNameError` listing the registered names."""
    if name in ALL_BASELINES:
        return ALL_BASELINES[name]
    if "." in name:
        return _import_player(name)
    raise UnknownNameError("baseline", name, ALL_BASELINES)


def get_all_baseline_names() -> List[str]:
    """Registered baseline names, sorted."""
    return sorted(ALL_BASELINES)


# The built-in baselines register themselves on import (they need register_baseline above).
from metamon.baselines.base import Baseline  # noqa: E402
from metamon.baselines.simple import (  # noqa: E402
    BasicSwitcher,
    Gen1Trainer,
    Gen1TrainerGoodSwitching,
    MaxBPBaseline,
    PokeEnvHeuristic,
    RandomBaseline,
)
from metamon.baselines.heuristics import BugCatcher, Gen1BossAI, Grunt, GymLeader  # noqa: E402
from metamon.baselines.kaizo import EmeraldKaizo  # noqa: E402

__all__ += [
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
