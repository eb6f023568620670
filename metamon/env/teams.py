"""Team sets: folders of Showdown team files that players sample a team from before each battle.

A *team set* is a folder (searched recursively) of plain-text Showdown **export** teams
("pokepaste" text, the format of the Showdown teambuilder's Import/Export box), one team per
file, each file named ``<anything>.<battle_format>_team`` (e.g. ``stall.gen3ou_team``).

Where team sets come from (:func:`get_metamon_teams`):

- ``"builtin"``: teams shipped with this package under ``metamon/teams/builtin/<format>/``
  (at least 12 hand-built OU teams each for gen1ou, gen2ou, gen3ou, gen4ou and gen9ou, every
  one legal under the pinned server's validator). Needs no download.
- metamon's official sets (:data:`METAMON_TEAM_SETS`): downloaded once from the Hugging Face
  Hub dataset ``jakegrigsby/metamon-teams`` into ``$METAMON_CACHE_DIR/teams/<set>/<format>/``.
- anything else: a custom folder ``$METAMON_CACHE_DIR/teams/<name>/`` or a directory path.

:class:`TeamSet` is a poke-env ``Teambuilder``: pass it as ``team=`` to a player and every
challenge calls :meth:`TeamSet.yield_team`, which draws one file uniformly at random (each of
the ``n`` files has probability ``1/n`` per draw, independently of earlier draws) and returns
it in Showdown's packed format. :func:`validate_teams` checks files with the pinned server's
own ``TeamValidator`` in a single Node process.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import warnings
from pathlib import Path
from typing import Iterable, List, Optional, Union

from poke_env.teambuilder import Teambuilder, TeambuilderPokemon

from metamon.data.download import TEAM_SETS, cache_dir, download_teams
from metamon.errors import ServerError, TeamError
from metamon.formats import check_format, is_random_battle

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

PathLike = Union[str, os.PathLike]

BUILTIN_TEAMS_DIR = Path(__file__).resolve().parents[1] / "teams" / "builtin"
BUILTIN_TEAM_SETS = {"builtin"}
METAMON_TEAM_SETS = set(TEAM_SETS)

# A Showdown team has at most 6 Pokémon; a packed Pokémon has exactly 12 "|"-separated fields.
_MAX_TEAM_SIZE = 6
_PACKED_FIELDS = 12
_IVS_FIELD = 8  # nickname|species|item|ability|moves|nature|evs|gender|IVS|shiny|level|...


# ------------------------------------------------------------------------------------------
# Reading and packing one team file
# ------------------------------------------------------------------------------------------
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


# ------------------------------------------------------------------------------------------
# TeamSet
# ------------------------------------------------------------------------------------------
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


# ------------------------------------------------------------------------------------------
# Finding team sets
# ------------------------------------------------------------------------------------------
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


# ------------------------------------------------------------------------------------------
# Validation with the pinned server
# ------------------------------------------------------------------------------------------
# Reads {"format": id, "teams": [{"text": export, "packed": packed-or-null}, ...]} on stdin and
# writes one list of problems per team (empty = legal). The packed form is what poke-env will
# actually send, so its extra problems are reported too, marked as such.
_VALIDATOR_JS = r"""
const {Teams, TeamValidator} = require('pokemon-showdown');
let raw = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', chunk => { raw += chunk; });
process.stdin.on('end', () => {
  const request = JSON.parse(raw);
  const validator = TeamValidator.get(request.format);
  const check = text => {
    try {
      const team = Teams.import(text);
      if (!team || !team.length) return ['no Pokémon could be read from this team'];
      return validator.validateTeam(team) || [];
    } catch (e) {
      return ['the validator failed on this team: ' + e.message];
    }
  };
  const results = request.teams.map(t => {
    const problems = check(t.text);
    if (t.packed !== null) {
      for (const p of check(t.packed)) {
        if (!problems.includes(p)) problems.push('as packed by poke-env: ' + p);
      }
    }
    return problems;
  });
  process.stdout.write(JSON.stringify(results));
});
"""


def _expand_paths(paths: Union[PathLike, Iterable[PathLike]], battle_format: str) -> List[Path]:
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    files = []
    for p in map(Path, paths):
        files.extend(team_files_in(p, battle_format) if p.is_dir() else [p])
    return files


def _node_and_package(server_root: Optional[PathLike]) -> Path:
    from metamon.server import server_dir, showdown_dir

    root = Path(server_root) if server_root else server_dir()
    if shutil.which("node") is None:
        raise ServerError(
            "Validating teams needs Node.js, but there is no `node` on PATH; install Node >= 20, "
            "then run `make server-install`."
        )
    if not (showdown_dir(root) / "dist").is_dir():
        raise ServerError(
            f"Pokémon Showdown is not installed in {showdown_dir(root)}; run `make server-install`."
        )
    return root


def validate_teams(
    paths: Union[PathLike, Iterable[PathLike]],
    battle_format: str,
    server_root: Optional[PathLike] = None,
) -> dict:
    """Check team files with the pinned Showdown server's ``TeamValidator``.

    Args:
        paths: team files and/or folders (folders contribute their ``.<format>_team`` files).
        battle_format: the format whose rules apply (e.g. ``"gen2ou"``).
        server_root: the ``server/`` folder (default :func:`metamon.server.server_dir`).

    Returns ``{Path(file): [problem, ...]}`` in input order; an empty list means the team is
    legal. Each file is checked twice in one Node process: its export text, and the packed
    team :class:`TeamSet` would send (extra problems of the latter start with
    ``"as packed by poke-env: "``). Files that cannot be read or parsed get that error as
    their problem. Raises :class:`ServerError` when Node or the server package is missing.
    """
    check_format(battle_format)
    files = _expand_paths(paths, battle_format)
    results = {f: [] for f in files}
    requests, requested_files = [], []
    for f in files:
        try:
            text = f.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            results[f] = [f"cannot read team file {f}: {e}"]
            continue
        try:
            packed = pack_team_file(f)
        except TeamError as e:
            results[f], packed = [str(e)], None
        requests.append({"text": text, "packed": packed})
        requested_files.append(f)
    if requests:
        for f, problems in zip(requested_files, _run_validator(requests, battle_format, server_root)):
            results[f] = results[f] + [p for p in problems if p not in results[f]]
    return results


def _run_validator(requests: list, battle_format: str, server_root: Optional[PathLike]) -> list:
    root = _node_and_package(server_root)
    payload = json.dumps({"format": battle_format, "teams": requests})
    try:
        proc = subprocess.run(
            ["node", "-e", _VALIDATOR_JS], cwd=root, input=payload, capture_output=True,
            text=True, timeout=60 + 0.05 * len(requests),
        )
    except subprocess.TimeoutExpired:
        raise ServerError(f"The Showdown team validator (node, in {root}) did not finish in time") from None
    if proc.returncode != 0:
        raise ServerError(
            f"The Showdown team validator (node, in {root}) failed with exit code "
            f"{proc.returncode}:\n{proc.stderr.strip()[-2000:]}"
        )
    results = json.loads(proc.stdout)
    if len(results) != len(requests):
        raise ServerError(f"The Showdown team validator answered {len(results)} of {len(requests)} teams")
    return results
