"""Head-to-head battles between two players on a local Showdown server.

Command line::

    python -m metamon.baselines.compete --battle_format gen9randombattle \\
        --player GymLeader --opponent RandomBaseline --battles 100 [--concurrent 10] \\
        [--team_set builtin] [--server_url 127.0.0.1:8000 | --start_server] [--seed 0]

prints the player's wins / losses / ties, its win rate with a 95% Wilson interval and the
throughput. ``--player`` / ``--opponent`` take any player spec
(:class:`metamon.battles.PlayerSpec`): a registered baseline name, a dotted path to any poke-env
``Player`` class, or a trained run ``run:DIR@EPOCH``. Exit code 2 means bad input (unknown
format or player, missing team set, no server); 1 means the server went away during the run
(nothing is reported then). ``--log_level`` (default ``quiet``) sets what metamon and poke-env
log (:mod:`metamon.logs`).

Python: the loop under this CLI is the battle engine, :mod:`metamon.battles`::

    from metamon.baselines import make_player
    from metamon.battles import play_battles, summarize
    results = play_battles(player, opponent, n_battles=50, timeout_s=120)

The engine's names (``BattleResult``, ``play_battles``, ``summarize``, ``close_players``) and
``make_player`` stay importable from here.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from typing import Optional, Sequence

from tqdm import tqdm

from metamon.baselines.registry import make_player
from metamon.battles import (
    BattleResult,
    PlayerFactory,
    check_spec,
    close_players,
    play_battles,
    summarize,
)
from metamon.errors import MetamonError
from metamon.formats import check_format
from metamon.logs import add_log_level_argument, configure_logging
from metamon.server import DEFAULT_PORT, LocalShowdownServer, check_server, server_configuration, unique_username
from metamon.stats import wilson_interval
from metamon.teams import get_metamon_teams

__all__ = [
    "BattleResult",
    "unique_username",
    "make_player",
    "close_players",
    "play_battles",
    "summarize",
    "wilson_interval",
    "main",
]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m metamon.baselines.compete",
        description="Play N battles between two baselines on a local Showdown server.",
    )
    parser.add_argument("--battle_format", required=True, help="e.g. gen1ou, gen9randombattle")
    spec_help = "player spec: baseline name, package.module.Class or run:DIR@EPOCH"
    parser.add_argument("--player", required=True, help=spec_help)
    parser.add_argument("--opponent", required=True, help=spec_help)
    parser.add_argument("--battles", type=int, default=10)
    parser.add_argument("--team_set", default="builtin", help="team set for non-random formats")
    parser.add_argument("--concurrent", type=int, default=10, help="battles played at once")
    server = parser.add_mutually_exclusive_group()
    server.add_argument("--server_url", default=f"127.0.0.1:{DEFAULT_PORT}")
    server.add_argument("--start_server", action="store_true", help="start a server on a free port")
    parser.add_argument(
        "--timeout", type=float, default=120.0, help="seconds without a finished battle before giving up"
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="seeds Python's random module and the baselines' own generators (the server's "
        "random numbers still make battles differ)",
    )
    add_log_level_argument(parser)
    return parser


def _report(args, results: Sequence[BattleResult], elapsed: float) -> str:
    s = summarize(results)
    lines = [
        f"{args.player} vs {args.opponent} in {args.battle_format}: {len(results)} battles in "
        f"{elapsed:.1f} s ({len(results) / elapsed:.2f} battles/s)",
        f"{args.player}: {s['win']} wins, {s['loss']} losses, {s['tie']} ties"
        + (f", {s['error']} errored" if s["error"] else ""),
    ]
    if s["finished"]:
        lines.append(
            f"win rate {100 * s['win_rate']:.1f}% "
            f"(95% Wilson interval {100 * s['ci_low']:.1f}%-{100 * s['ci_high']:.1f}%)"
        )
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    configure_logging(args.log_level)
    try:
        if args.battles < 1 or args.concurrent < 1:
            raise MetamonError("--battles and --concurrent must be at least 1")
        check_format(args.battle_format)
        specs = [check_spec(args.player), check_spec(args.opponent)]
        get_metamon_teams(args.battle_format, args.team_set)  # a missing team set fails here
        if not args.start_server:
            check_server(args.server_url)
    except MetamonError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    if args.seed is not None:
        random.seed(args.seed)
    seeds = [None, None] if args.seed is None else [args.seed, args.seed + 1]
    server = LocalShowdownServer() if args.start_server else None
    factory = None
    players = []
    try:
        if server is not None:
            server.start()
        config = server.server_configuration if server is not None else server_configuration(args.server_url)
        factory = PlayerFactory(args.battle_format, server_configuration=config, team_set=args.team_set,
                                max_concurrent_battles=args.concurrent)
        players = [factory.build(spec, seed=seed) for spec, seed in zip(specs, seeds, strict=True)]
        start = time.monotonic()
        with tqdm(total=args.battles, desc=f"{args.player} vs {args.opponent}", unit="battle") as bar:
            results = play_battles(players[0], players[1], args.battles, args.timeout, progress=bar.update)
        elapsed = time.monotonic() - start
    except MetamonError as error:  # a lost server exits 1, bad input 2 (exit_code)
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    finally:
        close_players(*players)
        if factory is not None:
            factory.close()
        if server is not None:
            server.stop()
    print(_report(args, results, elapsed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
