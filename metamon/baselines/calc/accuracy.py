"""Accuracy and critical hits: the accuracy stage tables per generation, the probability that a
move hits right now (weather included) and the critical-hit chance and multiplier.
"""

from __future__ import annotations

from typing import Optional

from poke_env.battle import AbstractBattle, Effect, Move, Pokemon, Weather

__all__ = [
    "accuracy_multiplier",
    "current_accuracy",
    "crit_chance",
    "crit_multiplier",
]

# Gen 1 applies the ordinary stat-stage table to accuracy and evasion (percent, stage -6..6).
_ACCURACY_GEN1 = (25, 28, 33, 40, 50, 66, 100, 150, 200, 250, 300, 350, 400)
# Gens 2-4 use a separate table approximating 3 / (3 - s) (percent, stage -6..6).
_ACCURACY_GEN2_4 = (33, 36, 43, 50, 60, 75, 100, 133, 166, 200, 233, 266, 300)


def accuracy_multiplier(stage: int, gen: int) -> float:
    """Accuracy multiplier of a net accuracy stage ``s`` (clamped to -6..6).

    gen 1: ``(25, 28, 33, 40, 50, 66, 100, 150, 200, 250, 300, 350, 400)[s + 6] / 100``;
    gens 2-4: ``(33, 36, 43, 50, 60, 75, 100, 133, 166, 200, 233, 266, 300)[s + 6] / 100``;
    gens 5+: ``max(3, 3 + s) / max(3, 3 - s)`` exactly.
    """
    s = max(-6, min(6, stage))
    if gen == 1:
        return _ACCURACY_GEN1[s + 6] / 100
    if gen <= 4:
        return _ACCURACY_GEN2_4[s + 6] / 100
    return max(3, 3 + s) / max(3, 3 - s)


def current_accuracy(
    move: Move,
    attacker: Pokemon,
    defender: Optional[Pokemon],
    gen: int,
    battle: Optional[AbstractBattle] = None,
) -> float:
    """Probability that ``move`` hits ``defender`` right now.

    Moves that never miss (data accuracy ``True``) give 1. Otherwise
    ``p = base accuracy x stage multiplier``: gens 1-2 multiply the attacker's accuracy stage
    ``a`` and the defender's evasion stage ``e`` separately
    (``m(a) * m(-e)``); gens 3+ use the net stage ``a - e``. Gen 1 caps every roll-based move
    at 255/256 (the 1/256 miss); other gens cap at 1. In rain Thunder/Hurricane never miss and
    in sun they hit 50% of the time (gens 2+); Blizzard never misses in hail/snow (gens 4+).
    """
    if move.entry.get("accuracy") is True:
        return 1.0
    base = move.accuracy
    weather = battle.weather if battle is not None else {}
    if gen >= 2 and move.id in ("thunder", "hurricane"):
        if Weather.RAINDANCE in weather or Weather.PRIMORDIALSEA in weather:
            return 1.0
        if Weather.SUNNYDAY in weather or Weather.DESOLATELAND in weather:
            base = 0.5
    if gen >= 4 and move.id == "blizzard" and (Weather.HAIL in weather or Weather.SNOW in weather):
        return 1.0
    acc_stage = attacker.boosts.get("accuracy", 0)
    eva_stage = 0 if defender is None or move.ignore_evasion else defender.boosts.get("evasion", 0)
    if gen <= 2:
        p = base * accuracy_multiplier(acc_stage, gen) * accuracy_multiplier(-eva_stage, gen)
    else:
        p = base * accuracy_multiplier(acc_stage - eva_stage, gen)
    return min(p, 255 / 256) if gen == 1 else min(p, 1.0)


_CRIT_STAGES = {  # probability per crit stage 0, 1, 2, 3, 4+
    2: (17 / 256, 32 / 256, 64 / 256, 85 / 256, 128 / 256),
    3: (1 / 16, 1 / 8, 1 / 4, 1 / 3, 1 / 2),
    6: (1 / 16, 1 / 8, 1 / 2, 1.0, 1.0),
    7: (1 / 24, 1 / 8, 1 / 2, 1.0, 1.0),
}


def crit_chance(move: Move, attacker: Pokemon, gen: int) -> float:
    """Probability of a critical hit.

    * gen 1 depends on the attacker's base Speed ``B``: ``floor(B / 2) / 256``; high
      crit-ratio moves (Slash, Karate Chop, Razor Leaf, Crabhammer) use
      ``min(8 * floor(B / 2), 255) / 256``.
    * gens 2+ use a crit stage ``k = (critRatio - 1) + [Focus Energy: +2 (gen 3+) / +1 (gen 2)]``
      (Showdown's data gives high-crit moves critRatio 2, and 3 in gen 2 where they add 2 stages)
      and the table: gen 2 ``17/256, 1/8, 1/4, 85/256, 1/2``; gens 3-5 ``1/16, 1/8, 1/4, 1/3, 1/2``;
      gen 6 ``1/16, 1/8, 1/2, 1, 1``; gens 7+ ``1/24, 1/8, 1/2, 1, 1`` (stage 4+ = last entry).
    * moves that always crit (Frost Breath, Wicked Blow...) give 1.
    """
    ratio = move.crit_ratio  # poke-env: data critRatio (1 = normal), 0 if absent, 6 if willCrit
    if ratio >= 6:
        return 1.0
    high = ratio >= 2
    if gen == 1:
        threshold = attacker.base_stats["spe"] // 2
        if high:
            threshold = min(8 * threshold, 255)
        return threshold / 256
    stage = max(0, ratio - 1)
    if Effect.FOCUS_ENERGY in attacker.effects:
        stage += 1 if gen == 2 else 2
    table = _CRIT_STAGES[2 if gen == 2 else 3 if gen <= 5 else 6 if gen == 6 else 7]
    return table[min(stage, 4)]


def crit_multiplier(gen: int) -> float:
    """Damage multiplier of a critical hit: 2 in gens 1-5, 1.5 from gen 6."""
    return 2.0 if gen <= 5 else 1.5
