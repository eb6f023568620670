"""Reward functions ``R(last_state, state) -> float`` on consecutive ``UniversalState``s.

:class:`DefaultShapedReward` (metamon's paper reward), :class:`AggressiveShapedReward`,
:class:`BinaryReward` and :class:`DenseShapedReward` (ours), all registered
(:func:`metamon.interface.get_reward_function`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from metamon.interface.records import UniversalState
from metamon.interface.registry import register_reward_function

__all__ = ["RewardFunction", "DefaultShapedReward", "AggressiveShapedReward", "BinaryReward", "DenseShapedReward"]


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

    victory_weight = 100.0

    def __call__(self, last_state, state) -> float:
        t = _shaping_terms(last_state, state)
        victory = 1.0 if state.battle_won else -1.0 if state.battle_lost else 0.0
        return float(
            (t.damage_done + t.hp_gain)
            + 0.5 * (t.gave_status - t.took_status)
            + (t.removed_pokemon - t.lost_pokemon)
            + self.victory_weight * victory
        )


@register_reward_function
class DenseShapedReward(DefaultShapedReward):
    """:class:`DefaultShapedReward` with ``10 victory`` instead of ``100 victory``.

    Not metamon's. A battle's per-turn terms add up to about ±12 at most (six Pokémon's hit
    points and six faints), so under the default reward the ±100 outcome is nearly all of a
    return's variance, and what one action changes is a small part of it. Here the per-turn
    terms and the outcome are of the same size. Measured with the quorum recipe in
    ``docs/results.md`` (fifteenth follow-up of "Offline RL on mixed-quality data"): no gain
    over the default reward on two training seeds, and 5.9 points below imitation on
    single-player (mirror) data.
    """

    victory_weight = 10.0


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

