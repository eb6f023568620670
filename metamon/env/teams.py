"""Old import path of :mod:`metamon.teams` (team sets moved below ``env`` so that every layer can
use them); re-exports its public names."""

from metamon.teams import (
    BUILTIN_TEAM_SETS,
    BUILTIN_TEAMS_DIR,
    METAMON_TEAM_SETS,
    TeamSet,
    builtin_team_formats,
    get_metamon_teams,
    pack_team_file,
    parse_team_file,
    team_files_in,
    team_suffix,
    validate_teams,
)

__all__ = [
    "BUILTIN_TEAMS_DIR",
    "BUILTIN_TEAM_SETS",
    "METAMON_TEAM_SETS",
    "TeamSet",
    "builtin_team_formats",
    "get_metamon_teams",
    "pack_team_file",
    "parse_team_file",
    "team_files_in",
    "team_suffix",
    "validate_teams",
]
