"""Simple baselines: random play, max base power, poke-env's heuristic player and the
type-matchup switchers."""

from __future__ import annotations

from poke_env.battle import Battle, Pokemon
from poke_env.player import BattleOrder, SimpleHeuristicsPlayer

from metamon.baselines.calc import switch_scores, type_advantage, type_matchup
from metamon.baselines.player import Baseline
from metamon.baselines.registry import register_baseline

__all__ = [
    "RandomBaseline",
    "MaxBPBaseline",
    "PokeEnvHeuristic",
    "Gen1Trainer",
    "Gen1TrainerGoodSwitching",
    "BasicSwitcher",
]


def _can_move(battle: Battle) -> bool:
    return bool(battle.available_moves) and not battle.force_switch


def _can_switch_voluntarily(battle: Battle) -> bool:
    return bool(battle.available_switches) and not (battle.trapped or battle.maybe_trapped)


@register_baseline()
class RandomBaseline(Baseline):
    """A uniformly random legal order (moves, switches and gimmick variants alike)."""

    def choose_baseline_move(self, battle: Battle) -> BattleOrder:
        return self.random_order(battle)


@register_baseline()
class MaxBPBaseline(Baseline):
    """The available move with the highest base power (the first one on ties); with
    probability ``epsilon`` ~ U(0, 0.1), drawn once per instance, a random legal order instead.
    Without a usable move it switches at random."""

    def randomize(self) -> None:
        self.epsilon = self.rng.uniform(0.0, 0.1)

    def choose_baseline_move(self, battle: Battle) -> BattleOrder:
        if not _can_move(battle) or self.rng.random() < self.epsilon:
            return self.random_order(battle)
        return self.create_order(max(battle.available_moves, key=lambda m: m.base_power))


@register_baseline()
class PokeEnvHeuristic(SimpleHeuristicsPlayer):
    """poke-env 0.16.1's ``SimpleHeuristicsPlayer``, unchanged (hazards, setup, matchup-based
    switching, base power x STAB x stat ratio x accuracy x effectiveness move choice)."""


@register_baseline()
class Gen1Trainer(Baseline):
    """An in-game trainer: a uniformly random available move every turn, never a voluntary
    switch; when forced to switch (or without a usable move) it sends the first available
    Pokémon."""

    def pick_switch(self, battle: Battle) -> Pokemon:
        return battle.available_switches[0]

    def choose_baseline_move(self, battle: Battle) -> BattleOrder:
        if _can_move(battle):
            return self.create_order(self.rng.choice(battle.available_moves))
        return self.create_order(self.pick_switch(battle))


@register_baseline()
class Gen1TrainerGoodSwitching(Gen1Trainer):
    """:class:`Gen1Trainer` whose forced switch-in is the best by
    :func:`~metamon.baselines.calc.switch_scores` (type matchup, speed, HP, status)."""

    def pick_switch(self, battle: Battle) -> Pokemon:
        return self.pick_best(switch_scores(battle))


@register_baseline()
class BasicSwitcher(Baseline):
    """Switches to the party member with the best :func:`type_matchup` against the opponent
    when it beats the active Pokémon's; otherwise uses the move maximising
    ``base power x type multiplier``. Forced switches take the best matchup too."""

    def _best_matchup(self, battle: Battle) -> Pokemon:
        opponent = battle.opponent_active_pokemon
        if opponent is None:
            return max(battle.available_switches, key=lambda m: m.current_hp_fraction)
        scores = {m: type_matchup(m, opponent, battle.gen) for m in battle.available_switches}
        return self.pick_best(scores)

    def choose_baseline_move(self, battle: Battle) -> BattleOrder:
        if not _can_move(battle):
            return self.create_order(self._best_matchup(battle))
        active, opponent = battle.active_pokemon, battle.opponent_active_pokemon
        if opponent is None:
            return self.create_order(max(battle.available_moves, key=lambda m: m.base_power))
        if _can_switch_voluntarily(battle):
            candidate = self._best_matchup(battle)
            if type_matchup(candidate, opponent, battle.gen) > type_matchup(active, opponent, battle.gen):
                return self.create_order(candidate)
        scores = {
            m: m.base_power * type_advantage(m.type, opponent, battle.gen) for m in battle.available_moves
        }
        return self.create_order(self.pick_best(scores))
