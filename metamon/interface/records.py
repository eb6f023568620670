"""metamon's records of a battle: ``UniversalMove``, ``UniversalPokemon``, ``UniversalState``.

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
  own list (:func:`_switch_options`: team members that are neither fainted nor active; fainted
  non-active members while a Revival Blessing choice is pending), **not**
  ``battle.available_switches`` (which is empty when trapped). ``battle.available_switches`` is
  only used to decide whether a switch is legal (:mod:`metamon.interface.actions`).

There are no replay-parser constructors.
"""

from __future__ import annotations

import dataclasses
import functools
import operator
from dataclasses import asdict, dataclass
from itertools import islice
from typing import Iterable, Optional

from poke_env.battle import AbstractBattle, DoubleBattle, Move, Pokemon, PokemonType

from metamon.names import clean_name, clean_no_numbers, move_name, pokemon_name

__all__ = ["UniversalMove", "UniversalPokemon", "UniversalState"]


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


@functools.lru_cache(maxsize=4096)
def _sorted_type_words(types: tuple, n_words: int) -> str:
    """Type tuple, padded to ``n_words`` entries -> sorted words joined by one space.

    ``None`` entries (and the padding) read ``notype``; enum members use their name
    (``THREE_QUESTION_MARKS`` -> ``threequestionmarks``). poke-env reports at most two types
    (``type_1``, ``type_2``), so ``types`` is always two words. Computed once per distinct
    (types, n_words): every Pokémon of every turn asks.
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
# Switch candidates (shared with the action slots of metamon.interface.actions)
# --------------------------------------------------------------------------------------------


def _switch_options(battle: AbstractBattle) -> list[Pokemon]:
    """metamon's switch candidates, in team order (fainted ones while reviving)."""
    reviving = battle.reviving
    return [p for p in battle.team.values() if not p.active and p.fainted == reviving]


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
        name, move_type, category, base_power, accuracy, priority, max_pp = _fixed_move_fields(move)
        return cls(name, move_type, category, base_power, accuracy, priority, int(move.current_pp), max_pp)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "UniversalMove":
        _check_keys(cls, data)
        return cls(**data)


# id(move) -> (move, its fields but current_pp); see _fixed_move_fields
_MOVE_FIELDS: dict[int, tuple[Move, tuple]] = {}
_MOVE_FIELDS_LIMIT = 4096


def _fixed_move_fields(move: Move) -> tuple:
    """``(name, move_type, category, base_power, accuracy, priority, max_pp)`` of a poke-env move.

    poke-env computes each of these properties from the move's dex entry on every access (six
    dictionary lookups each), and none of them changes during the life of a ``Move`` object:
    they depend on its id, generation and construction (hidden power's base power, a
    transformed copy's PP), fixed at creation. Only ``current_pp`` changes. So they are computed
    once per object, which is most of the cost of ``UniversalState.from_Battle`` otherwise (a
    battle reads the same few dozen move objects every turn). The cache holds the moves it
    describes (so an id is never reused while cached), at most 4096 of them, emptied when full.
    """
    cached = _MOVE_FIELDS.get(id(move))
    if cached is not None and cached[0] is move:
        return cached[1]
    fields = (
        move_name(move.id),
        clean_name(move.type.name),
        clean_name(move.category.name),
        int(move.base_power),
        float(move.accuracy),
        int(move.priority),
        int(move.max_pp),
    )
    if len(_MOVE_FIELDS) >= _MOVE_FIELDS_LIMIT:
        _MOVE_FIELDS.clear()
    _MOVE_FIELDS[id(move)] = (move, fields)
    return fields


_boost_values = operator.itemgetter(*_BOOST_KEYS)  # boosts dict -> values in field order
_base_stat_values = operator.itemgetter(*_BASE_STAT_KEYS)

# (gen, species) -> (pokemon_name(species), pokemon_name(base_species)); see _species_words
_SPECIES_WORDS: dict[tuple[int, str], tuple[str, str]] = {}


def _species_words(pokemon: Pokemon, gen: int) -> tuple[str, str]:
    """``(name, base_species)`` words of a Pokémon, computed once per (generation, species).

    poke-env derives ``base_species`` from the generation's dex entry of ``species`` on every
    access (a lookup and an id normalisation); both words are functions of the pair alone.
    The cache is bounded by the number of species in the dex.
    """
    key = (gen, pokemon.species)
    words = _SPECIES_WORDS.get(key)
    if words is None:
        words = _SPECIES_WORDS[key] = (pokemon_name(pokemon.species), pokemon_name(pokemon.base_species))
    return words


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
        gen = pokemon.gen
        name, base_species = _species_words(pokemon, gen)
        # positional, in field order (every turn builds one per Pokémon; keywords cost more)
        return cls(
            name,  # name
            float(pokemon.current_hp_fraction),  # hp_pct
            _sorted_type_words(tuple(pokemon.types), 2),  # types
            _item_word(pokemon.item),  # item
            _ability_word(pokemon.ability, gen),  # ability
            int(pokemon.level),  # lvl
            _status_word(pokemon.status),  # status
            _min_key_word(pokemon.effects, "noeffect"),  # effect
            [UniversalMove.from_Move(m) for m in islice(pokemon.moves.values(), 4)],  # moves
            *map(int, _boost_values(pokemon.boosts)),  # atk_boost ... evasion_boost
            *map(int, _base_stat_values(pokemon.base_stats)),  # base_atk ... base_hp
            _sorted_type_words((pokemon.tera_type,), 1),  # tera_type
            base_species,  # base_species
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

