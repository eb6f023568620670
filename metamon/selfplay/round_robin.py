"""Round-robin tournament between players on local Showdown servers, then their ratings.

Command line (``scripts/self_play_tournament.py`` is the same tool with the seeds' defaults)::

    python -m metamon.selfplay.round_robin --models GymLeader Grunt run:runs/x@4 \\
        --battles_per_matchup 200 --output_dir OUT --battle_format gen1ou --team_set competitive \\
        [--parallel 4 | --server_url 127.0.0.1:8000] [--max_concurrent 10] [--seed 0] \\
        [--anchor GymLeader] [--initial_rating 1500] [--bootstrap 1000]

``--models`` (alias ``--players``) takes player specs (:class:`metamon.battles.PlayerSpec`):
baseline names, dotted ``Player`` classes, trained runs ``run:DIR@EPOCH``. Every unordered pair
plays ``--battles_per_matchup`` (alias ``--battles_per_pair``) battles, the sides alternating
chunk by chunk (:mod:`metamon.battles.tournament`), spread over ``--parallel`` worker processes
that each start their own local server (or all use ``--server_url``).

Files in ``OUT``:

* ``tournament_results.jsonl`` — one record per unique finished battle (format in
  :mod:`metamon.battles.tournament_file`), appended as each chunk ends. Re-running with the
  same ``OUT`` plays only the battles still missing per pair (a killed run loses at most the
  chunks in flight); errored battles are never written and are played again.
* ``tournament_summary.json`` — the settings and, per pair, ``battles`` / ``wins`` / ``losses``
  / ``draws`` in the file (from ``player``'s side) and ``errors`` (battles of this run that
  did not finish).

Then the ratings of the listed players (Bradley–Terry over the unique battles between them,
:mod:`metamon.selfplay.elo`) are printed; ``scripts/calculate_elo.py --tournament_dir OUT``
writes them with plots. Exit code: 0 when every pair has its battles, 1 when some are still
missing (errors: run again), 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

from metamon.battles.tournament import TournamentReport, canonical_spec, play_tournament, round_robin
from metamon.battles.tournament_file import ResultsFile, flip_result
from metamon.errors import MetamonError
from metamon.files import atomic_write
from metamon.logs import add_log_level_argument, configure_logging
from metamon.selfplay.elo import RESULTS_FILE, rate_records, ratings_table
from metamon.selfplay.ratings import RatingError

__all__ = ["SUMMARY_FILE", "pair_summary", "build_parser", "main"]

SUMMARY_FILE = "tournament_summary.json"


def pair_summary(records: Sequence[Mapping[str, Any]], report: TournamentReport) -> List[Dict[str, Any]]:
    """Per matchup of ``report``: battles, wins, losses and draws of ``player`` against
    ``opponent`` among the unique ``records``, and this run's ``errors``."""
    rows = {}
    for m in report.matchups:
        rows[m.matchup.pair] = {"player": m.matchup.player, "opponent": m.matchup.opponent, "battles": 0,
                                "wins": 0, "losses": 0, "draws": 0, "errors": m.errors}
    for r in records:
        key = tuple(sorted((r["player"], r["opponent"])))
        row = rows.get(key)
        if row is None:
            continue
        result = r["result"] if r["player"] == row["player"] else flip_result(r["result"])
        row["battles"] += 1
        row[{"win": "wins", "loss": "losses", "draw": "draws"}[result]] += 1
    return list(rows.values())


def build_parser(prog: str = "python -m metamon.selfplay.round_robin", **defaults) -> argparse.ArgumentParser:
    """The parser; ``defaults`` override flag defaults (a default ``output_dir`` makes it optional)."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", "--players", dest="models", nargs="+", required=True,
                        help="player specs: baseline names, package.module.Class, run:DIR@EPOCH")
    parser.add_argument("--battles_per_matchup", "--battles_per_pair", dest="battles_per_matchup", type=int,
                        default=200, help="battles per unordered pair (default: %(default)s)")
    parser.add_argument("--output_dir", required="output_dir" not in defaults,
                        help=f"where {RESULTS_FILE} and {SUMMARY_FILE} go")
    parser.add_argument("--battle_format", default="gen1ou")
    parser.add_argument("--team_set", default="builtin", help="team set for non-random formats")
    parser.add_argument("--parallel", type=int, default=1,
                        help="worker processes, each with its own local server unless --server_url")
    parser.add_argument("--server_url", default=None, help="use this running server (host:port)")
    parser.add_argument("--max_concurrent", type=int, default=10, help="battles at once per worker")
    parser.add_argument("--chunk_size", type=int, default=None,
                        help="battles per chunk (fresh players; results appended per chunk; "
                             "default 2 x max_concurrent)")
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="seconds without a finished battle before a chunk's open battles are abandoned")
    parser.add_argument("--device", default="cpu", help="where trained players run")
    parser.add_argument("--seed", type=int, default=0, help="seeds usernames and baselines")
    parser.add_argument("--anchor", default=None, help="player fixed at --initial_rating in the printed ratings")
    parser.add_argument("--initial_rating", type=float, default=1500.0,
                        help="rating of --anchor (or the mean rating) (default: %(default)s)")
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the rating intervals")
    parser.add_argument("--no_progress", action="store_true", help="no progress bar")
    parser.set_defaults(**defaults)
    add_log_level_argument(parser)
    return parser


def main(argv: Optional[Sequence[str]] = None, parser: Optional[argparse.ArgumentParser] = None) -> int:
    args = (parser or build_parser()).parse_args(argv)
    configure_logging(args.log_level)
    out = Path(args.output_dir).expanduser()
    try:
        matchups = round_robin(args.models, args.battles_per_matchup)
        players = [canonical_spec(s) for s in args.models]
        if args.anchor is not None and canonical_spec(args.anchor) not in players:
            raise MetamonError(f"--anchor {args.anchor!r} is not one of the players {players}")
        report = play_tournament(matchups, out / RESULTS_FILE, args.battle_format, seed=args.seed,
                                 show_progress=not args.no_progress, team_set=args.team_set,
                                 parallel=args.parallel, server_url=args.server_url,
                                 max_concurrent=args.max_concurrent, chunk_size=args.chunk_size,
                                 timeout_s=args.timeout, device=args.device)
    except MetamonError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"interrupted: finished chunks are in {out / RESULTS_FILE}; re-run to play the rest", file=sys.stderr)
        return 130
    records = [r for r in ResultsFile(out / RESULTS_FILE).unique()
               if r["player"] in players and r["opponent"] in players]
    summary = {
        "battle_format": args.battle_format,
        "team_set": args.team_set,
        "players": players,
        "battles_per_matchup": args.battles_per_matchup,
        "results_file": RESULTS_FILE,
        "pairs": pair_summary(records, report),
        "last_run": {"played": report.played, "errors": report.errors, "seconds": round(report.seconds, 1)},
    }
    atomic_write(out / SUMMARY_FILE, json.dumps(summary, indent=2) + "\n")
    print(report.report())
    try:
        ratings, games = rate_records(records, anchor=args.anchor, anchor_rating=args.initial_rating,
                                      bootstrap=args.bootstrap, seed=args.seed)
        print(ratings_table(ratings, games))
    except RatingError as error:
        print(f"no ratings yet: {error}")
    complete = all(m.total >= m.matchup.n_battles for m in report.matchups)
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())
