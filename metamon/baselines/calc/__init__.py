"""The battle arithmetic the heuristic baselines score moves and switches with.

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

Modules, bottom to top: :mod:`~.type_chart` (formats and types), :mod:`~.stats` (stats and
speed), :mod:`~.accuracy` (accuracy and critical hits), :mod:`~.damage` (the damage equation,
threats and KOs), :mod:`~.status_moves` (status, boosts and healing), :mod:`~.switching`,
:mod:`~.gimmicks` (Tera, Dynamax, Mega Evolution, Z-moves). Every public name is re-exported
here.
"""

from __future__ import annotations

from metamon.baselines.calc.accuracy import accuracy_multiplier, crit_chance, crit_multiplier, current_accuracy
from metamon.baselines.calc.damage import (
    PLACEHOLDER_MOVES,
    ability_immune,
    damage_equation,
    damage_roll,
    effective_type_multiplier,
    expected_damage,
    find_ko_move,
    is_damaging,
    known_ability,
    max_damage,
    move_damage,
    opponent_moves,
    opponent_threat,
    worst_case_damage,
)
from metamon.baselines.calc.gimmicks import force_use_gimmick, gimmick_order
from metamon.baselines.calc.stats import (
    effective_speed,
    estimate_stat,
    is_own,
    outspeed_chance,
    pokemon_stat,
    stage_multiplier,
)
from metamon.baselines.calc.status_moves import boost_move_scores, heal_move_scores, status_immune
from metamon.baselines.calc.switching import find_outspeed_ko_switch, should_emergency_switch, switch_scores
from metamon.baselines.calc.type_chart import get_gen_format, type_advantage, type_matchup

__all__ = [
    "PLACEHOLDER_MOVES",
    "get_gen_format",
    "type_advantage",
    "type_matchup",
    "stage_multiplier",
    "estimate_stat",
    "is_own",
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
    "known_ability",
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
