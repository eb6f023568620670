"""The :class:`Baseline` player: the poke-env ``Player`` every heuristic baseline subclasses.

A subclass writes its scoring rule (:meth:`Baseline.choose_baseline_move`) with the battle
arithmetic of :mod:`metamon.baselines.calc`; this class makes every decision legal (Showdown's
default when there is no choice, placeholders taken as they are, a random legal order when
the scoring fails) and counts decisions and fallbacks.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from typing import Dict, Optional

from poke_env.battle import AbstractBattle, Battle, Move, Pokemon
from poke_env.player import BattleOrder, DefaultBattleOrder, Player, SingleBattleOrder

from metamon.baselines.calc.damage import PLACEHOLDER_MOVES
from metamon.errors import MetamonError

__all__ = ["Baseline"]


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
        if len(moves) == 1 and moves[0].id in PLACEHOLDER_MOVES and not battle.force_switch:
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
