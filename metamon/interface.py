"""metamon's interface between poke-env battles and learning code.

Everything an agent sees or does passes through this module:

``poke-env Battle -> UniversalState -> ObservationSpace -> {"text", "numbers"}``
``agent output -> ActionSpace -> UniversalAction (index 0..12) -> poke-env SingleBattleOrder``
``(UniversalState, UniversalState) -> RewardFunction -> float``

The ``Universal*`` records are metamon's on-disk format (a trajectory file stores
``UniversalState.to_dict()`` per turn and one action index per turn), so their field order and
the normalisation of every categorical field are fixed: every categorical value is one lowercase
word without spaces (``types`` is the only two-word field), which keeps the observation texts at
a fixed word count (87 / 100 / 106 words).

poke-env 0.16.1 versus the poke-env fork metamon 1.4 was written against (0.8.3.2), and how this
module bridges the gap:

* **Previous move.** 0.16.1 has no ``Pokemon.previous_move``. It flags the last move a Pokémon
  *used* (``Move._is_last_used``, read through ``Pokemon.last_move``): the flag is set when a
  ``|move|`` line is a real use (not a lockedmove continuation, Magic Coat/Bounce reflection or a
  Sleep Talk / Copycat call of another move) and every flag is cleared when the Pokémon switches
  out. We read ``Pokemon.last_move``, so ``player_prev_move`` / ``opponent_prev_move`` mean "the
  last move this Pokémon used since it last switched in" and read ``nomove`` right after a
  switch. The fork set ``previous_move`` in the same places, but in the fork snapshot we could
  read ``switch_out`` did not clear it, so a Pokémon coming back in showed the move of its
  earlier stint. We chose the reset deliberately (it is what 0.16.1 tracks and what "previous
  move" means for the Pokémon now on the field). Both versions read ``nomove`` after Struggle
  (never stored as a known move) and keep the last real move through a Recharge turn (a
  ``|cant|`` line, not a move). After Transform 0.16.1 looks the flag up in the copied moveset,
  so a transformed Pokémon reads ``nomove`` until it uses a copied move (the fork showed
  ``transform``).
* **Terastallisation.** ``battle.can_tera`` is a bool in 0.16.1 (the fork returned a
  ``PokemonType`` or ``None`` and metamon tested ``is not None``); we use its truthiness.
  ``Pokemon.tera_type`` is, as in the fork, only known once the Pokémon has terastallised.
* **Team preview.** ``battle.teampreview_opponent_team`` is a list (a set in the fork), so
  ``opponent_teampreview`` keeps the preview order; observation spaces sort it anyway.
* **Gen 1-2 abilities.** The fork rewrote the gen 1-2 dex so every ability read "No Ability";
  0.16.1 does not, so an opponent's gen 1-2 ability would read ``unknownability``. metamon's
  datasets say ``noability`` for every gen 1-2 Pokémon, so ``UniversalPokemon.from_Pokemon``
  forces ``ability = "noability"`` when ``pokemon.gen <= 2``.
* ``current_hp_fraction`` may return the int ``0``; we store ``float``. Weather, fields and side
  conditions are dicts ``enum -> int`` as in the fork; enum names are normalised with
  ``clean_no_numbers(enum.name)`` (``Weather.SNOWSCAPE`` (alias ``SNOW``) -> ``snowscape``,
  ``Effect.LEECH_SEED`` -> ``leechseed``, ``Effect.PERISH3`` -> ``perish``).
* ``UniversalState.available_switches`` and the switch slots of the action space are metamon's
  own list (team members that are neither fainted nor active; fainted non-active members while a
  Revival Blessing choice is pending), **not** ``battle.available_switches`` (which is empty
  when trapped). ``battle.available_switches`` is only used to decide whether a switch is legal.

Deviations from metamon 1.4 (each is documented where it happens): the previous-move reset
above; ``ExpandedObservationSpace`` guards the PP ratio against ``max_pp == 0`` (ratio taken as
0); ``MinimalActionSpace`` does not mutate the action it is given; unknown registry names raise
:class:`metamon.errors.UnknownNameError` (a ``ValueError``); the inverse mapping
:func:`battle_order_to_action_idx` is new. There are no replay-parser constructors.
"""

from __future__ import annotations

import dataclasses
import functools
import operator
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from types import MappingProxyType
from typing import Any, Callable, Iterable, Mapping, NamedTuple, Optional

import numpy as np
from gymnasium import spaces
from poke_env.battle import AbstractBattle, DoubleBattle, Move, Pokemon, PokemonType
from poke_env.player.battle_order import BattleOrder, SingleBattleOrder

from metamon.errors import UnknownNameError
from metamon.names import clean_name, clean_no_numbers, move_name, pokemon_name

__all__ = [
    "consistent_pokemon_order",
    "consistent_move_order",
    "UniversalMove",
    "UniversalPokemon",
    "UniversalState",
    "UniversalAction",
    "N_UNIVERSAL_ACTIONS",
    "maybe_valid_actions",
    "definitely_valid_actions",
    "action_idx_to_BattleOrder",
    "battle_order_to_action_idx",
    "ActionSpace",
    "DefaultActionSpace",
    "MinimalActionSpace",
    "RewardFunction",
    "DefaultShapedReward",
    "AggressiveShapedReward",
    "BinaryReward",
    "ObservationSpace",
    "DefaultObservationSpace",
    "ExpandedObservationSpace",
    "TeamPreviewObservationSpace",
    "OpponentMoveObservationSpace",
    "TokenizedObservationSpace",
    "OBSERVATION_SPECIAL_TOKENS",
    "ALL_OBSERVATION_SPACES",
    "ALL_ACTION_SPACES",
    "ALL_REWARD_FUNCTIONS",
    "register_observation_space",
    "register_action_space",
    "register_reward_function",
    "get_observation_space",
    "get_action_space",
    "get_reward_function",
    "get_observation_space_names",
    "get_action_space_names",
    "get_reward_function_names",
]

# --------------------------------------------------------------------------------------------
# Stable orderings
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Normalisers: every categorical value becomes one lowercase word
# --------------------------------------------------------------------------------------------

_UNKNOWN_ITEM_VALUES = (None, "unknown_item")
_NO_ITEM_VALUES = ("", "No Item", "noitem")
_UNKNOWN_ABILITY_VALUES = (None, "unknown_ability")
_NO_ABILITY_VALUES = ("", "No Ability", "noability")
_BOOST_KEYS = ("atk", "spa", "def", "spd", "spe", "accuracy", "evasion")
_BASE_STAT_KEYS = ("atk", "spa", "def", "spd", "spe", "hp")
_BOOST_FIELDS = tuple(f"{k}_boost" for k in _BOOST_KEYS)
_BASE_STAT_FIELDS = tuple(f"base_{k}" for k in _BASE_STAT_KEYS)


def _type_word(pokemon_type) -> str:
    if pokemon_type is None:
        return "notype"
    if isinstance(pokemon_type, PokemonType):
        return clean_name(pokemon_type.name)
    return clean_name(pokemon_type)


def _types_words(types, n_words: int) -> str:
    """Type list, padded to ``n_words`` entries -> sorted words joined by one space.

    ``None`` entries (and the padding) read ``notype``; enum members use their name
    (``THREE_QUESTION_MARKS`` -> ``threequestionmarks``). The input is not modified. poke-env
    reports at most two types (``type_1``, ``type_2``), so ``types`` is always two words.
    """
    padded = list(types) + [None] * max(0, n_words - len(types))
    return " ".join(sorted(_type_word(t) for t in padded))


def _item_word(item: Optional[str]) -> str:
    """``None``/``"unknown_item"`` -> ``unknownitem``; ``""``/``"No Item"`` -> ``noitem``.

    Note: poke-env also uses ``None`` for an item that was consumed or knocked off; metamon reads
    that as ``unknownitem`` too and we keep it.
    """
    if item in _UNKNOWN_ITEM_VALUES:
        return "unknownitem"
    if item in _NO_ITEM_VALUES:
        return "noitem"
    return clean_no_numbers(item)


def _ability_word(ability: Optional[str], gen: int) -> str:
    """Ability -> word; gen 1-2 always ``noability`` (see the module docstring)."""
    if gen <= 2:
        return "noability"
    if ability in _UNKNOWN_ABILITY_VALUES:
        return "unknownability"
    if ability in _NO_ABILITY_VALUES:
        return "noability"
    return clean_no_numbers(ability)


def _status_word(status) -> str:
    return "nostatus" if status is None else clean_no_numbers(status.name)


def _min_key_word(counters: dict, empty: str) -> str:
    """Key with the smallest counter (first inserted on ties), as a word; ``empty`` if none."""
    if not counters:
        return empty
    return clean_no_numbers(min(counters, key=counters.get).name)


def _max_key_word(counters: dict, empty: str) -> str:
    """Key with the largest counter (first inserted on ties), as a word; ``empty`` if none."""
    if not counters:
        return empty
    return clean_no_numbers(max(counters, key=counters.get).name)


def _first_key_word(counters: dict, empty: str) -> str:
    return clean_no_numbers(next(iter(counters)).name) if counters else empty


@functools.cache
def _field_names(cls) -> frozenset[str]:
    """The field names of dataclass ``cls`` (computed once per class)."""
    return frozenset(f.name for f in dataclasses.fields(cls))


def _check_keys(cls, data: dict, optional: Iterable[str] = ()) -> None:
    """Raise ``ValueError`` naming missing / unknown keys of a dict meant for ``cls``."""
    if not isinstance(data, dict):
        raise ValueError(f"{cls.__name__}.from_dict expects a dict, got {type(data).__name__}")
    names = _field_names(cls)
    if data.keys() == names:  # the common case: every field, nothing else
        return
    missing = sorted(names - data.keys() - set(optional))
    unknown = sorted(data.keys() - names)
    if missing or unknown:
        raise ValueError(
            f"{cls.__name__}.from_dict: missing keys {missing}, unknown keys {unknown}"
        )


# --------------------------------------------------------------------------------------------
# Universal records
# --------------------------------------------------------------------------------------------


@dataclass
class UniversalMove:
    """One move, as stored in trajectory files (field order = JSON key order).

    ``base_power`` is poke-env's (fixed-damage moves such as Seismic Toss report 1),
    ``accuracy`` is on a 0-1 scale (always-hit moves read 1.0), ``max_pp`` = base PP * 8 // 5.
    """

    name: str
    move_type: str
    category: str
    base_power: int
    accuracy: float
    priority: int
    current_pp: int
    max_pp: int

    @classmethod
    def blank_move(cls) -> "UniversalMove":
        """The placeholder for "no move": name/type/category ``nomove``, 0 bp, 1.0 acc, 0/0 PP."""
        return cls("nomove", "nomove", "nomove", 0, 1.0, 0, 0, 0)

    @classmethod
    def from_Move(cls, move: Optional[Move]) -> "UniversalMove":
        """From a poke-env ``Move`` (``None`` -> :meth:`blank_move`)."""
        if move is None:
            return cls.blank_move()
        return cls(
            name=move_name(move.id),
            move_type=clean_name(move.type.name),
            category=clean_name(move.category.name),
            base_power=int(move.base_power),
            accuracy=float(move.accuracy),
            priority=int(move.priority),
            current_pp=int(move.current_pp),
            max_pp=int(move.max_pp),
        )

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "UniversalMove":
        _check_keys(cls, data)
        return cls(**data)


@dataclass
class UniversalPokemon:
    """One Pokémon, as stored in trajectory files (24 keys; field order = JSON key order).

    Categorical fields are single words (``types`` is two sorted words, e.g.
    ``"notype psychic"``); ``effect`` keeps only the effect with the smallest counter (roughly
    the most recently started); ``moves`` holds at most 4 known moves. ``tera_type`` is
    ``notype`` until the Pokémon has terastallised. ``base_species`` is the dex base species
    (``rotomwash`` -> ``rotom``); rewards match Pokémon across turns by it.
    """

    name: str
    hp_pct: float
    types: str
    item: str
    ability: str
    lvl: int
    status: str
    effect: str
    moves: list[UniversalMove]
    atk_boost: int
    spa_boost: int
    def_boost: int
    spd_boost: int
    spe_boost: int
    accuracy_boost: int
    evasion_boost: int
    base_atk: int
    base_spa: int
    base_def: int
    base_spd: int
    base_spe: int
    base_hp: int
    # added in metamon's gen 9 era; older files lack them (see from_dict)
    tera_type: str
    base_species: str

    @classmethod
    def from_Pokemon(cls, pokemon: Pokemon) -> "UniversalPokemon":
        """From a poke-env ``Pokemon`` (all *known* moves, first 4, not ``available_moves``)."""
        boosts = pokemon.boosts
        base = pokemon.base_stats
        return cls(
            name=pokemon_name(pokemon.species),
            hp_pct=float(pokemon.current_hp_fraction),
            types=_types_words(pokemon.types, n_words=2),
            item=_item_word(pokemon.item),
            ability=_ability_word(pokemon.ability, pokemon.gen),
            lvl=int(pokemon.level),
            status=_status_word(pokemon.status),
            effect=_min_key_word(pokemon.effects, "noeffect"),
            moves=[UniversalMove.from_Move(m) for m in list(pokemon.moves.values())[:4]],
            **{field: int(boosts[k]) for field, k in zip(_BOOST_FIELDS, _BOOST_KEYS)},
            **{field: int(base[k]) for field, k in zip(_BASE_STAT_FIELDS, _BASE_STAT_KEYS)},
            tera_type=_types_words([pokemon.tera_type], n_words=1),
            base_species=pokemon_name(pokemon.base_species),
        )

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "UniversalPokemon":
        """Rebuild from ``to_dict()`` output, accepting metamon's older files.

        Missing ``tera_type`` -> ``"notype"``; missing ``base_species`` ->
        ``name.split("-")[0]``. Only the first 4 moves are kept.
        """
        _check_keys(cls, data, optional=("tera_type", "base_species"))
        values = dict(data)
        values["moves"] = [UniversalMove.from_dict(m) for m in data["moves"][:4]]
        values.setdefault("tera_type", "notype")
        values.setdefault("base_species", data["name"].split("-")[0])
        return cls(**values)


@dataclass
class UniversalState:
    """One decision point from the player's point of view (16 keys, JSON key order).

    See :meth:`from_Battle` for how each field is read from poke-env.
    """

    format: str
    player_active_pokemon: UniversalPokemon
    opponent_active_pokemon: UniversalPokemon
    available_switches: list[UniversalPokemon]
    player_prev_move: UniversalMove
    opponent_prev_move: UniversalMove
    opponents_remaining: int
    player_conditions: str
    opponent_conditions: str
    weather: str
    battle_field: str
    forced_switch: bool
    battle_won: bool
    battle_lost: bool
    # added in metamon's gen 9 era; older files lack them (see from_dict)
    can_tera: bool
    opponent_teampreview: list[str]

    @classmethod
    def from_Battle(cls, battle: AbstractBattle) -> "UniversalState":
        """Read a poke-env 0.16.1 singles battle.

        * ``format``: second ``-``-separated field of the battle tag (``battle-gen1ou-7`` ->
          ``gen1ou``).
        * ``available_switches``: team members (team order) that are not active and not fainted;
          while ``battle.reviving`` the fainted non-active members instead.
        * ``*_prev_move``: ``Pokemon.last_move`` of each active Pokémon (see module docstring).
        * ``opponents_remaining``: 6 - fainted Pokémon among the opponent's revealed team.
        * conditions / field: the entry with the largest counter (turn it started, or layers);
          weather: the first entry; ``noconditions`` / ``nofield`` / ``noweather`` if empty.
        * ``can_tera``: ``bool(battle.can_tera)``; ``opponent_teampreview``: base species of the
          opponent's team-preview Pokémon, in preview order.
        """
        if isinstance(battle, DoubleBattle):
            raise ValueError(f"{battle.battle_tag}: doubles battles are not supported")
        player, opponent = battle.active_pokemon, battle.opponent_active_pokemon
        if player is None or opponent is None:
            raise ValueError(
                f"{battle.battle_tag}: both sides need an active Pokémon to build a "
                "UniversalState (is the battle still in team preview?)"
            )
        tag_parts = battle.battle_tag.split("-")
        if len(tag_parts) < 2:
            raise ValueError(f"battle tag {battle.battle_tag!r} has no '-<format>-' part")
        return cls(
            format=tag_parts[1],
            player_active_pokemon=UniversalPokemon.from_Pokemon(player),
            opponent_active_pokemon=UniversalPokemon.from_Pokemon(opponent),
            available_switches=[UniversalPokemon.from_Pokemon(p) for p in _switch_options(battle)],
            player_prev_move=UniversalMove.from_Move(player.last_move),
            opponent_prev_move=UniversalMove.from_Move(opponent.last_move),
            opponents_remaining=6 - sum(p.fainted for p in battle.opponent_team.values()),
            player_conditions=_max_key_word(battle.side_conditions, "noconditions"),
            opponent_conditions=_max_key_word(battle.opponent_side_conditions, "noconditions"),
            weather=_first_key_word(battle.weather, "noweather"),
            battle_field=_max_key_word(battle.fields, "nofield"),
            forced_switch=bool(battle.force_switch),
            battle_won=bool(battle.won),
            battle_lost=bool(battle.lost),
            can_tera=bool(battle.can_tera),
            opponent_teampreview=[
                pokemon_name(p.base_species)
                for p in battle.teampreview_opponent_team
                if p is not None
            ],
        )

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "UniversalState":
        """Rebuild from ``to_dict()`` output; missing ``can_tera`` -> False and missing
        ``opponent_teampreview`` -> [] (older datasets)."""
        _check_keys(cls, data, optional=("can_tera", "opponent_teampreview"))
        values = dict(data)
        for key in ("player_active_pokemon", "opponent_active_pokemon"):
            values[key] = UniversalPokemon.from_dict(data[key])
        values["available_switches"] = [
            UniversalPokemon.from_dict(p) for p in data["available_switches"]
        ]
        for key in ("player_prev_move", "opponent_prev_move"):
            values[key] = UniversalMove.from_dict(data[key])
        values.setdefault("can_tera", False)
        values["opponent_teampreview"] = list(data.get("opponent_teampreview", []))
        return cls(**values)


# --------------------------------------------------------------------------------------------
# Actions: the 13-slot universal layout
# --------------------------------------------------------------------------------------------

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


def _switch_options(battle: AbstractBattle) -> list[Pokemon]:
    """metamon's switch candidates, in team order (fainted ones while reviving)."""
    reviving = battle.reviving
    return [p for p in battle.team.values() if not p.active and p.fainted == reviving]


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
    """The maybe-valid indices for which :func:`action_idx_to_BattleOrder` gives an order.

    Same result as asking :func:`action_idx_to_BattleOrder` index by index, but the battle's move
    and switch options are built once instead of once per index.
    """
    maybe = maybe_valid_actions(state)
    if _forced_pseudo_move(battle) is not None:
        return maybe  # every index means the forced pseudo-move
    moves = _move_options(battle)
    switches = consistent_pokemon_order(_switch_options(battle))
    valid = set()
    for idx in maybe:
        wants_tera = idx >= _FIRST_TERA
        slot = idx - _FIRST_TERA if wants_tera else idx
        if slot < _FIRST_SWITCH:
            order = _move_order(battle, moves, slot, wants_tera)
        else:
            order = _switch_order(battle, switches, slot - _FIRST_SWITCH)
        if order is not None:
            valid.add(idx)
    return valid


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
        return _move_order(battle, _move_options(battle), slot, wants_tera)
    candidates = consistent_pokemon_order(_switch_options(battle))
    return _switch_order(battle, candidates, slot - _FIRST_SWITCH)


def _move_order(
    battle: AbstractBattle, options: list[Move], slot: int, wants_tera: bool
) -> Optional[SingleBattleOrder]:
    """Rules 5-6 for move slot ``slot`` (0-3) given the battle's ``_move_options``."""
    if battle.force_switch or slot >= len(options):
        return None
    move = options[slot]
    if move.id not in {m.id for m in battle.available_moves}:
        return None
    return SingleBattleOrder(move, terastallize=wants_tera and bool(battle.can_tera))


def _switch_order(
    battle: AbstractBattle, candidates: list[Pokemon], k: int
) -> Optional[SingleBattleOrder]:
    """Rule 7 for switch slot ``k`` (0-4) given the sorted switch candidates."""
    if k >= len(candidates):
        return None
    if candidates[k].name not in {p.name for p in battle.available_switches}:
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


# --------------------------------------------------------------------------------------------
# Registries
# --------------------------------------------------------------------------------------------

ALL_OBSERVATION_SPACES: dict[str, type] = {}
ALL_ACTION_SPACES: dict[str, type] = {}
ALL_REWARD_FUNCTIONS: dict[str, type] = {}


def _registrar(registry: dict, kind: str) -> Callable:
    def register(cls=None, *, name: Optional[str] = None):
        def add(c):
            key = name or c.__name__
            if key in registry:
                raise ValueError(f"{kind} {key!r} is already registered")
            registry[key] = c
            return c

        return add(cls) if cls is not None else add

    register.__doc__ = (
        f"Class decorator adding a {kind} to its registry under ``name`` (default: the class "
        f"name). Use as ``@register`` or ``@register(name=...)``; duplicates raise ValueError."
    )
    return register


register_observation_space = _registrar(ALL_OBSERVATION_SPACES, "observation space")
register_action_space = _registrar(ALL_ACTION_SPACES, "action space")
register_reward_function = _registrar(ALL_REWARD_FUNCTIONS, "reward function")


def _lookup(registry: dict, kind: str, name: str):
    if name not in registry:
        raise UnknownNameError(kind, name, registry)
    return registry[name]()


def get_observation_space(name: str) -> "ObservationSpace":
    """A new instance of the registered observation space ``name``."""
    return _lookup(ALL_OBSERVATION_SPACES, "observation space", name)


def get_action_space(name: str) -> "ActionSpace":
    """A new instance of the registered action space ``name``."""
    return _lookup(ALL_ACTION_SPACES, "action space", name)


def get_reward_function(name: str) -> "RewardFunction":
    """A new instance of the registered reward function ``name``."""
    return _lookup(ALL_REWARD_FUNCTIONS, "reward function", name)


def get_observation_space_names() -> list[str]:
    return sorted(ALL_OBSERVATION_SPACES)


def get_action_space_names() -> list[str]:
    return sorted(ALL_ACTION_SPACES)


def get_reward_function_names() -> list[str]:
    return sorted(ALL_REWARD_FUNCTIONS)


# --------------------------------------------------------------------------------------------
# Action spaces
# --------------------------------------------------------------------------------------------


def _as_index(agent_output, kind: str) -> int:
    if isinstance(agent_output, np.ndarray) and agent_output.ndim == 0:
        agent_output = agent_output.item()
    if isinstance(agent_output, bool) or not isinstance(agent_output, (int, np.integer)):
        raise ValueError(f"{kind}: agent output must be an int, got {agent_output!r}")
    return int(agent_output)


class ActionSpace(ABC):
    """Maps between what an agent outputs and :class:`UniversalAction`."""

    @property
    @abstractmethod
    def gym_space(self) -> spaces.Space: ...

    @abstractmethod
    def agent_output_to_action(self, state: UniversalState, agent_output) -> UniversalAction: ...

    @abstractmethod
    def action_to_agent_output(self, state: UniversalState, action: UniversalAction): ...


@register_action_space
class DefaultActionSpace(ActionSpace):
    """``Discrete(13)``; agent output k is universal index k (and -1 stays -1)."""

    @property
    def gym_space(self) -> spaces.Discrete:
        return spaces.Discrete(N_UNIVERSAL_ACTIONS)

    def agent_output_to_action(self, state, agent_output) -> UniversalAction:
        return UniversalAction(_as_index(agent_output, type(self).__name__))

    def action_to_agent_output(self, state, action: UniversalAction) -> int:
        return action.action_idx


@register_action_space
class MinimalActionSpace(ActionSpace):
    """``Discrete(9)``: metamon's original 4 moves + 5 switches, no tera slots.

    Both directions map indices 9-12 onto 0-3 (-1 stays -1). Unlike metamon, which rewrote the
    index of the ``UniversalAction`` it was given, the input is never modified.
    """

    @property
    def gym_space(self) -> spaces.Discrete:
        return spaces.Discrete(_FIRST_TERA)

    @staticmethod
    def _drop_tera(idx: int) -> int:
        return idx - _FIRST_TERA if idx >= _FIRST_TERA else idx

    def agent_output_to_action(self, state, agent_output) -> UniversalAction:
        return UniversalAction(self._drop_tera(_as_index(agent_output, type(self).__name__)))

    def action_to_agent_output(self, state, action: UniversalAction) -> int:
        return self._drop_tera(action.action_idx)


# --------------------------------------------------------------------------------------------
# Rewards
# --------------------------------------------------------------------------------------------


class RewardFunction(ABC):
    """``reward = R(last_state, state)`` for the transition into ``state``."""

    @abstractmethod
    def __call__(self, last_state: UniversalState, state: UniversalState) -> float: ...


@dataclass
class _ShapingTerms:
    damage_done: float
    hp_gain: float
    gave_status: float
    took_status: float
    removed_pokemon: float
    lost_pokemon: float


def _shaping_terms(last: UniversalState, now: UniversalState) -> _ShapingTerms:
    """The per-transition terms shared by the shaped rewards (booleans as 0.0 / 1.0).

    * ``hp_gain`` / ``took_status``: the current active Pokémon is matched by ``base_species``
      against last turn's active Pokémon and switches (first match); both are 0 without a match.
      ``hp_gain = hp_now - hp_then``; ``took_status`` = statused now and ``nostatus`` then.
    * ``damage_done`` / ``gave_status``: only when the opponent's active ``base_species`` is
      unchanged; ``damage_done = opp_hp_then - opp_hp_now``.
    * ``lost_pokemon`` = fewer available switches than last turn; ``removed_pokemon`` = fewer
      opponents remaining than last turn.
    """
    active = now.player_active_pokemon
    active_then = next(
        (
            p
            for p in [last.player_active_pokemon, *last.available_switches]
            if p.base_species == active.base_species
        ),
        None,
    )
    hp_gain = took_status = 0.0
    if active_then is not None:
        hp_gain = active.hp_pct - active_then.hp_pct
        took_status = float(active.status != "nostatus" and active_then.status == "nostatus")
    opp, opp_then = now.opponent_active_pokemon, last.opponent_active_pokemon
    damage_done = gave_status = 0.0
    if opp.base_species == opp_then.base_species:
        damage_done = opp_then.hp_pct - opp.hp_pct
        gave_status = float(opp.status != "nostatus" and opp_then.status == "nostatus")
    return _ShapingTerms(
        damage_done=damage_done,
        hp_gain=hp_gain,
        gave_status=gave_status,
        took_status=took_status,
        removed_pokemon=float(last.opponents_remaining > now.opponents_remaining),
        lost_pokemon=float(len(last.available_switches) > len(now.available_switches)),
    )


@register_reward_function
class DefaultShapedReward(RewardFunction):
    """metamon's paper reward:

    ``(damage_done + hp_gain) + 0.5 (gave_status - took_status)
    + (removed_pokemon - lost_pokemon) + 100 victory`` with victory = +1 won, -1 lost, else 0.
    """

    def __call__(self, last_state, state) -> float:
        t = _shaping_terms(last_state, state)
        victory = 1.0 if state.battle_won else -1.0 if state.battle_lost else 0.0
        return float(
            (t.damage_done + t.hp_gain)
            + 0.5 * (t.gave_status - t.took_status)
            + (t.removed_pokemon - t.lost_pokemon)
            + 100.0 * victory
        )


@register_reward_function
class AggressiveShapedReward(RewardFunction):
    """``(damage_done + hp_gain) + 2 (removed_pokemon - lost_pokemon) + 200 [won]``.

    No status terms and no loss penalty.
    """

    def __call__(self, last_state, state) -> float:
        t = _shaping_terms(last_state, state)
        return float(
            (t.damage_done + t.hp_gain)
            + 2.0 * (t.removed_pokemon - t.lost_pokemon)
            + 200.0 * float(state.battle_won)
        )


@register_reward_function
class BinaryReward(RewardFunction):
    """+100 on a win, -100 on a loss, 0 otherwise."""

    def __call__(self, last_state, state) -> float:
        return 100.0 if state.battle_won else -100.0 if state.battle_lost else 0.0


# --------------------------------------------------------------------------------------------
# Observation spaces
# --------------------------------------------------------------------------------------------

ANYCHOICE, FORCEDSWITCH = "<anychoice>", "<forcedswitch>"
PLAYER, OPPONENT = "<player>", "<opponent>"
MOVE, SWITCH, MOVESET = "<move>", "<switch>", "<moveset>"
CONDITIONS, PLAYER_PREV, OPP_PREV = "<conditions>", "<player_prev>", "<opp_prev>"
BLANK = "<blank>"

#: Every angle-bracket word the observation spaces emit besides the format token ``<{format}>``.
OBSERVATION_SPECIAL_TOKENS = tuple(
    sorted(
        {ANYCHOICE, FORCEDSWITCH, PLAYER, OPPONENT, MOVE, SWITCH, MOVESET}
        | {CONDITIONS, PLAYER_PREV, OPP_PREV, BLANK}
    )
)

_PAD = -2.0  # numeric value of a missing move / switch slot


def _padded(items: list, length: int, filler=BLANK) -> list:
    """The first ``length`` items, with ``filler`` appended up to ``length``."""
    return items[:length] + [filler] * (length - len(items))


_base_stats_of = operator.attrgetter(*_BASE_STAT_FIELDS)  # pokemon -> (base_atk, ..., base_hp)
_boosts_of = operator.attrgetter(*_BOOST_FIELDS)  # pokemon -> (atk_boost, ..., evasion_boost)
_BASE_STAT_SCALE = (255.0,) * len(_BASE_STAT_FIELDS)
_BOOST_SCALE = (6.0,) * len(_BOOST_FIELDS)
_name_of = operator.attrgetter("name")


class _Slots(NamedTuple):
    """A state's sorted move and switch slots, computed once per observation."""

    moves: list[UniversalMove]  # consistent_move_order of the active Pokémon's moves
    switches: list[UniversalPokemon]  # consistent_pokemon_order of the available switches

    @classmethod
    def of(cls, state: UniversalState) -> "_Slots":
        # consistent_*_order key Universal records by ``name``; sort by it directly
        return cls(
            sorted(state.player_active_pokemon.moves, key=_name_of),
            sorted(state.available_switches, key=_name_of),
        )


class ObservationSpace(ABC):
    """Turns a :class:`UniversalState` into an observation dict.

    Observations are ``{"text": 0-d numpy str array, "numbers": float32 vector}``; ``tokenizable``
    maps each text key to its fixed word count. ``reset()`` clears per-battle memory and is
    called at construction and at the start of every battle.
    """

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        """Forget everything remembered from the current battle (stateless spaces: no-op)."""

    @property
    def tokenizable(self) -> dict[str, int]:
        return {}

    @property
    @abstractmethod
    def gym_space(self) -> spaces.Dict: ...

    @abstractmethod
    def state_to_obs(self, state: UniversalState) -> dict[str, np.ndarray]: ...

    def state_to_words(self, state: UniversalState) -> dict:
        """``state_to_obs(state)`` with every ``tokenizable`` text given as its list of words.

        ``obs[key] = text.split(" ")`` for each text key; other entries are unchanged. It
        updates per-battle memory exactly like ``state_to_obs`` (call one of the two per state).
        Spaces that assemble their texts from words override it to skip the join and the split
        (:class:`TokenizedObservationSpace` reads texts this way).
        """
        obs = self.state_to_obs(state)
        for key in self.tokenizable:
            obs[key] = _as_str(obs[key]).split(" ")
        return obs

    def __call__(self, state: UniversalState) -> dict[str, np.ndarray]:
        return self.state_to_obs(state)


@register_observation_space
class DefaultObservationSpace(ObservationSpace):
    """metamon's paper observation: 87 words of text and 48 numbers.

    Text (moves and switches sorted; ``types`` is two words)::

        <{format}> <forcedswitch>|<anychoice>
        <player> name item ability type type effect status
        4 x [<move> name type category]             (missing: <move> <blank> <blank> <blank>)
        5 x [<switch> name item ability <moveset> 4 move names, <blank>-padded]
                                                     (missing: <switch> + 8 <blank>)
        <opponent> name item ability type type effect status
        <conditions> weather player_conditions opponent_conditions
        <player_prev> move <opp_prev> move           (blank move: nomove)

    Numbers: ``opponents_remaining / 6``; the player's active Pokémon (15 features: hp_pct,
    lvl/100, base atk spa def spd spe hp / 255, boosts atk spa def spd spe accuracy evasion / 6);
    4 move slots x (base_power/200, accuracy, priority/5); 5 switch slots x hp_pct; the
    opponent's active Pokémon (15 features). Missing slots are -2.

    The ``text`` entry of ``gym_space`` is metamon's nominal ``Text`` space (800-900 characters
    of a-z, 0-9, "<", ">"); real texts also contain spaces and "_" and only the tokenized form
    (:class:`TokenizedObservationSpace`) has an exact space.

    Universal records are read as immutable values: a switch Pokémon that is the very object
    seen among the previous state's switches reuses the words computed for it then (datasets
    share unchanged Pokémon between consecutive states, see
    :func:`metamon.data.parsed_replay_dset.build_state`). Do not edit a record in place between
    two observations; build a new one (``dataclasses.replace``). Subclasses keep
    ``_switch_words`` (and the ``_pokemon_words(pokemon, active=False)`` it calls) a function
    of the Pokémon alone, not of per-battle memory.
    """

    n_words = 87
    n_numbers = 48
    _inactive_pokemon_words = 3  # name item ability
    _active_move_words = 3  # name type category
    _move_numbers = 3  # base power, accuracy, priority

    # id -> (switch Pokémon, its switch words) for the switches of the last state observed
    # (read-only empty default, for subclasses whose reset() does not call this one)
    _switch_words_seen: Mapping[int, tuple[UniversalPokemon, list[str]]] = MappingProxyType({})

    def reset(self) -> None:
        self._switch_words_seen = {}

    @property
    def tokenizable(self) -> dict[str, int]:
        return {"text": self.n_words}

    @property
    def gym_space(self) -> spaces.Dict:
        return spaces.Dict(
            {
                "numbers": spaces.Box(-10.0, 10.0, shape=(self.n_numbers,), dtype=np.float32),
                "text": spaces.Text(
                    max_length=900,
                    min_length=800,
                    charset="abcdefghijklmnopqrstuvwxyz0123456789<>",
                ),
            }
        )

    # --- text pieces (overridden by the larger spaces) ------------------------------------

    def _pokemon_words(self, pokemon: UniversalPokemon, active: bool) -> list[str]:
        words = [pokemon.name, pokemon.item, pokemon.ability]
        if active:
            words += pokemon.types.split(" ")
            words += (pokemon.effect, pokemon.status)
        return words

    def _opponent_words(self, pokemon: UniversalPokemon) -> list[str]:
        return self._pokemon_words(pokemon, active=True)

    def _move_words(self, move: UniversalMove) -> list[str]:
        return [move.name, move.move_type, move.category]

    def _switch_words(self, pokemon: UniversalPokemon) -> list[str]:
        """A switch slot's words after ``<switch>``: the Pokémon's words, ``<moveset>``, 4 moves."""
        # sorting the names gives consistent_move_order's names (its key is the name)
        moves = _padded(sorted([m.name for m in pokemon.moves]), _N_MOVE_SLOTS)
        return self._pokemon_words(pokemon, active=False) + [MOVESET] + moves

    def _text_words(self, state: UniversalState, slots: _Slots) -> list[str]:
        words = [f"<{state.format}>", FORCEDSWITCH if state.forced_switch else ANYCHOICE, PLAYER]
        words += self._pokemon_words(state.player_active_pokemon, active=True)
        blank_move = [BLANK] * self._active_move_words
        for move in _padded(slots.moves, _N_MOVE_SLOTS, None):
            words.append(MOVE)
            words += blank_move if move is None else self._move_words(move)
        blank_switch = [BLANK] * (self._inactive_pokemon_words + 1 + _N_MOVE_SLOTS)
        seen, current = self._switch_words_seen, {}
        for mon in _padded(slots.switches, _N_SWITCH_SLOTS, None):
            words.append(SWITCH)
            if mon is None:
                words += blank_switch
                continue
            entry = seen.get(id(mon))
            if entry is None or entry[0] is not mon:
                entry = (mon, self._switch_words(mon))
            current[id(mon)] = entry
            words += entry[1]
        self._switch_words_seen = current
        words.append(OPPONENT)
        words += self._opponent_words(state.opponent_active_pokemon)
        words += (CONDITIONS, state.weather, state.player_conditions, state.opponent_conditions)
        words += (PLAYER_PREV, state.player_prev_move.name, OPP_PREV, state.opponent_prev_move.name)
        return words

    # --- number pieces ---------------------------------------------------------------------

    @staticmethod
    def _pokemon_numbers(pokemon: UniversalPokemon) -> list[float]:
        # value / 255.0 and value / 6.0, divided by map() in C
        base = list(map(operator.truediv, _base_stats_of(pokemon), _BASE_STAT_SCALE))
        boosts = list(map(operator.truediv, _boosts_of(pokemon), _BOOST_SCALE))
        return [pokemon.hp_pct, pokemon.lvl / 100.0] + base + boosts

    def _move_number_features(self, move: UniversalMove) -> list[float]:
        return [move.base_power / 200.0, move.accuracy, move.priority / 5.0]

    def _numbers(self, state: UniversalState, slots: _Slots) -> list[float]:
        numbers = [state.opponents_remaining / 6.0]
        numbers += self._pokemon_numbers(state.player_active_pokemon)
        blank_move = [_PAD] * self._move_numbers
        for move in _padded(slots.moves, _N_MOVE_SLOTS, None):
            numbers += blank_move if move is None else self._move_number_features(move)
        numbers += [
            _PAD if mon is None else mon.hp_pct
            for mon in _padded(slots.switches, _N_SWITCH_SLOTS, None)
        ]
        numbers += self._pokemon_numbers(state.opponent_active_pokemon)
        return numbers

    # --- assembly --------------------------------------------------------------------------

    def _observe(self, state: UniversalState) -> tuple[list[str], str, list[float]]:
        """The checked words, their text (words joined by single spaces) and the numbers."""
        slots = _Slots.of(state)
        words = self._text_words(state, slots)
        numbers = self._numbers(state, slots)
        text = " ".join(words)
        # Every word is non-empty and space-free exactly when all(words) holds and the join
        # added the only spaces (len(words) - 1 of them).
        if len(words) != self.n_words or not all(words) or text.count(" ") != len(words) - 1:
            bad = [w for w in words if not w or " " in w]
            raise ValueError(
                f"{type(self).__name__}: state produced {len(words)} words (expected "
                f"{self.n_words}); malformed words: {bad[:5]} (is a categorical field empty, or "
                "is `types` not exactly two words?)"
            )
        return words, text, numbers

    def state_to_obs(self, state: UniversalState) -> dict[str, np.ndarray]:
        _, text, numbers = self._observe(state)
        return {"text": np.array(text), "numbers": np.asarray(numbers, dtype=np.float32)}

    def state_to_words(self, state: UniversalState) -> dict:
        words, _, numbers = self._observe(state)
        return {"text": words, "numbers": np.asarray(numbers, dtype=np.float32)}


@register_observation_space
class ExpandedObservationSpace(DefaultObservationSpace):
    """Default + tera types, PP warnings and per-battle memory: 100 words, 55 numbers.

    * Every Pokémon word block (player active, each switch, opponent active) ends with its
      ``tera_type`` (for a switch: ``<switch> name item ability tera <moveset> ...``; an empty
      switch slot is ``<switch>`` + 9 ``<blank>``).
    * After the default text: the base species of every opponent seen active this battle,
      sorted, ``<blank>``-padded to 6 words.
    * Each active-move number block gains a PP warning
      ``[r >= 0.5] + [r >= 0.25] + [r > 0]`` with ``r = current_pp / max_pp``; a missing slot is
      4 x -2. Deviation from metamon: ``r = 0`` when ``max_pp == 0`` (metamon divided by zero).
    * After the default numbers: ``any_opponent_asleep``, ``any_opponent_frozen`` (sticky over
      the battle) and ``can_tera``.

    The memory is updated by each ``state_to_obs`` (or ``state_to_words``) call, so call one
    of them once per state, in order,
    and ``reset()`` between battles.
    """

    n_words = 100
    n_numbers = 55
    _inactive_pokemon_words = 4  # name item ability tera
    _move_numbers = 4  # + PP warning

    def reset(self) -> None:
        super().reset()
        self.any_opponent_asleep = False
        self.any_opponent_frozen = False
        self.revealed_opponents: set[str] = set()

    def _remember(self, state: UniversalState) -> None:
        opponent = state.opponent_active_pokemon
        self.any_opponent_asleep |= opponent.status == "slp"
        self.any_opponent_frozen |= opponent.status == "frz"
        self.revealed_opponents.add(opponent.base_species)

    def _pokemon_words(self, pokemon: UniversalPokemon, active: bool) -> list[str]:
        return super()._pokemon_words(pokemon, active) + [pokemon.tera_type]

    def _move_number_features(self, move: UniversalMove) -> list[float]:
        ratio = move.current_pp / move.max_pp if move.max_pp > 0 else 0.0
        warning = float(ratio >= 0.5) + float(ratio >= 0.25) + float(ratio > 0)
        return super()._move_number_features(move) + [warning]

    def _text_words(self, state: UniversalState, slots: _Slots) -> list[str]:
        return super()._text_words(state, slots) + _padded(sorted(self.revealed_opponents), 6)

    def _numbers(self, state: UniversalState, slots: _Slots) -> list[float]:
        flags = [self.any_opponent_asleep, self.any_opponent_frozen, state.can_tera]
        return super()._numbers(state, slots) + [float(f) for f in flags]

    def _observe(self, state: UniversalState) -> tuple[list[str], str, list[float]]:
        self._remember(state)
        return super()._observe(state)


@register_observation_space
class TeamPreviewObservationSpace(ExpandedObservationSpace):
    """Expanded + the opponent's team preview (sorted, ``<blank>``-padded to 6): 106 words."""

    n_words = 106

    def _text_words(self, state: UniversalState, slots: _Slots) -> list[str]:
        return super()._text_words(state, slots) + _padded(sorted(state.opponent_teampreview), 6)


@register_observation_space
class OpponentMoveObservationSpace(TeamPreviewObservationSpace):
    """TeamPreview with the opponent's revealed moves instead of the active moves' category.

    * Active move blocks are ``<move> name type`` (missing: ``<move> <blank> <blank>``).
    * The opponent's block gains, after its tera type, its known move names (sorted, first 4,
      ``<blank>``-padded).

    Still 106 words (-4 categories, +4 opponent moves) and 55 numbers.
    """

    _active_move_words = 2

    def _move_words(self, move: UniversalMove) -> list[str]:
        return [move.name, move.move_type]

    def _opponent_words(self, pokemon: UniversalPokemon) -> list[str]:
        names = [m.name for m in consistent_move_order(pokemon.moves)]
        return super()._opponent_words(pokemon) + _padded(names, _N_MOVE_SLOTS)


def _as_str(text) -> str:
    """``str(text)``, read directly (without numpy's printing) from a 0-d unicode array."""
    if isinstance(text, np.ndarray) and text.ndim == 0 and text.dtype.kind == "U":
        return text.item()
    return str(text)


class TokenizedObservationSpace(ObservationSpace):
    """Wraps an observation space and replaces each tokenizable text by token ids.

    For every ``key`` of ``base_obs_space.tokenizable`` the observation's ``key`` entry is
    replaced by ``key + "_tokens"`` = ``tokenizer.tokenize(text)`` (int32, unknown words -1);
    other entries pass through. The gym space of a token entry is
    ``Box(low=-1, high=max(-1, len(tokenizer)), shape=(L,), int32)``. ``tokenizer`` only needs
    ``tokenize(str) -> np.ndarray`` and ``len()``; one that also has ``tokenize_words(list of
    words) -> np.ndarray`` (such as :class:`metamon.tokenizer.PokemonTokenizer`, where it equals
    ``tokenize(" ".join(words))``) is given the base space's words (``state_to_words``), which
    skips joining them into a text only to split it again. Not registered (it wraps a
    registered space).
    """

    def __init__(self, base_obs_space: ObservationSpace, tokenizer: Any):
        self.base_obs_space = base_obs_space
        self.tokenizer = tokenizer
        super().__init__()

    def reset(self) -> None:
        self.base_obs_space.reset()

    @property
    def gym_space(self) -> spaces.Dict:
        tokenizable = self.base_obs_space.tokenizable
        entries = {
            key: space
            for key, space in self.base_obs_space.gym_space.spaces.items()
            if key not in tokenizable
        }
        high = max(-1, len(self.tokenizer))
        for key, length in tokenizable.items():
            entries[f"{key}_tokens"] = spaces.Box(
                low=-1, high=high, shape=(length,), dtype=np.int32
            )
        return spaces.Dict(entries)

    def state_to_obs(self, state: UniversalState) -> dict[str, np.ndarray]:
        tokenizable = self.base_obs_space.tokenizable
        tokenize_words = getattr(self.tokenizer, "tokenize_words", None)
        if tokenize_words is None:
            obs = self.base_obs_space.state_to_obs(state)
            texts = {key: self.tokenizer.tokenize(_as_str(obs.pop(key))) for key in tokenizable}
        else:
            obs = self.base_obs_space.state_to_words(state)
            texts = {key: tokenize_words(obs.pop(key)) for key in tokenizable}
        for key, length in tokenizable.items():
            tokens = np.asarray(texts[key], dtype=np.int32)
            if tokens.shape != (length,):
                raise ValueError(
                    f"tokenizer returned {tokens.shape[0]} tokens for {key!r}, expected {length}"
                )
            obs[f"{key}_tokens"] = tokens
        return obs
