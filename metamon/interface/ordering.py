"""Stable orderings of Pokémon and moves: the slot layout of actions and observations.

Move slots 0-3 (and 9-12) follow :func:`consistent_move_order` of the active Pokémon's known
moves, switch slots 4-8 :func:`consistent_pokemon_order` of metamon's switch candidates; the
observation spaces sort their move and switch words the same way.
"""

from __future__ import annotations

from typing import Iterable

from poke_env.battle import Move, Pokemon

from metamon.interface.records import UniversalMove, UniversalPokemon
from metamon.names import move_name, pokemon_name

__all__ = ["consistent_pokemon_order", "consistent_move_order"]


# The Universal* records are tested first: they are what the observation spaces sort every turn.


def _pokemon_sort_key(item) -> str:
    if isinstance(item, UniversalPokemon):
        return item.name
    if isinstance(item, Pokemon):
        return pokemon_name(item.species)
    if isinstance(item, str):
        return pokemon_name(item)
    raise ValueError(
        f"consistent_pokemon_order cannot order {type(item).__name__} objects "
        "(expected poke-env Pokemon, str or UniversalPokemon)"
    )


def _move_sort_key(item) -> str:
    if isinstance(item, UniversalMove):
        return item.name
    if isinstance(item, Move):
        return move_name(item.id)
    if isinstance(item, str):
        return move_name(item)
    raise ValueError(
        f"consistent_move_order cannot order {type(item).__name__} objects "
        "(expected poke-env Move, str or UniversalMove)"
    )


def consistent_pokemon_order(pokemon: Iterable) -> list:
    """Sort Pokémon ascending by species id (``pokemon_name``); switch slots depend on it.

    Accepts poke-env ``Pokemon`` (keyed by ``species``), plain strings or ``UniversalPokemon``
    (keyed by ``name``). The sort is stable, so equal species keep their input order.
    """
    return sorted(pokemon, key=_pokemon_sort_key)


def consistent_move_order(moves: Iterable) -> list:
    """Sort moves ascending by ``move_name``; move slots 0-3 (and 9-12) depend on it.

    Accepts poke-env ``Move`` (keyed by ``id``), plain strings or ``UniversalMove`` (``name``).
    """
    return sorted(moves, key=_move_sort_key)
