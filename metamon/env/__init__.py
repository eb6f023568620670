"""Gymnasium environments, team sets and the poke-env bridge.

See :mod:`metamon.env.wrappers` for the stepping API; team sets live in :mod:`metamon.teams`
(re-exported here).
"""

from metamon.env.wrappers import (
    BattleAgainstBaseline,
    PokeEnvWrapper,
    QueueOnLocalLadder,
    SelfPlayPair,
)
from metamon.teams import METAMON_TEAM_SETS, TeamSet, get_metamon_teams

__all__ = [
    "TeamSet",
    "METAMON_TEAM_SETS",
    "get_metamon_teams",
    "PokeEnvWrapper",
    "BattleAgainstBaseline",
    "QueueOnLocalLadder",
    "SelfPlayPair",
]
