"""``make demo``: the library's main job on built-in defaults.

Today: our gymnasium env (random legal policy) battles several baselines in gen1ou and gen9ou
(built-in teams) and gen9randombattle on the local server, and a summary table is printed.
"""

from __future__ import annotations

import argparse
import sys

from metamon.errors import MetamonError

DEFAULT_MATCHUPS = [
    ("gen1ou", "RandomBaseline"),
    ("gen1ou", "Gen1BossAI"),
    ("gen1ou", "GymLeader"),
    ("gen9ou", "Grunt"),
    ("gen9ou", "EmeraldKaizo"),
    ("gen9randombattle", "PokeEnvHeuristic"),
    ("gen9randombattle", "MaxBPBaseline"),
]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m metamon.demo", description=__doc__.split("\n")[0])
    p.add_argument("--server_url", default="127.0.0.1:8000")
    p.add_argument("--battles", type=int, default=10, help="battles per matchup")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    from metamon.env.rollout import play_episodes, random_policy, summarize
    from metamon.env.wrappers import BattleAgainstBaseline
    from metamon.formats import is_random_battle

    rows = []
    try:
        for battle_format, opponent in DEFAULT_MATCHUPS:
            env = BattleAgainstBaseline(
                battle_format, "TeamPreviewObservationSpace", "DefaultActionSpace", "DefaultShapedReward",
                team_set=None if is_random_battle(battle_format) else "builtin", opponent_type=opponent,
                server_url=args.server_url,
            )
            try:
                policy = random_policy(env.action_space.n, legal_only=True, seed=args.seed)
                results = play_episodes(env, policy, args.battles, desc=f"{battle_format} vs {opponent}")
            finally:
                env.close()
            rows.append((battle_format, opponent, summarize(results)))
    except MetamonError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    print("\nRandom legal agent vs baselines (our env, local server)")
    print(f"{'format':18s} {'opponent':18s} {'battles':>7s} {'agent win %':>12s} {'95% CI':>13s} "
          f"{'turns':>6s} {'return':>8s} {'steps/s':>8s}")
    for battle_format, opponent, s in rows:
        lo, hi = s["win_rate_95ci"]
        print(f"{battle_format:18s} {opponent:18s} {s['battles']:7d} {100 * s['win_rate']:11.1f}% "
              f"{100 * lo:5.1f}-{100 * hi:5.1f}% {s['mean_turns']:6.1f} {s['mean_return']:8.2f} "
              f"{s['steps_per_s']:8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
