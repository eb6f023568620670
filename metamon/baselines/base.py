"""Shared machinery of the heuristic baselines: the :class:`Baseline` player class and the
battle arithmetic the heuristics score moves and switches with.

Everything here works on a live poke-env 0.16.1 singles ``Battle`` in any generation 1-9.
The opponent's stats, items and unrevealed moves are unknown to a player, so they are
*estimated* from the species' base stats under an assumed stat spread (see
:func:`estimate_stat`); our own Pokémon use the exact stats Showdown sends in each request.

Conventions used by every function:

* damage is returned as a **fraction of the defender's maximum HP** (1.0 = a full-HP KO), which
  is directly comparable with ``Pokemon.current_hp_fraction`` for both sides;
* ``spread`` names the stat spread assumed for a Pokémon whose stats are unknown:
  ``"best"`` (252 EVs / stat experience 65535), ``"worst"`` (0 EVs) or ``"uniform"`` (85 EVs
  in every stat, i.e. 510 EVs spread evenly);
* ``roll`` is the damage random factor: ``"min"`` = 0.85, ``"mean"`` = 0.925, ``"max"`` = 1.0,
  ``"random"`` = uniform on [0.85, 1], or a number.
"""

from __future__ import annotations

import math
import random
from abc import ABC, abstractmethod
from typing import Dict, Iterable, List, Optional, Sequence, Union

from poke_env.battle import (
    AbstractBattle,
    Battle,
    Effect,
    Field,
    Move,
    MoveCategory,
    Pokemon,
    PokemonType,
    SideCondition,
    Status,
    Weather,
)
from poke_env.data import GenData
from poke_env.player import BattleOrder, DefaultBattleOrder, Player, SingleBattleOrder

from metamon.errors import MetamonError
from metamon.names import format_to_gen

__all__ = [
    "Baseline",
    "get_gen_format",
    "type_advantage",
    "type_matchup",
    "stage_multiplier",
    "estimate_stat",
    "pokemon_stat",
    "effective_speed",
    "outspeed_chance",
    "accuracy_multiplier",
    "current_accuracy",
    "crit_chance",
    "crit_multiplier",
    "damage_equation",
    "move_damage",
    "expected_damage",
    "worst_case_damage",
    "max_damage",
    "damage_roll",
    "opponent_moves",
    "opponent_threat",
    "find_ko_move",
    "is_damaging",
    "ability_immune",
    "effective_type_multiplier",
    "status_immune",
    "boost_move_scores",
    "heal_move_scores",
    "switch_scores",
    "should_emergency_switch",
    "find_outspeed_ko_switch",
    "force_use_gimmick",
    "gimmick_order",
]

# Showdown's stand-in choices when the active Pokémon cannot pick a move: "recharge" after
# Hyper Beam, gen-1 "fight" while bound by Wrap & co. They are taken as they are.
_PLACEHOLDER_MOVES = ("recharge", "fight")
_NEUTRAL_TYPES = {PokemonType.THREE_QUESTION_MARKS, PokemonType.STELLAR}
_SPREAD_EVS = {"best": 252, "worst": 0, "uniform": 85}
_ROLLS = {"min": 0.85, "mean": 0.925, "max": 1.0}


# ------------------------------------------------------------------------------------------
# formats and types
# ------------------------------------------------------------------------------------------
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


# ------------------------------------------------------------------------------------------
# stats and speed
# ------------------------------------------------------------------------------------------
def stage_multiplier(stage: int) -> float:
    """Multiplier of a stat stage ``s`` in -6..6 (atk/def/spa/spd/spe, every generation):
    ``max(2, 2 + s) / max(2, 2 - s)``, e.g. +2 -> 2.0, -1 -> 2/3, +6 -> 4.0."""
    s = max(-6, min(6, stage))
    return max(2, 2 + s) / max(2, 2 - s)


def estimate_stat(base: int, stat: str, level: int, gen: int, spread: str = "uniform") -> int:
    """Stat value of a Pokémon with base stat ``base`` at ``level`` under an assumed spread.

    Generations 1-2 (DVs and stat experience; every DV 15 and stat experience 65535, whatever
    the spread: the games let every stat be maxed)::

        E      = floor(floor(sqrt(65535)) / 4) = 63
        HP     = floor(((base + 15) * 2 + E) * level / 100) + level + 10
        other  = floor(((base + 15) * 2 + E) * level / 100) + 5

    Generations 3+ (IV 31, neutral nature, EV = 252 / 0 / 85 for best / worst / uniform)::

        HP     = floor((2 * base + 31 + floor(EV / 4)) * level / 100) + level + 10
        other  = floor((2 * base + 31 + floor(EV / 4)) * level / 100) + 5
    """
    if spread not in _SPREAD_EVS:
        raise ValueError(f"Unknown stat spread {spread!r}; use one of {sorted(_SPREAD_EVS)}")
    if gen <= 2:
        core = math.floor(((base + 15) * 2 + 63) * level / 100)
    else:
        core = math.floor((2 * base + 31 + _SPREAD_EVS[spread] // 4) * level / 100)
    return core + level + 10 if stat == "hp" else core + 5


def _is_own(battle: AbstractBattle, mon: Pokemon) -> bool:
    return any(mon is m for m in battle.team.values())


def pokemon_stat(battle: AbstractBattle, mon: Pokemon, stat: str, spread: str = "uniform") -> float:
    """Unboosted ``stat`` ("hp", "atk", ...) of ``mon``: the exact value for our own Pokémon
    (from the request), otherwise :func:`estimate_stat` from its base stats and level."""
    if _is_own(battle, mon):
        if stat == "hp" and mon.max_hp:
            return mon.max_hp
        known = mon.stats.get(stat)
        if known:
            return known
    return estimate_stat(mon.base_stats[stat], stat, mon.level, battle.gen, spread)


def _paralysis_speed_factor(gen: int) -> float:
    return 0.25 if gen <= 6 else 0.5


def effective_speed(battle: AbstractBattle, mon: Pokemon, spread: str = "uniform") -> float:
    """Speed used for turn order: stat x stage multiplier x paralysis (x0.25 up to gen 6,
    x0.5 from gen 7) x Tailwind (x2) x Choice Scarf (x1.5, own item only)."""
    speed = pokemon_stat(battle, mon, "spe", spread) * stage_multiplier(mon.boosts.get("spe", 0))
    if mon.status == Status.PAR and mon.ability != "quickfeet":
        speed *= _paralysis_speed_factor(battle.gen)
    own = _is_own(battle, mon)
    conditions = battle.side_conditions if own else battle.opponent_side_conditions
    if SideCondition.TAILWIND in conditions:
        speed *= 2
    if mon.item == "choicescarf":
        speed *= 1.5
    return speed


def outspeed_chance(battle: AbstractBattle, mine: Pokemon, theirs: Pokemon) -> float:
    """Probability that ``mine`` acts before ``theirs`` with equal move priority.

    The unknown side's speed is taken as uniform between its "worst" (0 EV) and "best"
    (252 EV) estimate; a known-vs-known comparison is 1, 0 or 0.5 (speed tie). Under Trick
    Room the slower Pokémon moves first, so the result is mirrored.
    """
    mine_lo, mine_hi = effective_speed(battle, mine, "worst"), effective_speed(battle, mine, "best")
    their_lo, their_hi = (
        effective_speed(battle, theirs, "worst"),
        effective_speed(battle, theirs, "best"),
    )
    mine_speed = (mine_lo + mine_hi) / 2
    if their_hi == their_lo:
        p = 1.0 if mine_speed > their_lo else 0.0 if mine_speed < their_lo else 0.5
    else:
        p = min(1.0, max(0.0, (mine_speed - their_lo) / (their_hi - their_lo)))
    return 1.0 - p if Field.TRICK_ROOM in battle.fields else p


# ------------------------------------------------------------------------------------------
# accuracy and critical hits
# ------------------------------------------------------------------------------------------
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


# ------------------------------------------------------------------------------------------
# the damage equation
# ------------------------------------------------------------------------------------------
def _roll_value(roll: Union[str, float], rng: Optional[random.Random] = None) -> float:
    if roll == "random":
        return (rng or random).uniform(0.85, 1.0)
    if isinstance(roll, str):
        if roll not in _ROLLS:
            raise ValueError(f"Unknown damage roll {roll!r}; use min, mean, max, random or a number")
        return _ROLLS[roll]
    return float(roll)


def damage_equation(
    level: int,
    base_power: float,
    attack: float,
    defense: float,
    *,
    gen: int = 9,
    attack_boost: int = 0,
    defense_boost: int = 0,
    stab: float = 1.0,
    type_multiplier: float = 1.0,
    crit: bool = False,
    burned: bool = False,
    screen: bool = False,
    weather: float = 1.0,
    other: float = 1.0,
    roll: Union[str, float] = "mean",
    rng: Optional[random.Random] = None,
) -> float:
    """Simplified Showdown damage formula (HP points, not rounded after the base term).

    1. Stages: ``A = attack * m(attack_boost)``, ``D = defense * m(defense_boost)`` with
       ``m`` = :func:`stage_multiplier`. A critical hit ignores every stage in gen 1, and from
       gen 2 ignores the attacker's negative and the defender's positive stages.
    2. Base: ``base = floor(floor(floor(2 * level / 5 + 2) * base_power * A / D) / 50) + 2``.
    3. Modifiers (multiplied in this order)::

           base x screen (0.5 if Reflect/Light Screen applies and not a crit)
                x weather (1.5 / 0.5 for boosted / weakened types in rain or sun)
                x crit (2 in gens 1-5, 1.5 from gen 6)
                x roll (0.85 min, 0.925 mean, 1.0 max)
                x stab (1.5; 2.0 when a Terastallized type matches an original type)
                x type_multiplier x burn (0.5 for burned physical attackers) x other

    Example (test case): level 100, bp 80, A 250, D 200, STAB, 2x, mean roll:
    ``floor(42 * 80 * 250 / 200) = 4200 -> floor(4200 / 50) + 2 = 86 -> 86 * 0.925 * 1.5 * 2
    = 238.65``.
    """
    if crit and gen == 1:
        attack_boost = defense_boost = 0
    elif crit:
        attack_boost, defense_boost = max(0, attack_boost), min(0, defense_boost)
    a = attack * stage_multiplier(attack_boost)
    d = max(1.0, defense * stage_multiplier(defense_boost))
    base = math.floor(math.floor(math.floor(2 * level / 5 + 2) * base_power * a / d) / 50) + 2
    damage = base
    if screen and not crit:
        damage *= 0.5
    damage *= weather
    if crit:
        damage *= crit_multiplier(gen)
    damage *= _roll_value(roll, rng) * stab * type_multiplier
    if burned:
        damage *= 0.5
    return damage * other


# Moves whose base power depends on the battle (data basePower 0/1): fixed estimates.
_VARIABLE_POWER = {
    "return": 102,
    "frustration": 102,
    "hiddenpower": 70,
    "fling": 60,
    "present": 60,
    "beatup": 50,
    "crushgrip": 80,
    "hardpress": 60,
    "spitup": 100,
    "trumpcard": 60,
    "wringout": 80,
    "punishment": 60,
    "naturalgift": 80,
    "magnitude": 71,
    "storedpower": 20,
}
# Moves dealing no predictable damage on their own (they reflect damage taken).
_REACTIVE_DAMAGE = {"counter", "mirrorcoat", "metalburst", "comeuppance", "bide"}
_HALF_HP_MOVES = {"superfang", "ruination", "naturesmadness"}
_ABILITY_IMMUNITIES = {
    "levitate": {PokemonType.GROUND},
    "flashfire": {PokemonType.FIRE},
    "wellbakedbody": {PokemonType.FIRE},
    "waterabsorb": {PokemonType.WATER},
    "stormdrain": {PokemonType.WATER},
    "dryskin": {PokemonType.WATER},
    "voltabsorb": {PokemonType.ELECTRIC},
    "lightningrod": {PokemonType.ELECTRIC},
    "motordrive": {PokemonType.ELECTRIC},
    "sapsipper": {PokemonType.GRASS},
    "eartheater": {PokemonType.GROUND},
}
_ATTACK_ITEMS = {"choiceband": ("atk", 1.5), "choicespecs": ("spa", 1.5)}
_DEFENSE_ITEMS = {"assaultvest": ("spd", 1.5)}


def is_damaging(move: Move) -> bool:
    """True for physical/special moves other than the Recharge / Fight placeholders."""
    return move.category != MoveCategory.STATUS and move.id not in _PLACEHOLDER_MOVES


def _known_ability(mon: Pokemon) -> Optional[str]:
    """The ability if revealed, or the only ability the species can have (gen 3+)."""
    if mon.ability:
        return mon.ability
    if len(mon.possible_abilities) == 1:
        return "".join(c for c in mon.possible_abilities[0].lower() if c.isalnum())
    return None


def ability_immune(move: Move, defender: Pokemon, gen: int) -> bool:
    """True when the defender's (known or certain) ability makes it immune to ``move``:
    Levitate (Ground), Flash Fire / Well-Baked Body (Fire), Water Absorb / Storm Drain /
    Dry Skin (Water), Volt Absorb / Lightning Rod / Motor Drive (Electric), Sap Sipper (Grass),
    Earth Eater (Ground), Soundproof (sound moves), Bulletproof (ball/bomb moves) and
    Wonder Guard (anything not super effective). Abilities do not exist before gen 3."""
    if gen <= 2 or move.id == "struggle":
        return False
    ability = _known_ability(defender)
    if ability is None:
        return False
    if move.type in _ABILITY_IMMUNITIES.get(ability, ()) and move.category != MoveCategory.STATUS:
        return True
    if ability == "soundproof" and "sound" in move.flags:
        return True
    if ability == "bulletproof" and "bullet" in move.flags:
        return True
    return ability == "wonderguard" and is_damaging(move) and type_advantage(move.type, defender, gen) <= 1


def effective_type_multiplier(move: Move, defender: Pokemon, gen: int) -> float:
    """Type multiplier of a damaging move on ``defender``: 0 when :func:`ability_immune`, 1
    instead of 0 for moves whose data ignores type immunity (gen 1 Seismic Toss on Ghosts),
    else :func:`type_advantage`."""
    if ability_immune(move, defender, gen):
        return 0.0
    multiplier = type_advantage(move.type, defender, gen)
    if multiplier == 0 and move.ignore_immunity is True:
        return 1.0
    return multiplier


def _first_below(value: float, table: Sequence[tuple[float, int]], default: int) -> int:
    """The power paired with the first limit that ``value`` is below, else ``default``."""
    for limit, power in table:
        if value < limit:
            return power
    return default


def _first_at_least(value: float, table: Sequence[tuple[float, int]], default: int) -> int:
    """The power paired with the first threshold that ``value`` reaches, else ``default``."""
    for threshold, power in table:
        if value >= threshold:
            return power
    return default


def _base_power(battle: AbstractBattle, move: Move, attacker: Pokemon, defender: Pokemon) -> float:
    """Base power, with the simulator's formulas for moves whose power depends on the
    situation (weights, speeds, HP) and fixed estimates for the rest (``_VARIABLE_POWER``)."""
    bp = move.base_power
    if bp > 1:
        return bp
    if move.id in ("lowkick", "grassknot") and battle.gen >= 3:  # target weight in kg
        return _first_below(defender.weight, ((10, 20), (25, 40), (50, 60), (100, 80), (200, 100)), 120)
    if move.id in ("heavyslam", "heatcrash"):  # user weight / target weight
        ratio = attacker.weight / max(defender.weight, 0.1)
        return _first_at_least(ratio, ((5, 120), (4, 100), (3, 80), (2, 60)), 40)
    if move.id == "gyroball":  # 25 x target speed / user speed + 1, at most 150
        ratio = effective_speed(battle, defender) / max(effective_speed(battle, attacker), 1)
        return min(150, 25 * ratio + 1)
    if move.id == "electroball":  # user speed / target speed
        ratio = effective_speed(battle, attacker) / max(effective_speed(battle, defender), 1)
        return _first_at_least(ratio, ((4, 150), (3, 120), (2, 80), (1, 60)), 40)
    if move.id in ("flail", "reversal"):  # 48 x HP fraction
        scaled = 48 * attacker.current_hp_fraction
        return _first_below(scaled, ((2, 200), (5, 150), (10, 100), (17, 80), (33, 40)), 20)
    if move.id.startswith("hiddenpower"):
        return _VARIABLE_POWER["hiddenpower"]
    return _VARIABLE_POWER.get(move.id, 60)


def _fixed_damage(
    battle: AbstractBattle, move: Move, attacker: Pokemon, defender: Pokemon, defender_hp: float
) -> Optional[float]:
    """Damage in HP points of moves that ignore the damage equation, else None."""
    if move.id in _REACTIVE_DAMAGE:
        return 0.0
    if move.entry.get("ohko"):
        return defender_hp if attacker.level >= defender.level else 0.0
    if move.id in _HALF_HP_MOVES:
        return defender_hp * defender.current_hp_fraction / 2
    if move.id == "endeavor":
        own_hp = pokemon_stat(battle, attacker, "hp") * attacker.current_hp_fraction
        return max(0.0, defender_hp * defender.current_hp_fraction - own_hp)
    if move.id == "finalgambit":
        return pokemon_stat(battle, attacker, "hp") * attacker.current_hp_fraction
    if move.id == "psywave":
        return float(attacker.level)  # uniform 0.5..1.5 x level: mean = level
    fixed = move.damage
    if fixed == "level":
        return float(attacker.level)
    if isinstance(fixed, int) and fixed > 0:
        return float(fixed)
    return None


def _stab(move: Move, attacker: Pokemon, gen: int) -> float:
    """Same-type attack bonus: 1.5 when the move's type is one of the attacker's current or
    original types; 2.0 for a Terastallized attacker whose Tera type equals the move type and
    one of its original types; Adaptability raises 1.5 to 2.0 (and 2.0 to 2.25)."""
    original = set(attacker.base_types)
    current = set(attacker.types)
    if move.type not in original | current:
        return 1.0
    adaptability = gen >= 4 and attacker.ability == "adaptability"
    if attacker.is_terastallized and move.type == attacker.tera_type and move.type in original:
        return 2.25 if adaptability else 2.0
    return 2.0 if adaptability else 1.5


def _weather_multiplier(battle: AbstractBattle, move_type: PokemonType) -> float:
    if battle.gen == 1:
        return 1.0
    weather = battle.weather
    rain = Weather.RAINDANCE in weather or Weather.PRIMORDIALSEA in weather
    sun = Weather.SUNNYDAY in weather or Weather.DESOLATELAND in weather
    if move_type == PokemonType.WATER:
        return 1.5 if rain else 0.5 if sun else 1.0
    if move_type == PokemonType.FIRE:
        return 1.5 if sun else 0.5 if rain else 1.0
    return 1.0


def _screen_applies(battle: AbstractBattle, defender: Pokemon, category: MoveCategory) -> bool:
    conditions = battle.side_conditions if _is_own(battle, defender) else battle.opponent_side_conditions
    if SideCondition.AURORA_VEIL in conditions:
        return True
    wanted = SideCondition.REFLECT if category == MoveCategory.PHYSICAL else SideCondition.LIGHT_SCREEN
    return wanted in conditions


def move_damage(
    battle: AbstractBattle,
    move: Move,
    attacker: Pokemon,
    defender: Pokemon,
    *,
    roll: Union[str, float] = "mean",
    crit: bool = False,
    attacker_spread: str = "uniform",
    defender_spread: str = "uniform",
    hits: Optional[float] = None,
    rng: Optional[random.Random] = None,
) -> float:
    """Damage of one use of ``move`` (if it hits) as a fraction of the defender's max HP.

    Status moves and Recharge deal 0. Fixed-damage moves (Seismic Toss / Night Shade = level,
    Dragon Rage 40, Super Fang = half the current HP, OHKO moves = everything when the
    attacker's level is not lower...) bypass the equation but still respect type immunity. Other
    moves go through :func:`damage_equation` with: physical vs special from the move's
    (defensive) category, Foul Play using the defender's Attack, the stats of the unknown side
    estimated with the given spreads, STAB, the (ability-aware) type multiplier, Reflect /
    Light Screen / Aurora Veil, rain/sun, burn (not with Guts), Huge/Pure Power, Choice Band /
    Specs, Assault Vest and Life Orb (1.3) when the item is known, and ``hits`` hits
    (default: the expected number of hits of a multi-hit move).
    """
    if not is_damaging(move):
        return 0.0
    gen = battle.gen
    multiplier = effective_type_multiplier(move, defender, gen)
    defender_hp = pokemon_stat(battle, defender, "hp", defender_spread)
    fixed = _fixed_damage(battle, move, attacker, defender, defender_hp)
    if fixed is not None:
        return fixed / defender_hp if multiplier > 0 else 0.0
    if multiplier == 0:
        return 0.0

    physical = move.category == MoveCategory.PHYSICAL
    atk_stat = "atk" if physical else "spa"
    # gen 1 has one Special stat; poke-env stores it as both spa and spd
    def_stat = "def" if move.defensive_category == MoveCategory.PHYSICAL else "spd"
    source = defender if move.use_target_offensive else attacker
    source_spread = defender_spread if move.use_target_offensive else attacker_spread
    attack = pokemon_stat(battle, source, atk_stat, source_spread)
    defense = pokemon_stat(battle, defender, def_stat, defender_spread)
    if gen >= 3 and atk_stat == "atk" and attacker.ability in ("hugepower", "purepower"):
        attack *= 2
    item_stat, item_boost = _ATTACK_ITEMS.get(attacker.item or "", (None, 1.0))
    if item_stat == atk_stat:
        attack *= item_boost
    item_stat, item_boost = _DEFENSE_ITEMS.get(defender.item or "", (None, 1.0))
    if item_stat == def_stat:
        defense *= item_boost

    burned = physical and attacker.status == Status.BRN and attacker.ability != "guts"
    other = 1.3 if attacker.item == "lifeorb" else 1.0
    other *= move.expected_hits if hits is None else hits
    damage = damage_equation(
        attacker.level,
        _base_power(battle, move, attacker, defender),
        attack,
        defense,
        gen=gen,
        attack_boost=source.boosts.get(atk_stat, 0),
        defense_boost=0 if move.ignore_defensive else defender.boosts.get(def_stat, 0),
        stab=_stab(move, attacker, gen) if move.id != "struggle" else 1.0,
        type_multiplier=multiplier if move.id != "struggle" else 1.0,
        crit=crit,
        burned=burned,
        screen=_screen_applies(battle, defender, move.category),
        weather=_weather_multiplier(battle, move.type),
        other=other,
        roll=roll,
        rng=rng,
    )
    return damage / defender_hp


def expected_damage(battle: AbstractBattle, move: Move, attacker: Pokemon, defender: Pokemon) -> float:
    """Mean damage fraction of one use, misses included::

        accuracy x [(1 - p_crit) x D(mean roll) + p_crit x D(mean roll, crit)]

    with unknown stats at the "uniform" spread and the expected number of hits."""
    if not is_damaging(move):
        return 0.0
    p_crit = crit_chance(move, attacker, battle.gen)
    normal = move_damage(battle, move, attacker, defender, roll="mean")
    critical = move_damage(battle, move, attacker, defender, roll="mean", crit=True) if p_crit else 0.0
    hit = current_accuracy(move, attacker, defender, battle.gen, battle)
    return hit * ((1 - p_crit) * normal + p_crit * critical)


def worst_case_damage(battle: AbstractBattle, move: Move, attacker: Pokemon, defender: Pokemon) -> float:
    """The least damage ``move`` can do *if it hits*: minimum roll, no crit, fewest hits, an
    unknown attacker at the "worst" spread and an unknown defender at the "best" spread.
    ``worst_case_damage >= defender.current_hp_fraction`` means a KO whenever it hits."""
    return move_damage(
        battle,
        move,
        attacker,
        defender,
        roll="min",
        attacker_spread="worst",
        defender_spread="best",
        hits=move.n_hit[0],
    )


def max_damage(battle: AbstractBattle, move: Move, attacker: Pokemon, defender: Pokemon) -> float:
    """The most damage a non-critical hit can do: maximum roll, most hits, an unknown attacker
    at the "best" spread and an unknown defender at the "worst" spread (a pessimistic threat
    estimate when the attacker is the opponent)."""
    return move_damage(
        battle,
        move,
        attacker,
        defender,
        roll="max",
        attacker_spread="best",
        defender_spread="worst",
        hits=move.n_hit[1],
    )


def damage_roll(
    battle: AbstractBattle,
    move: Move,
    attacker: Pokemon,
    defender: Pokemon,
    rng: Optional[random.Random] = None,
) -> float:
    """One random outcome of using ``move``: 0 on a miss (probability 1 - accuracy), otherwise
    a uniform roll in [0.85, 1], a crit with :func:`crit_chance`, the expected hit count."""
    rng = rng or random
    if not is_damaging(move):
        return 0.0
    if rng.random() >= current_accuracy(move, attacker, defender, battle.gen, battle):
        return 0.0
    crit = rng.random() < crit_chance(move, attacker, battle.gen)
    return move_damage(battle, move, attacker, defender, roll="random", crit=crit, rng=rng)


# Real 80-95 power moves standing in for unrevealed attacks: (physical, special) per type from
# gen 4, one move per type before the physical/special split (its category follows its type).
_GUESS_SPLIT = {
    PokemonType.NORMAL: ("bodyslam", "hypervoice"),
    PokemonType.FIRE: ("firepunch", "flamethrower"),
    PokemonType.WATER: ("waterfall", "surf"),
    PokemonType.ELECTRIC: ("thunderpunch", "thunderbolt"),
    PokemonType.GRASS: ("seedbomb", "energyball"),
    PokemonType.ICE: ("icepunch", "icebeam"),
    PokemonType.FIGHTING: ("brickbreak", "aurasphere"),
    PokemonType.POISON: ("poisonjab", "sludgebomb"),
    PokemonType.GROUND: ("earthquake", "earthpower"),
    PokemonType.FLYING: ("drillpeck", "airslash"),
    PokemonType.PSYCHIC: ("zenheadbutt", "psychic"),
    PokemonType.BUG: ("xscissor", "bugbuzz"),
    PokemonType.ROCK: ("rockslide", "powergem"),
    PokemonType.GHOST: ("shadowclaw", "shadowball"),
    PokemonType.DRAGON: ("dragonclaw", "dragonpulse"),
    PokemonType.DARK: ("crunch", "darkpulse"),
    PokemonType.STEEL: ("ironhead", "flashcannon"),
    PokemonType.FAIRY: ("playrough", "moonblast"),
}
_GUESS_PRE_SPLIT = {
    PokemonType.NORMAL: "bodyslam",
    PokemonType.FIRE: "flamethrower",
    PokemonType.WATER: "surf",
    PokemonType.ELECTRIC: "thunderbolt",
    PokemonType.GRASS: "razorleaf",
    PokemonType.ICE: "icebeam",
    PokemonType.FIGHTING: "submission",
    PokemonType.POISON: "sludge",
    PokemonType.GROUND: "earthquake",
    PokemonType.FLYING: "drillpeck",
    PokemonType.PSYCHIC: "psychic",
    PokemonType.BUG: "twineedle",
    PokemonType.ROCK: "rockslide",
    PokemonType.GHOST: "shadowball",
    PokemonType.DRAGON: "dragonbreath",
    PokemonType.DARK: "crunch",
    PokemonType.STEEL: "irontail",
}


def _stab_guess_moves(mon: Pokemon, gen: int) -> List[Move]:
    """Stand-in attacks for a Pokémon whose damaging moves are unrevealed: for each of its
    types a real 80-95 power move of that type (from gen 4 of the category of its higher base
    attacking stat); Tackle when none exists in the generation."""
    physical = mon.base_stats["atk"] >= mon.base_stats["spa"]
    known = GenData.from_gen(gen).moves
    guesses = []
    for t in mon.types:
        if gen >= 4:
            move_id = _GUESS_SPLIT.get(t, ("", ""))[0 if physical else 1]
        else:
            move_id = _GUESS_PRE_SPLIT.get(t, "")
        if move_id in known:
            guesses.append(Move(move_id, gen=gen))
    return guesses or [Move("tackle", gen=gen)]


def opponent_moves(battle: AbstractBattle, opponent: Pokemon) -> List[Move]:
    """The opponent's revealed damaging moves, or STAB stand-ins when none is revealed."""
    revealed = [m for m in opponent.moves.values() if is_damaging(m)]
    return revealed or _stab_guess_moves(opponent, battle.gen)


def opponent_threat(
    battle: AbstractBattle, target: Optional[Pokemon] = None, kind: str = "expected"
) -> float:
    """Largest damage fraction the opponent's active Pokémon can deal to ``target`` (default:
    our active) with one of :func:`opponent_moves`; ``kind`` is "expected" or "max"."""
    opponent = battle.opponent_active_pokemon
    target = target or battle.active_pokemon
    if opponent is None or target is None:
        return 0.0
    estimate = expected_damage if kind == "expected" else max_damage
    return max(estimate(battle, m, opponent, target) for m in opponent_moves(battle, opponent))


def find_ko_move(
    battle: AbstractBattle,
    moves: Optional[Sequence[Move]] = None,
    *,
    worst_case: bool = True,
    min_accuracy: float = 0.0,
) -> Optional[Move]:
    """A move that knocks out the opponent's active Pokémon, or None.

    A move KOs when its damage (worst case by default, else the mean-roll non-crit damage)
    reaches the opponent's current HP fraction and its accuracy is at least ``min_accuracy``.
    Among KO moves the most accurate wins, then the one with the highest priority.
    """
    active, opponent = battle.active_pokemon, battle.opponent_active_pokemon
    if active is None or opponent is None:
        return None
    moves = battle.available_moves if moves is None else moves
    candidates = []
    for move in moves:
        if worst_case:
            damage = worst_case_damage(battle, move, active, opponent)
        else:
            damage = move_damage(battle, move, active, opponent, roll="mean")
        accuracy = current_accuracy(move, active, opponent, battle.gen, battle)
        if damage > 0 and damage >= opponent.current_hp_fraction and accuracy >= min_accuracy:
            candidates.append((accuracy, move.priority, move))
    if not candidates:
        return None
    return max(candidates, key=lambda c: (c[0], c[1]))[2]


# ------------------------------------------------------------------------------------------
# status, boosts and healing
# ------------------------------------------------------------------------------------------
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
    if gen >= 3 and status in _STATUS_ABILITY_IMMUNITY.get(_known_ability(target) or "", set()):
        return True
    if move.entry.get("ignoreImmunity") is False and type_advantage(move.type, target, gen) == 0:
        return True
    if gen >= 6 and "powder" in move.flags and PokemonType.GRASS in target.types:
        return True
    conditions = battle.side_conditions if _is_own(battle, target) else battle.opponent_side_conditions
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


# ------------------------------------------------------------------------------------------
# switching
# ------------------------------------------------------------------------------------------
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


# ------------------------------------------------------------------------------------------
# gimmicks (Terastallization, Dynamax, Mega Evolution, Z-moves)
# ------------------------------------------------------------------------------------------
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


# ------------------------------------------------------------------------------------------
# the player class
# ------------------------------------------------------------------------------------------
class Baseline(Player, ABC):
    """A heuristic poke-env ``Player`` for singles battles.

    Subclasses implement :meth:`choose_baseline_move` (their scoring rules) and may override
    :meth:`randomize` to draw per-instance parameters; it runs once at the end of ``__init__``.
    ``seed`` (keyword, optional) seeds the instance's own ``self.rng`` so a baseline's choices
    are reproducible given the same battle states.

    :meth:`choose_move` wraps the scoring path: when there is nothing legal to choose it sends
    Showdown's default, and a lone Recharge / gen-1 "Fight" placeholder is taken as is. An
    exception or an illegal order from the scoring is logged as a warning, counted in
    ``n_fallbacks`` and replaced by a uniformly random legal order, so one unexpected situation
    never stalls a battle. ``n_choices`` counts decisions; tests assert ``n_fallbacks == 0`` to
    prove the scoring path ran.
    """

    def __init__(self, *args, seed: Optional[int] = None, **kwargs):
        super().__init__(*args, **kwargs)
        if self.format_is_doubles:
            raise MetamonError(
                f"{type(self).__name__} plays singles only; {self.format!r} is a doubles format"
            )
        self.rng = random.Random(seed)
        self.n_choices = 0
        self.n_fallbacks = 0
        self.randomize()

    def randomize(self) -> None:
        """Draw this instance's random parameters (none by default)."""

    @abstractmethod
    def choose_baseline_move(self, battle: Battle) -> BattleOrder:
        """The baseline's decision rule for a battle that has at least one legal choice."""

    # -- helpers shared by the heuristics ----------------------------------------------------
    def random_order(self, battle: AbstractBattle) -> BattleOrder:
        """A uniformly random legal order (Showdown's default when there is none)."""
        orders = battle.valid_orders
        return self.rng.choice(orders) if orders else DefaultBattleOrder()

    def pick_best(self, scores: Dict, higher_is_better: bool = True):
        """A key with the best score (ties broken uniformly at random)."""
        target = max(scores.values()) if higher_is_better else min(scores.values())
        return self.rng.choice([k for k, v in scores.items() if v == target])

    # -- the wrapper -------------------------------------------------------------------------
    def choose_move(self, battle: AbstractBattle) -> BattleOrder:
        self.n_choices += 1
        if not battle.available_moves and not battle.available_switches:
            return self.choose_default_move()
        moves = battle.available_moves
        if len(moves) == 1 and moves[0].id in _PLACEHOLDER_MOVES and not battle.force_switch:
            return self.create_order(moves[0])
        try:
            order = self.choose_baseline_move(battle)
            problem = self._illegal(order, battle)
        except Exception as error:  # noqa: BLE001 - any scoring bug must not stall the battle
            problem = f"{type(error).__name__}: {error}"
            self.logger.warning(
                "%s scoring failed in %s (turn %s)",
                type(self).__name__,
                battle.battle_tag,
                battle.turn,
                exc_info=True,
            )
        if problem is None:
            return order
        self.n_fallbacks += 1
        self.logger.warning(
            "%s falls back to a random order in %s (turn %s): %s",
            type(self).__name__,
            battle.battle_tag,
            battle.turn,
            problem,
        )
        return self.random_order(battle)

    @staticmethod
    def _illegal(order: BattleOrder, battle: AbstractBattle) -> Optional[str]:
        """Why ``order`` is not legal in ``battle`` right now, or None when it is."""
        if isinstance(order, DefaultBattleOrder):
            return None
        if not isinstance(order, SingleBattleOrder):
            return f"not a singles order: {order!r}"
        target = order.order
        if isinstance(target, Move):
            if battle.force_switch:
                return f"move {target.id} during a forced switch"
            if not any(target is m for m in battle.available_moves):
                return f"move {target.id} is not available"
            flags = [
                (order.terastallize, battle.can_tera, "terastallize"),
                (order.dynamax, battle.can_dynamax, "dynamax"),
                (order.mega, battle.can_mega_evolve, "mega"),
                (order.z_move, battle.can_z_move, "z-move"),
            ]
            for wanted, allowed, name in flags:
                if wanted and not allowed:
                    return f"{name} is not allowed"
            return None
        if isinstance(target, Pokemon):
            if battle.trapped or not any(target is m for m in battle.available_switches):
                return f"switch to {target.species} is not available"
            return None
        return f"unexpected order {order.message!r}"
