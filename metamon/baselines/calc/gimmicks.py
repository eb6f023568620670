"""Gimmicks (Terastallization, Dynamax, Mega Evolution, Z-moves): when to spend the one
available, and the order that does.
"""

from __future__ import annotations

from poke_env.battle import AbstractBattle, Move
from poke_env.player import Player, SingleBattleOrder

__all__ = [
    "force_use_gimmick",
    "gimmick_order",
]

def force_use_gimmick(battle: AbstractBattle) -> bool:
    """True when a gimmick is available and our active Pokémon is our last one standing
    (every other team member fainted): there is nothing left to save it for."""
    if not (battle.can_tera or battle.can_dynamax or battle.can_mega_evolve or battle.can_z_move):
        return False
    active = battle.active_pokemon
    others = [m for m in battle.team.values() if m is not active and not m.fainted]
    return active is not None and not others


def gimmick_order(battle: AbstractBattle, move: Move, use: bool) -> SingleBattleOrder:
    """Order for ``move``, adding the one available gimmick when ``use`` (Tera, then Dynamax,
    then Mega Evolution, then a Z-move when ``move`` has a Z version)."""
    if not use:
        return Player.create_order(move)
    if battle.can_tera:
        return Player.create_order(move, terastallize=True)
    if battle.can_dynamax:
        return Player.create_order(move, dynamax=True)
    if battle.can_mega_evolve:
        return Player.create_order(move, mega=True)
    active = battle.active_pokemon
    if battle.can_z_move and active is not None and move in active.available_z_moves:
        return Player.create_order(move, z_move=True)
    return Player.create_order(move)
