"""Battles/s of raw poke-env players vs our wrapped gymnasium env, same server and format.

Raw:  poke-env ``RandomPlayer`` vs ``SimpleHeuristicsPlayer`` via ``battle_against``
      (``max_concurrent_battles = C``).
Ours: ``C`` ``BattleAgainstBaseline`` envs (random legal policy) vs ``PokeEnvHeuristic``,
      one thread each, stepping through reset/step (observation + reward + legality every turn).

Both random agents pick uniformly among legal choices with Python's ``random`` (as poke-env's
``RandomPlayer`` does; numpy's ``Generator.choice`` on a list, which ``metamon.env.rollout.
random_policy`` uses, costs more than the rest of a turn's policy work and is not env overhead),
so battles are of similar length; the ratio is reported for battles/s and for turns/s (the
fairer one when lengths differ).
Target: ours/raw >= 0.9 (issue 15).

Also reported: the CPU time of this Python process per turn (``time.process_time``: every
thread, poke-env's event loop and both players included; the Showdown server is another
process). Wall-clock rates on a shared machine move with other jobs' load; CPU time per turn
moves much less, so it is the steadier measure of what the wrapper adds.

    python benchmarks/env_throughput.py [--battle_format gen9randombattle] [--battles 200] [--concurrency 1 8]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import threading
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

from poke_env.concurrency import POKE_LOOP
from poke_env.player import RandomPlayer, SimpleHeuristicsPlayer
from poke_env.ps_client.account_configuration import AccountConfiguration

from metamon.battles import close_players
from metamon.env import BattleAgainstBaseline
from metamon.env.rollout import play_episodes
from metamon.server import LocalShowdownServer, server_configuration, unique_username
from metamon.teams import get_metamon_teams


def raw_poke_env(port: int, battle_format: str, n: int, concurrency: int) -> tuple[float, int, float]:
    kwargs = dict(battle_format=battle_format, server_configuration=server_configuration(port),
                  max_concurrent_battles=concurrency, team=get_metamon_teams(battle_format, "builtin"))
    agent = RandomPlayer(AccountConfiguration(unique_username("raw"), None), **kwargs)
    opponent = SimpleHeuristicsPlayer(AccountConfiguration(unique_username("heur"), None), **kwargs)
    start, cpu = time.perf_counter(), time.process_time()
    asyncio.run_coroutine_threadsafe(agent.battle_against(opponent, n_battles=n), POKE_LOOP).result(timeout=3600)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    turns = sum(b.turn for b in agent.battles.values())
    close_players(agent, opponent)
    return seconds, turns, cpu


def uniform_legal_policy(seed: int):
    """A uniformly random legal action (``info["legal_actions"]``), drawn with ``random.Random``."""
    rng = random.Random(seed)

    def policy(obs: dict, info: dict) -> int:
        legal = info.get("legal_actions")
        return rng.choice(legal) if legal else 0

    return policy


def wrapped_env(port: int, battle_format: str, n: int, concurrency: int) -> tuple[float, int, float]:
    team_set = get_metamon_teams(battle_format, "builtin")
    envs = [BattleAgainstBaseline(battle_format, "DefaultObservationSpace", "DefaultActionSpace",
                                  "DefaultShapedReward", team_set=team_set, opponent_type="PokeEnvHeuristic",
                                  server_url=port, turn_limit=10_000) for _ in range(concurrency)]
    per_env = [n // concurrency + (i < n % concurrency) for i in range(concurrency)]
    results = [[] for _ in envs]

    def run(i):
        results[i] = play_episodes(envs[i], uniform_legal_policy(seed=i), per_env[i], progress=False)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(concurrency)]
    start, cpu = time.perf_counter(), time.process_time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    for env in envs:
        env.close()
    return seconds, sum(r.turns for rs in results for r in rs), cpu


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--battle_format", default="gen9randombattle")
    p.add_argument("--battles", type=int, default=200)
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    p.add_argument("--repeats", type=int, default=2, help="alternate raw/ours this many times, keep the best")
    p.add_argument("--server_url", default=None, help="use a running server instead of starting one")
    args = p.parse_args()

    server = None if args.server_url else LocalShowdownServer().start()
    port = args.server_url or server.port
    try:
        raw_poke_env(port, args.battle_format, 4, 2)  # warm-up: the first battle of a server is slow
        print(f"{args.battle_format}, {args.battles} battles per run, best of {args.repeats}")
        print(f"{'c':>3s} {'raw b/s':>8s} {'ours b/s':>9s} {'ratio':>6s} {'raw turns/s':>12s} "
              f"{'ours turns/s':>13s} {'ratio':>6s} {'raw cpu ms/turn':>16s} {'ours cpu ms/turn':>17s}")
        for c in args.concurrency:
            best_raw = best_ours = (float("inf"), 1, float("inf"))
            for _ in range(args.repeats):
                raw = raw_poke_env(port, args.battle_format, args.battles, c)
                ours = wrapped_env(port, args.battle_format, args.battles, c)
                best_raw = min(best_raw, raw, key=lambda r: r[0])
                best_ours = min(best_ours, ours, key=lambda r: r[0])
            rb, ob = args.battles / best_raw[0], args.battles / best_ours[0]
            rt, ot = best_raw[1] / best_raw[0], best_ours[1] / best_ours[0]
            rc, oc = 1e3 * best_raw[2] / best_raw[1], 1e3 * best_ours[2] / best_ours[1]
            print(f"{c:3d} {rb:8.2f} {ob:9.2f} {ob / rb:6.2f} {rt:12.1f} {ot:13.1f} {ot / rt:6.2f} "
                  f"{rc:16.2f} {oc:17.2f}")
    finally:
        if server is not None:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
