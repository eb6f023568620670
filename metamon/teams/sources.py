"""Where team sets come from: :func:`get_metamon_teams` turns a set name into a :class:`TeamSet`.

- ``"builtin"``: teams shipped with this package under ``metamon/teams/builtin/<format>/``
  (at least 12 hand-built OU teams each for gen1ou, gen2ou, gen3ou, gen4ou and gen9ou, every
  one legal under the pinned server's validator). Needs no download.
- metamon's official sets (:data:`METAMON_TEAM_SETS`): downloaded once from the Hugging Face
  Hub dataset ``jakegrigsby/metamon-teams`` into ``$METAMON_CACHE_DIR/teams/<set>/<format>/``
  (:func:`metamon.hub.download_teams`).
- anything else: a custom folder ``$METAMON_CACHE_DIR/teams/<name>/`` or a directory path.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import List

from metamon.errors import TeamError
from metamon.formats import check_format, is_random_battle
from metamon.hub import TEAM_SETS, cache_dir, download_teams
from metamon.teams.team_file import team_files_in, team_suffix
from metamon.teams.team_set import TeamSet

__all__ = [
    "BUILTIN_TEAMS_DIR",
    "BUILTIN_TEAM_SETS",
    "METAMON_TEAM_SETS",
    "builtin_team_formats",
    "get_metamon_teams",
]

BUILTIN_TEAMS_DIR = Path(__file__).resolve().parent / "builtin"
BUILTIN_TEAM_SETS = {"builtin"}
METAMON_TEAM_SETS = set(TEAM_SETS)


def builtin_team_formats() -> List[str]:
    """Formats with at least one builtin team file."""
    if not BUILTIN_TEAMS_DIR.is_dir():
        return []
    return sorted(
        d.name for d in BUILTIN_TEAMS_DIR.iterdir() if d.is_dir() and team_files_in(d, d.name)
    )


def _builtin_dir(battle_format: str) -> Path:
    formats = builtin_team_formats()
    if battle_format not in formats:
        raise TeamError(
            f"The builtin team set has no teams for {battle_format!r}; it covers "
            f"{', '.join(formats) or 'no formats (is metamon/teams/builtin installed?)'}. "
            "Use an official set (e.g. set_name='competitive') or a folder of your own teams."
        )
    return BUILTIN_TEAMS_DIR / battle_format


def _custom_dir(set_name: str, battle_format: str) -> Path:
    """``$METAMON_CACHE_DIR/teams/<set_name>`` if it exists, else ``set_name`` as a path."""
    tried = []
    if os.environ.get("METAMON_CACHE_DIR"):
        candidate = cache_dir() / "teams" / set_name
        if candidate.is_dir():
            return candidate
        tried.append(str(candidate))
    else:
        tried.append("$METAMON_CACHE_DIR/teams/<name> (METAMON_CACHE_DIR is not set)")
    direct = Path(set_name).expanduser()
    if direct.is_dir():
        return direct
    tried.append(str(direct.resolve()))
    raise TeamError(
        f"Unknown team set {set_name!r}: it is not the builtin set ({', '.join(sorted(BUILTIN_TEAM_SETS))}), "
        f"not an official metamon set ({', '.join(sorted(METAMON_TEAM_SETS))}), and no folder was found "
        f"at {' or '.join(tried)}. Put your '*{team_suffix(battle_format)}' files in "
        f"$METAMON_CACHE_DIR/teams/{set_name}/ or pass the path of a folder that holds them."
    )


def get_metamon_teams(battle_format: str, set_name: str = "builtin", set_type: type = TeamSet):
    """The team set ``set_name`` for ``battle_format`` as a ``set_type`` (default :class:`TeamSet`).

    Returns ``None`` for random-battle formats, where the server generates both teams.
    ``set_name`` is ``"builtin"`` (shipped with the package), an official metamon set name
    (downloaded on first use, needs ``METAMON_CACHE_DIR``), the name of a custom folder under
    ``$METAMON_CACHE_DIR/teams/``, or the path of a folder. Unknown formats raise
    :class:`~metamon.errors.UnknownNameError`; a missing set raises :class:`TeamError`.
    """
    check_format(battle_format)
    if is_random_battle(battle_format):
        return None
    if set_name in BUILTIN_TEAM_SETS:
        path = _builtin_dir(battle_format)
    elif set_name in METAMON_TEAM_SETS:
        path = download_teams(battle_format, set_name)
    else:
        path = _custom_dir(str(set_name), battle_format)
    return set_type(path, battle_format)
