"""One team file: find, parse and pack the Showdown export teams of a team set.

A team file holds one team as plain-text Showdown **export** text ("pokepaste" text, the format
of the Showdown teambuilder's Import/Export box) and is named ``<anything>.<battle_format>_team``
(e.g. ``stall.gen3ou_team``). :func:`parse_team_file` reads it into 1..6 poke-env
``TeambuilderPokemon``; :func:`pack_team_file` turns it into the packed string poke-env sends to
Showdown. Every problem raises :class:`~metamon.errors.TeamError` naming the file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import List, Union

from poke_env.teambuilder import Teambuilder, TeambuilderPokemon

from metamon.errors import TeamError

__all__ = ["pack_team_file", "parse_team_file", "team_files_in", "team_suffix"]

PathLike = Union[str, os.PathLike]

# A Showdown team has at most 6 Pokémon; a packed Pokémon has exactly 12 "|"-separated fields.
_MAX_TEAM_SIZE = 6
_PACKED_FIELDS = 12
_IVS_FIELD = 8  # nickname|species|item|ability|moves|nature|evs|gender|IVS|shiny|level|...


def team_suffix(battle_format: str) -> str:
    """File-name ending of team files for ``battle_format``: ``".gen3ou_team"``."""
    return f".{battle_format}_team"


def team_files_in(team_file_dir: PathLike, battle_format: str) -> List[Path]:
    """Every file under ``team_file_dir`` (recursively) whose name ends in ``.<format>_team``,
    sorted so that a seeded :class:`TeamSet` draws the same files on every machine."""
    suffix = team_suffix(battle_format)
    return sorted(p for p in Path(team_file_dir).rglob(f"*{suffix}") if p.is_file())


def _team_blocks(text: str, path: Path) -> List[str]:
    """Split export text into one block of lines per Pokémon.

    Normalises what poke-env's parser trips over: Windows/Mac line endings, trailing spaces,
    whitespace-only "blank" lines and runs of blank lines. A single leading
    ``=== [format] name ===`` header (Showdown's backup format) is dropped.
    """
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    headers = [i for i, line in enumerate(lines) if line.lstrip().startswith("===")]
    if len(headers) > 1:
        raise TeamError(f"Team file {path} holds {len(headers)} teams ('===' headers); put one team per file")
    if headers:
        if any(line.strip() for line in lines[: headers[0]]):
            raise TeamError(f"Team file {path}: the '===' header must come before the first Pokémon")
        del lines[headers[0]]
    blocks, current = [], []
    for line in lines + [""]:
        if line.strip():
            current.append(line)
        elif current:
            blocks.append("\n".join(current))
            current = []
    return blocks


def _parse_block(block: str, index: int, path: Path) -> TeambuilderPokemon:
    """Parse one Pokémon with poke-env, turning its bare exceptions into a :class:`TeamError`."""
    first_line = block.split("\n", 1)[0]
    try:
        (mon,) = Teambuilder.parse_showdown_team(block)
    except (ValueError, KeyError, IndexError) as e:
        raise TeamError(
            f"Team file {path}: cannot parse Pokémon #{index} ({first_line!r}): "
            f"{type(e).__name__}: {e}. Expected Showdown export text, e.g. 'Name @ Item', "
            "'Ability: X', 'EVs: 252 Atk / 4 Def', 'Jolly Nature', '- Move'."
        ) from None
    if not (mon.species or mon.nickname):
        raise TeamError(f"Team file {path}: Pokémon #{index} ({first_line!r}) has no species")
    if not mon.moves:
        raise TeamError(
            f"Team file {path}: Pokémon #{index} ({first_line!r}) has no moves "
            "(each move is a line starting with '- ')"
        )
    return mon


def _pack_mon(mon: TeambuilderPokemon, index: int, path: Path) -> str:
    """``mon`` in packed form, keeping IVs the file leaves unspecified unspecified.

    poke-env fills the IVs of a Pokémon with a typed Hidden Power (``- Hidden Power [Ice]``)
    from its own table when the file gives none; that table is wrong for gen 1-2 and for some
    types in gen 3+ (Bug, Ghost, Grass, Water), and the server then rejects the team. Left
    empty, the server's validator picks the IVs itself, exactly as for the export text.
    """
    ivs_unspecified = mon.ivs is None or all(iv == 31 for iv in mon.ivs)
    try:
        packed = mon.packed
    except (ValueError, KeyError, IndexError) as e:
        raise TeamError(
            f"Team file {path}: cannot pack Pokémon #{index} ({mon.nickname or mon.species}): "
            f"{type(e).__name__}: {e} (e.g. an unknown Hidden Power type)"
        ) from None
    if packed.count("|") != _PACKED_FIELDS - 1 or "]" in packed:
        raise TeamError(
            f"Team file {path}: Pokémon #{index} contains a '|' or ']' character, "
            "which Showdown's packed team format cannot hold"
        )
    if ivs_unspecified:
        fields = packed.split("|")
        fields[_IVS_FIELD] = ""
        packed = "|".join(fields)
    return packed


def parse_team_file(path: PathLike) -> List[TeambuilderPokemon]:
    """Parse a Showdown export team file into 1..6 poke-env ``TeambuilderPokemon``.

    Raises :class:`TeamError` naming the file when it cannot be read, holds no Pokémon or
    more than 6, or a Pokémon line cannot be parsed (poke-env itself raises bare
    ``ValueError``/``KeyError`` on e.g. ``EVs: 252 Attack`` or ``Level: max``).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise TeamError(f"Cannot read team file {path}: {e}") from None
    blocks = _team_blocks(text, path)
    if not blocks:
        raise TeamError(f"Team file {path} contains no Pokémon")
    if len(blocks) > _MAX_TEAM_SIZE:
        raise TeamError(
            f"Team file {path} holds {len(blocks)} Pokémon (blocks separated by blank lines); "
            f"a team has at most {_MAX_TEAM_SIZE}"
        )
    return [_parse_block(block, i, path) for i, block in enumerate(blocks, start=1)]


def pack_team_file(path: PathLike) -> str:
    """The team in ``path`` as the packed string poke-env sends to Showdown.

    Packed format: one ``nickname|species|item|ability|moves|nature|evs|gender|ivs|shiny|
    level|happiness,...`` record per Pokémon, records joined by ``]``. Surrounding whitespace
    is stripped (a trailing newline would end up inside the last field and crash poke-env).
    """
    path = Path(path)
    mons = parse_team_file(path)
    return "]".join(_pack_mon(mon, i, path) for i, mon in enumerate(mons, start=1)).strip()
