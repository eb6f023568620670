"""metamon's parsed-replay trajectory files: names, writing and reading.

One file holds one battle from one player's point of view::

    <root>/<format>/<battle_id>_<rating>_<player>_vs_<opponent>_<date>_<WIN|LOSS>.json.lz4

The body is an lz4-*frame* compressed UTF-8 JSON object with metamon's two keys:

- ``states``: T ``UniversalState.to_dict()`` objects, the first taken at the battle's first
  decision and the last after the battle ended;
- ``actions``: T ints in the universal 13-slot space; ``actions[t]`` was taken in ``states[t]``;
  the last entry is always ``-1`` (no action after the final state), other ``-1`` = unknown.

Files written here add keys metamon's reader ignores, so our files stay readable by metamon:
``invalid_actions`` (T bools: the policy's choice was illegal and a legal fallback was played;
``actions`` holds what was *played*), ``result`` ("win" | "loss" | "tie"), ``battle_tag`` (the
Showdown room), ``usernames`` (unsanitised ``player`` / ``opponent`` names), ``turns``,
``format`` and ``writer``. Ties are named ``LOSS`` (metamon's names only know WIN/LOSS) and
marked ``"result": "tie"``.

Usernames in the name are sanitised to ``[A-Za-z0-9-]`` so the name always splits into exactly
7 ``_``-separated fields.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Optional, Sequence

import lz4.frame

__all__ = [
    "TRAJECTORY_SUFFIXES",
    "DATE_FORMAT",
    "TrajectoryName",
    "sanitize_username",
    "shared_battle_id",
    "trajectory_filename",
    "parse_trajectory_filename",
    "write_trajectory",
    "read_trajectory",
    "write_battle",
]

TRAJECTORY_SUFFIXES = (".json.lz4", ".json")
DATE_FORMAT = "%m-%d-%Y-%H:%M:%S"  # self-collected battles; Showdown replays use %m-%d-%Y
_UNSAFE = re.compile(r"[^A-Za-z0-9-]")


def sanitize_username(name: str) -> str:
    """Drop every character but ASCII letters, digits and ``-`` (``"MM_Bot 7" -> "MMBot7"``)."""
    return _UNSAFE.sub("", str(name)) or "anonymous"


def shared_battle_id(battle_format: str, battle_tag: str, usernames: Sequence[str]) -> str:
    """``metamon-<format>-<10 digits>``, the same from both players' points of view.

    The digits hash the Showdown room tag with both usernames (sorted), so two perspectives of
    one battle share an id without talking to each other, while room numbers that restart with
    the server do not collide across runs (usernames carry random digits).
    """
    key = "|".join([battle_tag, *sorted(usernames)]).encode()
    digits = int(hashlib.sha1(key).hexdigest(), 16) % 10**10
    return f"metamon-{battle_format}-{digits:010d}"


@dataclass(frozen=True)
class TrajectoryName:
    battle_id: str
    rating: str
    player: str
    opponent: str
    date: str
    result: str  # "WIN" or "LOSS"

    @property
    def won(self) -> bool:
        return self.result == "WIN"


def trajectory_filename(
    battle_id: str,
    player: str,
    opponent: str,
    won: bool,
    date: Optional[datetime] = None,
    rating: str = "Unrated",
    suffix: str = ".json.lz4",
) -> str:
    """The 7-field file name (usernames sanitised; ``battle_id`` must not contain ``_``)."""
    if "_" in battle_id:
        raise ValueError(f"battle_id {battle_id!r} must not contain '_'")
    stamp = (date or datetime.now()).strftime(DATE_FORMAT)
    fields = [battle_id, str(rating), sanitize_username(player), "vs",
              sanitize_username(opponent), stamp, "WIN" if won else "LOSS"]
    return "_".join(fields) + suffix


def _strip_suffix(name: str) -> str:
    for suffix in TRAJECTORY_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    raise ValueError(f"{name!r} is not a trajectory file (expected {' or '.join(TRAJECTORY_SUFFIXES)})")


def parse_trajectory_filename(name: str) -> TrajectoryName:
    """Split a 7-field name: ``id_rating_player_vs_opponent_date_RESULT``.

    Raises ``ValueError`` naming the file when it does not have that shape.
    """
    stem = _strip_suffix(os.path.basename(name))
    fields = stem.split("_")
    if len(fields) != 7 or fields[3] != "vs" or fields[6] not in ("WIN", "LOSS"):
        raise ValueError(
            f"{name!r} is not a metamon trajectory name "
            "(<battle_id>_<rating>_<player>_vs_<opponent>_<date>_<WIN|LOSS>)"
        )
    battle_id, rating, player, _, opponent, date, result = fields
    return TrajectoryName(battle_id, rating, player, opponent, date, result)


def write_trajectory(
    root: str | os.PathLike,
    battle_format: str,
    filename: str,
    states: Sequence[dict],
    actions: Sequence[int],
    **extra,
) -> Path:
    """Write ``root/<battle_format>/<filename>`` atomically and return its path.

    The body is written to a temporary file in the same folder, flushed, fsync'ed and renamed,
    so a reader (or a killed writer) never sees a partial file. ``states`` and ``actions`` must
    have the same length and the last action must be ``-1``; ``extra`` keys are stored beside
    them (see the module docstring).
    """
    if len(states) != len(actions):
        raise ValueError(f"{filename}: {len(states)} states but {len(actions)} actions")
    if not actions or actions[-1] != -1:
        raise ValueError(f"{filename}: the last action must be -1 (no action after the last state)")
    parse_trajectory_filename(filename)
    folder = Path(root) / battle_format
    folder.mkdir(parents=True, exist_ok=True)
    body = json.dumps({"states": list(states), "actions": [int(a) for a in actions], **extra}).encode()
    if filename.endswith(".lz4"):
        body = lz4.frame.compress(body)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".writing-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(body)
            f.flush()
            os.fsync(f.fileno())
        final = folder / filename
        os.replace(tmp, final)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return final


def read_trajectory(path: str | os.PathLike) -> dict:
    """Load a ``.json.lz4`` (lz4 frame) or ``.json`` trajectory file into a dict."""
    path = Path(path)
    raw = path.read_bytes()
    if path.name.endswith(".lz4"):
        raw = lz4.frame.decompress(raw)
    return json.loads(raw)


def write_battle(
    root: str | os.PathLike,
    battle_format: str,
    battle_tag: str,
    player: str,
    opponent: str,
    result: str,
    turns: int,
    states: Sequence[dict],
    actions: Sequence[int],
    invalid_actions: Sequence[bool],
    writer: str,
    opponent_in_name: Optional[str] = None,
) -> tuple[Path, str]:
    """Write one finished battle from ``player``'s point of view; return (path, battle_id).

    The one place every producer (env, generation, evaluation) names and writes a battle:
    ``actions`` / ``invalid_actions`` get the trailing ``-1`` / ``False`` here, the battle id
    is :func:`shared_battle_id`, and ``opponent_in_name`` (default ``opponent``) is what the
    file name records (metamon names baseline opponents by class).
    """
    battle_id = shared_battle_id(battle_format, battle_tag, [player, opponent])
    name = trajectory_filename(battle_id, player, opponent_in_name or opponent, won=result == "win")
    path = write_trajectory(
        root, battle_format, name, states=states, actions=list(actions) + [-1],
        invalid_actions=list(invalid_actions) + [False], result=result, battle_tag=battle_tag,
        usernames={"player": player, "opponent": opponent}, turns=turns, format=battle_format,
        writer=writer,
    )
    return path, battle_id
