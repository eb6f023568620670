"""``python -m metamon.env``: play battles of our env against a baseline and report.

Example::

    python -m metamon.env --battle_format gen1ou --team_set builtin --opponent GymLeader --battles 20

The agent plays uniformly random actions (``--policy random``: any of the action space's slots,
so illegal picks exercise the fallback; ``random_legal``: only legal ones). ``--log_level``
(default ``quiet``) sets what metamon and poke-env log (:mod:`metamon.logs`). Exit code 2 means
bad input, 1 that the server went away during the run.
"""

from __future__ import annotations

import argparse
import sys

from metamon.env.rollout import play_episodes, random_policy, summarize
from metamon.env.wrappers import BattleAgainstBaseline
from metamon.errors import MetamonError
from metamon.formats import is_random_battle
from metamon.logs import add_log_level_argument, configure_logging
from metamon.server import LocalShowdownServer


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m metamon.env", description=__doc__.split("\n")[0])
    p.add_argument("--battle_format", default="gen1ou")
    p.add_argument("--team_set", default="builtin", help="team set name or folder (ignored for random battles)")
    p.add_argument("--opponent", default="GymLeader", help="baseline name or dotted path to a poke-env Player")
    p.add_argument("--battles", type=int, default=10)
    p.add_argument("--observation_space", default="DefaultObservationSpace")
    p.add_argument("--action_space", default="DefaultActionSpace")
    p.add_argument("--reward_function", default="DefaultShapedReward")
    p.add_argument("--tokenizer", default=None, help="e.g. metamon-gemma-v1 to emit text_tokens")
    p.add_argument("--policy", choices=["random", "random_legal"], default="random")
    p.add_argument("--turn_limit", type=int, default=200)
    p.add_argument("--save_trajectories_to", default=None)
    p.add_argument("--server_url", default="127.0.0.1:8000")
    p.add_argument("--start_server", action="store_true", help="start a private server on a free port")
    p.add_argument("--seed", type=int, default=None)
    add_log_level_argument(p)
    args = p.parse_args(argv)
    configure_logging(args.log_level)

    server = LocalShowdownServer().start() if args.start_server else None
    env = None
    try:
        env = BattleAgainstBaseline(
            args.battle_format, args.observation_space, args.action_space, args.reward_function,
            team_set=None if is_random_battle(args.battle_format) else args.team_set,
            opponent_type=args.opponent, turn_limit=args.turn_limit,
            save_trajectories_to=args.save_trajectories_to, tokenizer=args.tokenizer,
            server_url=server.port if server else args.server_url,
        )
        policy = random_policy(env.action_space.n, legal_only=args.policy == "random_legal", seed=args.seed)
        results = play_episodes(env, policy, args.battles, desc=f"{args.battle_format} vs {args.opponent}")
        for i, r in enumerate(results):
            print(f"battle {i:3d}: {r.result:4s} steps={r.steps:3d} return={r.total_return:8.2f} "
                  f"valid={r.valid_actions} invalid={r.invalid_actions} fps={r.steps / r.seconds:6.1f}")
        s = summarize(results)
        lo, hi = s["win_rate_95ci"]
        print(f"\n{s['battles']} battles vs {args.opponent} in {args.battle_format}: win rate "
              f"{s['win_rate']:.1%} (95% CI {lo:.1%}-{hi:.1%}), mean return {s['mean_return']:.2f}, "
              f"mean turns {s['mean_turns']:.1f}, valid/invalid actions "
              f"{env.valid_action_count}/{env.invalid_action_count}, {s['steps_per_s']:.1f} steps/s")
    except MetamonError as e:  # a lost server exits 1, bad input 2 (exit_code)
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    finally:
        if env is not None:
            env.close()
        if server is not None:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
