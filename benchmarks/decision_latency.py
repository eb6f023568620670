"""Decision latency of a policy playing as a poke-env Player (``metamon.rl.player.PolicyPlayer``).

Builds the tiny agent of ``metamon/configs/models/tiny_agent.gin`` with random weights (or loads a run
with ``--run_dir [--ckpt N]``), plays ``--battles`` battles against ``RandomBaseline`` on a
local server at each ``--concurrency`` level (1 = no concurrency), and prints per level: the
decision latency p50/p95 in ms (from the server's request to the order, observation and
queueing included), the mean number of battles per ``get_actions`` call, and battles/s.

    python benchmarks/decision_latency.py [--battle_format gen1ou] [--battles 20] [--concurrency 1 8]
    python benchmarks/decision_latency.py --run_dir runs/my_run --device cuda
    python benchmarks/decision_latency.py --smoke
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

from poke_env.ps_client import AccountConfiguration

from metamon.baselines import make_player
from metamon.battles import close_players, play_battles
from metamon.rl import MODEL_CONFIG_DIR
from metamon.rl.player import PolicyPlayer
from metamon.rl.run_dir import RunInfo, build_agent, build_spaces, load_agent
from metamon.server import LocalShowdownServer, server_configuration, unique_username
from metamon.teams import get_metamon_teams
from metamon.tokenizer import DEFAULT_TOKENIZER


def tiny_agent():
    """The tiny agent with random weights, with the spaces train.py uses by default."""
    info = RunInfo(
        observation_space="TeamPreviewObservationSpace",
        action_space="DefaultActionSpace",
        reward_function="DefaultShapedReward",
        tokenizer=DEFAULT_TOKENIZER,
        formats=[],
        max_seq_len=64,
    )
    return build_agent(info, [MODEL_CONFIG_DIR / "tiny_agent.gin"]), info


def run_level(agent, info, port, battle_format: str, battles: int, concurrency: int) -> dict:
    obs_space, action_space, reward_fn = build_spaces(info)
    config = server_configuration(port)
    team = get_metamon_teams(battle_format, "builtin")
    player = PolicyPlayer(
        agent, obs_space, action_space, reward_fn, battle_format=battle_format, team=team,
        max_concurrent_battles=concurrency, server_configuration=config,
        account_configuration=AccountConfiguration(unique_username("Policy"), None), log_level=logging.ERROR,
    )
    opponent = make_player("RandomBaseline", battle_format, server_configuration=config, log_level=logging.ERROR,
                           max_concurrent_battles=concurrency, team=get_metamon_teams(battle_format, "builtin"))
    start = time.perf_counter()
    try:
        results = play_battles(player, opponent, battles, timeout_s=300)
    finally:
        close_players(player, opponent)
        player.close()
    seconds = time.perf_counter() - start
    sizes = player.batcher.batch_sizes
    stats = player.stats()
    stats.update(
        finished=sum(r.outcome != "error" for r in results),
        battles_per_s=battles / seconds,
        mean_batch=sum(k * v for k, v in sizes.items()) / max(1, sum(sizes.values())),
    )
    return stats


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run_dir", default=None, help="a run directory (default: random tiny agent)")
    p.add_argument("--ckpt", type=int, default=None)
    p.add_argument("--battle_format", default="gen1ou")
    p.add_argument("--battles", type=int, default=20)
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    p.add_argument("--device", default="cpu")
    p.add_argument("--server_url", default=None, help="default: start a local server")
    p.add_argument("--smoke", action="store_true", help="2 battles at concurrency 1 and 2")
    args = p.parse_args(argv)
    if args.smoke:
        args.battles, args.concurrency = 2, [1, 2]

    if args.run_dir:
        agent, info = load_agent(args.run_dir, args.ckpt, device=args.device)
        source = f"{args.run_dir} epoch {args.ckpt if args.ckpt is not None else 'latest'}"
    else:
        agent, info = tiny_agent()
        agent = agent.to(args.device)
        source = "tiny_agent.gin, random weights"
    n_params = sum(p.numel() for p in agent.parameters())
    server = None if args.server_url else LocalShowdownServer().start()
    port = args.server_url or server.port
    try:
        print(f"{source} ({n_params / 1e6:.2f}M parameters, {args.device}); {args.battle_format}, "
              f"{args.battles} battles vs RandomBaseline per level")
        print(f"{'conc':>4s} {'decisions':>9s} {'p50 ms':>7s} {'p95 ms':>7s} {'batch':>6s} {'battles/s':>9s} "
              f"{'valid %':>7s}")
        for c in args.concurrency:
            s = run_level(agent, info, port, args.battle_format, args.battles, c)
            print(f"{c:4d} {s['decisions']:9d} {s['latency_p50_ms']:7.1f} {s['latency_p95_ms']:7.1f} "
                  f"{s['mean_batch']:6.2f} {s['battles_per_s']:9.2f} {s['valid_action_pct']:7.1f}")
            if s["finished"] < args.battles:
                print(f"     ({args.battles - s['finished']} battles did not finish)")
    finally:
        if server is not None:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
