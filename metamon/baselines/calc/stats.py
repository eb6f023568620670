"""Stats and speed: stat-stage multipliers, stat estimates for Pokémon whose stats are unknown
(see ``spread`` in :mod:`metamon.baselines.calc`), the stats used in a battle and who moves first.

Our own Pokémon use the exact stats Showdown sends in each request (:func:`is_own` tells them
apart); the opponent's are estimated from base stats and level.
"""

from __future__ import annotations

import math

from poke_env.battle import AbstractBattle, Field, Pokemon, SideCondition, Status

__all__ = [
    "stage_multiplier",
    "estimate_stat",
    "is_own",
    "pokemon_stat",
    "effective_speed",
    "outspeed_chance",
]

_SPREAD_EVS = {"best": 252, "worst": 0, "uniform": 85}


def stage_multiplier(stage: int) -> float:
    """Multiplier of a stat stage ``s`` in -6..6 (atk/def/spa/spd/spe, every generation):
    ``max(2, 2 + s) / max(2, 2 - s)``, e.g. +2 -> 2.0, -1 -> 2/3, +6 -> 4.0."""
    s = max(-6, min(6, stage))
    return max(2, 2 + s) / max(2, 2 - s)


def estimate_stat(base: int, stat: str, level: int, gen: int, spread: str = "uniform") -> int:
    """Stat value of a Pokémon with base stat ``base`` at ``level`` under an assumed spread.

    Generations 1-2 (DVs and stat experience; every DV 15 and stat experience 65535, whatever
    the spread: the games let every stat be maxed)::

        E      = floor(floor(sqrt(65535)) / 4) = 63
        HP     = floor(((base + 15) * 2 + E) * level / 100) + level + 10
        other  = floor(((base + 15) * 2 + E) * level / 100) + 5

    Generations 3+ (IV 31, neutral nature, EV = 252 / 0 / 85 for best / worst / uniform)::

        HP     = floor((2 * base + 31 + floor(EV / 4)) * level / 100) + level + 10
        other  = floor((2 * base + 31 + floor(EV / 4)) * level / 100) + 5
    """
    if spread not in _SPREAD_EVS:
        raise ValueError(f"Unknown stat spread {spread!r}; use one of {sorted(_SPREAD_EVS)}")
    if gen <= 2:
        core = math.floor(((base + 15) * 2 + 63) * level / 100)
    else:
        core = math.floor((2 * base + 31 + _SPREAD_EVS[spread] // 4) * level / 100)
    return core + level + 10 if stat == "hp" else core + 5


def is_own(battle: AbstractBattle, mon: Pokemon) -> bool:
    """True when ``mon`` (the very object) is one of our own team in ``battle``."""
    return any(mon is m for m in battle.team.values())


def pokemon_stat(battle: AbstractBattle, mon: Pokemon, stat: str, spread: str = "uniform") -> float:
    """Unboosted ``stat`` ("hp", "atk", ...) of ``mon``: the exact value for our own Pokémon
    (from the request), otherwise :func:`estimate_stat` from its base stats and level."""
    if is_own(battle, mon):
        if stat == "hp" and mon.max_hp:
            return mon.max_hp
        known = mon.stats.get(stat)
        if known:
            return known
    return estimate_stat(mon.base_stats[stat], stat, mon.level, battle.gen, spread)


def _paralysis_speed_factor(gen: int) -> float:
    return 0.25 if gen <= 6 else 0.5


def effective_speed(battle: AbstractBattle, mon: Pokemon, spread: str = "uniform") -> float:
    """Speed used for turn order: stat x stage multiplier x paralysis (x0.25 up to gen 6,
    x0.5 from gen 7) x Tailwind (x2) x Choice Scarf (x1.5, own item only)."""
    speed = pokemon_stat(battle, mon, "spe", spread) * stage_multiplier(mon.boosts.get("spe", 0))
    if mon.status == Status.PAR and mon.ability != "quickfeet":
        speed *= _paralysis_speed_factor(battle.gen)
    own = is_own(battle, mon)
    conditions = battle.side_conditions if own else battle.opponent_side_conditions
    if SideCondition.TAILWIND in conditions:
        speed *= 2
    if mon.item == "choicescarf":
        speed *= 1.5
    return speed


def outspeed_chance(battle: AbstractBattle, mine: Pokemon, theirs: Pokemon) -> float:
    """Probability that ``mine`` acts before ``theirs`` with equal move priority.

    The unknown side's speed is taken as uniform between its "worst" (0 EV) and "best"
    (252 EV) estimate; a known-vs-known comparison is 1, 0 or 0.5 (speed tie). Under Trick
    Room the slower Pokémon moves first, so the result is mirrored.
    """
    mine_lo, mine_hi = effective_speed(battle, mine, "worst"), effective_speed(battle, mine, "best")
    their_lo, their_hi = (
        effective_speed(battle, theirs, "worst"),
        effective_speed(battle, theirs, "best"),
    )
    mine_speed = (mine_lo + mine_hi) / 2
    if their_hi == their_lo:
        p = 1.0 if mine_speed > their_lo else 0.0 if mine_speed < their_lo else 0.5
    else:
        p = min(1.0, max(0.0, (mine_speed - their_lo) / (their_hi - their_lo)))
    return 1.0 - p if Field.TRICK_ROOM in battle.fields else p
