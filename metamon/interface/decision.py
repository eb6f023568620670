"""The decision step: an agent's action -> a legal poke-env order, written once for every caller.

The gym env (:mod:`metamon.env.wrappers`) and the policy player (:mod:`metamon.rl.player`)
answer each request with :func:`decide`; the dataset (:mod:`metamon.data.parsed_replay_dset`)
builds its legal-action sets with :func:`legal_agent_actions`.

* :func:`legal_actions` -- the legal universal indices: with a battle,
  :func:`~metamon.interface.actions.definitely_valid_actions` (online: the server's request
  decides); without one, :func:`~metamon.interface.actions.maybe_valid_actions` (offline: judged
  from the state alone).
* :func:`legal_agent_actions` -- universal indices mapped into the agent's action space with
  ``action_space.action_to_agent_output`` (several indices may share one agent action:
  ``MinimalActionSpace`` folds 9-12 onto 0-3).
* :func:`decide` -- the agent's output -> :class:`ChosenOrder` ``(order, action_index,
  invalid)``. The agent's universal index is played when it is legal and has an order
  (``invalid = False``). Otherwise (and when ``agent_action`` is ``None``: no choice, e.g. the
  model failed) the fallback is played with ``invalid = True``: a uniformly random legal index,
  drawn as ``rng.choice(sorted(legal))``; when no index is legal (nothing the 13 slots can
  express) poke-env's ``Player.choose_random_singles_move`` picks the order and
  ``action_index`` is its universal index (``battle_order_to_action_idx``, -1 if it has none).
  ``action_index`` is therefore always the index of the order actually played.
* :func:`request_id` -- Showdown's id of the request being answered (``rqid``); poke-env asking
  again with the id already answered means the server rejected that answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Collection, Iterable, Mapping, Optional, Protocol, Sequence

from poke_env.battle import AbstractBattle
from poke_env.player import Player
from poke_env.player.battle_order import BattleOrder

from metamon.interface.action_spaces import ActionSpace
from metamon.interface.actions import (
    N_UNIVERSAL_ACTIONS,
    UniversalAction,
    action_idx_to_BattleOrder,
    battle_order_to_action_idx,
    definitely_valid_actions,
    legal_orders,
    maybe_valid_actions,
)
from metamon.interface.records import UniversalState

__all__ = [
    "ChosenOrder",
    "RandomChoice",
    "decide",
    "legal_actions",
    "legal_agent_actions",
    "request_id",
]

# Universal actions are frozen and equal by index: one shared instance per index.
_ACTIONS = {i: UniversalAction(i) for i in range(-1, N_UNIVERSAL_ACTIONS)}


class RandomChoice(Protocol):
    """What :func:`decide` draws fallbacks with: ``random.Random`` or ``numpy.random.Generator``."""

    def choice(self, seq: Sequence[int], /) -> Any: ...


@dataclass(frozen=True)
class ChosenOrder:
    """The order to send, the universal index (-1..12) it plays, and whether it replaced the
    agent's choice (the agent's action was illegal, unmappable to an order, or absent)."""

    order: BattleOrder
    action_index: int
    invalid: bool


def request_id(battle: AbstractBattle) -> Any:
    """The ``rqid`` of ``battle.last_request`` (``None`` when there is no request or no id)."""
    return (battle.last_request or {}).get("rqid")


def legal_actions(state: UniversalState, battle: Optional[AbstractBattle] = None) -> set[int]:
    """Legal universal indices: asked of ``battle`` when given, else judged from ``state``."""
    if battle is None:
        return maybe_valid_actions(state)
    return definitely_valid_actions(state, battle)


def legal_agent_actions(
    state: UniversalState, action_space: ActionSpace, legal: Optional[Iterable[int]] = None
) -> set[int]:
    """The agent-space actions of the universal indices ``legal`` (default:
    ``maybe_valid_actions(state)``, the offline judgement)."""
    if legal is None:
        legal = maybe_valid_actions(state)
    to_agent = action_space.action_to_agent_output
    return {int(to_agent(state, _ACTIONS[i])) for i in legal}


def decide(
    battle: AbstractBattle,
    state: UniversalState,
    action_space: ActionSpace,
    agent_action: Any,
    rng: RandomChoice,
    legal: Optional[Collection[int]] = None,
) -> ChosenOrder:
    """Map ``agent_action`` (``None``: no choice) to the order to play (see the module docstring).

    ``state`` is ``UniversalState.from_Battle(battle)``; ``legal`` the universal indices legal
    now (default: ``definitely_valid_actions(state, battle)``; pass it when already computed).
    ``legal`` may be :func:`~metamon.interface.actions.legal_orders`' dict (index -> order):
    its orders are then played as they are instead of being built again (same orders).
    An agent output the action space cannot map raises its ``ValueError``.
    """
    if legal is None:
        legal = legal_orders(state, battle)
    orders = legal if isinstance(legal, Mapping) else None
    if agent_action is not None:
        index = action_space.agent_output_to_action(state, agent_action).action_idx
        order = _order_of(battle, index, orders) if index in legal else None
        if order is not None:
            return ChosenOrder(order, index, invalid=False)
    order, index = _random_legal_order(battle, legal, rng, orders)
    return ChosenOrder(order, index, invalid=True)


def _order_of(
    battle: AbstractBattle, index: int, orders: Optional[Mapping[int, BattleOrder]]
) -> Optional[BattleOrder]:
    return orders[index] if orders is not None else action_idx_to_BattleOrder(battle, index)


def _random_legal_order(
    battle: AbstractBattle,
    legal: Collection[int],
    rng: RandomChoice,
    orders: Optional[Mapping[int, BattleOrder]],
) -> tuple[BattleOrder, int]:
    """A uniformly random legal order and its universal index."""
    if legal:
        index = int(rng.choice(sorted(legal)))
        return _order_of(battle, index, orders), index
    order = Player.choose_random_singles_move(battle)  # nothing our slots can express
    return order, battle_order_to_action_idx(battle, order)
