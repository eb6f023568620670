"""Battle formats the pinned Showdown server knows, checked before any battle starts.

``metamon/data/showdown_formats.json`` lists every singles format of the pinned
``pokemon-showdown`` (id -> whether the server generates teams for it). It is generated from the
installed server by ``python -m metamon.formats`` and committed, so checking a format needs
neither Node nor a running server.
"""

from __future__ import annotations

import difflib
import json
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

from metamon.errors import UnknownNameError
from metamon.server import SHOWDOWN_VERSION, server_dir

_FORMATS_FILE = Path(__file__).parent / "data" / "showdown_formats.json"

__all__ = ["known_formats", "check_format", "is_random_battle", "needs_team"]


@lru_cache(maxsize=1)
def known_formats() -> dict:
    """``{format_id: {"random_teams": bool}}`` for every singles format of the pinned server."""
    return json.loads(_FORMATS_FILE.read_text())["formats"]


def check_format(battle_format: str) -> str:
    """Return ``battle_format`` if the pinned server knows it, else raise naming the format."""
    formats = known_formats()
    if battle_format not in formats:
        close = difflib.get_close_matches(str(battle_format), list(formats), n=10, cutoff=0.5)
        raise UnknownNameError("battle format", battle_format, close or list(formats)[:20])
    return battle_format


def is_random_battle(battle_format: str) -> bool:
    """True when the server generates both teams (random battles): no team set is needed."""
    return bool(check_format(battle_format) and known_formats()[battle_format]["random_teams"])


def needs_team(battle_format: str) -> bool:
    return not is_random_battle(battle_format)


_NODE_LISTER = r"""
const {Dex} = require('pokemon-showdown');
const out = {};
for (const f of Dex.formats.all()) {
  if (f.effectType !== 'Format' || f.gameType !== 'singles' || /bo\d/.test(f.id)) continue;
  if (!/^gen[1-9]/.test(f.id)) continue;
  out[f.id] = {random_teams: typeof f.team === 'string' && f.team.includes('random')};
}
console.log(JSON.stringify(out));
"""


def regenerate(server_root: Path | None = None) -> int:
    """Rewrite the format list from the installed server (run after changing the server pin)."""
    root = server_root or server_dir()
    raw = subprocess.run(["node", "-e", _NODE_LISTER], cwd=root, check=True, capture_output=True, text=True)
    formats = dict(sorted(json.loads(raw.stdout).items()))
    payload = {"showdown_version": SHOWDOWN_VERSION, "formats": formats}
    _FORMATS_FILE.write_text(json.dumps(payload, indent=1) + "\n")
    return len(formats)


if __name__ == "__main__":
    print(f"wrote {regenerate()} formats to {_FORMATS_FILE}", file=sys.stderr)
