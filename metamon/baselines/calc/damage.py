"""The damage equation and the damage a move does in a live battle.

:func:`damage_equation` is the simplified Showdown formula in HP points; :func:`move_damage`
feeds it a battle's stats, types, abilities, items, screens and weather and returns a fraction
of the defender's maximum HP, with :func:`expected_damage`, :func:`worst_case_damage`,
:func:`max_damage` and :func:`damage_roll` as its summaries. :func:`opponent_threat` and
:func:`find_ko_move` answer the heuristics' questions "how hard can they hit us" and "can we
knock them out now", guessing STAB attacks for an opponent whose moves are unrevealed.
"""

from __future__ import annotations

import math
import random
from typing import List, Optional, Sequence, Union

from poke_env.battle import AbstractBattle, Move, MoveCategory, Pokemon, PokemonType, SideCondition, Status, Weather
from poke_env.data import GenData

from metamon.baselines.calc.accuracy import crit_chance, crit_multiplier, current_accuracy
from metamon.baselines.calc.stats import effective_speed, is_own, pokemon_stat, stage_multiplier
from metamon.baselines.calc.type_chart import type_advantage

__all__ = [
    "PLACEHOLDER_MOVES",
    "damage_equation",
    "is_damaging",
    "known_ability",
    "ability_immune",
    "effective_type_multiplier",
    "move_damage",
    "expected_damage",
    "worst_case_damage",
    "max_damage",
    "damage_roll",
    "opponent_moves",
    "opponent_threat",
    "find_ko_move",
]

# Showdown's stand-in choices when the active Pokémon cannot pick a move: "recharge" after
# Hyper Beam, gen-1 "fight" while bound by Wrap & co. They are taken as they are.
PLACEHOLDER_MOVES = ("recharge", "fight")
_ROLLS = {"min": 0.85, "mean": 0.925, "max": 1.0}


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
    return move.category != MoveCategory.STATUS and move.id not in PLACEHOLDER_MOVES


def known_ability(mon: Pokemon) -> Optional[str]:
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
    ability = known_ability(defender)
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
    conditions = battle.side_conditions if is_own(battle, defender) else battle.opponent_side_conditions
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
