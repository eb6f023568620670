"""metamon's interface between poke-env battles and learning code.

Everything an agent sees or does passes through this package:

``poke-env Battle -> UniversalState -> ObservationSpace -> {"text", "numbers"}``
``agent output -> ActionSpace -> UniversalAction (index 0..12) -> poke-env SingleBattleOrder``
``(UniversalState, UniversalState) -> RewardFunction -> float``

One idea per module, each importing only the ones above it in this list (no cycles, no torch):

* :mod:`~metamon.interface.registry` -- name -> class registries and ``get_*`` / ``register_*``.
* :mod:`~metamon.interface.records` -- ``UniversalMove`` / ``UniversalPokemon`` /
  ``UniversalState``, metamon's on-disk records, and how poke-env 0.16.1 is read into them.
* :mod:`~metamon.interface.ordering` -- ``consistent_pokemon_order`` / ``consistent_move_order``.
* :mod:`~metamon.interface.actions` -- ``UniversalAction`` (the 13-slot layout), legality
  (``maybe_valid_actions`` / ``definitely_valid_actions`` / ``legal_orders``) and index <->
  poke-env order.
* :mod:`~metamon.interface.action_spaces` -- ``ActionSpace``, ``DefaultActionSpace``,
  ``MinimalActionSpace``.
* :mod:`~metamon.interface.rewards` -- ``RewardFunction`` and the shaped / binary rewards.
* :mod:`~metamon.interface.observations` -- ``ObservationSpace``, the four registered spaces and
  ``TokenizedObservationSpace``.
* :mod:`~metamon.interface.pac_observations` -- the ``PAC-`` spaces (player tera types read
  ``notype``, as metamon's PokéAgent-era checkpoints saw them).
* :mod:`~metamon.interface.decision` -- the decision step (agent action -> legal order with a
  random-legal fallback, legal agent actions, request id) shared by env, player and dataset.

Every public name is re-exported here: ``from metamon.interface import X`` is the import to use.

Deviations from metamon 1.4 (each is documented where it happens): the previous-move reset
(:mod:`~metamon.interface.records`); ``ExpandedObservationSpace`` guards the PP ratio against
``max_pp == 0`` (ratio taken as 0); ``MinimalActionSpace`` does not mutate the action it is
given; unknown registry names raise :class:`metamon.errors.UnknownNameError` (a ``ValueError``);
the inverse mapping :func:`battle_order_to_action_idx` is new; the ``PAC-`` wrapper class
``PatchPokeAgentTeraBug`` is not itself registered (it needs the space to wrap). There are no
replay-parser constructors.
"""

from __future__ import annotations

from metamon.interface.action_spaces import ActionSpace, DefaultActionSpace, MinimalActionSpace
from metamon.interface.actions import (
    N_UNIVERSAL_ACTIONS,
    UniversalAction,
    action_idx_to_BattleOrder,
    battle_order_to_action_idx,
    definitely_valid_actions,
    legal_orders,
    maybe_valid_actions,
)
from metamon.interface.decision import (
    ChosenOrder,
    RandomChoice,
    decide,
    legal_actions,
    legal_agent_actions,
    request_id,
)
from metamon.interface.observations import (
    ANYCHOICE,
    BLANK,
    CONDITIONS,
    FORCEDSWITCH,
    MOVE,
    MOVESET,
    OBSERVATION_SPECIAL_TOKENS,
    OPP_PREV,
    OPPONENT,
    PLAYER,
    PLAYER_PREV,
    SWITCH,
    DefaultObservationSpace,
    ExpandedObservationSpace,
    ObservationSpace,
    OpponentMoveObservationSpace,
    TeamPreviewObservationSpace,
    TokenizedObservationSpace,
)
from metamon.interface.ordering import consistent_move_order, consistent_pokemon_order
from metamon.interface.pac_observations import (
    PACExpandedObservationSpace,
    PACOpponentMoveObservationSpace,
    PACTeamPreviewObservationSpace,
    PatchPokeAgentTeraBug,
)
from metamon.interface.records import UniversalMove, UniversalPokemon, UniversalState
from metamon.interface.registry import (
    ALL_ACTION_SPACES,
    ALL_OBSERVATION_SPACES,
    ALL_REWARD_FUNCTIONS,
    get_action_space,
    get_action_space_names,
    get_observation_space,
    get_observation_space_names,
    get_reward_function,
    get_reward_function_names,
    register_action_space,
    register_observation_space,
    register_reward_function,
)
from metamon.interface.rewards import (
    AggressiveShapedReward,
    BinaryReward,
    DefaultShapedReward,
    DenseShapedReward,
    RewardFunction,
)

__all__ = [
    "consistent_pokemon_order",
    "consistent_move_order",
    "UniversalMove",
    "UniversalPokemon",
    "UniversalState",
    "UniversalAction",
    "N_UNIVERSAL_ACTIONS",
    "maybe_valid_actions",
    "definitely_valid_actions",
    "legal_orders",
    "action_idx_to_BattleOrder",
    "battle_order_to_action_idx",
    "ActionSpace",
    "DefaultActionSpace",
    "MinimalActionSpace",
    "RewardFunction",
    "DefaultShapedReward",
    "AggressiveShapedReward",
    "BinaryReward",
    "DenseShapedReward",
    "ObservationSpace",
    "DefaultObservationSpace",
    "ExpandedObservationSpace",
    "TeamPreviewObservationSpace",
    "OpponentMoveObservationSpace",
    "TokenizedObservationSpace",
    "PatchPokeAgentTeraBug",
    "PACExpandedObservationSpace",
    "PACTeamPreviewObservationSpace",
    "PACOpponentMoveObservationSpace",
    "OBSERVATION_SPECIAL_TOKENS",
    # the special words of the observation texts, one by one
    "ANYCHOICE",
    "FORCEDSWITCH",
    "PLAYER",
    "OPPONENT",
    "MOVE",
    "SWITCH",
    "MOVESET",
    "CONDITIONS",
    "PLAYER_PREV",
    "OPP_PREV",
    "BLANK",
    "ALL_OBSERVATION_SPACES",
    "ALL_ACTION_SPACES",
    "ALL_REWARD_FUNCTIONS",
    "register_observation_space",
    "register_action_space",
    "register_reward_function",
    "get_observation_space",
    "get_action_space",
    "get_reward_function",
    "get_observation_space_names",
    "get_action_space_names",
    "get_reward_function_names",
    "ChosenOrder",
    "RandomChoice",
    "decide",
    "legal_actions",
    "legal_agent_actions",
    "request_id",
]
