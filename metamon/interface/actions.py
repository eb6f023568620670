"""The 13-slot universal action layout, its legality and the mapping to poke-env orders.

:class:`UniversalAction` documents the layout (moves 0-3, switches 4-8, tera moves 9-12, -1 for
a missing action). Legality: :func:`maybe_valid_actions` judges from a ``UniversalState`` alone
(datasets), :func:`definitely_valid_actions` from the live battle (the indices for which
:func:`action_idx_to_BattleOrder` gives an order; :func:`legal_orders` maps each to that order).
:func:`battle_order_to_action_idx` is the inverse mapping (new in metamon-gemma), used to record
what any poke-env player chose.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
from poke_env.battle import AbstractBattle, Move, Pokemon
from poke_env.player.battle_order import BattleOrder, SingleBattleOrder

from metamon.interface.ordering import consistent_move_order, consistent_pokemon_order
from metamon.interface.records import UniversalState, _switch_options

__all__ = [
    "UniversalAction",
    "N_UNIVERSAL_ACTIONS",
    "maybe_valid_actions",
    "definitely_valid_actions",
    "legal_orders",
    "action_idx_to_BattleOrder",
    "battle_order_to_action_idx",
]

N_UNIVERSAL_ACTIONS = 13
_N_MOVE_SLOTS = 4
_N_SWITCH_SLOTS = 5
_FIRST_SWITCH = 4
_FIRST_TERA = 9


@dataclass(frozen=True)
class UniversalAction:
    """An action in the universal index space.

    ====== =====================================================================
    0-3    use move k of the active Pokémon (known moves, ``consistent_move_order``)
    4-8    switch to candidate k-4 (``consistent_pokemon_order`` of metamon's switches)
    9-12   move k-9 and terastallise
    -1     missing / unrevealed action (datasets only)
    ====== =====================================================================

    Equality and hashing are by index.
    """

    action_idx: int

    def __post_init__(self):
        idx = self.action_idx
        if isinstance(idx, bool) or not isinstance(idx, (int, np.integer)):
            raise ValueError(f"action index must be an int, got {idx!r}")
        if not -1 <= idx < N_UNIVERSAL_ACTIONS:
            raise ValueError(f"action index {idx} is outside -1..{N_UNIVERSAL_ACTIONS - 1}")
        object.__setattr__(self, "action_idx", int(idx))

    @property
    def missing(self) -> bool:
        return self.action_idx == -1


def maybe_valid_actions(state: UniversalState) -> set[int]:
    """Indices that may be legal, judged from the state alone (used for datasets).

    Unless a switch is forced: moves ``0..n-1`` with n = number of known moves (at most 4), and
    ``9..9+n-1`` when ``can_tera``. Always: switches ``4..4+m-1`` with m = number of available
    switches (at most 5).
    """
    valid = set()
    if not state.forced_switch:
        n_moves = min(len(state.player_active_pokemon.moves), _N_MOVE_SLOTS)
        valid.update(range(n_moves))
        if state.can_tera:
            valid.update(range(_FIRST_TERA, _FIRST_TERA + n_moves))
    n_switches = min(len(state.available_switches), _N_SWITCH_SLOTS)
    valid.update(range(_FIRST_SWITCH, _FIRST_SWITCH + n_switches))
    return valid


def definitely_valid_actions(state: UniversalState, battle: AbstractBattle) -> set[int]:
    """The maybe-valid indices for which :func:`action_idx_to_BattleOrder` gives an order
    (the keys of :func:`legal_orders`)."""
    return set(legal_orders(state, battle))


def legal_orders(state: UniversalState, battle: AbstractBattle) -> dict[int, SingleBattleOrder]:
    """Each definitely valid index (ascending) -> the order :func:`action_idx_to_BattleOrder`
    gives for it.

    Same result as asking :func:`action_idx_to_BattleOrder` index by index, but the battle's move
    and switch options are built once instead of once per index, and the caller that plays one
    of the indices gets its order without building it again (:func:`metamon.interface.decide`).
    """
    maybe = sorted(maybe_valid_actions(state))
    forced = _forced_pseudo_move(battle)
    if forced is not None:
        return {idx: SingleBattleOrder(forced) for idx in maybe}  # every index means the pseudo-move
    moves = _move_options(battle)
    switches = consistent_pokemon_order(_switch_options(battle))
    usable = _Usable.of(battle)
    orders = {}
    for idx in maybe:
        wants_tera = idx >= _FIRST_TERA
        slot = idx - _FIRST_TERA if wants_tera else idx
        if slot < _FIRST_SWITCH:
            order = _move_order(battle, moves, slot, wants_tera, usable)
        else:
            order = _switch_order(switches, slot - _FIRST_SWITCH, usable)
        if order is not None:
            orders[idx] = order
    return orders


@dataclass(frozen=True)
class _Usable:
    """What the current request allows: move ids of ``battle.available_moves``, Pokémon names
    of ``battle.available_switches``."""

    move_ids: frozenset
    switch_names: frozenset

    @classmethod
    def of(cls, battle: AbstractBattle) -> "_Usable":
        return cls(
            frozenset(m.id for m in battle.available_moves),
            frozenset(p.name for p in battle.available_switches),
        )


def _move_options(battle: AbstractBattle) -> list[Move]:
    """Moves behind slots 0-3: Struggle x4 when it is the only option, else all known moves."""
    available = battle.available_moves
    if {m.id for m in available} == {"struggle"}:
        return [available[0]] * _N_MOVE_SLOTS
    active = battle.active_pokemon
    return consistent_move_order(active.moves.values()) if active is not None else []


# Pseudo-moves Showdown offers when the active Pokémon cannot choose: "recharge" after Hyper
# Beam, "fight" in gen 1 while locked into a multi-turn move or partially trapped.
_FORCED_PSEUDO_MOVES = ("recharge", "fight")


def _forced_pseudo_move(battle: AbstractBattle) -> Optional[Move]:
    available = battle.available_moves
    if len(available) == 1 and available[0].id in _FORCED_PSEUDO_MOVES:
        return available[0]
    return None


def action_idx_to_BattleOrder(
    battle: AbstractBattle, action_idx: int
) -> Optional[SingleBattleOrder]:
    """Universal index -> poke-env order, or ``None`` when the index is not legal now.

    1. Only "recharge" (or gen 1's locked-in "fight") available -> that order, whatever the index.
    2. Only "struggle" available -> slots 0-3 (and 9-12) all mean Struggle.
    3. Otherwise slots 0-3 are the active Pokémon's known moves in ``consistent_move_order``.
    4. Slots 4-8 are metamon's switch candidates in ``consistent_pokemon_order``.
    5. Indices 9-12 are moves 0-3 with ``terastallize=True``, but only when
       ``battle.can_tera`` (otherwise the tera request silently becomes the plain move).
    6. A move slot is legal iff no switch is forced, the slot exists and its move id is among
       ``battle.available_moves`` (so disabled / out-of-PP moves are illegal).
    7. A switch slot is legal iff the slot exists and the Pokémon's ``name`` is among
       ``battle.available_switches`` (so being trapped makes every switch illegal).
    8. Anything else (including indices outside 0..12) -> ``None``.
    """
    forced = _forced_pseudo_move(battle)
    if forced is not None:
        return SingleBattleOrder(forced)
    if not 0 <= action_idx < N_UNIVERSAL_ACTIONS:
        return None
    wants_tera = action_idx >= _FIRST_TERA
    slot = action_idx - _FIRST_TERA if wants_tera else action_idx
    if slot < _FIRST_SWITCH:
        return _move_order(battle, _move_options(battle), slot, wants_tera, _Usable.of(battle))
    candidates = consistent_pokemon_order(_switch_options(battle))
    return _switch_order(candidates, slot - _FIRST_SWITCH, _Usable.of(battle))


def _move_order(
    battle: AbstractBattle, options: list[Move], slot: int, wants_tera: bool, usable: _Usable
) -> Optional[SingleBattleOrder]:
    """Rules 5-6 for move slot ``slot`` (0-3) given the battle's ``_move_options``."""
    if battle.force_switch or slot >= len(options):
        return None
    move = options[slot]
    if move.id not in usable.move_ids:
        return None
    return SingleBattleOrder(move, terastallize=wants_tera and bool(battle.can_tera))


def _switch_order(candidates: list[Pokemon], k: int, usable: _Usable) -> Optional[SingleBattleOrder]:
    """Rule 7 for switch slot ``k`` (0-4) given the sorted switch candidates."""
    if k >= len(candidates):
        return None
    if candidates[k].name not in usable.switch_names:
        return None
    return SingleBattleOrder(candidates[k])


def battle_order_to_action_idx(battle: AbstractBattle, order: BattleOrder) -> int:
    """poke-env order -> universal index (the inverse of :func:`action_idx_to_BattleOrder`).

    Used to record what a poke-env / baseline player chose. A move order maps to its slot in
    ``consistent_move_order`` of the active Pokémon's known moves (+9 when ``terastallize``); a
    switch order to 4 + its slot among metamon's switch candidates. Recharge and Fight map to 0 and
    Struggle to 0 (9 with tera), so for those two the round trip collapses every index onto 0.
    Orders with no universal index (default/pass/forfeit or string orders, moves the active
    Pokémon does not know, Pokémon that are not switch candidates) give -1. Mega / Z-move /
    Dynamax flags have no slot (metamon's formats have none of them) and are ignored.
    """
    if not isinstance(order, BattleOrder):
        raise ValueError(f"expected a poke-env BattleOrder, got {type(order).__name__}: {order!r}")
    if not isinstance(order, SingleBattleOrder):
        return -1
    target = order.order
    if isinstance(target, Move):
        offset = _FIRST_TERA if order.terastallize else 0
        if target.id in _FORCED_PSEUDO_MOVES:
            return 0
        if target.id == "struggle":
            return offset
        active = battle.active_pokemon
        known = consistent_move_order(active.moves.values()) if active is not None else []
        ids = [m.id for m in known[:_N_MOVE_SLOTS]]
        return ids.index(target.id) + offset if target.id in ids else -1
    if isinstance(target, Pokemon):
        candidates = consistent_pokemon_order(_switch_options(battle))[:_N_SWITCH_SLOTS]
        names = [p.name for p in candidates]
        return _FIRST_SWITCH + names.index(target.name) if target.name in names else -1
    return -1

