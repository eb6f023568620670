"""Head-to-head battles between two players on a local Showdown server.

Command line::

    python -m metamon.baselines.compete --battle_format gen9randombattle \\
        --player GymLeader --opponent RandomBaseline --battles 100 [--concurrent 10] \\
        [--team_set builtin] [--server_url 127.0.0.1:8000 | --start_server] [--seed 0]

prints the player's wins / losses / ties, its win rate with a 95% Wilson interval and the
throughput. ``--player`` / ``--opponent`` take a registered baseline name or a dotted path to
any poke-env ``Player`` class. Exit code 2 means bad input (unknown format or baseline, missing
team set, no server).

Python::

    from metamon.baselines.compete import make_player, play_battles
    results = play_battles(player, opponent, n_battles=50, timeout_s=120)
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import random
import sys
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Type, Union

from poke_env.concurrency import POKE_LOOP
from poke_env.player import Player
from poke_env.ps_client import AccountConfiguration
from tqdm import tqdm

from metamon.baselines import get_baseline
from metamon.baselines.base import Baseline
from metamon.errors import MetamonError
from metamon.formats import check_format, is_random_battle
from metamon.server import DEFAULT_PORT, LocalShowdownServer, check_server, server_configuration, unique_username
from metamon.stats import wilson_interval

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

OUTCOMES = ("win", "loss", "tie", "error")


@dataclass(frozen=True)
class BattleResult:
    """One battle seen from the first player: ``outcome`` is "win", "loss", "tie" or "error"
    (unfinished when the run timed out, or never started); ``turns`` the last turn reached."""

    battle_tag: Optional[str]
    outcome: str
    turns: int


def make_player(
    baseline: Union[str, Type[Player]],
    battle_format: str,
    *,
    server_configuration=None,
    max_concurrent_battles: int = 10,
    team=None,
    seed: Optional[int] = None,
    username: Optional[str] = None,
    **kwargs,
) -> Player:
    """Instantiate a baseline (name, dotted path or class) with a unique username; ``seed``
    seeds a :class:`Baseline`'s own random generator (ignored by other players)."""
    cls = get_baseline(baseline) if isinstance(baseline, str) else baseline
    if seed is not None and issubclass(cls, Baseline):
        kwargs["seed"] = seed
    if server_configuration is not None:
        kwargs["server_configuration"] = server_configuration
    name = username or unique_username(cls.__name__)
    return cls(
        account_configuration=AccountConfiguration(name, None),
        battle_format=battle_format,
        max_concurrent_battles=max_concurrent_battles,
        team=team,
        **kwargs,
    )


def close_players(*players: Player, timeout_s: float = 10.0) -> None:
    """Close the players' websocket connections."""
    for player in players:
        future = asyncio.run_coroutine_threadsafe(player.ps_client.stop_listening(), POKE_LOOP)
        try:
            future.result(timeout=timeout_s)
        except Exception:  # noqa: BLE001 - a connection that is already gone is closed enough
            future.cancel()


def _forfeit(player: Player, battle_tags: Sequence[str], timeout_s: float = 5.0) -> None:
    """Forfeit unfinished battles so the server ends them instead of waiting forever."""

    async def send_all():
        for tag in battle_tags:
            await player.ps_client.send_message("/forfeit", tag)

    future = asyncio.run_coroutine_threadsafe(send_all(), POKE_LOOP)
    try:
        future.result(timeout=timeout_s)
    except Exception:  # noqa: BLE001 - the results already say these battles errored
        future.cancel()


def _new_battles(player: Player, before: set) -> list:
    """Battles started since ``before`` (a snapshot: POKE_LOOP keeps adding to the dict)."""
    return [(tag, b) for tag, b in list(player.battles.items()) if tag not in before]


def new_finished(player: Player, before: set) -> int:
    """How many battles started since ``before`` have finished."""
    return sum(1 for _, b in _new_battles(player, before) if b.finished)


def battle_results(player: Player, before: set, n_battles: int) -> List[BattleResult]:
    """One result per battle started since ``before`` ("error" while unfinished), padded with
    ``BattleResult(None, "error", 0)`` up to ``n_battles`` for battles that never started."""
    results = []
    for tag, battle in _new_battles(player, before):
        outcome = "error" if not battle.finished else "win" if battle.won else "loss" if battle.lost else "tie"
        results.append(BattleResult(tag, outcome, battle.turn))
    return results + [BattleResult(None, "error", 0)] * max(0, n_battles - len(results))


def wait_for_battles(
    future: concurrent.futures.Future,
    player: Player,
    count_finished: Callable[[], int],
    timeout_s: float,
    progress: Optional[Callable[[int], None]] = None,
) -> None:
    """Poll ``future`` (battles running on ``POKE_LOOP``) until it completes.

    ``count_finished()`` returns how many of the run's battles have finished so far;
    ``progress(k)`` (optional) gets the number finished since its previous call. When none
    finishes for ``timeout_s`` seconds the run is cancelled and logged on ``player``'s logger
    (the caller reports the unfinished battles). An exception of the run is logged, not raised.
    """
    reported, last_change = 0, time.monotonic()
    while True:
        try:
            future.result(timeout=0.25)
            break
        except concurrent.futures.TimeoutError:
            pass
        except Exception as error:  # noqa: BLE001 - the caller reports unfinished battles
            player.logger.error("battles failed: %r", error)
            break
        finished = count_finished()
        if finished > reported:
            if progress is not None:
                progress(finished - reported)
            reported, last_change = finished, time.monotonic()
        elif time.monotonic() - last_change > timeout_s:
            future.cancel()
            player.logger.error("no battle finished for %.0f s: stopping the run", timeout_s)
            break
    finished = count_finished()
    if progress is not None and finished > reported:
        progress(finished - reported)


def play_battles(
    player: Player,
    opponent: Player,
    n_battles: int,
    timeout_s: float = 120.0,
    progress: Optional[Callable[[int], None]] = None,
) -> List[BattleResult]:
    """Play ``n_battles`` of ``player`` against ``opponent`` (concurrency = the players'
    ``max_concurrent_battles``) and return one :class:`BattleResult` per battle, from
    ``player``'s side.

    ``battle_against`` runs on poke-env's event loop (``POKE_LOOP``); this thread polls it.
    When no battle finishes for ``timeout_s`` seconds the run is considered stuck: it is
    cancelled, the battles still open are forfeited and reported as "error", as are battles
    that never started; after such a timeout the two players should not be reused.
    ``progress(k)`` is called with the number of battles that finished since its previous call.
    Call from a thread that is not ``POKE_LOOP``.
    """
    if n_battles < 1:
        raise ValueError(f"n_battles must be at least 1, got {n_battles}")
    before = set(player.battles)
    future = asyncio.run_coroutine_threadsafe(player.battle_against(opponent, n_battles=n_battles), POKE_LOOP)
    wait_for_battles(future, player, lambda: new_finished(player, before), timeout_s, progress)

    results = battle_results(player, before, n_battles)
    unfinished = [r.battle_tag for r in results if r.outcome == "error" and r.battle_tag is not None]
    if unfinished:
        _forfeit(player, unfinished)
    return results


def summarize(results: Sequence[BattleResult]) -> Dict[str, float]:
    """Counts per outcome plus ``finished``, ``win_rate`` (wins / finished battles, ties count
    as not won) and its 95% Wilson interval ``ci_low`` / ``ci_high``."""
    counts = {o: sum(r.outcome == o for r in results) for o in OUTCOMES}
    finished = counts["win"] + counts["loss"] + counts["tie"]
    low, high = wilson_interval(counts["win"], finished)
    return {
        **counts,
        "finished": finished,
        "win_rate": counts["win"] / finished if finished else float("nan"),
        "ci_low": low,
        "ci_high": high,
    }


def _team_set(battle_format: str, set_name: str):
    from metamon.teams import get_metamon_teams

    return get_metamon_teams(battle_format, set_name)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m metamon.baselines.compete",
        description="Play N battles between two baselines on a local Showdown server.",
    )
    parser.add_argument("--battle_format", required=True, help="e.g. gen1ou, gen9randombattle")
    parser.add_argument("--player", required=True, help="baseline name or package.module.Class")
    parser.add_argument("--opponent", required=True, help="baseline name or package.module.Class")
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
    try:
        if args.battles < 1 or args.concurrent < 1:
            raise MetamonError("--battles and --concurrent must be at least 1")
        check_format(args.battle_format)
        player_cls, opponent_cls = get_baseline(args.player), get_baseline(args.opponent)
        random_teams = is_random_battle(args.battle_format)
        teams = (
            [None, None] if random_teams else [_team_set(args.battle_format, args.team_set) for _ in range(2)]
        )
        if not args.start_server:
            check_server(args.server_url)
    except MetamonError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    if args.seed is not None:
        random.seed(args.seed)
    seeds = [None, None] if args.seed is None else [args.seed, args.seed + 1]
    server = LocalShowdownServer() if args.start_server else None
    try:
        if server is not None:
            server.start()
        config = server.server_configuration if server is not None else server_configuration(args.server_url)
        player, opponent = (
            make_player(
                cls,
                args.battle_format,
                server_configuration=config,
                max_concurrent_battles=args.concurrent,
                team=team,
                seed=seed,
            )
            for cls, team, seed in zip((player_cls, opponent_cls), teams, seeds, strict=True)
        )
        start = time.monotonic()
        with tqdm(total=args.battles, desc=f"{args.player} vs {args.opponent}", unit="battle") as bar:
            results = play_battles(player, opponent, args.battles, args.timeout, progress=bar.update)
        elapsed = time.monotonic() - start
        close_players(player, opponent)
    except MetamonError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    finally:
        if server is not None:
            server.stop()
    print(_report(args, results, elapsed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
