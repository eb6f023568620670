"""metamon's parsed-replay trajectory files: the one place that names, writes and reads them.

One file holds one battle from one player's point of view::

    <root>/<format>/<battle_id>_<rating>_<player>_vs_<opponent>_<date>_<WIN|LOSS>.json.lz4

The body is an lz4-*frame* compressed UTF-8 JSON object (plain JSON for ``.json``) with
metamon's two keys:

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

Names
    :func:`trajectory_filename` writes 7 fields, usernames sanitised to ``[A-Za-z0-9-]``.
    :func:`parse_trajectory_filename` is the one parser, and lenient: it also reads names with
    more than 7 fields (usernames containing ``_``, written by older tools): the battle id is
    the first field, the rating the second, the date and result the last two, and ``vs`` must
    appear between them (the first such ``vs`` splits player from opponent). Dates are
    ``%m-%d-%Y`` (Showdown replays) or ``%m-%d-%Y-%H:%M:%S`` (self-collected battles), parsed by
    :func:`parse_name_date` only when asked for (:attr:`TrajectoryName.played_at`).

Reading
    :func:`read_trajectory` -> the decoded JSON object; :func:`load_trajectory` -> validated
    ``UniversalState`` objects and actions. Every problem raises :class:`TrajectoryFileError`
    (a ``ValueError``) naming the file and one of ``SKIP_REASONS``. Files are read as if hostile:
    no file, nor its lz4 frame (decompressed step by step), may hold more than ``max_bytes``
    (default :data:`MAX_TRAJECTORY_BYTES`, 64 MiB; reason ``TOO_LARGE``, found before more is
    allocated); JSON nested too deeply is ``BAD_JSON``; and every field of every state is checked:
    text fields are strings, flags bools, lists lists, and every number the observation spaces
    and rewards read is finite and within the game's bounds (:data:`NUMBER_RANGES`; reason
    ``BAD_NUMBER``, or ``BAD_SCHEMA`` for a value that is not a number; bools count as 0 / 1).
    A ``NaN`` / ``Infinity`` literal, which the standard library's JSON (``orjson``'s fallback)
    reads, thus fails on the field that holds it.

Writing
    :func:`write_trajectory` / :func:`write_battle` write through :func:`metamon.files.atomic_write`,
    so a reader (or a killed writer) never sees a partial file; the temporary file is hidden
    (its name starts with ``.``), and readers skip hidden names. Non-finite numbers are refused
    (JSON has none).
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import hashlib
import json
import operator
import os
import re
from datetime import datetime
from pathlib import Path
from typing import Iterator, NamedTuple, Optional, Sequence, Union

import lz4.frame
import orjson

from metamon.errors import MetamonError
from metamon.files import atomic_write
from metamon.interface import N_UNIVERSAL_ACTIONS, UniversalMove, UniversalPokemon, UniversalState

__all__ = [
    "TRAJECTORY_SUFFIXES",
    "DATE_FORMAT",
    "UNRATED_RATING",
    "SKIP_REASONS",
    "MAX_TRAJECTORY_BYTES",
    "NUMBER_RANGES",
    "TrajectoryFileError",
    "TrajectoryName",
    "sanitize_username",
    "shared_battle_id",
    "trajectory_filename",
    "parse_name_date",
    "parse_trajectory_filename",
    "write_trajectory",
    "write_battle",
    "read_trajectory",
    "load_trajectory",
    "build_state",
    "cycle_collector_paused",
    "decompress_capped",
]

PathLike = Union[str, os.PathLike]

TRAJECTORY_SUFFIXES = (".json.lz4", ".json")
DATE_FORMAT = "%m-%d-%Y-%H:%M:%S"  # self-collected battles; Showdown replays use %m-%d-%Y
UNRATED_RATING = 1000  # what a rating that is not an integer ("Unrated") counts as
_RESULTS = ("WIN", "LOSS")
_UNSAFE = re.compile(r"[^A-Za-z0-9-]")
_NAME_SHAPE = "<battle_id>_<rating>_<player>_vs_<opponent>_<date>_<WIN|LOSS>"

# ---- why a file cannot be used (TrajectoryFileError.reason) -----------------------------------
NOT_A_TRAJECTORY = "not a trajectory file"  # name lacks .json / .json.lz4
BAD_NAME = "unparsable name"
FORMAT_MISMATCH = "battle id lacks the format"
BAD_DATE = "unparsable date"  # only checked while a date filter is active
UNREADABLE = "unreadable file"
CORRUPT_LZ4 = "corrupt lz4"
BAD_JSON = "invalid json"
BAD_SCHEMA = "wrong schema"
LENGTH_MISMATCH = "states/actions length mismatch"
BAD_ACTIONS = "bad actions"
TOO_SHORT = "fewer than 2 states"
BAD_STATE = "state rejected by the observation space"
BAD_NUMBER = "non-finite or out-of-range number"
TOO_LARGE = "too large"
MALFORMED = "malformed"  # any other failure while a file is loaded (detail: the exception)
SKIP_REASONS = (
    NOT_A_TRAJECTORY, BAD_NAME, FORMAT_MISMATCH, BAD_DATE, UNREADABLE, CORRUPT_LZ4, BAD_JSON,
    BAD_SCHEMA, LENGTH_MISMATCH, BAD_ACTIONS, TOO_SHORT, BAD_STATE, BAD_NUMBER, TOO_LARGE,
    MALFORMED,
)

MAX_TRAJECTORY_BYTES = 64 << 20
"""The default cap on a file's size and on its decompressed JSON (64 MiB; a long battle is ~1 MB)."""

NUMBER_RANGES: dict[str, tuple[float, float]] = {
    # UniversalPokemon (poke-env 0.16.1 dex, gens 1-9: base stats 0..255; stages -6..6)
    "hp_pct": (0.0, 1.0),
    "lvl": (1, 100),
    **{f"{stat}_boost": (-6, 6) for stat in ("atk", "spa", "def", "spd", "spe", "accuracy", "evasion")},
    **{f"base_{stat}": (0, 255) for stat in ("atk", "spa", "def", "spd", "spe", "hp")},
    # UniversalMove (dex: base power <= 250, priority -7..+5, PP <= 40 * 8/5 = 64). Replay
    # parsers count PP themselves and metamon's goes below 0 when it misses a PP restore, so
    # current_pp only has to be a sane count.
    "base_power": (0, 250),
    "accuracy": (0.0, 1.0),
    "priority": (-7, 5),
    "current_pp": (-1000, 64),
    "max_pp": (0, 64),
    # UniversalState
    "opponents_remaining": (0, 6),
}
"""field -> (low, high), inclusive: the numbers a state holds and the bounds :func:`load_trajectory`
enforces (a NaN fails every comparison, an infinity every bound)."""


class TrajectoryFileError(MetamonError, ValueError):
    """A trajectory file cannot be used; ``reason`` is one of ``SKIP_REASONS``."""

    def __init__(self, path: PathLike, reason: str, detail: str = ""):
        self.path, self.reason, self.detail = os.fspath(path), reason, detail
        super().__init__(f"{self.path}: {reason}" + (f" ({detail})" if detail else ""))


# ---------------------------------------------------------------------------------------------
# Names
# ---------------------------------------------------------------------------------------------
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


def parse_name_date(text: str) -> datetime:
    """``"10-27-2025"`` or ``"10-27-2025-14:03:11"`` -> ``datetime`` (``ValueError`` otherwise).

    Same strings as ``strptime`` with ``%m-%d-%Y`` / ``%m-%d-%Y-%H:%M:%S`` (unpadded numbers are
    accepted), parsed by hand because date filters run over millions of names.
    """
    parts = text.split("-")
    if len(parts) == 4:  # MM-DD-YYYY-HH:MM:SS
        parts = parts[:3] + parts[3].split(":")
    elif len(parts) != 3:
        parts = []
    widths = (2, 2, 4, 2, 2, 2)[: len(parts)]
    if len(parts) not in (3, 6) or not all(p.isdigit() and len(p) <= w for p, w in zip(parts, widths)):
        raise ValueError(f"date {text!r} is not MM-DD-YYYY or MM-DD-YYYY-HH:MM:SS")
    month, day, year, *clock = (int(p) for p in parts)
    return datetime(year, month, day, *clock)


class TrajectoryName(NamedTuple):
    """The fields of a trajectory file name (all strings, as written)."""

    battle_id: str
    rating: str
    player: str
    opponent: str
    date: str
    result: str  # "WIN" or "LOSS"

    @property
    def won(self) -> bool:
        return self.result == "WIN"

    @property
    def rating_value(self) -> int:
        """The rating as an int; one that is not an integer (``Unrated``) counts as 1000."""
        try:
            return int(self.rating)
        except ValueError:
            return UNRATED_RATING

    @property
    def played_at(self) -> datetime:
        """The date as a ``datetime`` (midnight for Showdown replays); ``ValueError`` if unparsable."""
        return parse_name_date(self.date)

    @property
    def metamon_readable(self) -> bool:
        """The name has exactly 7 fields, the only names metamon's own loader reads (it skips
        usernames containing ``_``); every name :func:`trajectory_filename` writes has."""
        return "_" not in self.player and "_" not in self.opponent

    def in_format(self, battle_format: str) -> bool:
        """The battle id contains ``battle_format``, as is or with brackets and spaces removed
        and lowercased (``"[Gen 9] OU-12"`` is a ``gen9ou`` battle)."""
        battle_id = self.battle_id
        if battle_format in battle_id:
            return True
        return battle_format in battle_id.replace("[", "").replace("]", "").replace(" ", "").lower()


_new_name = tuple.__new__  # builds a TrajectoryName without NamedTuple's argument handling


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


def parse_trajectory_filename(name: PathLike) -> TrajectoryName:
    """Split a file name (or path: only its last component is read) into its fields.

    Accepts ``id_rating_player_vs_opponent_date_RESULT`` plus ``.json.lz4`` or ``.json``, and
    the longer names of usernames containing ``_`` (module docstring). The date is not checked
    here. Raises :class:`TrajectoryFileError` with ``path = name`` and reason
    ``NOT_A_TRAJECTORY`` (another suffix) or ``BAD_NAME`` (another shape).
    """
    text = name if type(name) is str else os.fspath(name)
    # indexing parses millions of bare names: only paths pay for os.path.basename
    base = os.path.basename(text) if "/" in text or os.sep in text else text
    if base.endswith(".json.lz4"):
        fields = base[:-9].split("_")
    elif base.endswith(".json"):
        fields = base[:-5].split("_")
    else:
        raise TrajectoryFileError(text, NOT_A_TRAJECTORY, f"expected {' or '.join(TRAJECTORY_SUFFIXES)}")
    n = len(fields)
    if n == 7:
        if fields[3] == "vs" and fields[6] in _RESULTS:
            return _new_name(TrajectoryName, (fields[0], fields[1], fields[2], fields[4], fields[5], fields[6]))
    elif n > 7 and fields[-1] in _RESULTS and "vs" in fields[3:-3]:
        at = fields.index("vs", 3)
        return _new_name(TrajectoryName, (
            fields[0], fields[1], "_".join(fields[2:at]), "_".join(fields[at + 1:-2]), fields[-2], fields[-1],
        ))
    raise TrajectoryFileError(text, BAD_NAME, f"expected a metamon trajectory name {_NAME_SHAPE}")


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------
def write_trajectory(
    root: PathLike,
    battle_format: str,
    filename: str,
    states: Sequence[dict],
    actions: Sequence[int],
    **extra,
) -> Path:
    """Write ``root/<battle_format>/<filename>`` atomically and return its path.

    ``states`` and ``actions`` must have the same length and the last action must be ``-1``;
    ``filename`` must be a 7-field name (:func:`trajectory_filename`); ``extra`` keys are
    stored beside them (see the module docstring); no number may be NaN or infinite.
    ``ValueError`` otherwise, before anything is written.
    """
    if len(states) != len(actions):
        raise ValueError(f"{filename}: {len(states)} states but {len(actions)} actions")
    if not actions or actions[-1] != -1:
        raise ValueError(f"{filename}: the last action must be -1 (no action after the last state)")
    if not parse_trajectory_filename(filename).metamon_readable:
        raise TrajectoryFileError(filename, BAD_NAME, f"a written name has exactly 7 fields {_NAME_SHAPE}")
    body = json.dumps({"states": list(states), "actions": [int(a) for a in actions], **extra}, allow_nan=False).encode()
    if filename.endswith(".lz4"):
        body = lz4.frame.compress(body)
    return atomic_write(Path(root) / battle_format / filename, body)


def write_battle(
    root: PathLike,
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


# ---------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------
@contextlib.contextmanager
def cycle_collector_paused() -> Iterator[None]:
    """Disable ``gc`` inside the block, restoring its previous state (nesting-safe).

    Decoding a file and building its states allocate tens of thousands of acyclic objects
    (freed by reference counting alone); the cyclic collections they would trigger cost about a
    third of a dataset item's time for nothing.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _parse_json(raw: bytes):
    """``json.loads(raw)``, computed by ``orjson`` whenever it accepts ``raw`` (~1.7x faster).

    Both parsers give equal values for the JSON they share (floats are correctly rounded by
    both), with one exception no trajectory writer produces: ``orjson`` reads an integer
    beyond 64 bits as a float. ``orjson`` rejects some texts the standard library reads
    (``NaN`` / ``Infinity`` literals, numbers overflowing a float, lone surrogates, UTF-16/32
    text); those, and invalid texts, go to ``json.loads``, whose result or ``ValueError`` is
    returned. ``orjson`` ships with poke-env.
    """
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw)


_DECOMPRESS_CHUNK = 1 << 20  # output per step when a frame does not declare its size


def decompress_capped(path: str, raw: bytes, max_bytes: int) -> bytes:
    """The first lz4 frame of ``raw``, decompressed without ever holding more than
    ``max_bytes + 1`` output bytes (bytes after the frame are ignored, as ``lz4.frame.decompress``
    does).

    A frame declaring more than ``max_bytes`` is refused from its header; otherwise the output
    comes in steps of the declared size (+1 byte, which shows a frame that lied) or 1 MiB, each
    bounded by what the cap leaves.
    """
    try:
        declared = lz4.frame.get_frame_info(raw)["content_size"]  # 0: not declared
    except RuntimeError as e:
        raise TrajectoryFileError(path, CORRUPT_LZ4, str(e)) from e
    if declared > max_bytes:
        raise TrajectoryFileError(path, TOO_LARGE, f"the lz4 frame declares {declared} bytes (cap {max_bytes})")
    decompressor = lz4.frame.LZ4FrameDecompressor()
    step = declared + 1 if declared else _DECOMPRESS_CHUNK
    chunks, total, pending = [], 0, raw
    while True:
        try:
            chunk = decompressor.decompress(pending, max_length=min(step, max_bytes + 1 - total))
        except RuntimeError as e:
            raise TrajectoryFileError(path, CORRUPT_LZ4, str(e)) from e
        pending = b""
        chunks.append(chunk)
        total += len(chunk)
        if total > max_bytes:
            raise TrajectoryFileError(path, TOO_LARGE, f"decompresses to more than {max_bytes} bytes")
        if decompressor.eof:
            return chunk if len(chunks) == 1 else b"".join(chunks)
        if decompressor.needs_input:  # every input byte used, the frame unfinished
            raise TrajectoryFileError(path, CORRUPT_LZ4, "truncated lz4 frame")
        step = _DECOMPRESS_CHUNK


def read_trajectory(path: PathLike, max_bytes: Optional[int] = None) -> dict:
    """The decoded JSON object of a ``.json.lz4`` (lz4 frame) or ``.json`` file, unvalidated
    beyond being an object (``dict``).

    Raises :class:`TrajectoryFileError` with reason ``UNREADABLE`` (I/O error), ``TOO_LARGE``
    (the file, or its decompressed frame, holds more than ``max_bytes`` bytes; default
    :data:`MAX_TRAJECTORY_BYTES`; at most ``max_bytes + 1`` bytes are read or decompressed),
    ``CORRUPT_LZ4``, ``BAD_JSON`` (invalid JSON or UTF-8, or nested too deeply to parse) or
    ``BAD_SCHEMA`` (the top level is not an object).
    """
    path = os.fspath(path)
    limit = MAX_TRAJECTORY_BYTES if max_bytes is None else max_bytes
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > limit:
                raise TrajectoryFileError(path, TOO_LARGE, f"the file holds {size} bytes (cap {limit})")
            raw = f.read(size + 1)  # sized by fstat: read(limit + 1) would allocate the cap each time
            if len(raw) > size:  # the file grew since fstat (or is not a regular file)
                raw += f.read(limit + 1 - len(raw))
    except OSError as e:
        raise TrajectoryFileError(path, UNREADABLE, str(e)) from e
    if len(raw) > limit:
        raise TrajectoryFileError(path, TOO_LARGE, f"the file holds more than {limit} bytes")
    if path.endswith(".lz4"):
        raw = decompress_capped(path, raw, limit)
    try:
        data = _parse_json(raw)
    except ValueError as e:  # JSONDecodeError and UnicodeDecodeError
        raise TrajectoryFileError(path, BAD_JSON, str(e)) from e
    except RecursionError as e:  # orjson stops at depth 1024, the standard library overflows
        raise TrajectoryFileError(path, BAD_JSON, f"JSON nested too deeply ({e})") from e
    if not isinstance(data, dict):
        raise TrajectoryFileError(path, BAD_SCHEMA, f"top level is a {type(data).__name__}, not an object")
    return data


def load_trajectory(path: PathLike, max_bytes: Optional[int] = None) -> tuple[list[UniversalState], list[int]]:
    """The validated states and actions of one file (both of length T >= 2).

    Raises :class:`TrajectoryFileError` (reason in ``SKIP_REASONS``) when the file cannot be
    read or decoded (:func:`read_trajectory`, which ``max_bytes`` is passed to), lacks
    ``states`` / ``actions`` lists, has T < 2 or len(states) != len(actions), has an action
    outside -1..12 or a last action other than -1, or a state :func:`build_state` rejects: a
    missing key or a value of the wrong type (``BAD_SCHEMA``) or a number that is not finite or
    out of :data:`NUMBER_RANGES` (``BAD_NUMBER``); the detail names the field, e.g.
    ``states[3].player_active_pokemon.moves[1].accuracy = nan is not in [0.0, 1.0]``. A Pokémon
    that is unchanged from an earlier state is the same object in both (see :func:`build_state`'s
    ``seen``): treat the states as read-only. The cyclic garbage collector is paused meanwhile
    (:func:`cycle_collector_paused`).
    """
    path = os.fspath(path)
    with cycle_collector_paused():
        data = read_trajectory(path, max_bytes)
        states, actions = data.get("states"), data.get("actions")
        if type(states) is not list or type(actions) is not list:
            raise TrajectoryFileError(path, BAD_SCHEMA, 'needs "states" and "actions" lists')
        if len(states) != len(actions):
            raise TrajectoryFileError(path, LENGTH_MISMATCH, f"{len(states)} states, {len(actions)} actions")
        if len(states) < 2:
            raise TrajectoryFileError(path, TOO_SHORT, f"{len(states)} states")
        _check_actions(path, actions)
        built, seen = [], {}
        for t, state in enumerate(states):
            try:
                built.append(build_state(state, seen))
            except _FieldError as e:
                raise TrajectoryFileError(path, e.reason, f"states[{t}].{e.field} {e.problem}") from e
            except (ValueError, KeyError, TypeError, AttributeError) as e:
                raise TrajectoryFileError(path, BAD_SCHEMA, f"states[{t}]: {e}") from e
        return built, actions


def _check_actions(path: str, actions: list) -> None:
    for t, a in enumerate(actions):
        if type(a) is not int or not -1 <= a < N_UNIVERSAL_ACTIONS:
            raise TrajectoryFileError(
                path, BAD_ACTIONS, f"actions[{t}] = {a!r} is not an int in -1..{N_UNIVERSAL_ACTIONS - 1}"
            )
    if actions[-1] != -1:
        raise TrajectoryFileError(path, BAD_ACTIONS, f"the last action is {actions[-1]}, not -1")


# ---- states from JSON ---------------------------------------------------------------------------
def _keys(cls) -> tuple:
    return tuple(f.name for f in dataclasses.fields(cls))


_MOVE_FIELDS = frozenset(_keys(UniversalMove))
_POKEMON_KEYS = _keys(UniversalPokemon)
_STATE_KEYS = _keys(UniversalState)
_MOVES_AT = _POKEMON_KEYS.index("moves")
_STATE_POKEMON_AT = (_STATE_KEYS.index("player_active_pokemon"), _STATE_KEYS.index("opponent_active_pokemon"))
_STATE_SWITCHES_AT = _STATE_KEYS.index("available_switches")
_STATE_MOVES_AT = (_STATE_KEYS.index("player_prev_move"), _STATE_KEYS.index("opponent_prev_move"))
_STATE_PREVIEW_AT = _STATE_KEYS.index("opponent_teampreview")


_STATE_POKEMON_SLOTS = tuple(zip(_STATE_POKEMON_AT, ("player_active_pokemon", "opponent_active_pokemon")))
_STATE_MOVE_SLOTS = ("player_prev_move", "opponent_prev_move")


# ---- value checks: every field a state holds has its type, every number its range ------------
class _FieldError(ValueError):
    """``field`` (a path inside one state, e.g. ``available_switches[2].moves[0].accuracy``) holds
    a value of the wrong type (``BAD_SCHEMA``) or a number out of ``NUMBER_RANGES``
    (``BAD_NUMBER``); ``problem`` says how."""

    def __init__(self, reason: str, field: str, problem: str):
        self.reason, self.field, self.problem = reason, field, problem
        super().__init__(f"{field} {problem}")

    def inside(self, outer: str) -> "_FieldError":
        """The same error for the record at ``outer`` ("" = the state itself)."""
        return _FieldError(self.reason, f"{outer}.{self.field}", self.problem) if outer else self


class _Fields(NamedTuple):
    """The checked fields of one record type: ``text`` (str), ``flags`` (bool) and ``numbers``
    (``(field, low, high)``: an int or float, bools counting as ints, in ``[low, high]``)."""

    text: tuple = ()
    flags: tuple = ()
    numbers: tuple = ()


def _numbers(*fields: str) -> tuple:
    return tuple((f, *NUMBER_RANGES[f]) for f in fields)


_MOVE_FIELDS_CHECKED = _Fields(
    text=("name", "move_type", "category"),
    numbers=_numbers("base_power", "accuracy", "priority", "current_pp", "max_pp"),
)
_POKEMON_FIELDS_CHECKED = _Fields(
    text=("name", "types", "item", "ability", "status", "effect", "tera_type", "base_species"),
    numbers=_numbers(*(f for f in _POKEMON_KEYS if f in NUMBER_RANGES)),
)
_STATE_FIELDS_CHECKED = _Fields(
    text=("format", "player_conditions", "opponent_conditions", "weather", "battle_field"),
    flags=("forced_switch", "battle_won", "battle_lost", "can_tera"),
    numbers=_numbers("opponents_remaining"),
)
_STR = frozenset((str,))


def _wrong_type(field: str, value, expected: str) -> _FieldError:
    return _FieldError(BAD_SCHEMA, field, f"is a {type(value).__name__}, not {expected}")


def _explain(values: dict, fields: _Fields, where: str) -> None:
    """Raise a :class:`_FieldError` for the first field of ``values`` (a record's ``__dict__``)
    that fails ``fields``, located under ``where`` ("" = the state); return if all pass. NaN and
    infinities fail every range."""
    for field in fields.text:
        if type(values[field]) is not str:
            raise _wrong_type(field, values[field], "a str").inside(where)
    for field in fields.flags:
        if type(values[field]) is not bool:
            raise _wrong_type(field, values[field], "a bool").inside(where)
    for field, low, high in fields.numbers:
        value = values[field]
        if not isinstance(value, (int, float)):
            raise _wrong_type(field, value, "a number").inside(where)
        if not low <= value <= high:
            raise _FieldError(BAD_NUMBER, field, f"= {value!r} is not in [{low}, {high}]").inside(where)


def _compile_check(fields: _Fields):
    """``ok(values) -> bool``: :func:`_explain` would pass ``values`` (``ok`` raises ``TypeError``
    for a value no number compares with, which JSON's str, None, lists and dicts are).

    The same tests unrolled into one expression (built from the field names, as ``dataclasses``
    builds ``__init__``): it runs for ~10 records per state, 3x faster than a loop over fields.
    """
    terms = [f"type(v[{f!r}]) is str" for f in fields.text]
    terms += [f"type(v[{f!r}]) is bool" for f in fields.flags]
    terms += [f"{low!r} <= v[{f!r}] <= {high!r}" for f, low, high in fields.numbers]
    namespace: dict = {}
    exec(f"def ok(v):\n    return {' and '.join(terms)}\n", namespace)
    return namespace["ok"]


_move_ok = _compile_check(_MOVE_FIELDS_CHECKED)
_pokemon_ok = _compile_check(_POKEMON_FIELDS_CHECKED)
_state_ok = _compile_check(_STATE_FIELDS_CHECKED)


_dict_of = operator.attrgetter("__dict__")


def _check_pokemon(pokemon: UniversalPokemon, where: Union[str, int]) -> None:
    """Raise :class:`_FieldError` unless ``pokemon`` and its moves pass the checks; ``where`` is
    its field in the state, an int ``j`` for ``available_switches[j]``."""
    values = pokemon.__dict__
    try:
        if _pokemon_ok(values) and all(map(_move_ok, map(_dict_of, values["moves"]))):
            return
    except TypeError:
        pass
    if type(where) is int:
        where = f"available_switches[{where}]"
    _explain(values, _POKEMON_FIELDS_CHECKED, where)
    for j, move in enumerate(values["moves"]):
        _explain(move.__dict__, _MOVE_FIELDS_CHECKED, f"{where}.moves[{j}]")


def _check_state(state: UniversalState, pokemon_checked: bool) -> None:
    """Raise :class:`_FieldError` unless ``state``'s own fields, previous moves and team preview
    pass the checks, and its Pokémon too unless ``pokemon_checked`` (the builders check each
    Pokémon they build, see ``_build_pokemon``)."""
    values = state.__dict__
    try:
        passed = (
            _state_ok(values)
            and _move_ok(values["player_prev_move"].__dict__)
            and _move_ok(values["opponent_prev_move"].__dict__)
            and _STR.issuperset(map(type, values["opponent_teampreview"]))
        )
    except TypeError:
        passed = False
    if not passed:
        _explain(values, _STATE_FIELDS_CHECKED, "")
        for field in _STATE_MOVE_SLOTS:
            _explain(values[field].__dict__, _MOVE_FIELDS_CHECKED, field)
        for j, species in enumerate(values["opponent_teampreview"]):
            if type(species) is not str:
                raise _wrong_type(f"opponent_teampreview[{j}]", species, "a str")
    if not pokemon_checked:
        for _, field in _STATE_POKEMON_SLOTS:
            _check_pokemon(values[field], field)
        for j, pokemon in enumerate(values["available_switches"]):
            _check_pokemon(pokemon, j)


# ---- builders ------------------------------------------------------------------------------------
def _build_move(data) -> UniversalMove:
    if type(data) is dict and data.keys() == _MOVE_FIELDS:
        move = object.__new__(UniversalMove)
        move.__dict__ = data  # adopted as the attribute storage (see build_state)
        return move
    return UniversalMove.from_dict(data)


def _build_pokemon(data, seen: Optional[dict], where: Union[str, int]) -> UniversalPokemon:
    """Build (or reuse, see ``build_state``) and check one Pokémon; ``where`` is its field in the
    state, an int ``j`` for ``available_switches[j]``."""
    if type(data) is not dict:
        return UniversalPokemon.from_dict(data)  # raises its ValueError
    name = data.get("name")
    remember = seen is not None and type(name) is str
    if remember:
        last = seen.get(name)
        if last is not None and last[0] == data:
            return last[1]  # equal to a dict built and checked before
    if tuple(data) == _POKEMON_KEYS:
        values = list(data.values())
        values[_MOVES_AT] = [_build_move(m) for m in values[_MOVES_AT][:4]]
        pokemon = UniversalPokemon(*values)
    else:
        pokemon = UniversalPokemon.from_dict(data)
    _check_pokemon(pokemon, where)
    if remember:
        seen[name] = (data, pokemon)
    return pokemon


def build_state(data, seen: Optional[dict] = None) -> UniversalState:
    """``UniversalState.from_dict(data)``, faster for the layout every current writer uses.

    When ``data`` and each nested Pokémon dict have exactly the dataclass keys in field order,
    those objects are built positionally. A move dict with exactly ``UniversalMove``'s keys (any
    order) is *adopted*: the move is made without ``__init__`` and uses that very dict as its
    attribute storage (``__dict__``), so ``data`` must not be reused to edit moves and must
    not hold one move dict in two places (freshly decoded JSON, as in :func:`load_trajectory`,
    never does). Moves are most of a state's objects, and adopting them halves the cost of
    building; the Pokémon and the state keep ``__init__``-made objects, whose attributes the
    observation pass reads faster. ``data`` itself is not modified. Anything else (older files
    missing ``can_tera``, ``opponent_teampreview``, ``tera_type`` or ``base_species``, other key
    orders, malformed input) goes through ``from_dict``, which fills metamon's defaults or raises
    ``ValueError``. Every path gives equal objects (dataclasses' ``__init__`` only assigns the
    fields, and ``UniversalMove`` has no ``__post_init__``).

    Every path checks the values too (``ValueError`` naming the field): text fields are ``str``,
    flags ``bool``, ``available_switches`` and ``opponent_teampreview`` lists (of ``str`` for the
    latter), and every number an int or float (not a bool) within :data:`NUMBER_RANGES`. A
    Pokémon is checked once, when it is built: one reused from ``seen`` was checked then.

    ``seen`` (a dict the caller keeps across the states of one trajectory, initially empty)
    shares unchanged Pokémon between states: it maps a species name to the last Pokémon dict
    built under that name and its object, and a Pokémon dict *equal* to that one (``==``, a fast
    C-level comparison of the nested values) returns that very object instead of a new one. Most
    Pokémon (the benched ones above all) are unchanged from one turn to the next, so this skips
    most of the building, and observation spaces reuse the words of a Pokémon object they saw
    in the previous state (see ``DefaultObservationSpace``). The states are then *values*
    sharing parts: edit none of them in place. The dicts stored in ``seen`` must stay unmodified
    while it is used.
    """
    if type(data) is dict and tuple(data) == _STATE_KEYS:
        values = list(data.values())
        for i, field in _STATE_POKEMON_SLOTS:
            values[i] = _build_pokemon(values[i], seen, field)
        switches = values[_STATE_SWITCHES_AT]
        if type(switches) is not list:
            raise _wrong_type("available_switches", switches, "a list")
        values[_STATE_SWITCHES_AT] = [_build_pokemon(p, seen, j) for j, p in enumerate(switches)]
        for i in _STATE_MOVES_AT:
            values[i] = _build_move(values[i])
        preview = values[_STATE_PREVIEW_AT]
        if type(preview) is not list:
            raise _wrong_type("opponent_teampreview", preview, "a list")
        values[_STATE_PREVIEW_AT] = list(preview)
        state = UniversalState(*values)
        _check_state(state, pokemon_checked=True)
    else:
        state = UniversalState.from_dict(data)
        _check_state(state, pokemon_checked=False)
    return state
