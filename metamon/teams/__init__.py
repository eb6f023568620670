"""Team sets: folders of Showdown team files that players sample a team from before each battle.

A *team set* is a folder (searched recursively) of plain-text Showdown **export** teams
("pokepaste" text, the format of the Showdown teambuilder's Import/Export box), one team per
file, each file named ``<anything>.<battle_format>_team`` (e.g. ``stall.gen3ou_team``).

Modules (everything is re-exported here):

* :mod:`metamon.teams.team_file` - read, parse and pack one team file.
* :mod:`metamon.teams.team_set` - :class:`TeamSet`, the poke-env ``Teambuilder`` that draws one
  file uniformly at random per battle.
* :mod:`metamon.teams.sources` - :func:`get_metamon_teams`: the ``"builtin"`` set shipped in
  ``metamon/teams/builtin/<format>/``, metamon's official sets (downloaded through
  :mod:`metamon.hub`), or a custom folder.
* :mod:`metamon.teams.validate` - :func:`validate_teams` with the pinned server's own
  ``TeamValidator`` in a single Node process.
"""

from metamon.teams.sources import (
    BUILTIN_TEAM_SETS,
    BUILTIN_TEAMS_DIR,
    METAMON_TEAM_SETS,
    builtin_team_formats,
    get_metamon_teams,
)
from metamon.teams.team_file import pack_team_file, parse_team_file, team_files_in, team_suffix
from metamon.teams.team_set import TeamSet
from metamon.teams.validate import validate_teams

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
