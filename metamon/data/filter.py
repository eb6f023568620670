"""Select trajectory files by quality: invalid-action rate, battle length and outcome balance.

``IN/<format>/*.json.lz4`` -> ``OUT/<format>/`` (the layout :class:`ParsedReplayDataset`
reads). Kept files are hard-linked into ``OUT`` (copied when ``copy=True`` or when the two
folders are on different file systems), each through a temporary name and an atomic rename, so
``OUT`` never holds a partial file. Command line: ``scripts/filter_selfplay_data.py --help``.

Rules, applied in this order to each file (the first that fails names the drop reason):

1. ``bad_name``: not a 7-field metamon trajectory name (metamon's own loader would skip it);
2. ``unreadable``: the body cannot be decompressed / parsed, or has no ``states``/``actions``;
3. ``no_decisions``: fewer than 2 states (no action was taken);
4. ``too_short`` / ``too_long``: turns outside ``[min_turns, max_turns]``. Turns are the
   recorded ``turns`` key (Showdown's turn counter); files without it use the number of
   decisions, ``len(actions) - 1``;
5. ``invalid_rate``: invalid rate > ``max_invalid_rate``, where

       invalid rate = (# True in invalid_actions[:-1]) / (len(actions) - 1)

   i.e. the share of decisions whose first choice the server rejected, from the flags written
   by metamon's env and :mod:`metamon.data.recording`; the trailing entry of the final state
   is not a decision. A ``-1`` action is *not* an invalid action (it is an unknown one).
   Files without ``invalid_actions`` flags (e.g. metamon's own parsed replays) count as rate 0
   and are reported under the warning ``no_invalid_flags``.
6. ``balance`` (only with ``balance_outcomes``): per format, the survivors labelled WIN and
   LOSS in their file names are cut to equal numbers by dropping the excess of the larger
   class uniformly at random (``random.Random(seed)`` over the sorted names, so a seed gives
   the same selection every time). Ties (``"result": "tie"``, named LOSS) are kept and not
   counted in either class.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from metamon.data.trajectory_file import parse_trajectory_filename, read_trajectory
from metamon.errors import MetamonError
from metamon.files import atomic_path
from metamon.formats import check_format, known_formats

__all__ = ["FilterCriteria", "FilterReport", "judge_trajectory", "filter_trajectories", "build_parser", "main"]

SUFFIX = ".json.lz4"


@dataclass(frozen=True)
class FilterCriteria:
    max_invalid_rate: float = 0.05
    min_turns: int = 10
    max_turns: int = 1000
    balance_outcomes: bool = False
    seed: int = 42

    def __post_init__(self):
        if not 0.0 <= self.max_invalid_rate <= 1.0:
            raise MetamonError(f"max_invalid_rate must be in [0, 1], got {self.max_invalid_rate}")
        if self.min_turns < 0 or self.max_turns < self.min_turns:
            raise MetamonError(f"need 0 <= min_turns <= max_turns, got {self.min_turns}, {self.max_turns}")


@dataclass
class FilterReport:
    kept: Dict[str, int] = field(default_factory=dict)  # format -> files kept
    dropped: Counter = field(default_factory=Counter)  # reason -> files dropped
    warnings: Counter = field(default_factory=Counter)  # e.g. no_invalid_flags -> files

    @property
    def total_kept(self) -> int:
        return sum(self.kept.values())

    def summary(self) -> str:
        per_format = ", ".join(f"{f} {n}" for f, n in sorted(self.kept.items())) or "none"
        lines = [f"kept {self.total_kept} files: {per_format}"]
        lines.append(f"dropped {sum(self.dropped.values())} files"
                     + (": " + ", ".join(f"{r} {n}" for r, n in sorted(self.dropped.items())) if self.dropped else ""))
        for warning, n in sorted(self.warnings.items()):
            lines.append(f"warning: {n} files {warning.replace('_', ' ')} (treated as invalid rate 0)"
                         if warning == "no_invalid_flags" else f"warning: {warning} {n}")
        return "\n".join(lines)


@dataclass(frozen=True)
class _Verdict:
    reason: Optional[str]  # None = keep
    won: bool = False
    tie: bool = False
    no_flags: bool = False


def judge_trajectory(path: Path, criteria: FilterCriteria) -> _Verdict:
    """Apply rules 1-5 of the module docstring to one file."""
    try:
        name = parse_trajectory_filename(path.name)
    except ValueError:
        return _Verdict("bad_name")
    if not name.metamon_readable:
        return _Verdict("bad_name")
    try:
        data = read_trajectory(path)
        states, actions = data["states"], data["actions"]
    except (OSError, ValueError, RuntimeError, KeyError, TypeError):
        return _Verdict("unreadable")
    decisions = len(actions) - 1
    if len(states) < 2 or decisions < 1:
        return _Verdict("no_decisions")
    turns = data.get("turns", decisions)
    if turns < criteria.min_turns:
        return _Verdict("too_short")
    if turns > criteria.max_turns:
        return _Verdict("too_long")
    flags = data.get("invalid_actions")
    no_flags = flags is None
    rate = 0.0 if no_flags else sum(bool(f) for f in flags[:-1]) / decisions
    if rate > criteria.max_invalid_rate:
        return _Verdict("invalid_rate", no_flags=no_flags)
    return _Verdict(None, won=name.won, tie=data.get("result") == "tie", no_flags=no_flags)


def _balance(survivors: List[tuple], rng: random.Random) -> tuple[List[Path], int]:
    """Equal WIN / LOSS counts (ties untouched); returns (kept paths, dropped count)."""
    wins = sorted(p for p, v in survivors if v.won)
    losses = sorted(p for p, v in survivors if not v.won and not v.tie)
    ties = [p for p, v in survivors if v.tie]
    n = min(len(wins), len(losses))
    kept = rng.sample(wins, n) + rng.sample(losses, n) + ties
    return kept, len(wins) + len(losses) - 2 * n


def _place(src: Path, dest_dir: Path, copy: bool) -> None:
    """Hard-link (or copy) ``src`` into ``dest_dir`` under its own name, atomically."""
    with atomic_path(dest_dir / src.name) as tmp:
        if not copy:
            tmp.unlink()
            try:
                os.link(src, tmp)
                return
            except OSError:
                pass
        shutil.copyfile(src, tmp)


def _input_formats(input_dir: Path, formats: Optional[Sequence[str]]) -> List[str]:
    if formats:
        return [check_format(f) for f in formats]
    found = sorted(d.name for d in input_dir.iterdir() if d.is_dir() and d.name in known_formats())
    if not found:
        flat = any(input_dir.glob(f"*{SUFFIX}"))
        raise MetamonError(
            f"{input_dir} has no <format>/ subfolders"
            + (" (its trajectory files lie directly in it; move them into a folder named after their format, e.g. "
               f"{input_dir}/gen1ou/)" if flat else "")
        )
    return found


def filter_trajectories(
    input_dir,
    output_dir,
    criteria: FilterCriteria = FilterCriteria(),
    formats: Optional[Sequence[str]] = None,
    copy: bool = False,
) -> FilterReport:
    """Filter ``input_dir/<format>/*.json.lz4`` into ``output_dir/<format>/`` (module docstring)."""
    input_dir, output_dir = Path(input_dir).expanduser(), Path(output_dir).expanduser()
    if not input_dir.is_dir():
        raise MetamonError(f"input_dir {input_dir} does not exist or is not a folder")
    if output_dir.resolve() == input_dir.resolve():
        raise MetamonError("output_dir must differ from input_dir")
    report = FilterReport()
    rng = random.Random(criteria.seed)
    for fmt in _input_formats(input_dir, formats):
        folder = input_dir / fmt
        if not folder.is_dir():
            raise MetamonError(f"{folder} does not exist (asked for format {fmt!r})")
        survivors = []
        for path in sorted(folder.glob(f"*{SUFFIX}")):
            verdict = judge_trajectory(path, criteria)
            if verdict.no_flags:
                report.warnings["no_invalid_flags"] += 1
            if verdict.reason:
                report.dropped[verdict.reason] += 1
            else:
                survivors.append((path, verdict))
        kept = [p for p, _ in survivors]
        if criteria.balance_outcomes:
            kept, dropped = _balance(survivors, rng)
            if dropped:
                report.dropped["balance"] += dropped
        for path in sorted(kept):
            _place(path, output_dir / fmt, copy)
        report.kept[fmt] = len(kept)
    return report


def build_parser(prog: str = "python -m metamon.data.filter") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description="Filter trajectory files by quality (IN/<format>/ -> OUT/<format>/)."
    )
    parser.add_argument("--input_dir", required=True, help="folder with <format>/*.json.lz4 subfolders")
    parser.add_argument("--output_dir", required=True, help="kept files go to OUTPUT_DIR/<format>/")
    parser.add_argument("--max_invalid_rate", type=float, default=0.05,
                        help="largest share of decisions whose first choice was rejected")
    parser.add_argument("--min_turns", type=int, default=10)
    parser.add_argument("--max_turns", type=int, default=1000)
    parser.add_argument("--balance_outcomes", action="store_true", help="equal WIN/LOSS counts per format")
    parser.add_argument("--seed", type=int, default=42, help="seed of --balance_outcomes' random choice")
    parser.add_argument("--formats", nargs="+", default=None, help="formats to filter (default: all found)")
    parser.add_argument("--copy", action="store_true", help="copy files instead of hard-linking them")
    return parser


def main(argv: Optional[Sequence[str]] = None, prog: Optional[str] = None) -> int:
    args = (build_parser(prog) if prog else build_parser()).parse_args(argv)
    try:
        criteria = FilterCriteria(args.max_invalid_rate, args.min_turns, args.max_turns,
                                  args.balance_outcomes, args.seed)
        report = filter_trajectories(args.input_dir, args.output_dir, criteria, args.formats, args.copy)
    except MetamonError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(report.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
