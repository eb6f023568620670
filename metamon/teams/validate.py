"""Check team files with the pinned Showdown server's own ``TeamValidator``.

:func:`validate_teams` sends every file (its export text and the packed team :class:`TeamSet`
would send) to one Node process running the installed ``pokemon-showdown`` package and returns
the validator's problems per file.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Iterable, List, Optional, Union

from metamon.errors import ServerError, TeamError
from metamon.formats import check_format
from metamon.server import install_hint, server_dir, showdown_dir
from metamon.teams.team_file import pack_team_file, team_files_in

__all__ = ["validate_teams"]

PathLike = Union[str, os.PathLike]


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
    root = Path(server_root) if server_root else server_dir()
    if shutil.which("node") is None:
        raise ServerError(
            "Validating teams needs Node.js, but there is no `node` on PATH; install Node >= 20, "
            f"then {install_hint(root)}."
        )
    if not (showdown_dir(root) / "dist").is_dir():
        raise ServerError(
            f"Pokémon Showdown is not installed in {showdown_dir(root)}; {install_hint(root)}."
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
