"""``TeamSet``: a poke-env ``Teambuilder`` that draws one team file per battle from a folder.

Pass it as ``team=`` to a player and every challenge calls :meth:`TeamSet.yield_team`, which
draws one file uniformly at random (each of the ``n`` files has probability ``1/n`` per draw,
independently of earlier draws) and returns it in Showdown's packed format.
"""

from __future__ import annotations

import os
import random
import warnings
from pathlib import Path
from typing import Optional, Union

from poke_env.teambuilder import Teambuilder

from metamon.errors import TeamError
from metamon.formats import check_format
from metamon.teams.team_file import pack_team_file, team_files_in, team_suffix

__all__ = ["TeamSet"]

PathLike = Union[str, os.PathLike]


class TeamSet(Teambuilder):
    """A poke-env ``Teambuilder`` that samples one team file per battle from a folder.

    Args:
        team_file_dir: folder searched recursively for files ending in ``.<battle_format>_team``.
        battle_format: Showdown format id, e.g. ``"gen3ou"``.
        seed: seed of this set's own ``random.Random``; the same seed and folder give the same
            sequence of files. ``None`` seeds from the OS.

    Each :meth:`yield_team` draws a file uniformly at random with replacement, parses and packs
    it (:func:`pack_team_file`), and accepts it unless :meth:`block_team` returns True; after
    ``MAX_RESAMPLES`` blocked draws it raises :class:`TeamError`. Files are read at draw time,
    so a set of thousands of files costs only the list of their paths.
    """

    MAX_RESAMPLES = 100
    WARN_EVERY = 10

    def __init__(self, team_file_dir: PathLike, battle_format: str, seed: Optional[int] = None):
        self.battle_format = check_format(battle_format)
        self.team_file_dir = Path(team_file_dir)
        if not self.team_file_dir.is_dir():
            raise TeamError(f"Team folder {self.team_file_dir} does not exist (format {battle_format})")
        self.team_files = team_files_in(self.team_file_dir, battle_format)
        if not self.team_files:
            raise TeamError(
                f"No team files for format {battle_format!r} in {self.team_file_dir}: expected files "
                f"named '*{team_suffix(battle_format)}' (searched recursively)"
            )
        self._rng = random.Random(seed)
        self._most_recent_team_file: Optional[Path] = None

    def __len__(self) -> int:
        return len(self.team_files)

    def __repr__(self) -> str:
        return f"TeamSet({str(self.team_file_dir)!r}, {self.battle_format!r}, {len(self)} teams)"

    @property
    def most_recent_team_file(self) -> Optional[Path]:
        """The file behind the last team :meth:`yield_team` returned (``None`` before any)."""
        return self._most_recent_team_file

    def block_team(self, packed_team: str) -> bool:
        """Return True to reject a drawn team and draw again (subclass hook; default: never)."""
        return False

    def yield_team(self) -> str:
        """A packed team from a uniformly drawn file (see the class docstring)."""
        for attempt in range(1, self.MAX_RESAMPLES + 1):
            path = self._rng.choice(self.team_files)
            packed = pack_team_file(path)
            if not self.block_team(packed):
                self._most_recent_team_file = path
                return packed
            if attempt % self.WARN_EVERY == 0:
                warnings.warn(
                    f"{type(self).__name__}.block_team rejected {attempt} teams in a row "
                    f"from {self.team_file_dir}",
                    stacklevel=2,
                )
        raise TeamError(
            f"{type(self).__name__}.block_team rejected {self.MAX_RESAMPLES} drawn teams in a row "
            f"from {self.team_file_dir} ({len(self)} files for {self.battle_format}); "
            "too few teams pass the filter"
        )
