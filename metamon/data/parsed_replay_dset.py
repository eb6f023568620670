"""``ParsedReplayDataset``: metamon's trajectory files as a torch ``Dataset`` for offline RL.

Files live in ``<dset_root>/<format>/`` (see :mod:`metamon.data.trajectory_file` for the name and
body). One item is one battle from one player's point of view, with T states and T actions
(the last action is always -1)::

    obs      dict key -> list of T arrays     (e.g. "text_tokens": int32[106], "numbers": float32[55])
    actions  {"chosen": [T-1 ints], "legal": [T-1 sets of ints], "missing": [T-1 bools]}
    rewards  float32 (T-1,)                   rewards[t] = reward_function(s_t, s_{t+1})
    dones    bool (T-1,)                      only the last entry True

``chosen[t]`` is ``action_space.action_to_agent_output(s_t, a_t)`` (a missing action, -1, stays
-1 and ``missing[t]`` is True); ``legal[t]`` maps ``maybe_valid_actions(s_t)`` through the same
function. The observation space is ``reset()`` and then applied to the states in order, so
features that remember the battle so far match what the agent saw online.

With ``max_seq_len = L`` an item is a random window: ``k`` is drawn uniformly from
``[0, max(T-1-L, 0)]`` (Python's ``random``, which torch re-seeds in every DataLoader worker);
``obs`` keeps states ``[k, k+L+1)`` (``L+1`` entries, fewer when the battle is shorter) and the
other fields transitions ``[k, k+L)``. The observation space still sees states ``0..k-1`` first.

Choosing files (names only, no file is opened while indexing):

* ``<battle_id>_<rating>_<player>_vs_<opponent>_<date>_<WIN|LOSS>`` plus ``.json.lz4`` or
  ``.json``. Names with more than 7 ``_``-fields (usernames containing ``_``, written by older
  tools) are read: the battle id is the first field, the rating the second, the date and result
  the last two, and ``vs`` must appear between them.
* The battle id (brackets and spaces removed, lowercased) must contain the folder's format.
* ``wins_losses_both``: ``"wins"`` keeps ``WIN`` files, ``"losses"`` keeps ``LOSS`` files.
* ``min_rating`` / ``max_rating`` (inclusive): a rating that is not an integer (``Unrated``)
  counts as 1000.
* ``min_date`` / ``max_date`` (inclusive, ``datetime`` or ``date``): the name's date in
  ``%m-%d-%Y`` (Showdown replays; midnight) or ``%m-%d-%Y-%H:%M:%S`` (self-collected battles).

Nothing is skipped silently, unlike metamon 1.4 (which dropped underscore usernames and bad
files without a word). Each problem has a reason (see ``SKIP_REASONS``); a skipped file is logged
as a warning, counted in :attr:`ParsedReplayDataset.skipped` (``Counter`` reason -> count) and
listed in :attr:`ParsedReplayDataset.skipped_files`, or, with ``strict=True``, raises
:class:`TrajectoryFileError` naming the file. Name problems are found while indexing; body
problems (unreadable file, corrupt lz4, invalid JSON, wrong schema, states/actions length
mismatch, bad action values, fewer than 2 states, a state the observation space rejects) only
when the file is loaded. **Bad-file policy**: ``dset[i]`` for a file found bad returns the item of
the next good file in index order (``i+1``, ``i+2``, ... wrapping around), so an index always maps
to the same item source; the bad file is remembered, never read again and left out of later
:meth:`~ParsedReplayDataset.refresh_files` scans. Skip records are per process (each DataLoader
worker keeps its own).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import gc
import json
import logging
import os
import random
import sys
from collections import Counter, defaultdict
from datetime import date, datetime
from pathlib import Path
from typing import Iterable, Optional, Sequence, Union

import lz4.frame
import numpy as np
import orjson
from torch.utils.data import Dataset

from metamon import SUPPORTED_BATTLE_FORMATS
from metamon.errors import MetamonError, UnknownNameError
from metamon.formats import check_format
from metamon.interface import (
    N_UNIVERSAL_ACTIONS,
    ActionSpace,
    ObservationSpace,
    RewardFunction,
    UniversalAction,
    UniversalMove,
    UniversalPokemon,
    UniversalState,
    legal_agent_actions,
)

__all__ = [
    "ParsedReplayDataset",
    "TrajectoryFileError",
    "SKIP_REASONS",
    "build_state",
    "load_trajectory",
    "parse_name_date",
]

logger = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]

# ---- why a file was skipped (keys of ParsedReplayDataset.skipped) ----------------------------
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
SKIP_REASONS = (
    NOT_A_TRAJECTORY, BAD_NAME, FORMAT_MISMATCH, BAD_DATE, UNREADABLE, CORRUPT_LZ4, BAD_JSON,
    BAD_SCHEMA, LENGTH_MISMATCH, BAD_ACTIONS, TOO_SHORT, BAD_STATE,
)

WINS_LOSSES_BOTH = ("wins", "losses", "both")
UNRATED_RATING = 1000
_LZ4_SUFFIX, _JSON_SUFFIX = ".json.lz4", ".json"
_RESULTS = ("WIN", "LOSS")
_DOWNLOAD_HINT = "python -m metamon.data.download parsed-replays --formats {formats}"


class TrajectoryFileError(MetamonError, ValueError):
    """A trajectory file cannot be used; ``reason`` is one of ``SKIP_REASONS``."""

    def __init__(self, path: PathLike, reason: str, detail: str = ""):
        self.path, self.reason, self.detail = os.fspath(path), reason, detail
        super().__init__(f"{self.path}: {reason}" + (f" ({detail})" if detail else ""))


# ---------------------------------------------------------------------------------------------
# File names
# ---------------------------------------------------------------------------------------------
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


def _clean_battle_id(battle_id: str) -> str:
    return battle_id.replace("[", "").replace("]", "").replace(" ", "").lower()


def _rating_value(rating: str) -> float:
    try:
        return int(rating)
    except ValueError:
        return UNRATED_RATING


def _as_datetime(value, name: str) -> Optional[datetime]:
    if value is None or isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    raise MetamonError(f"{name} must be a datetime or date, got {value!r}")


# ---------------------------------------------------------------------------------------------
# States from JSON
# ---------------------------------------------------------------------------------------------
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


def _build_move(data) -> UniversalMove:
    if type(data) is dict and data.keys() == _MOVE_FIELDS:
        move = object.__new__(UniversalMove)
        move.__dict__ = data  # adopted as the attribute storage (see build_state)
        return move
    return UniversalMove.from_dict(data)


def _build_pokemon(data, seen: Optional[dict]) -> UniversalPokemon:
    if type(data) is not dict:
        return UniversalPokemon.from_dict(data)  # raises its ValueError
    name = data.get("name")
    remember = seen is not None and type(name) is str
    if remember:
        last = seen.get(name)
        if last is not None and last[0] == data:
            return last[1]
    if tuple(data) == _POKEMON_KEYS:
        values = list(data.values())
        values[_MOVES_AT] = [_build_move(m) for m in values[_MOVES_AT][:4]]
        pokemon = UniversalPokemon(*values)
    else:
        pokemon = UniversalPokemon.from_dict(data)
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
        for i in _STATE_POKEMON_AT:
            values[i] = _build_pokemon(values[i], seen)
        values[_STATE_SWITCHES_AT] = [_build_pokemon(p, seen) for p in values[_STATE_SWITCHES_AT]]
        for i in _STATE_MOVES_AT:
            values[i] = _build_move(values[i])
        values[_STATE_PREVIEW_AT] = list(values[_STATE_PREVIEW_AT])
        return UniversalState(*values)
    return UniversalState.from_dict(data)


# Universal actions are frozen and equal by index: one shared instance per index.
_ACTIONS = {i: UniversalAction(i) for i in range(-1, N_UNIVERSAL_ACTIONS)}


@contextlib.contextmanager
def _cycle_collector_paused():
    """Disable ``gc`` inside the block, restoring its previous state (nesting-safe)."""
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


def _decode(path: str) -> dict:
    """Read and decode one file; ``TrajectoryFileError`` for I/O, lz4 or JSON problems."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise TrajectoryFileError(path, UNREADABLE, str(e)) from e
    if path.endswith(_LZ4_SUFFIX):
        try:
            raw = lz4.frame.decompress(raw)
        except RuntimeError as e:
            raise TrajectoryFileError(path, CORRUPT_LZ4, str(e)) from e
    try:
        data = _parse_json(raw)
    except ValueError as e:  # JSONDecodeError and UnicodeDecodeError
        raise TrajectoryFileError(path, BAD_JSON, str(e)) from e
    if not isinstance(data, dict):
        raise TrajectoryFileError(path, BAD_SCHEMA, f"top level is a {type(data).__name__}, not an object")
    return data


def _check_actions(path: str, actions: list) -> None:
    for t, a in enumerate(actions):
        if type(a) is not int or not -1 <= a < N_UNIVERSAL_ACTIONS:
            raise TrajectoryFileError(path, BAD_ACTIONS, f"actions[{t}] = {a!r} is not an int in -1..{N_UNIVERSAL_ACTIONS - 1}")
    if actions[-1] != -1:
        raise TrajectoryFileError(path, BAD_ACTIONS, f"the last action is {actions[-1]}, not -1")


def load_trajectory(path: PathLike) -> tuple[list[UniversalState], list[int]]:
    """The validated states and actions of one file (both of length T >= 2).

    Raises :class:`TrajectoryFileError` (reason in ``SKIP_REASONS``) when the file cannot be
    read or decoded, lacks ``states`` / ``actions`` lists, has T < 2 or len(states) != len(actions),
    has an action outside -1..12 or a last action other than -1, or a state ``from_dict`` rejects.
    A Pokémon that is unchanged from an earlier state is the same object in both (see
    :func:`build_state`'s ``seen``): treat the states as read-only.
    """
    path = os.fspath(path)
    with _cycle_collector_paused():  # see ParsedReplayDataset.load_item
        return _load_trajectory(path)


def _load_trajectory(path: str) -> tuple[list[UniversalState], list[int]]:
    data = _decode(path)
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
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise TrajectoryFileError(path, BAD_SCHEMA, f"states[{t}]: {e}") from e
    return built, actions


# ---------------------------------------------------------------------------------------------
# The dataset
# ---------------------------------------------------------------------------------------------
class ParsedReplayDataset(Dataset):
    """metamon's parsed-replay dataset (same constructor, items and filters as metamon 1.4).

    Args:
        observation_space, action_space, reward_function: deep-copied; items are built with the
            copies (usually a ``TokenizedObservationSpace``).
        dset_root: folder holding ``<format>/`` folders. ``None``: ``$METAMON_CACHE_DIR/
            parsed-replays``, where every requested format folder must exist (download it with
            ``python -m metamon.data.download parsed-replays --formats F``).
        formats: format ids (checked against the server's list). ``None``: with ``dset_root``
            ``None`` every supported format; otherwise every supported format that has a folder.
        wins_losses_both, min_rating, max_rating, min_date, max_date: file-name filters (module
            docstring).
        max_seq_len: window length L of an item (``None``: whole battles).
        verbose: print a summary after each scan.
        shuffle: shuffle the file order after each scan (otherwise sorted by path).
        strict: raise :class:`TrajectoryFileError` for the first bad file instead of skipping it.

    ``len(dset)`` is the number of indexed files; ``dset.filenames`` their paths;
    ``dset.filtered`` counts files left out by each filter (``"result"``, ``"rating"``,
    ``"date"``); ``dset.skipped`` / ``dset.skipped_files`` record bad files. Raises
    :class:`MetamonError` when a folder is missing or holds no trajectory file, or when no file
    passes the filters.
    """

    def __init__(
        self,
        observation_space: ObservationSpace,
        action_space: ActionSpace,
        reward_function: RewardFunction,
        dset_root: Optional[PathLike] = None,
        formats: Optional[Sequence[str]] = None,
        wins_losses_both: str = "both",
        min_rating: Optional[float] = None,
        max_rating: Optional[float] = None,
        min_date: Optional[datetime] = None,
        max_date: Optional[datetime] = None,
        max_seq_len: Optional[int] = None,
        verbose: bool = False,
        shuffle: bool = False,
        strict: bool = False,
    ):
        if wins_losses_both not in WINS_LOSSES_BOTH:
            raise UnknownNameError("wins_losses_both value", wins_losses_both, WINS_LOSSES_BOTH)
        if max_seq_len is not None and (isinstance(max_seq_len, bool) or not isinstance(max_seq_len, int) or max_seq_len < 1):
            raise MetamonError(f"max_seq_len must be a positive int or None, got {max_seq_len!r}")
        for name, value in (("min_rating", min_rating), ("max_rating", max_rating)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise MetamonError(f"{name} must be a number or None, got {value!r}")
        self.observation_space = copy.deepcopy(observation_space)
        self.action_space = copy.deepcopy(action_space)
        self.reward_function = copy.deepcopy(reward_function)
        self.dset_root, self.formats = _resolve_folders(dset_root, formats)
        self.wins_losses_both = wins_losses_both
        self.min_rating, self.max_rating = min_rating, max_rating
        self.min_date = _as_datetime(min_date, "min_date")
        self.max_date = _as_datetime(max_date, "max_date")
        self.max_seq_len = max_seq_len
        self.verbose, self.shuffle, self.strict = verbose, shuffle, strict
        self.filenames: list[str] = []
        self.filtered: Counter = Counter()
        self._index_skips: dict[str, list[str]] = {}
        self._load_skips: dict[str, str] = {}  # path -> reason, kept across refreshes
        self.refresh_files()

    # -- skip records ---------------------------------------------------------------------------
    @property
    def skipped(self) -> Counter:
        """reason -> number of files skipped for it (last scan's name problems + every bad body seen)."""
        counts = Counter({reason: len(paths) for reason, paths in self._index_skips.items()})
        counts.update(self._load_skips.values())
        return counts

    @property
    def skipped_files(self) -> dict[str, list[str]]:
        """reason -> sorted paths of the files skipped for it."""
        files = defaultdict(list, {reason: list(paths) for reason, paths in self._index_skips.items()})
        for path, reason in self._load_skips.items():
            files[reason].append(path)
        return {reason: sorted(paths) for reason, paths in files.items()}

    def _reject(self, error: TrajectoryFileError) -> None:
        """Record a bad body (or raise it in strict mode)."""
        if self.strict:
            raise error
        self._load_skips[error.path] = error.reason
        logger.warning("Skipping trajectory %s", error)

    # -- indexing -------------------------------------------------------------------------------
    def refresh_files(self) -> None:
        """Scan the format folders again (new files appear; the order is rebuilt).

        Only names are read (``os.scandir``); files known to be bad are left out.
        """
        files: list[str] = []
        skips: dict[str, list[str]] = defaultdict(list)
        filtered: Counter = Counter()
        for fmt in self.formats:
            self._scan_folder(fmt, files, skips, filtered)
        files.sort()
        if self.shuffle:
            random.shuffle(files)
        self.filenames, self._index_skips, self.filtered = files, dict(skips), filtered
        for reason, paths in self._index_skips.items():
            logger.warning("Skipped %d files under %s: %s (e.g. %s)", len(paths), self.dset_root, reason, paths[:3])
        if not files:
            raise MetamonError(
                f"No trajectory file under {self.dset_root} ({', '.join(self.formats)}) passes the "
                f"filters: left out by filter {dict(filtered)}, skipped {dict(self.skipped)}"
            )
        if self.verbose:
            print(
                f"ParsedReplayDataset: {len(files)} files from {self.dset_root} "
                f"({', '.join(self.formats)}); filtered {dict(filtered)}; skipped {dict(self.skipped)}"
            )

    def _scan_folder(self, fmt: str, files: list, skips: dict, filtered: Counter) -> None:
        """Append the paths of ``<root>/<fmt>`` that pass the filters; record name problems."""
        folder = os.path.join(self.dset_root, fmt)
        want_wins = {"wins": True, "losses": False}.get(self.wins_losses_both)
        rating_filter = self.min_rating is not None or self.max_rating is not None
        low_rating = -float("inf") if self.min_rating is None else self.min_rating
        high_rating = float("inf") if self.max_rating is None else self.max_rating
        date_filter = self.min_date is not None or self.max_date is not None
        known_bad = self._load_skips
        n_trajectories = 0

        def skip(reason: str, path: str, detail: str) -> None:
            if self.strict:
                raise TrajectoryFileError(path, reason, detail)
            skips[reason].append(path)

        try:
            entries = os.scandir(folder)
        except OSError as e:
            raise MetamonError(f"Cannot list the format folder {folder}: {e}") from e
        with entries:
            for entry in entries:
                name = entry.name
                if name.startswith("."):  # hidden files, including writes in progress
                    continue
                path = os.path.join(folder, name)
                if name.endswith(_LZ4_SUFFIX):
                    stem = name[: -len(_LZ4_SUFFIX)]
                elif name.endswith(_JSON_SUFFIX):
                    stem = name[: -len(_JSON_SUFFIX)]
                else:
                    if not entry.is_dir():
                        skip(NOT_A_TRAJECTORY, path, "expected .json.lz4 or .json")
                    continue
                n_trajectories += 1
                fields = stem.split("_")
                if len(fields) < 7 or fields[-1] not in _RESULTS or "vs" not in fields[3:-3]:
                    skip(BAD_NAME, path, "expected <battle_id>_<rating>_<player>_vs_<opponent>_<date>_<WIN|LOSS>")
                    continue
                battle_id = fields[0]
                if fmt not in battle_id and fmt not in _clean_battle_id(battle_id):
                    skip(FORMAT_MISMATCH, path, f"battle id {battle_id!r} does not contain {fmt!r}")
                    continue
                if want_wins is not None and (fields[-1] == "WIN") != want_wins:
                    filtered["result"] += 1
                    continue
                if rating_filter and not low_rating <= _rating_value(fields[1]) <= high_rating:
                    filtered["rating"] += 1
                    continue
                if date_filter:
                    try:
                        when = parse_name_date(fields[-2])
                    except ValueError as e:
                        skip(BAD_DATE, path, str(e))
                        continue
                    if (self.min_date is not None and when < self.min_date) or (
                        self.max_date is not None and when > self.max_date
                    ):
                        filtered["date"] += 1
                        continue
                if path not in known_bad:
                    files.append(path)
        if n_trajectories == 0:
            raise MetamonError(
                f"The format folder {folder} holds no trajectory file (*.json.lz4 or *.json)"
            )

    # -- items ----------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.filenames)

    def __getitem__(self, i: int):
        """``(obs, actions, rewards, dones)`` of file ``i`` (or of the next good file, see module docs)."""
        n = len(self.filenames)
        if not 0 <= i < n:
            raise IndexError(f"index {i} is out of range for a dataset of {n} files")
        for step in range(n):
            path = self.filenames[(i + step) % n]
            if path in self._load_skips:
                continue
            try:
                return self.load_item(path)
            except TrajectoryFileError as error:
                self._reject(error)
        raise MetamonError(
            f"Every one of the {n} files under {self.dset_root} is unusable: {dict(self.skipped)}"
        )

    def random_sample(self):
        """The item of a uniformly random file (Python's ``random``)."""
        return self[random.randrange(len(self))]

    def load_item(self, path: PathLike):
        """``(obs, actions, rewards, dones)`` for one file (``TrajectoryFileError`` if it is bad).

        Python's cyclic garbage collector is paused meanwhile: decoding and building allocate
        tens of thousands of acyclic objects (freed by reference counting alone), and the
        collections they would trigger cost about a third of the item's time for nothing.
        """
        with _cycle_collector_paused():
            states, actions = load_trajectory(path)
            try:
                return self._make_item(states, actions)
            except (ValueError, TypeError) as e:
                raise TrajectoryFileError(path, BAD_STATE, str(e)) from e

    def _make_item(self, states: list[UniversalState], actions: list[int]):
        n_steps = len(states) - 1
        start, stop = 0, n_steps
        if self.max_seq_len is not None:
            start = random.randint(0, max(n_steps - self.max_seq_len, 0))
            stop = min(start + self.max_seq_len, n_steps)
        obs_space = self.observation_space
        obs_space.reset()
        window = [obs_space.state_to_obs(s) for s in states[: stop + 1]][start:]
        obs = {key: [o[key] for o in window] for key in window[0]}

        to_agent = self.action_space.action_to_agent_output
        chosen, legal, missing = [], [], []
        for t in range(start, stop):
            state, action = states[t], actions[t]
            missing.append(action == -1)
            chosen.append(-1 if action == -1 else to_agent(state, _ACTIONS[action]))
            legal.append(legal_agent_actions(state, self.action_space))
        reward = self.reward_function
        rewards = np.array([reward(states[t], states[t + 1]) for t in range(start, stop)], dtype=np.float32)
        dones = np.zeros(stop - start, dtype=bool)
        dones[-1] = stop == n_steps
        return obs, {"chosen": chosen, "legal": legal, "missing": missing}, rewards, dones


def _resolve_folders(dset_root: Optional[PathLike], formats: Optional[Iterable[str]]) -> tuple[str, list[str]]:
    """The root folder and the formats to read, checking that every folder exists."""
    if isinstance(formats, str):
        formats = [formats]
    if formats is not None:
        formats = [check_format(f) for f in formats]
        if not formats:
            raise MetamonError("formats is empty; pass None for every supported format")
    if dset_root is None:
        from metamon.hub import cache_dir

        root = cache_dir() / "parsed-replays"
        wanted = formats or list(SUPPORTED_BATTLE_FORMATS)
        missing = [f for f in wanted if not (root / f).is_dir()]
        if missing:
            raise MetamonError(
                f"Parsed replays are missing from the cache: no folder {root / missing[0]}"
                + (f" (nor for {', '.join(missing[1:])})" if len(missing) > 1 else "")
                + f". Download them with `{_DOWNLOAD_HINT.format(formats=' '.join(missing))}`."
            )
        return str(root), wanted
    root = Path(dset_root).expanduser()
    if not root.is_dir():
        raise MetamonError(f"dset_root {root} does not exist or is not a folder")
    if formats is None:
        wanted = [f for f in SUPPORTED_BATTLE_FORMATS if (root / f).is_dir()]
        if not wanted:
            found = sorted(p.name for p in root.iterdir() if p.is_dir())
            raise MetamonError(
                f"{root} has no <format>/ folder of a supported format (expected e.g. {root / 'gen1ou'}; "
                f"subfolders found: {found}); pass formats=[...] for other formats"
            )
        return str(root), wanted
    missing = [f for f in formats if not (root / f).is_dir()]
    if missing:
        raise MetamonError(
            f"No folder {root / missing[0]} for format {missing[0]!r}: a dataset root holds one "
            f"<format>/ folder per format (missing: {', '.join(missing)})"
        )
    return str(root), formats


# ---------------------------------------------------------------------------------------------
# python -m metamon.data.parsed_replay_dset: load every file once and report what was skipped
# ---------------------------------------------------------------------------------------------
def _main(argv: Optional[Sequence[str]] = None) -> int:
    from metamon.interface import (
        TokenizedObservationSpace,
        get_action_space,
        get_observation_space,
        get_reward_function,
    )
    from metamon.tokenizer import DEFAULT_TOKENIZER, get_tokenizer

    parser = argparse.ArgumentParser(description="Load every trajectory of a parsed-replay folder once and report problems.")
    parser.add_argument("--dset_root", default=None, help="folder with <format>/ folders (default: the cache)")
    parser.add_argument("--formats", nargs="*", default=None)
    parser.add_argument("--obs_space", default="TeamPreviewObservationSpace")
    parser.add_argument("--action_space", default="DefaultActionSpace")
    parser.add_argument("--reward_function", default="DefaultShapedReward")
    parser.add_argument("--tokenizer", default=DEFAULT_TOKENIZER)
    parser.add_argument("--strict", action="store_true", help="stop at the first bad file")
    args = parser.parse_args(argv)
    try:
        return _check_every_file(args, TokenizedObservationSpace(
            get_observation_space(args.obs_space), get_tokenizer(args.tokenizer)),
            get_action_space(args.action_space), get_reward_function(args.reward_function))
    except MetamonError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


def _check_every_file(args, observation_space, action_space, reward_function) -> int:
    dset = ParsedReplayDataset(
        observation_space,
        action_space,
        reward_function,
        dset_root=args.dset_root,
        formats=args.formats,
        verbose=True,
        strict=args.strict,
    )
    good = timesteps = 0
    for path in dset.filenames:
        try:
            _, _, rewards, _ = dset.load_item(path)
        except TrajectoryFileError as error:
            dset._reject(error)
            continue
        good += 1
        timesteps += len(rewards)
    print(f"{good} good files, {timesteps} timesteps; skipped {dict(dset.skipped)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
