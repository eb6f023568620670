"""ε-random players: any poke-env player that plays a uniformly random legal order with probability ε.

Mixed-quality data on demand: ``epsilon_random_player(GymLeader, 0.3)`` is a subclass of
``GymLeader`` that, at each decision with at least one real choice, draws u ~ U[0, 1) from its own
seeded generator and

    u < ε   plays an order drawn uniformly from ``battle.valid_orders`` (every legal switch and
            move; in later generations each legal gimmick variant, e.g. a tera move, is an order of
            its own)
    else    decides as the wrapped player does.

A decision with nothing to choose (``battle.valid_orders`` empty, or only Showdown's default
while waiting) and any doubles decision are left to the wrapped player and draw nothing.

As a player spec, ``"eps:0.3:GymLeader"`` (kind ``eps``, registered by
:mod:`metamon.baselines.registry`): ``eps:EPSILON:INNER`` with any inner spec, so
``python -m metamon.data.generate --player eps:0.3:GymLeader --opponent GymLeader`` records it.

Counters: ``n_epsilon_draws`` (decisions that drew u) and ``n_random_orders`` (those that played
a random order), so ``n_random_orders / n_epsilon_draws`` estimates ε.
"""

from __future__ import annotations

import random
from typing import Optional, Tuple, Type

from poke_env.battle import AbstractBattle, Battle
from poke_env.player import BattleOrder, DefaultBattleOrder, Player

from metamon.errors import MetamonError

__all__ = ["epsilon_random_player", "parse_epsilon_target"]


def parse_epsilon_target(target: str) -> Tuple[float, str]:
    """``"0.3:GymLeader"`` (an ``eps`` spec's target) -> ``(0.3, "GymLeader")``.

    Raises :class:`MetamonError` unless it is ``EPSILON:INNER`` with EPSILON a number in [0, 1]
    and INNER a non-empty player spec.
    """
    text, sep, inner = target.partition(":")
    try:
        epsilon = float(text)
    except ValueError:
        epsilon = float("nan")
    if not sep or not inner.strip() or not 0.0 <= epsilon <= 1.0:
        raise MetamonError(
            f"an eps player spec is 'eps:EPSILON:PLAYER' with EPSILON in [0, 1], e.g. "
            f"'eps:0.3:GymLeader'; got 'eps:{target}'"
        )
    return epsilon, inner.strip()


def epsilon_random_player(player_cls: Type[Player], epsilon: float) -> Type[Player]:
    """A subclass of ``player_cls`` that plays a uniformly random legal order with probability
    ``epsilon`` (module docstring). Its constructor takes the extra keyword ``epsilon_seed``
    (None: an unseeded generator); everything else goes to ``player_cls``."""
    if not (isinstance(player_cls, type) and issubclass(player_cls, Player)):
        raise MetamonError(f"epsilon_random_player needs a poke-env Player subclass, got {player_cls!r}")
    if not 0.0 <= float(epsilon) <= 1.0:
        raise MetamonError(f"epsilon must be in [0, 1], got {epsilon!r}")

    class EpsilonRandomPlayer(player_cls):
        def __init__(self, *args, epsilon_seed: Optional[int] = None, **kwargs):
            super().__init__(*args, **kwargs)
            self.epsilon = float(epsilon)
            self.epsilon_rng = random.Random(None if epsilon_seed is None else f"epsilon:{epsilon_seed}")
            self.n_epsilon_draws = 0
            self.n_random_orders = 0

        def choose_move(self, battle: AbstractBattle):
            singles = isinstance(battle, Battle)  # a doubles battle is left to the wrapped player
            orders = [o for o in battle.valid_orders if not isinstance(o, DefaultBattleOrder)] if singles else []
            if orders:
                self.n_epsilon_draws += 1
                if self.epsilon_rng.random() < self.epsilon:
                    self.n_random_orders += 1
                    return self.random_legal_order(orders)
            return super().choose_move(battle)

        def random_legal_order(self, orders: list) -> BattleOrder:
            """One of ``orders``, uniformly, from the ε generator."""
            return self.epsilon_rng.choice(orders)

    EpsilonRandomPlayer.__name__ = EpsilonRandomPlayer.__qualname__ = f"Epsilon{player_cls.__name__}"
    return EpsilonRandomPlayer
