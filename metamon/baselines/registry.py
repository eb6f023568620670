"""The baseline registry: names -> poke-env ``Player`` classes -> ready players.

* :func:`register_baseline` — class decorator; every built-in baseline registers itself with it
  when its module is imported (``metamon.baselines`` imports them all).
* :func:`get_baseline` — a registered name, or a dotted path ``"package.module.ClassName"`` to
  any poke-env ``Player`` subclass, to its class.
* :func:`make_player` — a baseline (name, dotted path or class) instantiated under a unique
  username (:func:`metamon.battles.new_player`), with ``seed`` for a :class:`Baseline`.
* Player kinds ``baseline`` / ``class`` (:func:`build_spec_player`) and ``eps``
  (``"eps:0.3:GymLeader"``, :func:`build_epsilon_player`: any player spec made ε-random, see
  :mod:`metamon.baselines.epsilon`).

``ALL_BASELINES`` maps names to classes; ``BASELINES_BY_GEN[gen][tier]`` lists the baselines
meant for a generation and tier; ``HEURISTIC_COMPOSITE_BASELINES`` is the opponent set of
metamon's "heuristic composite score".
"""

from __future__ import annotations

import importlib
from typing import Dict, List, Optional, Sequence, Type, Union

from poke_env.player import Player

from metamon.baselines.epsilon import epsilon_random_player, parse_epsilon_target
from metamon.baselines.player import Baseline
from metamon.battles.players import new_player
from metamon.battles.spec import PlayerFactory, PlayerSpec, check_spec, register_player_kind
from metamon.errors import MetamonError, UnknownNameError
from metamon.server import unique_username

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
    "build_spec_player",
    "build_epsilon_player",
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


def make_player(
    baseline: Union[str, Type[Player]],
    battle_format: str,
    *,
    server_configuration=None,
    max_concurrent_battles: int = 10,
    team=None,
    seed: Optional[int] = None,
    username: Optional[str] = None,
    **kwargs,
) -> Player:
    """Instantiate a baseline (name, dotted path or class) with a unique username; ``seed``
    seeds a :class:`Baseline`'s own random generator (ignored by other players)."""
    cls = get_baseline(baseline) if isinstance(baseline, str) else baseline
    if seed is not None and issubclass(cls, Baseline):
        kwargs["seed"] = seed
    return new_player(
        cls,
        battle_format,
        server_configuration=server_configuration,
        max_concurrent_battles=max_concurrent_battles,
        team=team,
        username=username,
        **kwargs,
    )


def build_spec_player(factory: PlayerFactory, spec: PlayerSpec, username: Optional[str], wrap, kwargs: dict) -> Player:
    """:class:`~metamon.battles.spec.PlayerFactory` builder of the ``baseline`` and ``class``
    kinds: :func:`make_player` of the named (or given) class, decorated by ``wrap``."""
    cls = spec.player_class or get_baseline(spec.target)
    if wrap is not None:
        cls = wrap(cls)
    return make_player(
        cls,
        factory.battle_format,
        server_configuration=factory.server_configuration,
        max_concurrent_battles=factory.max_concurrent_battles,
        team=factory.team,
        username=username or unique_username(spec.label),
        **kwargs,
    )


def _check_spec(spec: PlayerSpec) -> None:
    if spec.player_class is None:
        get_baseline(spec.target)


def build_epsilon_player(
    factory: PlayerFactory, spec: PlayerSpec, username: Optional[str], wrap, kwargs: dict
) -> Player:
    """Builder of the ``eps`` kind (``"eps:0.3:GymLeader"``): the inner spec's player, its class
    made ε-random (:func:`metamon.baselines.epsilon.epsilon_random_player`) under ``wrap``, so a
    recording wrapper records the order actually played. ``kwargs["seed"]`` (if given) also
    seeds the ε draws."""
    epsilon, inner = parse_epsilon_target(spec.target)
    inner_spec = PlayerSpec.parse(inner)

    def epsilon_then_wrap(cls):
        cls = epsilon_random_player(cls, epsilon)
        return cls if wrap is None else wrap(cls)

    name = username or unique_username(f"eps{inner_spec.label}")
    return factory.build(inner_spec, username=name, wrap=epsilon_then_wrap,
                         epsilon_seed=kwargs.get("seed"), **kwargs)


def _check_epsilon_spec(spec: PlayerSpec) -> None:
    check_spec(parse_epsilon_target(spec.target)[1])


register_player_kind("baseline", build_spec_player, _check_spec)
register_player_kind("class", build_spec_player, _check_spec)
register_player_kind("eps", build_epsilon_player, _check_epsilon_spec)
