"""``ParsedReplayDataset``: metamon's trajectory files as a map-style dataset for offline RL.

A map-style dataset is anything with ``len()`` and integer indexing, which is all torch's
``DataLoader`` asks of one. The class does not subclass ``torch.utils.data.Dataset`` (whose base
adds nothing else) so that reading trajectory files never imports torch.
:class:`MetamonDataset` is the same dataset under the name and argument order of newer metamon
releases (``dset_root`` first, required).

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
Windows are for direct users of this dataset. **Training cuts windows in one place only**,
AMAGO's ``RLDataset.random_slice``: :class:`metamon.rl.dataset.MetamonAMAGODataset` takes whole
battles (it rejects a dataset built with ``max_seq_len``), so its ``time_idxs`` count from the
battle start and the experiment's ``padded_sampling`` mode applies.

Choosing files (names only, no file is opened while indexing):

* ``<battle_id>_<rating>_<player>_vs_<opponent>_<date>_<WIN|LOSS>`` plus ``.json.lz4`` or
  ``.json``, read by :func:`~metamon.data.trajectory_file.parse_trajectory_filename` (also names
  with more than 7 ``_``-fields: usernames containing ``_``, written by older tools). Hidden
  names (starting with ``.``, e.g. writes in progress) and sub-folders are ignored.
* The battle id (as is, or with brackets and spaces removed and lowercased) must contain the
  folder's format.
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
problems (unreadable file, a file or decompressed frame over ``max_file_bytes``, corrupt lz4,
invalid or too deeply nested JSON, wrong schema or value types, a non-finite or out-of-range
number, states/actions length mismatch, bad action values, fewer than 2 states, a state the
observation space rejects) only when the file is loaded. :meth:`~ParsedReplayDataset.load_item`
is the per-file boundary: any other exception raised while a file becomes an item (an
observation space or reward tripping over an odd state, say) is reason ``"malformed"`` with the
exception's type and message as the detail (and as ``__cause__``), so no file can stop an epoch
unless ``strict``. **Bad-file policy**: ``dset[i]`` for a file found bad returns the item of
the next good file in index order (``i+1``, ``i+2``, ... wrapping around), so an index always maps
to the same item source; the bad file is remembered, never read again and left out of later
:meth:`~ParsedReplayDataset.refresh_files` scans. Skip records are per process (each DataLoader
worker keeps its own).
"""

from __future__ import annotations

import argparse
import copy
import logging
import os
import random
import sys
from collections import Counter, defaultdict
from datetime import date, datetime
from pathlib import Path
from typing import Iterable, Optional, Sequence, Union

import numpy as np

from metamon import SUPPORTED_BATTLE_FORMATS
from metamon.data.featurized_cache import Featurized, FeaturizedCache, featurization_fingerprint
from metamon.data.trajectory_file import (
    BAD_DATE,
    BAD_STATE,
    FORMAT_MISMATCH,
    MALFORMED,
    MAX_TRAJECTORY_BYTES,
    NOT_A_TRAJECTORY,
    SKIP_REASONS,
    TrajectoryFileError,
    build_state,
    cycle_collector_paused,
    load_trajectory,
    parse_name_date,
    parse_trajectory_filename,
)
from metamon.errors import MetamonError, UnknownNameError
from metamon.formats import check_format
from metamon.hub import cache_dir
from metamon.interface import (
    N_UNIVERSAL_ACTIONS,
    ActionSpace,
    ObservationSpace,
    RewardFunction,
    TokenizedObservationSpace,
    UniversalAction,
    UniversalState,
    get_action_space,
    get_observation_space,
    get_reward_function,
    legal_agent_actions,
)
from metamon.tokenizer import DEFAULT_TOKENIZER, get_tokenizer

# TrajectoryFileError, SKIP_REASONS, build_state, load_trajectory and parse_name_date live in
# metamon.data.trajectory_file (the owner of the file format); they stay importable from here.
__all__ = [
    "MetamonDataset",
    "ParsedReplayDataset",
    "TrajectoryFileError",
    "SKIP_REASONS",
    "build_state",
    "load_trajectory",
    "parse_name_date",
]

logger = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]

WINS_LOSSES_BOTH = ("wins", "losses", "both")
_DOWNLOAD_HINT = "python -m metamon.data.download parsed-replays --formats {formats}"

# Universal actions are frozen and equal by index: one shared instance per index.
_ACTIONS = {i: UniversalAction(i) for i in range(-1, N_UNIVERSAL_ACTIONS)}


def _as_datetime(value, name: str) -> Optional[datetime]:
    if value is None or isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    raise MetamonError(f"{name} must be a datetime or date, got {value!r}")


# ---------------------------------------------------------------------------------------------
# The dataset
# ---------------------------------------------------------------------------------------------
class ParsedReplayDataset:
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
        max_seq_len: window length L of an item (``None``: whole battles, what training's
            ``MetamonAMAGODataset`` requires: ``RLDataset.random_slice`` cuts its windows).
        verbose: print a summary after each scan.
        shuffle: shuffle the file order after each scan (otherwise sorted by path).
        strict: raise :class:`TrajectoryFileError` for the first bad file instead of skipping it.
        max_file_bytes: the most bytes a file, or its decompressed JSON, may hold (``None``:
            ``MAX_TRAJECTORY_BYTES``, 64 MiB); larger files are skipped as ``"too large"``.
        featurized_cache: a folder for :class:`~metamon.data.featurized_cache.FeaturizedCache`
            (not in metamon): each file's featurization under these three spaces is stored
            there the first time the file is loaded, and read back (about 10x faster) while the
            file is unchanged. ``None`` (default): featurize on every load. The cache is
            ``dset.featurized_cache`` (its ``stats`` count hits and misses per process).

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
        max_file_bytes: Optional[int] = None,
        featurized_cache: Optional[PathLike] = None,
    ):
        if wins_losses_both not in WINS_LOSSES_BOTH:
            raise UnknownNameError("wins_losses_both value", wins_losses_both, WINS_LOSSES_BOTH)
        if max_seq_len is not None and (
            isinstance(max_seq_len, bool) or not isinstance(max_seq_len, int) or max_seq_len < 1
        ):
            raise MetamonError(f"max_seq_len must be a positive int or None, got {max_seq_len!r}")
        for name, value in (("min_rating", min_rating), ("max_rating", max_rating)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise MetamonError(f"{name} must be a number or None, got {value!r}")
        if max_file_bytes is not None and (
            isinstance(max_file_bytes, bool) or not isinstance(max_file_bytes, int) or max_file_bytes < 1
        ):
            raise MetamonError(f"max_file_bytes must be a positive int or None, got {max_file_bytes!r}")
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
        self.max_file_bytes = MAX_TRAJECTORY_BYTES if max_file_bytes is None else max_file_bytes
        self.featurized_cache: Optional[FeaturizedCache] = None
        if featurized_cache is not None:
            self.observation_space.reset()  # a space used before may hold a battle's history
            fingerprint = featurization_fingerprint(self.observation_space, self.action_space, self.reward_function)
            self.featurized_cache = FeaturizedCache(featurized_cache, fingerprint)
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
                try:
                    parsed = parse_trajectory_filename(name)
                except TrajectoryFileError as error:
                    if error.reason != NOT_A_TRAJECTORY:
                        n_trajectories += 1
                        skip(error.reason, path, error.detail)
                    elif not entry.is_dir():
                        skip(NOT_A_TRAJECTORY, path, error.detail)
                    continue
                n_trajectories += 1
                if not parsed.in_format(fmt):
                    skip(FORMAT_MISMATCH, path, f"battle id {parsed.battle_id!r} does not contain {fmt!r}")
                    continue
                if want_wins is not None and (parsed.result == "WIN") != want_wins:
                    filtered["result"] += 1
                    continue
                if rating_filter and not low_rating <= parsed.rating_value <= high_rating:
                    filtered["rating"] += 1
                    continue
                if date_filter:
                    try:
                        when = parsed.played_at
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

        The per-file boundary: every ``Exception`` raised on the way is a ``TrajectoryFileError``
        naming ``path`` (reasons in the module docstring; ``"malformed"`` for one no check
        names). Python's cyclic garbage collector is paused meanwhile: decoding and building
        allocate tens of thousands of acyclic objects (freed by reference counting alone), and
        the collections they would trigger cost about a third of the item's time for nothing.
        With a ``featurized_cache``, a file featurized before (and unchanged since) is read from
        the cache instead, and a file featurized now is stored there.
        """
        cache = self.featurized_cache
        try:
            with cycle_collector_paused():
                featurized = None if cache is None else cache.get(path)
                if featurized is None:
                    source_stat = None if cache is None else cache.stat(path)
                    states, actions = load_trajectory(path, self.max_file_bytes)
                    try:
                        featurized = self._featurize(states, actions)
                    except (ValueError, TypeError) as e:
                        raise TrajectoryFileError(path, BAD_STATE, str(e)) from e
                    if cache is not None:
                        cache.put(path, featurized, source_stat)
                return self._window(featurized)
        except TrajectoryFileError:
            raise
        except Exception as e:  # the per-file boundary (module docstring)
            raise TrajectoryFileError(path, MALFORMED, f"{type(e).__name__}: {e}") from e

    def _featurize(self, states: list[UniversalState], actions: list[int]) -> Featurized:
        """The whole battle through the three spaces (observations stacked per key)."""
        obs_space = self.observation_space
        obs_space.reset()
        observations = [obs_space.state_to_obs(s) for s in states]
        obs = {key: np.stack([o[key] for o in observations]) for key in observations[0]}
        to_agent = self.action_space.action_to_agent_output
        n_steps = len(states) - 1
        chosen, legal, missing = [], [], []
        for t in range(n_steps):
            state, action = states[t], actions[t]
            missing.append(action == -1)
            chosen.append(-1 if action == -1 else to_agent(state, _ACTIONS[action]))
            legal.append(legal_agent_actions(state, self.action_space))
        reward = self.reward_function
        rewards = np.array([reward(states[t], states[t + 1]) for t in range(n_steps)], dtype=np.float32)
        return Featurized(obs=obs, chosen=np.array(chosen, dtype=np.int64), legal=legal,
                          missing=np.array(missing, dtype=bool), rewards=rewards)

    def _window(self, featurized: Featurized):
        """The item (module docstring) of the whole battle or of a random window of it."""
        n_steps = len(featurized)
        start, stop = 0, n_steps
        if self.max_seq_len is not None:
            start = random.randint(0, max(n_steps - self.max_seq_len, 0))
            stop = min(start + self.max_seq_len, n_steps)
        obs = {key: list(value[start : stop + 1]) for key, value in featurized.obs.items()}
        actions = {
            "chosen": featurized.chosen[start:stop].tolist(),
            "legal": featurized.legal[start:stop],
            "missing": featurized.missing[start:stop].tolist(),
        }
        dones = np.zeros(stop - start, dtype=bool)
        dones[-1] = stop == n_steps
        return obs, actions, featurized.rewards[start:stop].copy(), dones


class MetamonDataset(ParsedReplayDataset):
    """:class:`ParsedReplayDataset` with the argument order of newer metamon releases, where
    ``MetamonDataset`` is the dataset of a local folder: ``dset_root`` comes first and is
    required; ``formats`` and every other keyword (filters, ``max_seq_len``, ``verbose``,
    ``shuffle``, ``strict``, ``max_file_bytes``, ``featurized_cache``) mean what they mean there."""

    def __init__(
        self,
        dset_root: PathLike,
        observation_space: ObservationSpace,
        action_space: ActionSpace,
        reward_function: RewardFunction,
        formats: Optional[Sequence[str]] = None,
        **kwargs,
    ):
        if dset_root is None:
            raise MetamonError(
                "MetamonDataset reads a local folder: pass dset_root (ParsedReplayDataset with "
                "dset_root=None reads the cache's parsed replays)"
            )
        super().__init__(observation_space, action_space, reward_function, dset_root=dset_root,
                         formats=formats, **kwargs)


def _resolve_folders(dset_root: Optional[PathLike], formats: Optional[Iterable[str]]) -> tuple[str, list[str]]:
    """The root folder and the formats to read, checking that every folder exists."""
    if isinstance(formats, str):
        formats = [formats]
    if formats is not None:
        formats = [check_format(f) for f in formats]
        if not formats:
            raise MetamonError("formats is empty; pass None for every supported format")
    if dset_root is None:
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
    parser = argparse.ArgumentParser(
        description="Load every trajectory of a parsed-replay folder once and report problems."
    )
    parser.add_argument("--dset_root", default=None, help="folder with <format>/ folders (default: the cache)")
    parser.add_argument("--formats", nargs="*", default=None)
    parser.add_argument("--obs_space", default="TeamPreviewObservationSpace")
    parser.add_argument("--action_space", default="DefaultActionSpace")
    parser.add_argument("--reward_function", default="DefaultShapedReward")
    parser.add_argument("--tokenizer", default=DEFAULT_TOKENIZER)
    parser.add_argument("--strict", action="store_true", help="stop at the first bad file")
    parser.add_argument("--max_file_mb", type=float, default=MAX_TRAJECTORY_BYTES / 2**20,
                        help="skip files whose (decompressed) JSON holds more MiB (default %(default)g)")
    args = parser.parse_args(argv)
    if not args.max_file_mb > 0:
        parser.error(f"--max_file_mb must be positive, got {args.max_file_mb}")
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
        max_file_bytes=max(1, int(args.max_file_mb * 2**20)),
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
