"""Switching: scores for each switch-in, when to leave the field unforced, and a switch-in that
surely outspeeds and knocks out the opponent's active Pokémon.
"""

from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence

from poke_env.battle import AbstractBattle, Effect, Pokemon, PokemonType

from metamon.baselines.calc.damage import effective_type_multiplier, is_damaging, worst_case_damage
from metamon.baselines.calc.stats import outspeed_chance
from metamon.baselines.calc.type_chart import type_advantage

__all__ = [
    "switch_scores",
    "should_emergency_switch",
    "find_outspeed_ko_switch",
]

def _known_attack_types(mon: Pokemon) -> List[PokemonType]:
    types = [m.type for m in mon.moves.values() if is_damaging(m) and m.base_power > 1]
    return types or list(mon.types)


def switch_scores(
    battle: AbstractBattle,
    candidates: Optional[Sequence[Pokemon]] = None,
    *,
    defensive: float = 1.0,
    offensive: float = 1.0,
    speed: float = 0.5,
    hp: float = 1.0,
    status: float = 0.5,
) -> Dict[Pokemon, float]:
    """Score each switch-in (higher is better) as a weighted sum of:

    * ``defensive x -log2(worst multiplier of the opponent's attack types on it)`` (attack types:
      revealed damaging moves, else its own types; multipliers floored at 1/8),
    * ``offensive x log2(best multiplier of its damaging move types on the opponent)``
      (its own types when it has no known damaging move),
    * ``speed x`` :func:`outspeed_chance`, ``hp x`` HP fraction, ``status x [no status]``.

    Without a visible opponent only the HP and status terms count.
    """
    candidates = battle.available_switches if candidates is None else candidates
    opponent = battle.opponent_active_pokemon
    gen = battle.gen
    scores: Dict[Pokemon, float] = {}
    for mon in candidates:
        score = hp * mon.current_hp_fraction + status * (mon.status is None)
        if opponent is not None:
            threat = max(type_advantage(t, mon, gen) for t in _known_attack_types(opponent))
            attack = max(type_advantage(t, opponent, gen) for t in _known_attack_types(mon))
            score -= defensive * math.log2(max(threat, 1 / 8))
            score += offensive * math.log2(max(attack, 1 / 8))
            score += speed * outspeed_chance(battle, mon, opponent)
        scores[mon] = score
    return scores


def should_emergency_switch(battle: AbstractBattle) -> bool:
    """True when our active Pokémon should leave although it is not forced to: switching is
    possible (switches available, not trapped or maybe-trapped) and either Perish Song will
    faint it within two turns, or it has damaging moves but none hits the opponent for at least
    neutral damage (all resisted or blocked by type/ability immunity)."""
    active, opponent = battle.active_pokemon, battle.opponent_active_pokemon
    if (
        active is None
        or opponent is None
        or battle.force_switch
        or not battle.available_switches
        or battle.trapped
        or battle.maybe_trapped
    ):
        return False
    if Effect.PERISH1 in active.effects or Effect.PERISH2 in active.effects:
        return True
    attacks = [m for m in battle.available_moves if is_damaging(m)]
    if not attacks:
        return False
    return all(effective_type_multiplier(m, opponent, battle.gen) < 1 for m in attacks)


def find_outspeed_ko_switch(battle: AbstractBattle) -> Optional[Pokemon]:
    """A switch-in that is surely faster than the opponent's active Pokémon
    (:func:`outspeed_chance` = 1) and knows a move whose worst-case damage KOs it, or None."""
    opponent = battle.opponent_active_pokemon
    if opponent is None:
        return None
    for mon in battle.available_switches:
        if outspeed_chance(battle, mon, opponent) < 1.0:
            continue
        for move in mon.moves.values():
            if worst_case_damage(battle, move, mon, opponent) >= opponent.current_hp_fraction > 0:
                return mon
    return None
