"""Name -> class registries of observation spaces, action spaces and reward functions.

``register_*`` are class decorators (``@register_observation_space`` or
``@register_observation_space(name="...")``); ``get_*(name)`` returns a new instance and raises
:class:`metamon.errors.UnknownNameError` (a ``ValueError``) for an unknown name; ``get_*_names()``
lists the registered names, sorted. The registries are filled when :mod:`metamon.interface` is
imported (each space / reward module registers its own classes). This module sits below those
modules and imports none of them, so the getters are annotated ``Any``.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from metamon.errors import UnknownNameError

__all__ = [
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
]

ALL_OBSERVATION_SPACES: dict[str, type] = {}
ALL_ACTION_SPACES: dict[str, type] = {}
ALL_REWARD_FUNCTIONS: dict[str, type] = {}


def _registrar(registry: dict, kind: str) -> Callable:
    def register(cls=None, *, name: Optional[str] = None):
        def add(c):
            key = name or c.__name__
            if key in registry:
                raise ValueError(f"{kind} {key!r} is already registered")
            registry[key] = c
            return c

        return add(cls) if cls is not None else add

    register.__doc__ = (
        f"Class decorator adding a {kind} to its registry under ``name`` (default: the class "
        f"name). Use as ``@register`` or ``@register(name=...)``; duplicates raise ValueError."
    )
    return register


register_observation_space = _registrar(ALL_OBSERVATION_SPACES, "observation space")
register_action_space = _registrar(ALL_ACTION_SPACES, "action space")
register_reward_function = _registrar(ALL_REWARD_FUNCTIONS, "reward function")


def _lookup(registry: dict, kind: str, name: str):
    if name not in registry:
        raise UnknownNameError(kind, name, registry)
    return registry[name]()


def get_observation_space(name: str) -> Any:
    """A new instance of the registered observation space ``name`` (an ``ObservationSpace``)."""
    return _lookup(ALL_OBSERVATION_SPACES, "observation space", name)


def get_action_space(name: str) -> Any:
    """A new instance of the registered action space ``name`` (an ``ActionSpace``)."""
    return _lookup(ALL_ACTION_SPACES, "action space", name)


def get_reward_function(name: str) -> Any:
    """A new instance of the registered reward function ``name`` (a ``RewardFunction``)."""
    return _lookup(ALL_REWARD_FUNCTIONS, "reward function", name)


def get_observation_space_names() -> list[str]:
    return sorted(ALL_OBSERVATION_SPACES)


def get_action_space_names() -> list[str]:
    return sorted(ALL_ACTION_SPACES)


def get_reward_function_names() -> list[str]:
    return sorted(ALL_REWARD_FUNCTIONS)

