"""Ratings of a tournament: Bradley–Terry maximum likelihood over the unique battles of a
results file, on the Elo scale, with bootstrap intervals, tables and plots.

Command line (``scripts/calculate_elo.py`` is the same tool)::

    python -m metamon.selfplay.elo --tournament_dir DIR [--output_prefix elo_results] \\
        [--anchor GymLeader] [--initial_rating 1500] [--bootstrap 1000] [--seed 0] [--alpha 1e-3]

reads ``DIR/tournament_results.jsonl`` (records in :mod:`metamon.battles.tournament_file`;
each battle id counts once even if the file holds both perspectives; draws count half), fits
the ratings with :func:`metamon.selfplay.ratings.rate` and writes, under ``DIR`` (a relative
prefix is relative to ``DIR``):

* ``{prefix}.json`` — ratings with intervals, the fit's settings, per-player and per-pair counts;
* ``{prefix}.csv`` — one row per player: rank, player, rating, low, high, games, wins, losses,
  draws, score rate;
* ``{prefix}_ratings.png`` — ratings with their intervals; ``{prefix}_winrates.png`` — the
  win-rate heat-map with game counts.

Ratings: R = c + (400 / ln 10) θ with θ the Bradley–Terry MLE, so P(i beats j) =
1 / (1 + 10^((R_j − R_i)/400)); the ``--anchor`` player sits at ``--initial_rating`` (without
an anchor the mean rating does). Unlike sequential Elo updates, the fit does not depend on the
order of the games and has no K-factor: ``--k_factor`` (a flag of the seeds' script) is accepted
so old command lines still run, and ignored with a note. Intervals: percentile bootstrap over
the unique battles (relative to the anchor, whose interval is a point).

Exit code 2 means bad input (no results file, malformed records, unknown anchor, too few games).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

from metamon.battles.spec import PlayerSpec
from metamon.battles.tournament_file import ResultsFile, unique_records
from metamon.errors import MetamonError
from metamon.files import atomic_write
from metamon.selfplay.ratings import Game, Ratings, plot_ratings, plot_win_rates, rate, score_matrix

__all__ = [
    "RESULTS_FILE",
    "games_from_records",
    "player_counts",
    "rate_records",
    "ratings_table",
    "write_elo_outputs",
    "build_parser",
    "main",
]

RESULTS_FILE = "tournament_results.jsonl"
_RESULT_TO_GAME = {"win": "WIN", "loss": "LOSS", "draw": "TIE"}


def games_from_records(records: Iterable[Mapping[str, Any]]) -> List[Game]:
    """One :class:`Game` per unique battle id (records in :mod:`metamon.battles.tournament_file`)."""
    return [Game.from_perspective(r["battle_id"], r["player"], r["opponent"], _RESULT_TO_GAME[r["result"]])
            for r in unique_records(records)]


def player_counts(games: Sequence[Game], players: Sequence[str]) -> Dict[str, Dict[str, float]]:
    """Per player: games, wins, losses, draws and score rate ((wins + ½ draws) / games)."""
    out = {p: {"games": 0, "wins": 0, "losses": 0, "draws": 0} for p in players}
    for g in games:
        for me, score in ((g.player_a, g.score_a), (g.player_b, 1.0 - g.score_a)):
            row = out[me]
            row["games"] += 1
            row["wins" if score == 1.0 else "losses" if score == 0.0 else "draws"] += 1
    for row in out.values():
        row["score_rate"] = (row["wins"] + 0.5 * row["draws"]) / row["games"] if row["games"] else float("nan")
    return out


def rate_records(records: Iterable[Mapping[str, Any]], anchor: Optional[str] = None, anchor_rating: float = 1500.0,
                 bootstrap: int = 1000, seed: int = 0, alpha: float = 1e-3) -> tuple[Ratings, List[Game]]:
    """The ratings of the players in ``records`` (players sorted by name; ``anchor`` may be
    any spelling of a player spec) and the unique games they were fitted on."""
    games = games_from_records(records)
    if anchor is not None:
        anchor = str(PlayerSpec.parse(anchor))
    return rate(games, anchor=anchor, anchor_rating=anchor_rating, bootstrap=bootstrap, seed=seed, alpha=alpha), games


def _order(ratings: Ratings) -> List[int]:
    """Player indices, best rating first."""
    return sorted(range(len(ratings.players)), key=lambda k: -ratings.elo[k])


def ratings_table(ratings: Ratings, games: Sequence[Game]) -> str:
    """A plain-text table, best first: rank, player, rating, interval, games, score rate."""
    counts = player_counts(games, ratings.players)
    width = max(len("player"), *(len(p) for p in ratings.players))
    level = f"{100 * ratings.confidence:.0f}% interval"
    lines = [f"{'rank':>4}  {'player':<{width}}  {'rating':>7}  {level:>17}  {'games':>5}  {'score':>6}"]
    for rank, k in enumerate(_order(ratings), start=1):
        p = ratings.players[k]
        interval = "" if ratings.low is None else f"[{ratings.low[k]:7.1f}, {ratings.high[k]:7.1f}]"
        tag = " (anchor)" if p == ratings.anchor else ""
        lines.append(f"{rank:>4}  {p:<{width}}  {ratings.elo[k]:7.1f}  {interval:>17}  {counts[p]['games']:>5}  "
                     f"{100 * counts[p]['score_rate']:5.1f}%{tag}")
    anchor = f"{ratings.anchor} = {ratings.anchor_rating:g}" if ratings.anchor else \
        f"mean rating = {ratings.anchor_rating:g}"
    lines.append(f"Bradley–Terry MLE over {ratings.num_games} unique battles, Elo scale ({anchor}); "
                 f"score = (wins + ½ draws) / games")
    return "\n".join(lines)


def write_elo_outputs(prefix, ratings: Ratings, games: Sequence[Game], extra: Optional[Mapping[str, Any]] = None
                      ) -> List[Path]:
    """Write ``{prefix}.json``, ``{prefix}.csv``, ``{prefix}_ratings.png`` and
    ``{prefix}_winrates.png`` (contents in the module docstring), each atomically; return the
    paths. ``extra`` is merged into the JSON (e.g. the source file)."""
    prefix = Path(prefix)
    players = ratings.players
    counts = player_counts(games, players)
    scores, n = score_matrix(games, players)
    pairs = [{"player": players[i], "opponent": players[j], "games": int(n[i, j]),
              "score": float(scores[i, j]), "score_rate": float(scores[i, j] / n[i, j])}
             for i in range(len(players)) for j in range(i + 1, len(players)) if n[i, j] > 0]
    summary = {"method": "Bradley-Terry maximum likelihood (choix.ilsr_pairwise_dense), Elo scale",
               **ratings.as_dict(), "pairs": pairs, **dict(extra or {})}
    for name, row in summary["players"].items():
        row.update(counts[name])
    paths = [prefix.with_name(prefix.name + suffix) for suffix in (".json", ".csv", "_ratings.png", "_winrates.png")]
    atomic_write(paths[0], json.dumps(summary, indent=2) + "\n")
    table = io.StringIO()
    writer = csv.writer(table)
    writer.writerow(["rank", "player", "rating", "low", "high", "games", "wins", "losses", "draws", "score_rate"])
    for rank, k in enumerate(_order(ratings), start=1):
        c = counts[players[k]]
        writer.writerow([rank, players[k], f"{ratings.elo[k]:.2f}",
                         "" if ratings.low is None else f"{ratings.low[k]:.2f}",
                         "" if ratings.high is None else f"{ratings.high[k]:.2f}",
                         c["games"], c["wins"], c["losses"], c["draws"], f"{c['score_rate']:.4f}"])
    atomic_write(paths[1], table.getvalue())
    plot_ratings(ratings, str(paths[2]))
    plot_win_rates(games, str(paths[3]), players=[players[k] for k in _order(ratings)])
    return paths


# ------------------------------------------------------------------------------ command line


def build_parser(prog: str = "python -m metamon.selfplay.elo") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Bradley–Terry ratings (Elo scale, bootstrap intervals) of a tournament's unique battles.",
        epilog="Ratings are a Bradley–Terry maximum-likelihood fit over all unique battles at once: "
               "the result does not depend on the order of the games, a battle seen from both sides "
               "counts once and a draw counts half. There is no K-factor in such a fit; --k_factor is "
               "accepted for old command lines and ignored.")
    parser.add_argument("--tournament_dir", required=True, help=f"folder holding {RESULTS_FILE}")
    parser.add_argument("--output_prefix", default="elo_results",
                        help="output files {prefix}.json/.csv/_ratings.png/_winrates.png; relative to "
                             "--tournament_dir (default: %(default)s)")
    parser.add_argument("--anchor", default=None,
                        help="player spec whose rating is fixed at --initial_rating (default: the mean is)")
    parser.add_argument("--initial_rating", type=float, default=1500.0,
                        help="rating of the anchor (or the mean rating without --anchor) (default: %(default)s)")
    parser.add_argument("--bootstrap", type=int, default=1000,
                        help="bootstrap resamples of the battles for the 95%% intervals; 0: none "
                             "(default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default: %(default)s)")
    parser.add_argument("--alpha", type=float, default=1e-3,
                        help="choix regulariser: keeps players who won or lost everything finite "
                             "(default: %(default)s)")
    parser.add_argument("--k_factor", type=float, default=None,
                        help="ignored: the sequential-Elo step size of the seeds' script; a maximum-likelihood "
                             "fit has none")
    return parser


def main(argv: Optional[Sequence[str]] = None, prog: str = "python -m metamon.selfplay.elo") -> int:
    args = build_parser(prog).parse_args(argv)
    if args.k_factor is not None:
        print(f"note: --k_factor {args.k_factor:g} is ignored: ratings are a Bradley–Terry maximum-likelihood fit "
              "over all battles at once, which has no K-factor")
    folder = Path(args.tournament_dir).expanduser()
    path = folder / RESULTS_FILE
    try:
        if not path.is_file():
            raise MetamonError(f"{path} does not exist: run scripts/self_play_tournament.py with --output_dir {folder}")
        records = ResultsFile(path).read()
        ratings, games = rate_records(records, anchor=args.anchor, anchor_rating=args.initial_rating,
                                      bootstrap=args.bootstrap, seed=args.seed, alpha=args.alpha)
        paths = write_elo_outputs(folder / Path(args.output_prefix).expanduser(), ratings, games,
                                  extra={"results_file": str(path), "seed": args.seed, "alpha": args.alpha})
    except MetamonError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(ratings_table(ratings, games))
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
