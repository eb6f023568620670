"""Status, boosts and healing: whether a status move can affect its target, and the value of
setup (self-boosting) and healing moves for our active Pokémon.
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence

from poke_env.battle import AbstractBattle, Move, MoveCategory, Pokemon, PokemonType, SideCondition, Status

from metamon.baselines.calc.damage import known_ability
from metamon.baselines.calc.stats import is_own
from metamon.baselines.calc.type_chart import type_advantage

__all__ = [
    "status_immune",
    "boost_move_scores",
    "heal_move_scores",
]

_STATUS_TYPE_IMMUNITY = {  # status -> (types immune, first gen of the immunity)
    Status.BRN: ({PokemonType.FIRE}, 2),
    Status.PSN: ({PokemonType.POISON, PokemonType.STEEL}, 1),
    Status.TOX: ({PokemonType.POISON, PokemonType.STEEL}, 1),
    Status.PAR: ({PokemonType.ELECTRIC}, 6),
    Status.FRZ: ({PokemonType.ICE}, 1),
}
_STATUS_ABILITY_IMMUNITY = {
    "insomnia": {Status.SLP},
    "vitalspirit": {Status.SLP},
    "sweetveil": {Status.SLP},
    "limber": {Status.PAR},
    "immunity": {Status.PSN, Status.TOX},
    "waterveil": {Status.BRN},
    "waterbubble": {Status.BRN},
    "thermalexchange": {Status.BRN},
    "magmaarmor": {Status.FRZ},
    "purifyingsalt": set(Status),
    "comatose": set(Status),
    "leafguard": set(),
}


def status_immune(move: Move, target: Pokemon, battle: AbstractBattle) -> bool:
    """True when ``move``'s primary non-volatile status cannot affect ``target``: it already
    has a status, its type or ability blocks that status (e.g. Fire vs burn, Electric vs
    paralysis from gen 6, Poison/Steel vs poison), the move's type cannot touch it (Thunder Wave
    on Ground), Grass types vs powder moves (gen 6+), or Safeguard protects its side."""
    status = move.status
    if status is None:
        return False
    if target.status is not None:
        return True
    gen = battle.gen
    types, since = _STATUS_TYPE_IMMUNITY.get(status, (set(), 99))
    if gen >= since and set(target.types) & types:
        return True
    if gen >= 3 and status in _STATUS_ABILITY_IMMUNITY.get(known_ability(target) or "", set()):
        return True
    if move.entry.get("ignoreImmunity") is False and type_advantage(move.type, target, gen) == 0:
        return True
    if gen >= 6 and "powder" in move.flags and PokemonType.GRASS in target.types:
        return True
    conditions = battle.side_conditions if is_own(battle, target) else battle.opponent_side_conditions
    return SideCondition.SAFEGUARD in conditions


def _self_boosts(move: Move) -> Dict[str, int]:
    """Stat stages a move raises or lowers on its user (Swords Dance, Shell Smash, Close
    Combat's drops...)."""
    if move.category == MoveCategory.STATUS and move.target is not None and move.boosts:
        if move.target.name.lower() in ("self", "adjacent_ally_or_self", "ally_side", "allies"):
            return dict(move.boosts)
    return dict(move.self_boost or {})


def boost_move_scores(battle: AbstractBattle, moves: Optional[Sequence[Move]] = None) -> Dict[Move, float]:
    """Setup value of each status move that changes its user's stat stages:
    ``sum over stats of (gain capped at 6 - current stage)`` for raises, plus the (negative)
    drops, e.g. Swords Dance at +0 -> 2, at +5 -> 1, at +6 -> 0; Shell Smash -> 6 - 2 = 4.
    Damaging moves and moves without self boosts are left out."""
    active = battle.active_pokemon
    moves = battle.available_moves if moves is None else moves
    scores: Dict[Move, float] = {}
    if active is None:
        return scores
    for move in moves:
        if move.category != MoveCategory.STATUS:
            continue
        boosts = _self_boosts(move)
        if not boosts:
            continue
        score = 0.0
        for stat, amount in boosts.items():
            current = active.boosts.get(stat, 0)
            score += min(amount, 6 - current) if amount > 0 else max(amount, -6 - current)
        scores[move] = score
    return scores


# Healing moves whose amount is computed by the simulator (no "heal" field in the data).
_HEAL_FRACTION = {
    "moonlight": 0.5,
    "morningsun": 0.5,
    "synthesis": 0.5,
    "shoreup": 0.5,
    "rest": 1.0,
    "wish": 0.5,
    "strengthsap": 0.25,
    "lifedew": 0.25,
    "junglehealing": 0.25,
}


def heal_move_scores(battle: AbstractBattle, moves: Optional[Sequence[Move]] = None) -> Dict[Move, float]:
    """HP fraction each healing move would actually restore to our active Pokémon:
    ``min(heal fraction, 1 - current HP fraction)`` (Recover-like 1/2, Rest everything).
    Draining attacks are not healing moves here."""
    active = battle.active_pokemon
    moves = battle.available_moves if moves is None else moves
    scores: Dict[Move, float] = {}
    if active is None:
        return scores
    missing = 1.0 - active.current_hp_fraction
    for move in moves:
        if move.category != MoveCategory.STATUS:
            continue
        amount = move.heal or _HEAL_FRACTION.get(move.id, 0.0)
        if amount:
            scores[move] = min(amount, missing)
    return scores
