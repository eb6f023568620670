"""Damage-aware heuristic baselines: the RBY boss AI, Grunt, GymLeader and the deliberately
bad BugCatcher."""

from __future__ import annotations

from typing import Dict, Optional

from poke_env.battle import Battle, Move, MoveCategory, Pokemon, SideCondition
from poke_env.player import BattleOrder

from metamon.baselines.calc import (
    boost_move_scores,
    damage_roll,
    expected_damage,
    find_ko_move,
    find_outspeed_ko_switch,
    force_use_gimmick,
    gimmick_order,
    heal_move_scores,
    is_damaging,
    should_emergency_switch,
    switch_scores,
    type_advantage,
)
from metamon.baselines.player import Baseline
from metamon.baselines.registry import register_baseline

__all__ = ["Gen1BossAI", "Grunt", "GymLeader", "BugCatcher"]


def _must_switch(battle: Battle) -> bool:
    return battle.force_switch or not battle.available_moves


@register_baseline()
class Gen1BossAI(Baseline):
    """The Red/Blue/Yellow "good AI" of gym leaders and the Elite Four (lower score = better).

    Every available move starts at 10, then:

    1. +5 for a 0-power status move inflicting a non-volatile status (sleep, poison, burn,
       freeze, paralysis) when the target already has a status;
    2. on the active Pokémon's first turn, -1 for setup (self stat raises), healing, Reflect,
       Light Screen and Transform;
    3. for damaging moves, -1 when the type multiplier on the target is at least 1, else +1.

    It picks uniformly among the lowest-scored moves; forced switches send the first available
    Pokémon; the gimmick is used on the last Pokémon standing.
    """

    BASE_SCORE = 10

    def score_move(self, battle: Battle, move: Move) -> int:
        active, opponent = battle.active_pokemon, battle.opponent_active_pokemon
        score = self.BASE_SCORE
        if (
            opponent is not None
            and opponent.status is not None
            and move.category == MoveCategory.STATUS
            and move.base_power == 0
            and move.status is not None
        ):
            score += 5
        if active is not None and active.first_turn and self._is_first_turn_move(battle, move):
            score -= 1
        if opponent is not None and is_damaging(move):
            score += -1 if type_advantage(move.type, opponent, battle.gen) >= 1 else 1
        return score

    @staticmethod
    def _is_first_turn_move(battle: Battle, move: Move) -> bool:
        """Setup, healing, Reflect / Light Screen or Transform."""
        if boost_move_scores(battle, [move]).get(move, 0) > 0 or move in heal_move_scores(battle, [move]):
            return True
        screens = (SideCondition.REFLECT, SideCondition.LIGHT_SCREEN)
        return move.side_condition in screens or move.id == "transform"

    def choose_baseline_move(self, battle: Battle) -> BattleOrder:
        if _must_switch(battle):
            return self.create_order(battle.available_switches[0])
        scores = {m: self.score_move(battle, m) for m in battle.available_moves}
        move = self.pick_best(scores, higher_is_better=False)
        return gimmick_order(battle, move, force_use_gimmick(battle))


@register_baseline()
class Grunt(Baseline):
    """Uses the move with the highest sampled :func:`damage_roll` (accuracy, crit and roll
    randomness included; a random move when nothing deals damage) and its gimmick on the last
    Pokémon standing; forced switches take the best :func:`switch_scores` matchup."""

    def choose_baseline_move(self, battle: Battle) -> BattleOrder:
        if _must_switch(battle):
            return self.create_order(self.pick_best(switch_scores(battle)))
        active, opponent = battle.active_pokemon, battle.opponent_active_pokemon
        if opponent is None:
            return self.create_order(self.rng.choice(battle.available_moves))
        rolls = {m: damage_roll(battle, m, active, opponent, self.rng) for m in battle.available_moves}
        move = self.pick_best(rolls)
        return gimmick_order(battle, move, force_use_gimmick(battle))


@register_baseline()
class GymLeader(Baseline):
    """A careful trainer.

    * Forced switch, or :func:`should_emergency_switch`: a switch-in that surely outspeeds and
      KOs (:func:`find_outspeed_ko_switch`), else the best type + speed
      :func:`switch_scores`.
    * A guaranteed KO (:func:`find_ko_move`, worst-case damage, accuracy >= ``KO_ACCURACY``).
    * On the active Pokémon's first turn at > 90% HP: with probability ``SETUP_CHANCE`` its
      best setup move when the boost score exceeds 1.
    * Below 33% HP: with probability ``HEAL_CHANCE`` its best healing move when it restores
      more than 33%.
    * Otherwise the move with the highest :func:`expected_damage`, with the gimmick on the
      last Pokémon standing.
    """

    KO_ACCURACY = 0.75
    SETUP_CHANCE = 0.5
    HEAL_CHANCE = 0.75

    def _switch_target(self, battle: Battle) -> Pokemon:
        fast_ko = find_outspeed_ko_switch(battle)
        if fast_ko is not None:
            return fast_ko
        return self.pick_best(switch_scores(battle, hp=0.0, status=0.0))

    def _setup_move(self, battle: Battle) -> Optional[Move]:
        active = battle.active_pokemon
        if not (active.first_turn and active.current_hp_fraction > 0.9):
            return None
        scores = boost_move_scores(battle)
        if not scores or max(scores.values()) <= 1 or self.rng.random() >= self.SETUP_CHANCE:
            return None
        return self.pick_best(scores)

    def _heal_move(self, battle: Battle) -> Optional[Move]:
        if battle.active_pokemon.current_hp_fraction >= 0.33:
            return None
        scores = heal_move_scores(battle)
        if not scores or max(scores.values()) <= 0.33 or self.rng.random() >= self.HEAL_CHANCE:
            return None
        return self.pick_best(scores)

    def choose_baseline_move(self, battle: Battle) -> BattleOrder:
        if _must_switch(battle) or should_emergency_switch(battle):
            return self.create_order(self._switch_target(battle))
        active, opponent = battle.active_pokemon, battle.opponent_active_pokemon
        gimmick = force_use_gimmick(battle)
        if opponent is None:
            return self.create_order(self.rng.choice(battle.available_moves))
        ko = find_ko_move(battle, min_accuracy=self.KO_ACCURACY)
        if ko is not None:
            return gimmick_order(battle, ko, gimmick)
        special = self._setup_move(battle) or self._heal_move(battle)
        if special is not None:
            return self.create_order(special)
        damages: Dict[Move, float] = {
            m: expected_damage(battle, m, active, opponent) for m in battle.available_moves
        }
        if max(damages.values()) <= 0:
            return self.create_order(self.rng.choice(battle.available_moves))
        return gimmick_order(battle, self.pick_best(damages), gimmick)


@register_baseline()
class BugCatcher(Baseline):
    """Intentionally bad: always the move with the *lowest* :func:`expected_damage` (status
    moves count as 0) and, when forced to switch, the *worst* :func:`switch_scores` matchup."""

    def choose_baseline_move(self, battle: Battle) -> BattleOrder:
        if _must_switch(battle):
            return self.create_order(self.pick_best(switch_scores(battle), higher_is_better=False))
        active, opponent = battle.active_pokemon, battle.opponent_active_pokemon
        if opponent is None:
            return self.create_order(self.rng.choice(battle.available_moves))
        damages = {m: expected_damage(battle, m, active, opponent) for m in battle.available_moves}
        return self.create_order(self.pick_best(damages, higher_is_better=False))
