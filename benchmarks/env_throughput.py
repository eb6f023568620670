"""Battles/s of raw poke-env players vs our wrapped gymnasium env, same server and format.

Raw:  poke-env ``RandomPlayer`` vs ``SimpleHeuristicsPlayer`` via ``battle_against``
      (``max_concurrent_battles = C``).
Ours: ``C`` ``BattleAgainstBaseline`` envs (random legal policy) vs ``PokeEnvHeuristic``,
      one thread each, stepping through reset/step (observation + reward + legality every turn).
poke-env gym (for reference): ``C`` of poke-env's own gymnasium envs (``SingleAgentWrapper`` over
      a ``SinglesEnv`` with a constant observation and zero reward, ``SimpleHeuristicsPlayer`` as
      the opponent), one thread each, a random legal action from the action mask: what the
      same thread hand-off costs when the env itself does almost nothing.

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

import numpy as np
from gymnasium.spaces import Box
from poke_env.concurrency import POKE_LOOP
from poke_env.environment import SingleAgentWrapper, SinglesEnv
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


def _share(n: int, concurrency: int) -> list[int]:
    """``n`` battles split as evenly as possible over ``concurrency`` envs."""
    return [n // concurrency + (i < n % concurrency) for i in range(concurrency)]


def _timed_threads(run, concurrency: int) -> tuple[float, float]:
    """``run(i)`` for i < ``concurrency``, one thread each: (wall-clock seconds, process CPU seconds)."""
    threads = [threading.Thread(target=run, args=(i,)) for i in range(concurrency)]
    start, cpu = time.perf_counter(), time.process_time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start, time.process_time() - cpu


def wrapped_env(port: int, battle_format: str, n: int, concurrency: int) -> tuple[float, int, float]:
    team_set = get_metamon_teams(battle_format, "builtin")
    envs = [BattleAgainstBaseline(battle_format, "DefaultObservationSpace", "DefaultActionSpace",
                                  "DefaultShapedReward", team_set=team_set, opponent_type="PokeEnvHeuristic",
                                  server_url=port, turn_limit=10_000) for _ in range(concurrency)]
    per_env = _share(n, concurrency)
    results = [[] for _ in envs]

    def run(i):
        results[i] = play_episodes(envs[i], uniform_legal_policy(seed=i), per_env[i], progress=False)

    seconds, cpu = _timed_threads(run, concurrency)
    for env in envs:
        env.close()
    return seconds, sum(r.turns for rs in results for r in rs), cpu


class MinimalSinglesEnv(SinglesEnv):
    """poke-env's own gymnasium env doing the least a user's env can: a constant one-number
    observation and a zero reward (the action mask poke-env adds to every observation remains)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.observation_spaces = {a: Box(0.0, 1.0, (1,), np.float32) for a in self.possible_agents}

    def embed_battle(self, battle) -> np.ndarray:
        return np.zeros(1, np.float32)

    def calc_reward(self, battle) -> float:
        return 0.0


def pokeenv_gym(port: int, battle_format: str, n: int, concurrency: int) -> tuple[float, int, float]:
    """The same battles through poke-env's own gymnasium env (``SingleAgentWrapper`` over
    :class:`MinimalSinglesEnv`, ``SimpleHeuristicsPlayer`` as the opponent): ``concurrency`` envs,
    one thread each, a uniformly random legal action from the observation's action mask."""
    # strict=False: should poke-env's order conversion reject an action its own mask allowed, it
    # plays a default order instead of ending the benchmark
    kwargs = dict(battle_format=battle_format, server_configuration=server_configuration(port),
                  team=get_metamon_teams(battle_format, "builtin"), strict=False)
    envs = [SingleAgentWrapper(
        MinimalSinglesEnv(account_configuration1=AccountConfiguration(unique_username("gym"), None),
                          account_configuration2=AccountConfiguration(unique_username("gym"), None), **kwargs),
        SimpleHeuristicsPlayer(battle_format=battle_format, start_listening=False)) for _ in range(concurrency)]
    per_env = _share(n, concurrency)
    turns = [0] * concurrency

    def run(i):
        rng, env = random.Random(i), envs[i]
        for _ in range(per_env[i]):
            obs, _ = env.reset()
            done = False
            while not done:
                action = rng.choice(np.flatnonzero(obs["action_mask"]).tolist())
                obs, _, terminated, truncated, _ = env.step(np.int64(action))
                done = terminated or truncated
            turns[i] += env.env.battle1.turn

    seconds, cpu = _timed_threads(run, concurrency)
    for env in envs:
        env.close()
        close_players(env.env.agent1, env.env.agent2)
    return seconds, sum(turns), cpu


RUNNERS = {"raw": raw_poke_env, "poke-env gym": pokeenv_gym, "ours": wrapped_env}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--battle_format", default="gen9randombattle")
    p.add_argument("--battles", type=int, default=200)
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    p.add_argument("--repeats", type=int, default=2, help="alternate the three this many times, keep each one's best")
    p.add_argument("--server_url", default=None, help="use a running server instead of starting one")
    args = p.parse_args()

    server = None if args.server_url else LocalShowdownServer().start()
    port = args.server_url or server.port
    try:
        raw_poke_env(port, args.battle_format, 4, 2)  # warm-up: the first battle of a server is slow
        print(f"{args.battle_format}, {args.battles} battles per run, best of {args.repeats}")
        print(f"{'c':>3s} {'':14s} {'battles/s':>10s} {'ratio':>6s} {'turns/s':>8s} {'ratio':>6s} {'cpu ms/turn':>12s}")
        for c in args.concurrency:
            best = {name: (float("inf"), 1, float("inf")) for name in RUNNERS}
            for _ in range(args.repeats):
                for name, runner in RUNNERS.items():
                    best[name] = min(best[name], runner(port, args.battle_format, args.battles, c), key=lambda r: r[0])
            raw_b, raw_t = args.battles / best["raw"][0], best["raw"][1] / best["raw"][0]
            for name, (seconds, turns, cpu) in best.items():
                b, t, ms = args.battles / seconds, turns / seconds, 1e3 * cpu / turns
                print(f"{c:3d} {name:14s} {b:10.2f} {b / raw_b:6.2f} {t:8.1f} {t / raw_t:6.2f} {ms:12.2f}")
    finally:
        if server is not None:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
