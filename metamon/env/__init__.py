"""Gymnasium environments, team sets and the poke-env bridge.

See :mod:`metamon.env.wrappers` for the stepping API and :mod:`metamon.env.teams` for team sets.
"""

from metamon.env.teams import METAMON_TEAM_SETS, TeamSet, get_metamon_teams
from metamon.env.wrappers import (
    BattleAgainstBaseline,
    PokeEnvWrapper,
    QueueOnLocalLadder,
    SelfPlayPair,
)

__all__ = [
    "TeamSet",
    "METAMON_TEAM_SETS",
    "get_metamon_teams",
    "PokeEnvWrapper",
    "BattleAgainstBaseline",
    "QueueOnLocalLadder",
    "SelfPlayPair",
]
