"""Observation spaces: ``UniversalState`` -> ``{"text": 0-d str array, "numbers": float32 (N,)}``.

Registered spaces (:func:`metamon.interface.get_observation_space`), each a subclass of the
previous one: :class:`DefaultObservationSpace` (87 words, 48 numbers),
:class:`ExpandedObservationSpace` (100 words, 55 numbers), :class:`TeamPreviewObservationSpace`
(106 words) and :class:`OpponentMoveObservationSpace` (106 words). :class:`TokenizedObservationSpace`
wraps any of them and replaces each text by token ids. ``OBSERVATION_SPECIAL_TOKENS`` lists the
angle-bracket words the texts use. (The ``PAC-`` variants live in
:mod:`metamon.interface.pac_observations`.)

The texts are metamon 1.4's word for word. 0-based word indices of each block::

    block                                             Default  Expanded/TeamPreview  OpponentMove
    <{format}> <anychoice>|<forcedswitch>             0-1      0-1                   0-1
    <player> name item ability type type effect
        status [tera]                                 2-9      2-10                  2-10
    4 x <move> name type [category]                   10-25    11-26                 11-22
    5 x <switch> name item ability <moveset>
        m1 m2 m3 m4 [tera]                            26-70    27-76                 23-72
    <opponent> name item ability type type effect
        status [tera] [4 known moves]                 71-78    77-85                 73-85
    <conditions> weather player-cond opp-cond         79-82    86-89                 86-89
    <player_prev> move <opp_prev> move                83-86    90-93                 90-93
    revealed opponents (6, sorted, <blank>-padded)    -        94-99                 94-99
    team preview (6, sorted, <blank>-padded)          -        100-105 (TeamPreview) 100-105

(OpponentMove: the opponent's tera is word 81, its known moves 82-85.)

The format word is ``<{state.format}>`` as metamon 1.4.0 writes it (1.5.1 also maps
``gen1oulongtimer`` / ``gen9oulongtimer`` to the plain formats; the pinned Showdown server has
no such formats, so both versions write the same word for every format we play). metamon
passes move names, move types and categories through ``clean_name`` once more when it writes
them; we write the stored values, which every record constructor has already normalised
(``move_name`` / ``clean_name``, both idempotent under ``clean_name``), so the words are the
same for every record built from a battle, a trajectory file or a metamon dataset.
"""

from __future__ import annotations

import operator
from abc import ABC, abstractmethod
from types import MappingProxyType
from typing import Any, Mapping, NamedTuple

import numpy as np
from gymnasium import spaces

from metamon.interface.actions import _N_MOVE_SLOTS, _N_SWITCH_SLOTS
from metamon.interface.ordering import consistent_move_order
from metamon.interface.records import (
    _BASE_STAT_FIELDS,
    _BOOST_FIELDS,
    UniversalMove,
    UniversalPokemon,
    UniversalState,
)
from metamon.interface.registry import register_observation_space

__all__ = [
    "ObservationSpace",
    "DefaultObservationSpace",
    "ExpandedObservationSpace",
    "TeamPreviewObservationSpace",
    "OpponentMoveObservationSpace",
    "TokenizedObservationSpace",
    "OBSERVATION_SPECIAL_TOKENS",
]

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

    def reset(self) -> None:  # noqa: B027 (an optional hook: stateless spaces keep this no-op)
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

    Text (moves and switches sorted; ``types`` is two words; indices in the module docstring)::

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
    ``_switch_words`` a function of the Pokémon alone, not of per-battle memory.
    """

    n_words = 87
    n_numbers = 48
    _switch_slot_words = 8  # name item ability <moveset> 4 moves
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

    def _active_pokemon_words(self, pokemon: UniversalPokemon) -> list[str]:
        """An active Pokémon's words: name item ability type type effect status."""
        return [pokemon.name, pokemon.item, pokemon.ability, *pokemon.types.split(" "),
                pokemon.effect, pokemon.status]

    def _opponent_words(self, pokemon: UniversalPokemon) -> list[str]:
        return self._active_pokemon_words(pokemon)

    def _move_words(self, move: UniversalMove) -> list[str]:
        return [move.name, move.move_type, move.category]

    def _switch_words(self, pokemon: UniversalPokemon) -> list[str]:
        """A switch slot's words after ``<switch>``: name item ability ``<moveset>`` 4 moves."""
        names = [m.name for m in consistent_move_order(pokemon.moves)]
        return [pokemon.name, pokemon.item, pokemon.ability, MOVESET] + _padded(names, _N_MOVE_SLOTS)

    def _text_words(self, state: UniversalState, slots: _Slots) -> list[str]:
        words = [f"<{state.format}>", FORCEDSWITCH if state.forced_switch else ANYCHOICE, PLAYER]
        words += self._active_pokemon_words(state.player_active_pokemon)
        blank_move = [BLANK] * self._active_move_words
        for move in _padded(slots.moves, _N_MOVE_SLOTS, None):
            words.append(MOVE)
            words += blank_move if move is None else self._move_words(move)
        blank_switch = [BLANK] * self._switch_slot_words
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
      ``tera_type``: after ``status`` for the active Pokémon, after the four move names for a
      switch (``<switch> name item ability <moveset> m1 m2 m3 m4 tera``); an empty switch slot
      is ``<switch>`` + 9 ``<blank>``.
    * After the default text: the base species of every opponent seen active this battle,
      sorted, ``<blank>``-padded to 6 words.
    * Each active-move number block gains a PP warning
      ``[r >= 0.5] + [r >= 0.25] + [r > 0]`` with ``r = current_pp / max_pp``; a missing slot is
      4 x -2. Deviation from metamon: ``r = 0`` when ``max_pp == 0`` (metamon divided by zero).
    * After the default numbers: ``any_opponent_asleep``, ``any_opponent_frozen`` (sticky over
      the battle) and ``can_tera``.

    The memory is updated by each ``state_to_obs`` (or ``state_to_words``) call, before the
    observation is built (the current opponent counts), so call one of them once per state,
    in order, and ``reset()`` between battles.
    """

    n_words = 100
    n_numbers = 55
    _switch_slot_words = 9  # name item ability <moveset> 4 moves tera
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

    def _active_pokemon_words(self, pokemon: UniversalPokemon) -> list[str]:
        return super()._active_pokemon_words(pokemon) + [pokemon.tera_type]

    def _switch_words(self, pokemon: UniversalPokemon) -> list[str]:
        return super()._switch_words(pokemon) + [pokemon.tera_type]

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
