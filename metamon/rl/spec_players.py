"""The ``run`` player kind: ``"run:DIR@N"`` plays the run in ``DIR`` at epoch ``N`` (the latest
epoch without ``@N``) as a :class:`~metamon.rl.player.PolicyPlayer`.

Registered with :func:`metamon.battles.spec.register_player_kind` when imported (a
:class:`~metamon.battles.spec.PlayerFactory` imports this module the first time it builds a
``run`` spec). Within one factory each (run, epoch) is loaded once, and every player of it
shares one :class:`~metamon.rl.player.InferenceBatcher`, so concurrent battles of the same agent
are batched together; :meth:`PlayerFactory.close` stops the batcher.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from poke_env.player import Player

from metamon.battles.players import new_player
from metamon.battles.spec import PlayerFactory, PlayerSpec, register_player_kind
from metamon.rl import MetamonRLError
from metamon.rl.player import InferenceBatcher, PolicyPlayer
from metamon.rl.run_dir import RunInfo, available_epochs, build_spaces, load_agent
from metamon.server import unique_username

__all__ = ["build_run_player", "check_run_spec", "policy_player"]


def policy_player(factory: PlayerFactory, spec: PlayerSpec, username: Optional[str], wrap, kwargs: dict,
                  agent, info: RunInfo, batcher: InferenceBatcher) -> Player:
    """A PolicyPlayer (class decorated by ``wrap``) of ``agent``, whose inputs and outputs
    ``info`` names, in ``factory``'s format, server and team set; ``batcher`` runs its inference
    (shared by every player of the same agent). Every kind that plays a trained agent
    (``run``, ``pretrained``) builds its players with this."""
    obs_space, action_space, reward_function = build_spaces(info)
    cls = PolicyPlayer if wrap is None else wrap(PolicyPlayer)
    return new_player(
        cls,
        factory.battle_format,
        server_configuration=factory.server_configuration,
        max_concurrent_battles=factory.max_concurrent_battles,
        team=factory.team,
        username=username or unique_username(spec.label),
        agent=agent,
        observation_space=obs_space,
        action_space=action_space,
        reward_function=reward_function,
        sample=factory.sample,
        batcher=batcher,
        **kwargs,
    )


def build_run_player(factory: PlayerFactory, spec: PlayerSpec, username: Optional[str], wrap, kwargs: dict) -> Player:
    """A PolicyPlayer of the run ``spec.target`` at ``spec.epoch`` (class decorated by ``wrap``)."""
    run_dir = Path(spec.target).expanduser().resolve()

    def load():
        agent, info = load_agent(run_dir, spec.epoch, device=factory.device)
        return agent, info, InferenceBatcher(agent, capacity=factory.max_concurrent_battles)

    agent, info, batcher = factory.shared(("run", run_dir, spec.epoch), load, lambda loaded: loaded[2].close())
    return policy_player(factory, spec, username, wrap, kwargs, agent, info, batcher)


def check_run_spec(spec: PlayerSpec) -> None:
    """The run directory exists and holds the epoch (any epoch when none is named)."""
    epochs = available_epochs(Path(spec.target).expanduser())
    if not epochs:
        raise MetamonRLError(f"player spec {spec}: {spec.target} holds no policy checkpoint")
    if spec.epoch is not None and spec.epoch not in epochs:
        raise MetamonRLError(f"player spec {spec}: no epoch {spec.epoch} in {spec.target} (available epochs: {epochs})")


register_player_kind("run", build_run_player, check_run_spec)
