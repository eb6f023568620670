"""Formats and type effectiveness: a battle's generation and format, the type-chart multiplier
of an attack type on a Pokémon (Tera-aware) and a two-way type matchup score.

Type charts come from ``poke_env.data.GenData`` for the battle's generation.
"""

from __future__ import annotations

from typing import Iterable, Union

from poke_env.battle import AbstractBattle, Pokemon, PokemonType
from poke_env.data import GenData

from metamon.names import format_to_gen

__all__ = [
    "get_gen_format",
    "type_advantage",
    "type_matchup",
]

_NEUTRAL_TYPES = {PokemonType.THREE_QUESTION_MARKS, PokemonType.STELLAR}


def get_gen_format(battle: AbstractBattle) -> tuple[int, str]:
    """``(gen, format)`` of a battle, read from its tag ``"battle-<format>-<id>"``
    (e.g. ``"battle-gen1ou-42" -> (1, "gen1ou")``)."""
    parts = battle.battle_tag.split("-")
    battle_format = parts[1] if len(parts) > 2 else (battle.format or f"gen{battle.gen}")
    return format_to_gen(battle_format), battle_format


def _as_type(t: Union[PokemonType, str]) -> PokemonType:
    return t if isinstance(t, PokemonType) else PokemonType.from_name(str(t))


def type_advantage(
    attack_type: Union[PokemonType, str],
    target: Union[Pokemon, Iterable[Union[PokemonType, str, None]]],
    gen: int,
) -> float:
    """Type-effectiveness multiplier of an attack of ``attack_type`` on ``target``.

    ``target`` is a Pokémon (its current, Tera-aware types are used) or a list of types.
    The result is the product over the defender's types ``t`` of
    ``GenData(gen).type_chart[t][attack_type]`` (each factor 0, 0.5, 1 or 2), so it is one of
    0, 0.25, 0.5, 1, 2, 4. A "???" or Stellar type on either side contributes a factor of 1,
    as does a type missing from the generation's chart.
    """
    attack = _as_type(attack_type)
    types = target.types if isinstance(target, Pokemon) else target
    if attack in _NEUTRAL_TYPES:
        return 1.0
    chart = GenData.from_gen(gen).type_chart
    multiplier = 1.0
    for t in types:
        if t is None:
            continue
        t = _as_type(t)
        if t in _NEUTRAL_TYPES:
            continue
        multiplier *= chart.get(t.name, {}).get(attack.name, 1.0)
    return multiplier


def type_matchup(mon: Pokemon, opponent: Pokemon, gen: int) -> float:
    """How well ``mon`` fares against ``opponent`` on types alone:
    ``best multiplier of mon's types on opponent - best multiplier of opponent's types on mon``.

    Positive favours ``mon`` (e.g. Water vs Fire: 2 - 0.5 = 1.5), negative favours the opponent.
    """
    offence = max(type_advantage(t, opponent, gen) for t in mon.types)
    defence = max(type_advantage(t, mon, gen) for t in opponent.types)
    return offence - defence
