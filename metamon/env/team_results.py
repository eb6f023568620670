"""metamon's team-result logs: one CSV row per finished battle, naming the team file played.

``save_team_results_to=DIR`` on a ladder env appends to
``DIR/battle_log_{username}_{format}.csv`` (the file name metamon uses) with the columns of
:data:`TEAM_RESULTS_HEADER`: the agent's username, the team file its team came from (empty for
random-battle formats), the opponent's username, the result (``win`` / ``loss`` / ``tie``), the
battle's last turn number and its battle tag. Each append rewrites the file atomically
(:func:`metamon.files.atomic_write`), so a reader never sees half a row.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Union

from metamon.files import atomic_write

__all__ = ["TEAM_RESULTS_HEADER", "append_team_result", "team_results_path"]

TEAM_RESULTS_HEADER = ("Player Username", "Team File", "Opponent Username", "Result", "Turn Count", "Battle ID")


def team_results_path(folder: Union[str, os.PathLike], username: str, battle_format: str) -> Path:
    """``folder/battle_log_{username}_{battle_format}.csv``."""
    return Path(folder) / f"battle_log_{username}_{battle_format}.csv"


def append_team_result(
    folder: Union[str, os.PathLike],
    username: str,
    battle_format: str,
    team_file: str,
    opponent: str,
    result: str,
    turns: int,
    battle_tag: str,
) -> Path:
    """Append one row (the header first when the file is new) and return the file's path."""
    path = team_results_path(folder, username, battle_format)
    previous = path.read_text(encoding="utf-8") if path.exists() else ""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if not previous:
        writer.writerow(TEAM_RESULTS_HEADER)
    writer.writerow((username, team_file, opponent, result, turns, battle_tag))
    return atomic_write(path, previous + out.getvalue())
