"""Agents without a trainer: :func:`build_agent` and the rl2 space it derives.

Training (``Experiment.build_agent``) and inference loading build agents through the one
gin-configurable function :func:`build_agent`, which needs only the spaces and the four
structural choices::

    agent = build_agent(obs_space, action_space, max_seq_len=64,
                        tstep_encoder_type=FFTstepEncoder, traj_encoder_type=TformerTrajEncoder,
                        agent_type=Agent)                  # fresh weights, train mode, CPU

Every other hyper-parameter comes from gin bindings on the agent, encoders and heads. Gin files
written for the Experiment bind the structure on the experiment class
(``Experiment.agent_type = @agent.Agent``); :func:`bound_structure` reads those bindings back, so
an agent can be rebuilt from such a file without constructing the Experiment.
"""

from __future__ import annotations

from typing import Callable

import gin
import numpy as np
from gymnasium import spaces

from metamon.amago.agent import Agent
from metamon.amago.utils import AmagoError

__all__ = ["STRUCTURE_ARGS", "rl2_space_of", "build_agent", "bound_structure"]

STRUCTURE_ARGS = ("max_seq_len", "tstep_encoder_type", "traj_encoder_type", "agent_type")
"""The :func:`build_agent` arguments that choose the architecture (besides the spaces)."""


def rl2_space_of(action_space: spaces.Discrete) -> spaces.Box:
    """[previous reward, previous one-hot action]: ``Box(-inf, inf, (A+1,), float32)``."""
    if not isinstance(action_space, spaces.Discrete):
        raise AmagoError(f"action_space must be a gymnasium spaces.Discrete, got {action_space!r}")
    return spaces.Box(-np.inf, np.inf, shape=(int(action_space.n) + 1,), dtype=np.float32)


@gin.configurable
def build_agent(
    obs_space: spaces.Dict,
    action_space: spaces.Discrete,
    max_seq_len: int,
    tstep_encoder_type: Callable,
    traj_encoder_type: Callable,
    agent_type: Callable[..., Agent],
) -> Agent:
    """A freshly initialised agent: ``agent_type(obs_space, rl2_space_of(action_space),
    action_space, max_seq_len, tstep_encoder_type, traj_encoder_type)``."""
    if not isinstance(obs_space, spaces.Dict):
        raise AmagoError(f"obs_space must be a gymnasium spaces.Dict, got {obs_space!r}")
    if isinstance(max_seq_len, bool) or not isinstance(max_seq_len, int) or max_seq_len < 1:
        raise AmagoError(f"max_seq_len must be a positive int, got {max_seq_len!r}")
    return agent_type(
        obs_space=obs_space,
        rl2_space=rl2_space_of(action_space),
        action_space=action_space,
        max_seq_len=max_seq_len,
        tstep_encoder_type=tstep_encoder_type,
        traj_encoder_type=traj_encoder_type,
    )


def bound_structure(configurable: type) -> dict:
    """The :data:`STRUCTURE_ARGS` that gin's current configuration binds on the gin-configurable
    class ``configurable`` (e.g. an Experiment subclass) or on its gin-configurable base classes,
    with gin's precedence: a subclass binding wins over a base-class one. References are
    resolved (``@agent.Agent`` -> the class). Arguments bound nowhere are left out."""
    found: dict = {}
    for cls in reversed(configurable.__mro__):
        try:
            bindings = gin.get_bindings(cls)
        except ValueError:  # not in gin's registry: its constructor takes no bindings of its own
            continue
        found.update({k: v for k, v in bindings.items() if k in STRUCTURE_ARGS})
    return found
