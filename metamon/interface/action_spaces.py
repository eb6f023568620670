"""Action spaces: what an agent outputs <-> :class:`~metamon.interface.actions.UniversalAction`.

* :class:`DefaultActionSpace`: ``Discrete(13)``, agent output k is universal index k.
* :class:`MinimalActionSpace`: ``Discrete(9)``, metamon's paper layout without tera slots.

Both are registered (:func:`metamon.interface.get_action_space`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
from gymnasium import spaces

from metamon.interface.actions import _FIRST_TERA, N_UNIVERSAL_ACTIONS, UniversalAction
from metamon.interface.records import UniversalState
from metamon.interface.registry import register_action_space

__all__ = ["ActionSpace", "DefaultActionSpace", "MinimalActionSpace"]


def _as_index(agent_output, kind: str) -> int:
    if isinstance(agent_output, np.ndarray) and agent_output.ndim == 0:
        agent_output = agent_output.item()
    if isinstance(agent_output, bool) or not isinstance(agent_output, (int, np.integer)):
        raise ValueError(f"{kind}: agent output must be an int, got {agent_output!r}")
    return int(agent_output)


class ActionSpace(ABC):
    """Maps between what an agent outputs and :class:`UniversalAction`."""

    @property
    @abstractmethod
    def gym_space(self) -> spaces.Space: ...

    @abstractmethod
    def agent_output_to_action(self, state: UniversalState, agent_output) -> UniversalAction: ...

    @abstractmethod
    def action_to_agent_output(self, state: UniversalState, action: UniversalAction): ...


@register_action_space
class DefaultActionSpace(ActionSpace):
    """``Discrete(13)``; agent output k is universal index k (and -1 stays -1)."""

    @property
    def gym_space(self) -> spaces.Discrete:
        return spaces.Discrete(N_UNIVERSAL_ACTIONS)

    def agent_output_to_action(self, state, agent_output) -> UniversalAction:
        return UniversalAction(_as_index(agent_output, type(self).__name__))

    def action_to_agent_output(self, state, action: UniversalAction) -> int:
        return action.action_idx


@register_action_space
class MinimalActionSpace(ActionSpace):
    """``Discrete(9)``: metamon's original 4 moves + 5 switches, no tera slots.

    Both directions map indices 9-12 onto 0-3 (-1 stays -1). Unlike metamon, which rewrote the
    index of the ``UniversalAction`` it was given, the input is never modified.
    """

    @property
    def gym_space(self) -> spaces.Discrete:
        return spaces.Discrete(_FIRST_TERA)

    @staticmethod
    def _drop_tera(idx: int) -> int:
        return idx - _FIRST_TERA if idx >= _FIRST_TERA else idx

    def agent_output_to_action(self, state, agent_output) -> UniversalAction:
        return UniversalAction(self._drop_tera(_as_index(agent_output, type(self).__name__)))

    def action_to_agent_output(self, state, action: UniversalAction) -> int:
        return self._drop_tera(action.action_idx)

